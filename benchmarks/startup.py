"""How fast every command answers before it works: ``--help``, and refusing a mistyped file or a used output folder.

    python benchmarks/startup.py              # every command's --help, 3 runs each; the refusals; JSON in results/

A command parses and checks its arguments before it imports torch, transformers' models, accelerate,
sentence-transformers or datasets (seconds on a small machine), so a typo costs a blink, not the import. Prints the
median wall time of each command line, and the heavy modules it had imported when it exited (there should be none).
``tests/test_startup.py`` holds the same rule without timing.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common.cli import command_parser  # noqa: E402
from common.io import write_json  # noqa: E402

PACKAGES = ("common", "distill", "finetune", "hub_upload", "modeling", "pretrain", "reproduce", "sentence", "serve")
SCRIPTS = ("pretrain/run.py",)  # run as a script (accelerate launch pretrain/run.py), not with -m
HEAVY = ("torch", "accelerate", "sentence_transformers", "datasets", "onnxruntime", "transformers.modeling_utils")
# Runs a command line in this process, then writes the heavy modules it imported, however it exited.
RUNNER = """
import json, os, runpy, sys
target = sys.argv[1]
sys.argv = sys.argv[1:]
try:
    if target.endswith(".py"):
        runpy.run_path(target, run_name="__main__")
    else:
        runpy.run_module(target, run_name="__main__", alter_sys=True)
finally:
    with open(os.environ["STARTUP_REPORT"], "w") as f:
        json.dump([name for name in json.loads(os.environ["STARTUP_HEAVY"]) if name in sys.modules], f)
"""


def commands() -> list[str]:
    """Every runnable module (``python -m NAME``) and script of the project: the files with a ``__main__`` block."""
    found = list(SCRIPTS)
    for package in PACKAGES:
        for path in sorted((ROOT / package).glob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative in SCRIPTS or not re.search(r'^if __name__ == "__main__":', path.read_text(), re.M):
                continue
            module = relative[: -len(".py")].replace("/", ".")
            found.append(module.removesuffix(".__main__"))
    return found


def run(target: str, args: list[str]) -> tuple[float, int, str, list[str]]:
    """One command line from the repository's folder: (seconds, exit code, stderr, heavy modules imported)."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.json"
        env = {**os.environ, "STARTUP_REPORT": str(report), "STARTUP_HEAVY": json.dumps(HEAVY), "HF_HUB_OFFLINE": "1"}
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", RUNNER, target, *args], cwd=ROOT, env=env, capture_output=True, text=True
        )
        seconds = time.perf_counter() - start
        heavy = json.loads(report.read_text()) if report.exists() else ["(no report)"]
    return seconds, done.returncode, done.stderr, heavy


def refusals(scratch: Path) -> dict[str, list[str]]:
    """Command lines a newcomer gets wrong: a mistyped data file, an output folder an earlier run filled."""
    used = scratch / "used"
    used.mkdir(exist_ok=True)
    (used / "results.json").write_text("{}")
    train, test = "data/nsmc_train.txt.gz", "data/nsmc_test.txt.gz"
    return {
        "finetune.nsmc, a mistyped --train": ["finetune.nsmc", "--model", "x", "--train", "data/nsmc_train.txt",
                                              "--test", test, "--output", str(scratch / "new")],
        "modeling.extract, a used --output": ["modeling.extract", "--teacher", "data/kobert", "--layers", "0",
                                              "--output", str(used)],
        "distill.train, a used --output_dir": ["distill.train", "--train_data", train, "--test_data", test, "--alpha",
                                               "1", "--output_dir", str(used)],
    }  # fmt: skip


def main() -> None:
    parser = command_parser("python benchmarks/startup.py", __doc__)
    parser.add_argument("--repeats", type=int, default=3, help="Runs of each command line; the median is shown.")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "startup.json"), help="JSON.")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        lines = {f"{name} --help": [name, "--help"] for name in commands()} | refusals(Path(scratch))
        for label, (target, *rest) in lines.items():
            runs = [run(target, rest) for _ in range(args.repeats)]
            seconds, code, stderr, heavy = statistics.median(r[0] for r in runs), *runs[-1][1:]
            says = stderr.strip().splitlines()[-1] if stderr.strip() else ""
            rows.append({"command": label, "seconds": round(seconds, 2), "exit": code, "heavy": heavy, "says": says})
            print(f"{seconds:5.2f} s  exit {code}  {label}" + (f"  (imported {', '.join(heavy)})" if heavy else ""))
    worst_help = max(r["seconds"] for r in rows if r["command"].endswith("--help"))
    worst_refusal = max(r["seconds"] for r in rows if not r["command"].endswith("--help"))
    print(f"slowest --help {worst_help:.2f} s, slowest refusal {worst_refusal:.2f} s ({len(rows)} command lines)")
    write_json(args.output, {"python": sys.version.split()[0], "cpus": os.cpu_count(), "rows": rows})


if __name__ == "__main__":
    main()

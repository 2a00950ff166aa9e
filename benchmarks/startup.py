"""How fast every command answers before it works: ``--help``, and refusing a mistyped file or a used output folder.

    python -m benchmarks.startup              # every command's --help, 3 runs each; the refusals; JSON in results/
    git worktree add /tmp/before COMMIT && python -m benchmarks.startup --baseline /tmp/before   # side by side

A command parses and checks its arguments before it imports torch, transformers' models, accelerate,
sentence-transformers or datasets (seconds on a small machine), so a typo costs a blink, not the import. Prints the
median wall time of each command line, and the heavy modules it had imported when it exited (there should be none);
with ``--baseline`` (a checkout of another commit, run with this environment) each line runs there too, in turn with
this checkout's.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.config import key, run_command
from common.io import write_json

ROOT = Path(__file__).resolve().parent.parent
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


def run(target: str, args: list[str], checkout: Path = ROOT) -> tuple[float, int, str, list[str]]:
    """One command line run in ``checkout`` (its code comes first on the path): (seconds, exit code, stderr, heavy
    modules imported)."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.json"
        env = {**os.environ, "STARTUP_REPORT": str(report), "STARTUP_HEAVY": json.dumps(HEAVY), "HF_HUB_OFFLINE": "1"}
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", RUNNER, target, *args], cwd=checkout, env=env, capture_output=True, text=True
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
        "finetune.nsmc, a mistyped --train_file": ["finetune.nsmc", "--model_name_or_path", "x", "--train_file",
                                                   "data/nsmc_train.txt", "--test_file", test,
                                                   "--output_dir", str(scratch / "new")],
        "modeling.extract, a used --output_dir": ["modeling.extract", "--teacher_name_or_path", "data/kobert",
                                                  "--layers", "0", "--output_dir", str(used)],
        "distill.train, a used --output_dir": ["distill.train", "--train_files", train, "--test_file", test, "--alpha",
                                               "1", "--output_dir", str(used)],
    }  # fmt: skip


def exists_in(checkout: Path, target: str) -> bool:
    """Whether ``target`` (a module name or a script path) is a command of ``checkout``."""
    module = checkout / target.replace(".", "/")
    return (checkout / target).is_file() or module.with_suffix(".py").is_file() or (module / "__main__.py").is_file()


def median_seconds(runs: list[tuple[float, int, str, list[str]]]) -> float:
    return round(statistics.median(r[0] for r in runs), 2)


@dataclass(kw_only=True)
class StartupOptions:
    """What ``python -m benchmarks.startup`` reads."""

    repeats: int = key(3, "Runs of each command line; the median is shown.")
    baseline: str = key("", "A checkout of another commit, timed in turn with this one.")
    output_file: str = key(str(ROOT / "benchmarks" / "results" / "startup.json"), "The figures, as JSON.")

    def validate(self) -> None:
        if self.repeats < 1:
            raise ValueError(f"--repeats must be at least 1, got {self.repeats}")
        if self.baseline and not Path(self.baseline).is_dir():
            raise ValueError(f"--baseline {self.baseline!r}: not a folder")


def measure_startup(options: StartupOptions) -> list[dict[str, Any]]:
    """Every command line's median seconds, exit code, last stderr line and heavy imports (and the baseline's
    seconds), printed as measured; written to ``options.output_file``."""
    options.validate()
    baseline = Path(options.baseline).resolve() if options.baseline else None
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        lines = {f"{name} --help": [name, "--help"] for name in commands()} | refusals(Path(scratch))
        for label, (target, *rest) in lines.items():
            here, there = [], []
            for _ in range(options.repeats):  # in turn, so that both checkouts see the same machine
                here.append(run(target, rest))
                if baseline is not None and exists_in(baseline, target):
                    there.append(run(target, rest, baseline))
            _, code, stderr, heavy = here[-1]
            says = stderr.strip().splitlines()[-1] if stderr.strip() else ""
            row = {"command": label, "seconds": median_seconds(here), "exit": code, "heavy": heavy, "says": says}
            row |= {"baseline_seconds": median_seconds(there)} if there else {}
            rows.append(row)
            before = f"  (baseline {row['baseline_seconds']:.2f} s)" if there else ""
            print(f"{row['seconds']:5.2f} s  exit {code}  {label}{before}" + (f"  imported {heavy}" if heavy else ""))
    record = {"python": sys.version.split()[0], "cpus": os.cpu_count(), "baseline": options.baseline or None}
    write_json(options.output_file, {**record, "rows": rows})
    return rows


def slowest(rows: list[dict[str, Any]]) -> list[str]:
    """The slowest --help and the slowest refusal, here and in the baseline."""
    lines = []
    for kind, ending in (("--help", True), ("refusal", False)):
        kind_rows = [r for r in rows if r["command"].endswith("--help") == ending]
        worst = max(kind_rows, key=lambda r: r["seconds"])
        line = f"slowest {kind}: {worst['seconds']:.2f} s ({worst['command']})"
        if compared := [r for r in kind_rows if "baseline_seconds" in r]:
            worst_before = max(compared, key=lambda r: r["baseline_seconds"])
            line += f"; in the baseline {worst_before['baseline_seconds']:.2f} s ({worst_before['command']})"
        lines.append(line)
    return lines


def main(argv: list[str] | None = None) -> int:
    rows = run_command(measure_startup, StartupOptions, argv, "python -m benchmarks.startup", __doc__)
    print("\n".join(slowest(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

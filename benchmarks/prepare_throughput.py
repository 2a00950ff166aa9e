"""Corpus preparation: throughput and peak memory of pretrain.prepare on synthetic corpora of growing size.

    python benchmarks/prepare_throughput.py                                # 100 MB and 1000 MB, all cores
    python benchmarks/prepare_throughput.py --sizes-mb 10,100 --num-proc 2

    python benchmarks/prepare_throughput.py --sizes-mb 100 --baseline a08370c   # before and after, same corpus

Each corpus is real review lines (../shared/data/corpus/reviews.txt.gz when present, else data/reviews.txt.gz)
repeated up to the size in MB of text, shuffled anew (deterministically) on every pass, and written as .gz into a
temporary folder. ``python -m pretrain.prepare`` then runs on it in its own process. MB/s is prepare's own figure
(text bytes over its run time, interpreter start-up excluded); peak RSS is that of its largest process (the main
one or a worker). Memory that stays flat as the corpus grows gives an RSS ratio near 1 between the largest and
the smallest corpus. With ``--baseline REF``, the code of that git commit (checked out in a temporary worktree)
prepares the same corpus first, and the table gains its row, the speed-up and whether the two outputs are
byte-identical (every file but ``stats.json``, which holds timings). Prints a markdown table and writes the figures
as JSON.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common.cli import command_parser  # noqa: E402

# Linux carries a process's peak RSS into the children it forks (ru_maxrss survives exec), so a command started
# straight from this process, which holds the source lines, would report at least our own peak; a small launcher in
# between starts afresh.
PEAK_RSS_LAUNCHER = (
    "import resource, subprocess, sys; code = subprocess.run(sys.argv[2:]).returncode; "
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); sys.exit(code)"
)


def parse_args() -> argparse.Namespace:
    parser = command_parser("python benchmarks/prepare_throughput.py", __doc__)
    parser.add_argument("--sizes-mb", default="100,1000", help="Comma-separated corpus sizes in MB of text.")
    parser.add_argument("--num-proc", type=int, default=os.cpu_count() or 1, help="--num-proc of pretrain.prepare.")
    parser.add_argument("--max-seq-length", type=int, default=512, help="--max-seq-length of pretrain.prepare.")
    parser.add_argument("--tokenizer", default=str(ROOT / "runs" / "bench" / "tokenizer"), help="Tokenizer folder.")
    parser.add_argument("--corpus", default=None, help="Source lines (default: ../shared/data, else data/).")
    parser.add_argument("--workdir", default=None, help="Where the temporary corpora go (default: the system's).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the shuffles.")
    parser.add_argument("--baseline", default=None, help="A git commit whose pretrain.prepare runs first, to compare.")
    parser.add_argument(
        "--output",
        default=str(ROOT / "benchmarks" / "results" / "prepare_throughput.json"),
        help="The figures, as JSON.",
    )
    args = parser.parse_args()
    try:
        args.sizes_mb = sorted(float(size) for size in args.sizes_mb.split(","))
    except ValueError:
        parser.error(f"--sizes-mb must be numbers separated by commas, e.g. 10,100; got {args.sizes_mb!r}")
    if args.sizes_mb[0] <= 0:
        parser.error("--sizes-mb must be positive")
    if args.num_proc < 1:
        parser.error("--num-proc must be at least 1")
    return args


def write_synthetic_corpus(path: Path, lines: list[str], megabytes: float, seed: int) -> Path:
    """About ``megabytes`` of text: ``lines`` over and over, shuffled anew on each pass, cut at a line end."""
    rng, remaining = random.Random(seed), int(megabytes * 1e6)
    with gzip.open(path, "wb", compresslevel=1) as f:
        while remaining > 0:
            order = lines[:]
            rng.shuffle(order)
            data = "".join(f"{line}\n" for line in order).encode()
            if len(data) >= remaining:
                f.write(data[: data.rfind(b"\n", 0, remaining) + 1])
                break
            f.write(data)
            remaining -= len(data)
    return path


def run_measured(command: list[str], record: Path, code: Path = ROOT) -> tuple[float, float]:
    """Run ``command`` from ``code``; returns (wall seconds, peak RSS in MB of its largest process)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", PEAK_RSS_LAUNCHER, str(record), *command], check=True, cwd=code)
    return time.perf_counter() - start, int(record.read_text()) / 1024  # ru_maxrss is in KiB on Linux


def checkout(ref: str, folder: Path) -> Path:
    """The repository at ``ref`` in a detached worktree at ``folder`` (its modules shadow ours: they come first)."""
    subprocess.run(["git", "worktree", "add", "--detach", str(folder), ref], check=True, cwd=ROOT, capture_output=True)
    return folder


def same_output(a: Path, b: Path) -> bool:
    """Whether two prepared folders hold the same files with the same bytes, timings (stats.json) aside."""
    names = sorted(p.name for p in a.iterdir() if p.name != "stats.json")
    if names != sorted(p.name for p in b.iterdir() if p.name != "stats.json"):
        return False
    return all((a / name).read_bytes() == (b / name).read_bytes() for name in names)


def prepare(code: Path, corpus: Path, output: Path, args: argparse.Namespace, tmp: str) -> dict[str, Any]:
    """One measured run of ``code``'s pretrain.prepare on ``corpus``; its figures."""
    command = [sys.executable, "-m", "pretrain.prepare", "--corpus", str(corpus), "--tokenizer", args.tokenizer]
    command += ["--output", str(output), "--max-seq-length", str(args.max_seq_length), "--num-proc", str(args.num_proc)]
    wall, peak_rss = run_measured(command, Path(tmp) / "rss.txt", code)
    stats = json.loads((output / "stats.json").read_text())
    return {
        "text_mb": round(stats["bytes"] / 1e6, 1),
        "gz_mb": round(corpus.stat().st_size / 1e6, 1),
        "lines": stats["lines"],
        "tokens": stats["tokens"],
        "blocks": stats["blocks"],
        "seconds": stats["seconds"],
        "wall_seconds": round(wall, 1),
        "mb_per_s": stats["mb_per_s"],
        "peak_rss_mb": round(peak_rss, 1),
    }


def main() -> None:
    args = parse_args()
    from benchmarks.report import write_report
    from benchmarks.tokenizer_speed import BUNDLED_CORPUS, SHARED_CORPUS, ensure_tokenizer

    ensure_tokenizer(args.tokenizer)
    source = Path(args.corpus) if args.corpus else (SHARED_CORPUS if SHARED_CORPUS.exists() else BUNDLED_CORPUS)
    with gzip.open(source, "rt", encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f if line.strip()]

    results = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        baseline = checkout(args.baseline, Path(tmp) / "baseline") if args.baseline else None
        try:
            for megabytes in args.sizes_mb:
                corpus = write_synthetic_corpus(
                    Path(tmp) / f"corpus-{megabytes:g}mb.txt.gz", lines, megabytes, args.seed
                )
                output = Path(tmp) / f"data-{megabytes:g}mb"
                if baseline is not None:
                    before = prepare(baseline, corpus, Path(tmp) / "before", args, tmp)
                    results.append({"code": args.baseline, "size_mb": megabytes, **before})
                after = prepare(ROOT, corpus, output, args, tmp)
                results.append({"code": "working tree", "size_mb": megabytes, **after})
                if baseline is not None:
                    results[-1]["speedup_vs_baseline"] = round(after["mb_per_s"] / before["mb_per_s"], 2)
                    results[-1]["same_output_as_baseline"] = same_output(Path(tmp) / "before", output)
                    shutil.rmtree(Path(tmp) / "before")
                corpus.unlink()  # a 1000 MB corpus and its blocks take about 2 GB: keep one size on disk at a time
                shutil.rmtree(output)
        finally:
            if baseline is not None:
                subprocess.run(["git", "worktree", "remove", "--force", str(baseline)], cwd=ROOT, check=False)

    current = [r for r in results if r["code"] == "working tree"]
    rss_ratio = round(current[-1]["peak_rss_mb"] / current[0]["peak_rss_mb"], 3)
    write_report(
        args.output,
        "prepare_throughput",
        {
            "source": os.path.relpath(source, ROOT),
            "num_proc": args.num_proc,
            "max_seq_length": args.max_seq_length,
            "baseline": args.baseline,
            "results": results,
            "rss_ratio_largest_to_smallest": rss_ratio,
        },
    )

    print(f"pretrain.prepare, --num-proc {args.num_proc}, --max-seq-length {args.max_seq_length}, lines of {source}")
    header = "| code | corpus (MB of text) | .gz (MB) | lines | tokens | seconds | MB/s | peak RSS (MB) | speed-up |"
    print(header + " same output |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        print(
            f"| {r['code']} | {r['text_mb']:,} | {r['gz_mb']:,} | {r['lines']:,} | {r['tokens']:,} | {r['seconds']} | "
            f"{r['mb_per_s']} | {r['peak_rss_mb']} | {r.get('speedup_vs_baseline', '')} | "
            f"{r.get('same_output_as_baseline', '')} |"
        )
    print(f"peak RSS, largest / smallest corpus: {rss_ratio}x")
    print(f"wrote {os.path.relpath(args.output, ROOT)}")


if __name__ == "__main__":
    main()

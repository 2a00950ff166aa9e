"""Corpus preparation: throughput and peak memory of pretrain.prepare on synthetic corpora of growing size.

    python benchmarks/prepare_throughput.py                                # 100 MB and 1000 MB, all cores
    python benchmarks/prepare_throughput.py --sizes-mb 10,100 --num-proc 2

Each corpus is real review lines (../shared/data/corpus/reviews.txt.gz when present, else data/reviews.txt.gz)
repeated up to the size in MB of text, shuffled anew (deterministically) on every pass, and written as .gz into a
temporary folder. ``python -m pretrain.prepare`` then runs on it in its own process. MB/s is prepare's own figure
(text bytes over its run time, interpreter start-up excluded); peak RSS is that of its largest process (the main
one or a worker). Memory that stays flat as the corpus grows gives an RSS ratio near 1 between the largest and
the smallest corpus. Prints a markdown table and writes the figures as JSON.
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


def run_measured(command: list[str], record: Path) -> tuple[float, float]:
    """Run ``command`` from ROOT; returns (wall seconds, peak RSS in MB of its largest process)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", PEAK_RSS_LAUNCHER, str(record), *command], check=True, cwd=ROOT)
    return time.perf_counter() - start, int(record.read_text()) / 1024  # ru_maxrss is in KiB on Linux


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
        for megabytes in args.sizes_mb:
            corpus = write_synthetic_corpus(Path(tmp) / f"corpus-{megabytes:g}mb.txt.gz", lines, megabytes, args.seed)
            output = Path(tmp) / f"data-{megabytes:g}mb"
            command = [sys.executable, "-m", "pretrain.prepare", "--corpus", str(corpus), "--tokenizer"]
            command += [args.tokenizer, "--output", str(output), "--max-seq-length", str(args.max_seq_length)]
            command += ["--num-proc", str(args.num_proc)]
            wall, peak_rss = run_measured(command, Path(tmp) / "rss.txt")
            stats = json.loads((output / "stats.json").read_text())
            results.append(
                {
                    "size_mb": megabytes,
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
            )
            corpus.unlink()  # a 1000 MB corpus and its blocks take about 2 GB: keep one size on disk at a time
            shutil.rmtree(output)

    rss_ratio = round(results[-1]["peak_rss_mb"] / results[0]["peak_rss_mb"], 3)
    write_report(
        args.output,
        "prepare_throughput",
        {
            "source": os.path.relpath(source, ROOT),
            "num_proc": args.num_proc,
            "max_seq_length": args.max_seq_length,
            "results": results,
            "rss_ratio_largest_to_smallest": rss_ratio,
        },
    )

    print(f"pretrain.prepare, --num-proc {args.num_proc}, --max-seq-length {args.max_seq_length}, lines of {source}")
    print("| corpus (MB of text) | .gz (MB) | lines | tokens | seconds | MB/s | peak RSS (MB) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['text_mb']:,} | {r['gz_mb']:,} | {r['lines']:,} | {r['tokens']:,} | {r['seconds']} | "
            f"{r['mb_per_s']} | {r['peak_rss_mb']} |"
        )
    print(f"peak RSS, largest / smallest corpus: {rss_ratio}x")
    print(f"wrote {os.path.relpath(args.output, ROOT)}")


if __name__ == "__main__":
    main()

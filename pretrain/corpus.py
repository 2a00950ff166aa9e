"""Streaming reader for text corpora: plain or gzip files, one sentence or document per line.

Nothing here holds more than one line in memory, so a 10 GB corpus reads like a 10 KB one.
"""

from __future__ import annotations

import glob
import gzip
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

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
        if not matches:
            raise FileNotFoundError(f"--corpus {pattern!r}: no such file")
        paths.extend(matches)
    return paths


def open_binary(path: str) -> IO[bytes]:
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def iter_lines(paths: list[str], stats: CorpusStats | None = None) -> Iterator[str]:
    """Yield the non-empty lines of ``paths`` without their line ends; count and skip invalid UTF-8 and empty lines."""
    stats = stats if stats is not None else CorpusStats()
    for path in paths:
        stats.files.append(path)
        with open_binary(path) as f:
            for line_no, raw in enumerate(f, start=1):
                stats.bytes += len(raw)
                try:
                    line = raw.decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError as err:
                    stats.invalid_utf8 += 1
                    if stats.invalid_utf8 <= 5:
                        logger.warning("%s:%d: skipping a line that is not UTF-8 (%s)", path, line_no, err.reason)
                    continue
                if not line.strip():
                    stats.empty += 1
                    continue
                stats.lines += 1
                yield line

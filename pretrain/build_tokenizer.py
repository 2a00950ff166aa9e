"""Train a KoBERT-style SentencePiece unigram tokenizer on a corpus and write a loadable tokenizer folder.

    python -m pretrain.build_tokenizer --corpus data/reviews.txt.gz --vocab_size 8002 --output_dir runs/tokenizer
    python -m pretrain.build_tokenizer --corpus 'corpus/*.txt.gz' --vocab_size 8002 --input_sentence_size 5000000 \
        --output_dir runs/tokenizer

The folder holds ``tokenizer_78b3253a26.model`` and ``vocab.txt`` (the file names of the original KoBERT release),
``tokenizer.json``, ``tokenizer_config.json`` and ``tokenization_kobert.py``, and loads with
``AutoTokenizer.from_pretrained(folder, trust_remote_code=True)``, ``KoBertTokenizer`` or ``KoBertTokenizerFast``.
Ids: ``[UNK]``=0, ``[PAD]``=1, ``[CLS]``=2, ``[SEP]``=3, ``[MASK]``=4, then the pieces. From Python:
``build_tokenizer(TokenizerArguments(corpus=[...], output_dir=...))``.
"""

from __future__ import annotations

import logging
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2

from common.config import key, required, run_command
from common.io import new_folder, output_written, require_output_folder, write_json
from pretrain.corpus import CorpusStats, expand_corpus_paths, iter_lines
from tokenization_kobert import SCORE_GRID, VOCAB_FILES_NAMES, KoBertTokenizerFast

logger = logging.getLogger(__name__)

SPECIAL_TOKENS = ["[UNK]", "[PAD]", "[CLS]", "[SEP]", "[MASK]"]
STATS_FILE = "tokenizer_build.json"


@dataclass(kw_only=True)
class TokenizerArguments:
    """What ``python -m pretrain.build_tokenizer`` reads."""

    corpus: list[str] = required("Text files or globs (plain or .gz), one line each.")
    vocab_size: int = key(8002, "Vocabulary size, the 5 special tokens included.")
    output_dir: str = required("Folder to write; refused if it exists and is not empty.")
    overwrite: bool = key(False, "Replace an existing non-empty --output_dir.")
    allow_smaller_vocab: bool = key(
        False, "Write the tokenizer even when the corpus gives fewer pieces than --vocab_size (with a warning)."
    )
    character_coverage: float = key(0.9995, "Share of characters the vocabulary must cover.")
    input_sentence_size: int = key(
        2_000_000,
        "Lines sampled from the corpus to train on (seeded reservoir sampling: bounded memory); 0 = all lines.",
    )
    max_sentence_length: int = key(4192, "Longer lines (bytes) are not trained on.")
    model_max_length: int = key(512, "model_max_length of the saved tokenizer.")
    seed: int = key(42, "Seed of the sampling of --input_sentence_size lines.")
    num_threads: int = key(os.cpu_count() or 1, "SentencePiece training threads.")

    def validate(self) -> None:
        """ValueError naming the option whose value cannot work; the corpus files must be there."""
        if self.vocab_size <= len(SPECIAL_TOKENS):
            raise ValueError(f"--vocab_size must be larger than the {len(SPECIAL_TOKENS)} special tokens")
        if not 0.0 < self.character_coverage <= 1.0:
            raise ValueError("--character_coverage must be in (0, 1]")
        corpus_files(self)
        require_output_folder(self.output_dir, self.overwrite, "--output_dir")


@dataclass
class TokenizerReport:
    output_dir: str
    vocab_size: int
    seconds: float
    corpus: CorpusStats
    example: str  # a sentence with special tokens...
    example_tokens: list[str]  # ...and its tokens


def corpus_files(args: TokenizerArguments) -> list[str]:
    """The files ``--corpus`` names (its globs expanded); ValueError for one that is not there."""
    try:
        return expand_corpus_paths(args.corpus)
    except FileNotFoundError as err:
        raise ValueError(str(err)) from None


def sampled_lines(lines: Iterable[str], size: int, seed: int) -> Iterator[str]:
    """``size`` lines drawn uniformly from ``lines`` by seeded reservoir sampling (memory: ``size`` lines, whatever
    the corpus), in corpus order; every line when ``size`` is 0. SentencePiece's own sampling of an iterator ignores
    ``set_random_generator_seed``: two runs on one corpus trained different vocabularies."""
    if size <= 0:
        yield from lines
        return
    generator = random.Random(seed)
    reservoir: list[tuple[int, str]] = []
    for index, line in enumerate(lines):
        if index < size:
            reservoir.append((index, line))
        elif (slot := generator.randrange(index + 1)) < size:
            reservoir[slot] = (index, line)
    reservoir.sort()
    yield from (line for _, line in reservoir)


def train_sentencepiece(lines: Iterable[str], args: TokenizerArguments) -> bytes:
    """Train the unigram model with KoBERT's special tokens at ids 0-4 on a seeded sample of ``lines``
    (``--input_sentence_size``); returns the serialized model."""
    spm.set_random_generator_seed(args.seed)
    model = tempfile.SpooledTemporaryFile()
    spm.SentencePieceTrainer.train(
        sentence_iterator=sampled_lines(lines, args.input_sentence_size, args.seed),
        model_writer=model,
        model_type="unigram",
        vocab_size=args.vocab_size,
        character_coverage=args.character_coverage,
        input_sentence_size=0,  # sampled already (sampled_lines)
        shuffle_input_sentence=False,
        max_sentence_length=args.max_sentence_length,
        unk_id=0,
        unk_piece="[UNK]",
        pad_id=1,
        pad_piece="[PAD]",
        bos_id=-1,
        eos_id=-1,
        control_symbols=SPECIAL_TOKENS[2:],
        hard_vocab_limit=False,
        num_threads=args.num_threads,
        minloglevel=2,
    )
    model.seek(0)
    return model.read()


def lines_until_error(paths: list[str], stats: CorpusStats, unreadable: list[ValueError]) -> Iterator[str]:
    """The corpus's lines, ending early at a file that is not text or not UTF-8 with its error in ``unreadable``:
    raised inside SentencePiece's training, it would come out as SentencePiece's own error, not ours."""
    try:
        yield from iter_lines(paths, stats)
    except ValueError as err:
        unreadable.append(err)


def check_corpus_read(paths: list[str], stats: CorpusStats, unreadable: list[ValueError]) -> None:
    if unreadable:
        raise unreadable[0]
    if stats.lines == 0:
        raise ValueError(f"--corpus {' '.join(paths)}: no usable lines (empty, or blank lines only)")


def quantize_scores(serialized_model: bytes, grid: int = SCORE_GRID) -> bytes:
    """Round every piece score to a multiple of ``1 / grid``, so that ``tokenizer.json`` read without our classes
    (tokenizers' Unigram model) gives SentencePiece's ids on every input too (``tokenization_kobert.SCORE_GRID``)."""
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(serialized_model)
    for piece in proto.pieces:
        piece.score = round(piece.score * grid) / grid
    return proto.SerializeToString()


def piece_count(serialized_model: bytes) -> int:
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(serialized_model)
    return len(proto.pieces)


def check_vocab_size(pieces: int, args: TokenizerArguments) -> None:
    """A vocabulary smaller than asked (a corpus too small for it: SentencePiece then stops early) is a ValueError,
    unless ``--allow_smaller_vocab`` accepts it; then a warning."""
    if pieces == args.vocab_size:
        return
    found = f"the corpus gave {pieces:,} pieces, not the {args.vocab_size:,} of --vocab_size"
    if not args.allow_smaller_vocab:
        raise ValueError(
            f"{found}: give a larger corpus or a smaller --vocab_size, or --allow_smaller_vocab to keep "
            f"{pieces:,}; nothing was written"
        )
    logger.warning("%s; writing it anyway (--allow_smaller_vocab): a model's embedding must match", found)


def write_tokenizer_folder(serialized_model: bytes, output: str, model_max_length: int) -> KoBertTokenizerFast:
    """Write the SentencePiece model, ``vocab.txt`` (SentencePiece order) and the tokenizer files into ``output``."""
    model_path = os.path.join(output, VOCAB_FILES_NAMES["vocab_file"])
    with open(model_path, "wb") as f:
        f.write(serialized_model)
    sp_model = spm.SentencePieceProcessor(model_proto=serialized_model)
    pieces = [sp_model.id_to_piece(i) for i in range(sp_model.get_piece_size())]
    if pieces[: len(SPECIAL_TOKENS)] != SPECIAL_TOKENS:
        raise RuntimeError(f"SentencePiece put the special tokens at {pieces[:5]}, expected {SPECIAL_TOKENS}")
    vocab_txt = os.path.join(output, VOCAB_FILES_NAMES["vocab_txt"])
    with open(vocab_txt, "w", encoding="utf-8") as f:
        f.writelines(f"{piece}\n" for piece in pieces)
    tokenizer = KoBertTokenizerFast(model_path, vocab_txt, model_max_length=model_max_length)
    tokenizer.save_pretrained(output)
    return tokenizer


def build_tokenizer(args: TokenizerArguments) -> TokenizerReport:
    """Train the tokenizer on ``args.corpus`` and write its folder to ``args.output_dir``. ValueError or OSError names
    an option or a corpus file that cannot work; nothing is written then."""
    args.validate()
    paths = corpus_files(args)
    stats = CorpusStats()
    start = time.perf_counter()
    logger.info("Training a %d-piece unigram model on %s", args.vocab_size, ", ".join(paths))
    unreadable: list[ValueError] = []
    try:
        serialized = quantize_scores(train_sentencepiece(lines_until_error(paths, stats, unreadable), args))
    except RuntimeError as err:  # SentencePiece reports bad settings (vocabulary too small, ...) this way
        check_corpus_read(paths, stats, unreadable)
        raise ValueError(f"SentencePiece training failed: {err}") from err
    check_corpus_read(paths, stats, unreadable)
    check_vocab_size(piece_count(serialized), args)

    # an interrupted build never leaves a half-written tokenizer
    with output_written(args.output_dir, "--output_dir"), new_folder(args.output_dir, "tokenizer") as staging:
        tokenizer = write_tokenizer_folder(serialized, str(staging), args.model_max_length)
        seconds = round(time.perf_counter() - start, 1)
        options = {name: value for name, value in asdict(args).items() if name != "overwrite"}
        summary = {
            "vocab_size": tokenizer.vocab_size,
            "seconds": seconds,
            "corpus": asdict(stats),
            "args": {**options, "corpus": paths},
        }
        write_json(staging / STATS_FILE, summary)

    sample = "[CLS] 한국어 모델을 공유합니다. [SEP]"
    return TokenizerReport(args.output_dir, tokenizer.vocab_size, seconds, stats, sample, tokenizer.tokenize(sample))


def main(argv: list[str] | None = None) -> int:
    report = run_command(build_tokenizer, TokenizerArguments, argv, "python -m pretrain.build_tokenizer", __doc__)
    stats = report.corpus
    print(f"wrote {report.output_dir}: {report.vocab_size} tokens from {stats.lines:,} lines in {report.seconds} s")
    print(f"skipped: {stats.invalid_utf8:,} invalid UTF-8 lines, {stats.empty:,} empty lines")
    print(f"example: {report.example!r} -> {report.example_tokens}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

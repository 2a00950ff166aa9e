"""Train a small student tokenizer (WordPiece or unigram) on a task's text and save it as a standard tokenizer folder.

    python -m distill.tokenizer --train_files data/nsmc_train.txt.gz --vocab_size 3000 \
        --output_dir runs/student-tokenizer
    python -m distill.tokenizer --train_files data/nsmc_train.txt.gz data/reviews.txt.gz --vocab_size 2000 \
        --kind unigram --output_dir runs/student-tokenizer-unigram

The vocabulary size is a grid key of task-specific distillation (2,000 to 9,000): it dominates a tiny student's size.
The folder holds ``tokenizer.json`` and ``tokenizer_config.json`` and loads with ``AutoTokenizer.from_pretrained``
(no remote code). Ids: ``[PAD]``=0, ``[UNK]``=1, ``[CLS]``=2, ``[SEP]``=3, ``[MASK]``=4, then the pieces. Like BERT's::

    single sequence:    [CLS] A [SEP]            token_type_ids 0 ... 0
    pair of sequences:  [CLS] A [SEP] B [SEP]    token_type_ids 0 ... 0 1 ... 1
    padding (right):    [PAD]                    attention_mask 0

In Python::

    tokenizer = train_student_tokenizer(lambda: texts, vocab_size=3000)   # a function giving the texts
    train_tokenizer(TokenizerArguments(train_files=["data/nsmc_train.txt.gz"], output_dir="runs/t"))  # the command
    model = KoBiLstmForSequenceClassification(bilstm_config("base", len(tokenizer), tokenizer.pad_token_id))
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Literal

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from common.config import key, required, run_command
from common.io import new_folder, output_written, require_output_folder
from distill.examples import read_examples

# [PAD] first, so that padding_idx is 0; [MASK] is special because the augmentation writes it into texts.
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
KINDS = ("wordpiece", "unigram")
CONTINUATION_PREFIX = "##"  # WordPiece's mark of a piece that continues a word
WORD_START = "\u2581"  # "▁", SentencePiece's (and the unigram kind's) mark of a piece that starts a word
TOKENIZER_FILE = "tokenizer.json"


def korean_normalizer() -> normalizers.Normalizer:
    """NFC, then BERT's clean-up (control characters dropped, whitespace made spaces, CJK ideographs split off).

    Not NFKC: it maps Hangul compatibility jamo (U+3131..U+318E, as in ``ㅋㅋ``, ``ㅠㅠ``, ``^ㅅ^``, in about 15%
    of NSMC reviews) to conjoining jamo, which then compose with their neighbours: ``ㅋㅋㅋㅠㅠ`` becomes
    ``ᄏᄏ큐ᅲ``. Not BERT's ``strip_accents`` (nor ``lowercase``, which implies it): its NFD decomposes every Hangul
    syllable into jamo. NFC leaves syllables and compatibility jamo as typed and composes decomposed Hangul."""
    return normalizers.Sequence(
        [
            normalizers.NFC(),
            normalizers.BertNormalizer(
                clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False
            ),
        ]
    )


def wordpiece_alphabet_size(vocab_size: int) -> int:
    """How many characters the WordPiece vocabulary keeps (the most frequent ones).

    Each kept character may take two entries (``가`` and ``##가``), and Korean text has some 2,000 distinct
    characters: unlimited, the alphabet alone would overflow a 2,000- or 3,000-token vocabulary. A third of the
    entries leaves at least a third for whole words and longer pieces. A word with a character left out becomes one
    ``[UNK]``: on NSMC that is 3.3% of the tokens at 2,000, 0.9% at 3,000 and none at 9,000."""
    return (vocab_size - len(SPECIAL_TOKENS)) // 3


def untrained_tokenizer(kind: str) -> Tokenizer:
    """An empty WordPiece or unigram pipeline: the Korean normalizer, a pre-tokenizer and the matching decoder.

    WordPiece splits words at whitespace and punctuation (BERT's pre-tokenizer) and marks continuations with
    ``##``; unigram marks word starts with ``▁`` (SentencePiece's Metaspace), so decoding restores the text's own
    spacing, punctuation included."""
    if kind == "wordpiece":
        tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]", continuing_subword_prefix=CONTINUATION_PREFIX))
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tokenizer.decoder = decoders.WordPiece(prefix=CONTINUATION_PREFIX)
    else:
        tokenizer = Tokenizer(models.Unigram())
        # "first": a word start is marked at the start of the text, not after each special token ("[MASK]다").
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement=WORD_START, prepend_scheme="first")
        tokenizer.decoder = decoders.Metaspace(replacement=WORD_START, prepend_scheme="first")
    tokenizer.normalizer = korean_normalizer()
    return tokenizer


def alphabet(texts: Iterable[str], normalizer: normalizers.Normalizer, size: int) -> list[str]:
    """The ``size`` most frequent characters of the normalized texts, ties broken by code point.

    The WordPiece trainer's own ``limit_alphabet`` breaks ties between equally frequent characters in hash order,
    which changes from one process to the next: two runs on the same text would keep different characters."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(normalizer.normalize_str(text))
    for space in " \t\n\r":
        counts.pop(space, None)
    return sorted(counts, key=lambda char: (-counts[char], ord(char)))[:size]


def trainer_for(kind: str, vocab_size: int, kept_characters: list[str]) -> trainers.Trainer:
    if kind == "wordpiece":
        # The kept characters, and only they, start the vocabulary: forced in, and the limit leaves room for no other.
        # Their continuation pieces are registered first too, in our order: the trainer otherwise numbers them as it
        # meets them in its (per-process hash-ordered) word table, and breaks ties between equally frequent merges
        # by those numbers, so two processes chose different merges. Registered as the trainer's special tokens only
        # to fix their ids: the saved tokenizer is rebuilt without them (see wordpiece_tokenizer).
        return trainers.WordPieceTrainer(
            vocab_size=vocab_size,
            special_tokens=SPECIAL_TOKENS + [CONTINUATION_PREFIX + char for char in kept_characters],
            initial_alphabet=kept_characters,
            limit_alphabet=len(kept_characters),
            continuing_subword_prefix=CONTINUATION_PREFIX,
            show_progress=False,
        )
    return trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, unk_token="[UNK]", show_progress=False
    )


def wordpiece_tokenizer(trained: Tokenizer) -> Tokenizer:
    """The trained WordPiece pipeline rebuilt with ids in a fixed order (the special tokens, then by length, then by
    string) and only the real special tokens as added tokens.

    Greedy longest-match segmentation depends on the vocabulary alone, so renumbering changes ids, never pieces; the
    continuation pieces the trainer held as special tokens (see trainer_for) become ordinary pieces again."""
    vocab, model = trained.get_vocab(with_added_tokens=True), trained.model
    ordinary = sorted((t for t in vocab if t not in SPECIAL_TOKENS), key=lambda t: (len(t.removeprefix("##")), t))
    ids = {token: i for i, token in enumerate([*SPECIAL_TOKENS, *ordinary])}
    rebuilt = untrained_tokenizer("wordpiece")
    rebuilt.model = models.WordPiece(
        vocab=ids,
        unk_token=model.unk_token,
        continuing_subword_prefix=model.continuing_subword_prefix,
        max_input_chars_per_word=model.max_input_chars_per_word,
    )
    rebuilt.add_special_tokens(SPECIAL_TOKENS)
    return rebuilt


def bert_template() -> processors.TemplateProcessing:
    """``[CLS] A [SEP]`` and ``[CLS] A [SEP] B [SEP]`` with segment ids 0 then 1, as BERT's tokenizers add them."""
    return processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[(token, SPECIAL_TOKENS.index(token)) for token in ("[CLS]", "[SEP]")],
    )


def check_vocabulary_size(reached: int, vocab_size: int, kind: str, source: str) -> None:
    """A vocabulary of another size than asked is an error: a student built on it would not be the grid's."""
    if reached < vocab_size:
        raise ValueError(
            f"the {kind} vocabulary reached only {reached:,} of the {vocab_size:,} tokens asked: {source} is too "
            "small for that size; give more text or a smaller vocabulary size"
        )
    if reached > vocab_size:
        raise ValueError(f"the {kind} vocabulary has {reached:,} tokens, more than the {vocab_size:,} asked")


def train_student_tokenizer(
    texts: Callable[[], Iterable[str]],
    vocab_size: int,
    kind: str = "wordpiece",
    model_max_length: int = 512,
    source: str = "the text",
) -> PreTrainedTokenizerFast:
    """A ``kind`` tokenizer of exactly ``vocab_size`` tokens (special tokens included) trained on ``texts()``.

    ``texts`` gives the training texts each time it is called (a generator over a file is fine), streamed: WordPiece
    reads them twice (the characters it keeps, then the training), unigram once. The same texts give the same
    WordPiece tokenizer in any process; the unigram trainer's scores vary between processes in the second decimal
    (it sums in hash order), so two unigram tokenizers of the same text may split a few words differently (a
    resumed distill.train run reuses its saved tokenizer either way). Raises ValueError for an unknown kind, a size
    not above the special tokens, or text too small to reach ``vocab_size`` (``source`` names the text there)."""
    if kind not in KINDS:
        raise ValueError(f"unknown tokenizer kind {kind!r}; choose one of {', '.join(KINDS)}")
    if vocab_size <= len(SPECIAL_TOKENS):
        raise ValueError(f"the vocabulary size must be larger than the {len(SPECIAL_TOKENS)} special tokens")
    tokenizer = untrained_tokenizer(kind)
    kept = alphabet(texts(), tokenizer.normalizer, wordpiece_alphabet_size(vocab_size)) if kind == "wordpiece" else []
    try:
        tokenizer.train_from_iterator(iter(texts()), trainer_for(kind, vocab_size, kept))
    except Exception as err:  # the Rust trainers raise plain Exceptions
        raise ValueError(f"training the {kind} tokenizer failed: {err}; give more text or a larger vocabulary") from err
    if kind == "wordpiece":
        tokenizer = wordpiece_tokenizer(tokenizer)
    check_vocabulary_size(tokenizer.get_vocab_size(), vocab_size, kind, source)
    tokenizer.post_processor = bert_template()
    pad, unk, cls, sep, mask = SPECIAL_TOKENS
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token=pad,
        unk_token=unk,
        cls_token=cls,
        sep_token=sep,
        mask_token=mask,
        padding_side="right",
        model_max_length=model_max_length,
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )


def example_texts(paths: list[str]) -> Iterator[str]:
    """The texts of the examples of ``paths``, streamed one at a time."""
    for path in paths:
        for example in read_examples(path):
            yield example.text


@dataclass(kw_only=True)
class TokenizerArguments:
    """What ``python -m distill.tokenizer`` reads."""

    train_files: list[str] = required(
        "Task files: NSMC-format TSV (header id<TAB>document<TAB>label) or plain text, one example per line; "
        ".gz allowed."
    )
    vocab_size: int = key(3000, "Vocabulary size, the 5 special tokens included.")
    kind: Literal["wordpiece", "unigram"] = key("wordpiece", "Tokenizer model.")
    model_max_length: int = key(512, "model_max_length of the saved tokenizer.")
    output_dir: str = required("Folder to write; refused if it exists and is not empty.")
    overwrite: bool = key(False, "Replace an existing non-empty --output_dir folder.")

    def validate(self) -> None:
        """ValueError naming the option whose value cannot work; the files must be there, the output free."""
        if self.vocab_size <= len(SPECIAL_TOKENS):
            raise ValueError(f"--vocab_size must be larger than the {len(SPECIAL_TOKENS)} special tokens")
        missing = [path for path in self.train_files if not os.path.isfile(path)]
        if missing:
            raise ValueError(f"--train_files: no such file: {missing[0]}")
        require_output_folder(self.output_dir, self.overwrite, "--output_dir")


@dataclass
class TokenizerReport:
    tokenizer_file: str  # the saved tokenizer.json
    vocab_size: int
    kind: str


def train_tokenizer(args: TokenizerArguments) -> TokenizerReport:
    """Train a student tokenizer on ``args.train_files`` and save it as the folder ``args.output_dir`` (published
    whole: an interrupted run never leaves half a folder). ValueError or OSError names the option or input that
    cannot work."""
    args.validate()
    texts = partial(example_texts, args.train_files)
    source = f"--train_files {', '.join(args.train_files)}"
    tokenizer = train_student_tokenizer(texts, args.vocab_size, args.kind, args.model_max_length, source)
    with output_written(args.output_dir, "--output_dir"), new_folder(args.output_dir, "student-tokenizer") as staging:
        tokenizer.save_pretrained(staging)
    return TokenizerReport(os.path.join(args.output_dir, TOKENIZER_FILE), len(tokenizer), args.kind)


def main(argv: list[str] | None = None) -> int:
    report = run_command(train_tokenizer, TokenizerArguments, argv, "python -m distill.tokenizer", __doc__)
    print(f"wrote {report.tokenizer_file}: {report.vocab_size:,} tokens ({report.kind})")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""KoBERT tokenizers: a SentencePiece unigram model whose ids come from a separate ``vocab.txt``.

Both classes give the tokens and ids of the ``KoBertTokenizer`` in kobert-transformers 0.6.0 / DistilKoBERT for every
text, and work under transformers 5. Their ids come from one engine, ``KoBertSegmenter``: KoBERT's preprocessing,
then SentencePiece's own encoder (its normalisation and its float32 Viterbi, whose tie-breaking between equally
scored segmentations is what KoBERT was trained with), then KoBERT's number rule.

- ``KoBertTokenizer`` (slow) runs it text by text.
- ``KoBertTokenizerFast`` (what ``AutoTokenizer`` returns) runs it over a whole batch through SentencePiece's batch
  encoder, and gives offsets, ``word_ids()``, overflow and the rest of a fast tokenizer from a ``tokenizers``
  pipeline whose pre-tokenizer hands every word the engine's pieces, so its Unigram model never decides a split.
- ``tokenizer.json`` is that pipeline with tokenizers' own pre-tokenizer, so that non-Python consumers (and
  transformers without ``trust_remote_code``) can load it. Its Unigram model adds scores in float64, so on models
  whose scores are not multiples of 1/64, such as KoBERT's own, it may order equally likely pieces of runs of
  repeated characters differently (``....`` -> ``['.', '...']`` instead of ``['...', '.']``; about 0.2% of real
  lines), and it does not apply the number rule when the vocabulary has pieces like ``▁1,``.

Special-token layout (BERT's)::

    single sequence:    [CLS] A [SEP]            token_type_ids 0 ... 0
    pair of sequences:  [CLS] A [SEP] B [SEP]    token_type_ids 0 ... 0 1 ... 1
    padding:            [PAD]                    token_type_ids 0, attention_mask 0

Special tokens (``[CLS]``, ``[SEP]``, ``[PAD]``, ``[MASK]``, ``[UNK]`` and any added special token) are never
split, wherever they stand in the text.

This file is shipped to the Hub as remote code, so it imports only transformers, sentencepiece, tokenizers, numpy
(which transformers requires) and the standard library.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import itertools
import json
import os
import re
import shutil
import sys
import threading
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
import sentencepiece as spm
from tokenizers import (
    AddedToken,
    NormalizedString,
    PreTokenizedString,
    Regex,
    Token,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
)
from transformers import BatchEncoding, PreTrainedTokenizer, PreTrainedTokenizerFast
from transformers.tokenization_utils_base import PaddingStrategy, TruncationStrategy
from transformers.utils import logging

logger = logging.get_logger(__name__)

VOCAB_FILES_NAMES = {"vocab_file": "tokenizer_78b3253a26.model", "vocab_txt": "vocab.txt"}
FAST_VOCAB_FILES_NAMES = {**VOCAB_FILES_NAMES, "tokenizer_file": "tokenizer.json"}
SPIECE_UNDERLINE = "▁"
MODEL_INPUT_NAMES = ["input_ids", "token_type_ids", "attention_mask"]
NOTICE_FILE = "NOTICE"  # the origin and licence of the SentencePiece model, copied along wherever it is saved
# Written into every saved tokenizer_config.json, so AutoTokenizer can never fall back to a WordPiece BertTokenizer.
AUTO_MAP = {"AutoTokenizer": ["tokenization_kobert.KoBertTokenizer", "tokenization_kobert.KoBertTokenizerFast"]}
_SP_PIECE_TYPES_IN_VOCAB = (1, 4)  # sentencepiece ModelProto piece types NORMAL and USER_DEFINED
# SentencePiece adds path scores in float32, tokenizers in float64. Scores that are multiples of 1/64 make both exact
# (for |path score| < 2**18), so both break ties between equal segmentations alike: then tokenizer.json's Unigram
# pipeline gives the engine's ids too. pretrain.build_tokenizer writes such models; KoBERT's own is not one.
SCORE_GRID = 64
_LAST_BMP_CODE_POINT = 0xFFFF


def load_vocab(vocab_txt: str, required_tokens: list[str]) -> list[str]:
    """Read ``vocab.txt`` (one token per line, id = line number) and check it.

    Raises ``ValueError`` naming the file and line for an empty line or a duplicate token, and naming the token when
    one of ``required_tokens`` (the special tokens) is missing.
    """
    if not vocab_txt or not os.path.isfile(vocab_txt):
        raise ValueError(f"vocab.txt not found: {vocab_txt!r}")
    tokens: list[str] = []
    first_line: dict[str, int] = {}
    with open(vocab_txt, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            token = line.strip()
            if not token:
                raise ValueError(f"{vocab_txt}:{line_no}: empty token")
            if token in first_line:
                raise ValueError(
                    f"{vocab_txt}:{line_no}: duplicate token {token!r} (first seen on line {first_line[token]})"
                )
            first_line[token] = line_no
            tokens.append(token)
    missing = [t for t in required_tokens if t not in first_line]
    if missing:
        raise ValueError(f"{vocab_txt}: special tokens {missing} are missing; add one line for each")
    return tokens


def load_sentencepiece(vocab_file: str) -> spm.SentencePieceProcessor:
    if not vocab_file or not os.path.isfile(vocab_file):
        raise ValueError(f"SentencePiece model not found: {vocab_file!r}")
    sp_model = spm.SentencePieceProcessor()
    sp_model.Load(vocab_file)
    return sp_model


def check_pieces_in_vocab(sp_model: spm.SentencePieceProcessor, vocab: dict[str, int], vocab_txt: str) -> None:
    """Every piece SentencePiece can output must have an id in ``vocab.txt``, or it would silently become [UNK]."""
    missing = [
        sp_model.id_to_piece(i)
        for i in range(sp_model.get_piece_size())
        if not (sp_model.is_unknown(i) or sp_model.is_control(i) or sp_model.is_unused(i))
        and sp_model.id_to_piece(i) not in vocab
    ]
    if missing:
        raise ValueError(
            f"{len(missing)} SentencePiece pieces are not in {vocab_txt} (first: {missing[:5]}); "
            "the SentencePiece model and vocab.txt do not belong together"
        )


def code_point_ranges(predicate: Callable[[str], bool], last: int = sys.maxunicode) -> list[tuple[int, int]]:
    """The code points up to ``last`` that ``predicate`` accepts, as inclusive ``(first, last)`` ranges."""
    ranges: list[tuple[int, int]] = []
    for cp in range(last + 1):
        if predicate(chr(cp)):
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1] = (ranges[-1][0], cp)
            else:
                ranges.append((cp, cp))
    return ranges


def _is_combining(char: str) -> bool:
    return unicodedata.combining(char) != 0


def _decomposes_to_a_mark(char: str) -> bool:
    return any(_is_combining(c) for c in unicodedata.normalize("NFKD", char))


@functools.cache
def _may_leave_a_mark() -> re.Pattern[str]:
    """Matches every BMP character whose NFKD has a combining mark, and every astral character.

    Text without a match has no mark after NFKD, so nothing to strip: the usual case, found by one ``re`` scan (a
    class of BMP ranges compiles to a bitmap tested in constant time per character) instead of a loop in Python.
    """
    ranges = code_point_ranges(_decomposes_to_a_mark, _LAST_BMP_CODE_POINT)
    ranges.append((_LAST_BMP_CODE_POINT + 1, sys.maxunicode))
    return re.compile("[" + "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges) + "]")


_HANGUL_SYLLABLES = (0xAC00, 0xD7A3)
_CONJOINING_JAMO = ((0x1100, 0x11FF), (0xA960, 0xA97F), (0xD7B0, 0xD7FF))


def _composed_is_as_good(char: str) -> bool:
    """A Hangul syllable, or a character that NFKD and the mark stripping leave alone and that no jamo joins."""
    cp = ord(char)
    if _HANGUL_SYLLABLES[0] <= cp <= _HANGUL_SYLLABLES[1]:
        return True
    if any(first <= cp <= last for first, last in _CONJOINING_JAMO):
        return False
    return unicodedata.normalize("NFKD", char) == char and not _is_combining(char)


@functools.cache
def _needs_nfkd() -> re.Pattern[str]:
    """Matches every character that ``_composed_is_as_good`` refuses, every astral character included."""
    ranges = code_point_ranges(lambda c: not _composed_is_as_good(c), _LAST_BMP_CODE_POINT)
    ranges.append((_LAST_BMP_CODE_POINT + 1, sys.maxunicode))
    return re.compile("[" + "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges) + "]")


def nfkd_without_marks(text: str) -> str:
    """NFKD, then every combining mark removed; Hangul syllables stay composed when nothing else would change.

    SentencePiece's NFKC composes a syllable's jamo back into the syllable, so it segments a text of syllables and
    NFKD-stable characters the same whether or not they were decomposed, and the composed text is half as long. A
    syllable next to a conjoining jamo, or any other character NFKD changes, takes the whole path.
    """
    if _needs_nfkd().search(text) is None:
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    if _may_leave_a_mark().search(text) is None:
        return decomposed
    return "".join(c for c in decomposed if not _is_combining(c))


def preprocess_texts(texts: list[str], remove_space: bool, keep_accents: bool, do_lower_case: bool) -> list[str]:
    """KoBERT's text normalisation before SentencePiece (the order matters and is the original's), text by text.

    One pass over all texts per step: the steps are C calls, and a call per step and text would cost more than
    they do.
    """
    if remove_space:
        texts = [" ".join(text.split()) for text in texts]  # split() drops leading and trailing whitespace too
    texts = [text.replace("``", '"').replace("''", '"') for text in texts]
    if not keep_accents:
        # NFKD also turns the compatibility jamo "ㅋ" into the conjoining "ᄏ", often [UNK]: kept for parity.
        texts = [nfkd_without_marks(text) for text in texts]
    if do_lower_case:
        texts = [text.lower() for text in texts]
    return texts


def preprocess_text(text: str, remove_space: bool, keep_accents: bool, do_lower_case: bool) -> str:
    return preprocess_texts([text], remove_space, keep_accents, do_lower_case)[0]


def lowercase_outside(text: str, keep: Sequence[str]) -> str:
    """``text`` lower-cased except where it spells one of ``keep`` (the longest first)."""
    alternatives = "|".join(re.escape(token) for token in sorted(keep, key=len, reverse=True))
    parts = re.split(f"({alternatives})", text) if alternatives else [text]
    return "".join(part if index % 2 else part.lower() for index, part in enumerate(parts))


def ends_with_digit_comma(piece: str) -> bool:
    return len(piece) > 1 and piece[-1] == "," and piece[-2].isdigit()


def split_digit_comma_pieces(pieces: list[str], encode: Any) -> list[str]:
    """Re-split pieces like ``'▁1,'`` into ``['▁1', ',']`` (the XLNet/KoBERT rule for numbers with commas).

    ``encode`` maps a string to SentencePiece pieces.
    """
    out: list[str] = []
    for piece in pieces:
        if not ends_with_digit_comma(piece):
            out.append(piece)
            continue
        sub_pieces = encode(piece[:-1].replace(SPIECE_UNDERLINE, ""))
        if piece[0] != SPIECE_UNDERLINE and sub_pieces[0][0] == SPIECE_UNDERLINE:
            sub_pieces = sub_pieces[1:] if len(sub_pieces[0]) == 1 else [sub_pieces[0][1:], *sub_pieces[1:]]
        out.extend([*sub_pieces, piece[-1]])
    return out


class KoBertSegmenter:
    """KoBERT's segmentation of text into ``vocab.txt`` ids: the one engine behind both tokenizer classes.

    ``preprocess_text``, then SentencePiece's own encoder (its normalisation and its float32 Viterbi), then the
    number rule of ``split_digit_comma_pieces``; pieces are looked up in ``vocab.txt``, anything else is
    ``unk_token``. ``encode_batch`` gives the same ids for many texts at once: SentencePiece's batch encoder returns
    its own ids, which a table maps to ``vocab.txt`` ids, and only texts that meet the number rule (or, for an odd
    vocabulary, an unknown span) go through pieces as strings.

    Args:
        sp_model: the SentencePiece model.
        vocab: ``vocab.txt`` as token -> id.
        unk_token: the token of pieces that have no id.
        remove_space, keep_accents, do_lower_case: ``preprocess_text``'s options.
    """

    def __init__(
        self,
        sp_model: spm.SentencePieceProcessor,
        vocab: dict[str, int],
        unk_token: str,
        remove_space: bool = True,
        keep_accents: bool = False,
        do_lower_case: bool = False,
    ) -> None:
        self.sp_model = sp_model
        self.vocab = vocab
        self.unk_token = unk_token
        self.unk_id = vocab[unk_token]
        self.remove_space, self.keep_accents, self.do_lower_case = remove_space, keep_accents, do_lower_case
        self.number_rule_ids = frozenset(i for piece, i in vocab.items() if ends_with_digit_comma(piece))
        # SentencePiece returns its unknown id for a span it has no piece for; the reference looks the span up in
        # vocab.txt, which can only find it in a token of vocab.txt's own made of such characters (KoBERT has none).
        sp_unk = sp_model.unk_id()
        self.unknown_spans_may_have_ids = any(
            all(sp_model.piece_to_id(char) == sp_unk for char in token)
            for token in vocab
            if sp_model.piece_to_id(token) == sp_unk
        )

    def _derived_model(self, in_vocab_order: bool, normalize: bool) -> spm.SentencePieceProcessor:
        """The same pieces and scores, so the same Viterbi: in ``vocab.txt``'s id order, or without normalisation.

        In ``vocab.txt``'s order SentencePiece returns ``vocab.txt`` ids itself, with no table to map them through;
        its tokens that are no SentencePiece piece become control pieces (never matched in text), ``unk_token``
        the unknown piece.
        """
        from sentencepiece import sentencepiece_model_pb2

        proto = sentencepiece_model_pb2.ModelProto()
        proto.ParseFromString(self.sp_model.serialized_model_proto())
        if in_vocab_order:
            piece_type = sentencepiece_model_pb2.ModelProto.SentencePiece
            by_piece = {p.piece: p for p in proto.pieces if p.type in _SP_PIECE_TYPES_IN_VOCAB}
            pieces = []
            for token in sorted(self.vocab, key=self.vocab.__getitem__):
                if token in by_piece:
                    pieces.append(by_piece[token])
                else:
                    kind = piece_type.UNKNOWN if token == self.unk_token else piece_type.CONTROL
                    pieces.append(piece_type(piece=token, score=0.0, type=kind))
            del proto.pieces[:]
            proto.pieces.extend(pieces)
            proto.trainer_spec.unk_id, proto.trainer_spec.unk_piece = self.unk_id, self.unk_token
            proto.trainer_spec.bos_id = proto.trainer_spec.eos_id = proto.trainer_spec.pad_id = -1
        if not normalize:
            proto.normalizer_spec.name = "identity"
            proto.normalizer_spec.precompiled_charsmap = b""
            proto.normalizer_spec.remove_extra_whitespaces = False
        model = spm.SentencePieceProcessor()
        model.LoadFromSerializedProto(proto.SerializeToString())
        return model

    @functools.cached_property
    def vocab_model(self) -> spm.SentencePieceProcessor:
        """The model in ``vocab.txt``'s id order, for ``encode_batch``."""
        return self._derived_model(in_vocab_order=True, normalize=True)

    @functools.cached_property
    def normalized_model(self) -> spm.SentencePieceProcessor:
        """The model without its normalisation, for text the tokenizers pipeline has normalised."""
        return self._derived_model(in_vocab_order=False, normalize=False)

    def preprocess(self, text: str) -> str:
        return preprocess_text(text, self.remove_space, self.keep_accents, self.do_lower_case)

    def _encode_pieces(self, text: str) -> list[str]:
        return self.sp_model.encode(text, out_type=str)

    def pieces(self, text: str) -> list[str]:
        """The pieces of one text, as kobert-transformers' ``KoBertTokenizer._tokenize`` gives them."""
        return self._segment(self.preprocess(text))

    def _segment(self, preprocessed: str) -> list[str]:
        return split_digit_comma_pieces(self._encode_pieces(preprocessed), self._encode_pieces)

    def pieces_of_normalized(self, normalized: str) -> list[str]:
        """The pieces of a text already through KoBERT's preprocessing and SentencePiece's normalisation."""

        def encode(text: str) -> list[str]:
            return self.normalized_model.encode(text, out_type=str)

        return split_digit_comma_pieces(encode(normalized), encode)

    def ids_of_pieces(self, pieces: list[str]) -> list[int]:
        return [self.vocab.get(piece, self.unk_id) for piece in pieces]

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """The ids of each text (no special tokens), exactly ``ids_of_pieces(pieces(text))``."""
        return self.encode_preprocessed(self.preprocess_batch(texts))

    def preprocess_batch(self, texts: Sequence[str]) -> list[str]:
        return preprocess_texts(list(texts), self.remove_space, self.keep_accents, self.do_lower_case)

    def encode_preprocessed(self, preprocessed: list[str]) -> list[list[int]]:
        """``encode_batch`` of texts already through ``preprocess_batch``."""
        rows = self.vocab_model.encode(preprocessed, num_threads=1)
        for i, ids in enumerate(rows):
            if (self.number_rule_ids and not self.number_rule_ids.isdisjoint(ids)) or (
                self.unknown_spans_may_have_ids and self.unk_id in ids
            ):
                rows[i] = self.ids_of_pieces(self._segment(preprocessed[i]))
        return rows

    def __getstate__(self) -> dict[str, Any]:
        state = {**self.__dict__, "sp_model": self.sp_model.serialized_model_proto()}
        for derived in ("vocab_model", "normalized_model"):  # rebuilt on use
            state.pop(derived, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        sp_model = spm.SentencePieceProcessor()
        sp_model.LoadFromSerializedProto(state["sp_model"])
        self.__dict__ = {**state, "sp_model": sp_model}


def join_pieces(tokens: list[str], special_tokens: set[str]) -> str:
    """Pieces back to text: ``▁`` is a space, and special tokens stand apart from their neighbours."""
    text = ""
    for token in tokens:
        if token in special_tokens:
            text = text.rstrip(" ") + f" {token} "
        elif text.endswith(" "):
            text += token.replace(SPIECE_UNDERLINE, " ").lstrip(" ")
        else:
            text += token.replace(SPIECE_UNDERLINE, " ")
    return text.strip()


def build_inputs(cls_id: int, sep_id: int, ids_0: list[int], ids_1: list[int] | None) -> list[int]:
    if ids_1 is None:
        return [cls_id, *ids_0, sep_id]
    return [cls_id, *ids_0, sep_id, *ids_1, sep_id]


def segment_ids(ids_0: list[int], ids_1: list[int] | None) -> list[int]:
    """0 for ``[CLS] A [SEP]``, 1 for ``B [SEP]``."""
    first = [0] * (len(ids_0) + 2)
    return first if ids_1 is None else first + [1] * (len(ids_1) + 1)


def special_mask(ids_0: list[int], ids_1: list[int] | None) -> list[int]:
    first = [1] + [0] * len(ids_0) + [1]
    return first if ids_1 is None else first + [0] * len(ids_1) + [1]


def write_vocab_txt(tokens: list[str], path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(f"{token}\n" for token in tokens)


def save_sentencepiece(sp_model: spm.SentencePieceProcessor, loaded_from: str | None, out_model: str) -> None:
    """Write the model from memory: the file it was loaded from may be gone (a Trainer's deleted checkpoint, a
    tokenizer unpickled on another machine)."""
    if loaded_from and os.path.abspath(loaded_from) == os.path.abspath(out_model) and os.path.isfile(out_model):
        return
    with open(out_model, "wb") as f:
        f.write(sp_model.serialized_model_proto())


def copy_remote_code(save_directory: str) -> None:
    """Put this file and the ``auto_map`` to both classes into a saved folder, so AutoTokenizer loads it."""
    shutil.copyfile(os.path.abspath(__file__), os.path.join(save_directory, "tokenization_kobert.py"))
    config_path = os.path.join(save_directory, "tokenizer_config.json")
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    config["auto_map"] = AUTO_MAP
    for loading_option in ("is_local", "local_files_only"):  # transformers 5 saves these; they are not properties
        config.pop(loading_option, None)
    with open(config_path, "w", encoding="utf-8") as f:
        f.write(json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def _is_text_batch(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and set(map(type, value)) <= {str}


def _is_words_batch(value: Any) -> bool:
    """A batch of texts given as lists of words, as transformers tells it from one text given so."""
    return isinstance(value, (list, tuple)) and bool(value) and isinstance(value[0], (list, tuple))


def _text_leaves(value: Any) -> Iterator[Any]:
    """The items of a text argument at any depth: a text, a batch, a pair, words, a batch of pairs of words."""
    if isinstance(value, (list, tuple)):
        for item in value:
            yield from _text_leaves(item)
    else:
        yield value


def _validate_text(text: Any, name: str) -> None:
    """A clear TypeError for input that is not text, instead of a failure deep inside the tokenizer."""
    for value in _text_leaves(text):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a str or a list of str, got {type(value).__name__}: {value!r}")


class _KoBertLayout:
    """What both tokenizer classes share: input checks, BERT's special-token layout, decoding, remote code."""

    def __call__(self, text: Any = None, text_pair: Any = None, *args: Any, **kwargs: Any) -> Any:
        if text is not None or kwargs.get("text_target") is None:
            _validate_text(text, "text")
        if text_pair is not None:
            _validate_text(text_pair, "text_pair")
        return super().__call__(text, text_pair, *args, **kwargs)

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return join_pieces(tokens, set(self.all_special_tokens))

    def build_inputs_with_special_tokens(
        self, token_ids_0: list[int], token_ids_1: list[int] | None = None
    ) -> list[int]:
        """``[CLS] A [SEP]`` or ``[CLS] A [SEP] B [SEP]``."""
        return build_inputs(self.cls_token_id, self.sep_token_id, token_ids_0, token_ids_1)

    def create_token_type_ids_from_sequences(
        self, token_ids_0: list[int], token_ids_1: list[int] | None = None
    ) -> list[int]:
        """0 for ``[CLS] A [SEP]``, 1 for ``B [SEP]``."""
        return segment_ids(token_ids_0, token_ids_1)

    def get_special_tokens_mask(
        self, token_ids_0: list[int], token_ids_1: list[int] | None = None, already_has_special_tokens: bool = False
    ) -> list[int]:
        """1 for a special token, 0 for a sequence token."""
        if already_has_special_tokens:
            if token_ids_1 is not None:
                raise ValueError("token_ids_1 must be None when the ids already hold special tokens")
            special_ids = set(self.all_special_ids)
            return [int(i in special_ids) for i in token_ids_0]
        return special_mask(token_ids_0, token_ids_1)

    def save_pretrained(self, save_directory: str | os.PathLike, *args: Any, **kwargs: Any) -> tuple[str, ...]:
        files = super().save_pretrained(save_directory, *args, **kwargs)
        copy_remote_code(str(save_directory))
        notice = os.path.join(os.path.dirname(self.vocab_file or ""), NOTICE_FILE)
        if self.vocab_file and os.path.isfile(notice):  # the licence's attribution travels with the model files
            shutil.copyfile(notice, os.path.join(str(save_directory), NOTICE_FILE))
            files = (*files, os.path.join(str(save_directory), NOTICE_FILE))
        return files


class KoBertTokenizer(_KoBertLayout, PreTrainedTokenizer):
    """KoBERT's SentencePiece tokenizer with ids from ``vocab.txt`` (slow, pure Python over sentencepiece).

    Args:
        vocab_file: the SentencePiece model (``tokenizer_78b3253a26.model``).
        vocab_txt: the id table, one token per line (``vocab.txt``).
        do_lower_case: lower-case the text first.
        remove_space: strip and collapse whitespace first.
        keep_accents: skip NFKD and accent stripping.

    Example::

        >>> tok = KoBertTokenizer.from_pretrained("monologg/kobert")
        >>> tok.tokenize("[CLS] 한국어 모델을 공유합니다. [SEP]")
        ['[CLS]', '▁한국', '어', '▁모델', '을', '▁공유', '합니다', '.', '[SEP]']
    """

    vocab_files_names = VOCAB_FILES_NAMES
    model_input_names = MODEL_INPUT_NAMES

    def __init__(
        self,
        vocab_file: str,
        vocab_txt: str,
        do_lower_case: bool = False,
        remove_space: bool = True,
        keep_accents: bool = False,
        unk_token: str = "[UNK]",
        sep_token: str = "[SEP]",
        pad_token: str = "[PAD]",
        cls_token: str = "[CLS]",
        mask_token: str = "[MASK]",
        **kwargs: Any,
    ) -> None:
        # The vocabulary must exist before super().__init__, which looks tokens up (the original's
        # "'KoBertTokenizer' object has no attribute 'token2idx'" under transformers >= 4.34).
        specials = [str(t) for t in (unk_token, sep_token, pad_token, cls_token, mask_token)]
        self.idx2token = load_vocab(vocab_txt, specials)
        self.token2idx = {token: i for i, token in enumerate(self.idx2token)}
        self.sp_model = load_sentencepiece(vocab_file)
        check_pieces_in_vocab(self.sp_model, self.token2idx, vocab_txt)
        self.segmenter = KoBertSegmenter(
            self.sp_model, self.token2idx, str(unk_token), remove_space, keep_accents, do_lower_case
        )
        self.vocab_file = vocab_file
        self.vocab_txt = vocab_txt
        self.do_lower_case = do_lower_case
        self.remove_space = remove_space
        self.keep_accents = keep_accents
        # Its own engine, whatever the config it is loaded from says: a folder the fast class saved says "tokenizers",
        # and transformers then treats the slow class as fast (sequence_ids() raises, pipelines take fast paths).
        kwargs["backend"] = "sentencepiece"
        super().__init__(
            do_lower_case=do_lower_case,
            remove_space=remove_space,
            keep_accents=keep_accents,
            unk_token=unk_token,
            sep_token=sep_token,
            pad_token=pad_token,
            cls_token=cls_token,
            mask_token=mask_token,
            **kwargs,
        )

    @property
    def vocab_size(self) -> int:
        return len(self.idx2token)

    def get_vocab(self) -> dict[str, int]:
        return {**self.token2idx, **self.added_tokens_encoder}

    def prepare_for_tokenization(
        self, text: str, is_split_into_words: bool = False, **kwargs: Any
    ) -> tuple[str, dict[str, Any]]:
        # Lower-cased before added tokens are matched, special tokens aside, as transformers 4 did for every slow
        # tokenizer (and kobert-transformers relied on): "AAAAA" then finds an added "aaaaa", as in the fast class.
        if self.do_lower_case:
            text = lowercase_outside(text, self.all_special_tokens)
        return super().prepare_for_tokenization(text, is_split_into_words=is_split_into_words, **kwargs)

    def _tokenize(self, text: str, **kwargs: Any) -> list[str]:
        return self.segmenter.pieces(text)

    def _convert_token_to_id(self, token: str) -> int:
        return self.token2idx.get(token, self.token2idx[str(self.unk_token)])

    def _convert_id_to_token(self, index: int) -> str:
        return self.idx2token[index]

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str, str]:
        prefix = f"{filename_prefix}-" if filename_prefix else ""
        out_model = os.path.join(save_directory, prefix + VOCAB_FILES_NAMES["vocab_file"])
        out_txt = os.path.join(save_directory, prefix + VOCAB_FILES_NAMES["vocab_txt"])
        save_sentencepiece(self.sp_model, self.vocab_file, out_model)
        write_vocab_txt(self.idx2token, out_txt)
        return out_model, out_txt

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["sp_model"]  # the segmenter pickles it
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__ = state
        self.sp_model = self.segmenter.sp_model


@functools.cache
def _char_class(predicate_name: str) -> str:
    """An Oniguruma character class of every code point Python's ``predicate`` accepts, as ranges."""
    predicate = {"isspace": str.isspace, "combining": _is_combining}[predicate_name]
    parts = [f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in code_point_ranges(predicate)]
    return "[" + "".join(parts) + "]"


def build_normalizer(
    normalization_name: str,
    precompiled_charsmap: bytes,
    remove_space: bool,
    keep_accents: bool,
    do_lower_case: bool,
) -> normalizers.Normalizer:
    """``preprocess_text`` followed by SentencePiece's own normalisation, as native ``tokenizers`` steps."""
    steps: list[normalizers.Normalizer] = []
    if remove_space:
        steps += [normalizers.Replace(Regex(_char_class("isspace") + "+"), " "), _strip_spaces()]
    steps += [normalizers.Replace("``", '"'), normalizers.Replace("''", '"')]
    if not keep_accents:
        steps += [normalizers.NFKD(), normalizers.Replace(Regex(_char_class("combining")), "")]
    if do_lower_case:
        steps.append(normalizers.Lowercase())
    if precompiled_charsmap:
        if "nfkc" in normalization_name:
            # tokenizers' Precompiled maps a long grapheme cluster (a Hangul syllable as NFKD jamo) one character at
            # a time, where SentencePiece matches the whole sequence; composing first gives SentencePiece's result.
            steps.append(normalizers.NFKC())
        steps.append(normalizers.Precompiled(precompiled_charsmap))
    # SentencePiece's remove_extra_whitespaces, applied to its normalised text.
    steps += [normalizers.Replace(Regex(" {2,}"), " "), _strip_spaces()]
    return normalizers.Sequence(steps)


def _strip_spaces() -> normalizers.Normalizer:
    # Only U+0020: normalizers.Strip() would also take U+0085 and others that SentencePiece keeps.
    return normalizers.Replace(Regex(r"\A +| +\z"), "")


def metaspace() -> pre_tokenizers.PreTokenizer:
    """SentencePiece's word split as a tokenizers pre-tokenizer: spaces become ``▁``, which starts every word."""
    return pre_tokenizers.Metaspace(replacement=SPIECE_UNDERLINE, prepend_scheme="always")


def metaspace_words(normalized: str) -> list[str]:
    """The words ``metaspace()`` cuts a normalised text into."""
    if not normalized:
        return []
    text = normalized.replace(" ", SPIECE_UNDERLINE)
    if not text.startswith(SPIECE_UNDERLINE):
        text = SPIECE_UNDERLINE + text
    return [SPIECE_UNDERLINE + word for word in text[1:].split(SPIECE_UNDERLINE)]


def word_tokens(pieces: list[str], ids: list[int], normalized: str) -> list[list[Token]]:
    """The tokens of each word of ``normalized``, with byte offsets inside the word, from the engine's pieces.

    SentencePiece pieces never cross a ``▁``, so a new word starts at each piece that begins with one. When the
    pipeline's normalised text is not the one SentencePiece segmented (``keep_accents=True`` on text that is not
    NFC: see the README), the ids stay the engine's and every token spans the first word.
    """
    words = metaspace_words(normalized)
    tokens: list[list[Token]] = []
    surfaces: list[str] = []
    start = 0
    for piece, token_id in zip(pieces, ids, strict=True):
        if piece.startswith(SPIECE_UNDERLINE) or not tokens:
            tokens.append([])
            surfaces.append("")
            start = 0
        end = start + len(piece.encode("utf-8"))
        tokens[-1].append(Token(token_id, piece, (start, end)))
        surfaces[-1] += piece
        start = end
    if surfaces == words:
        return tokens
    whole_first_word = (0, len(words[0].encode("utf-8")) if words else 0)
    everything = [Token(token_id, piece, whole_first_word) for piece, token_id in zip(pieces, ids, strict=True)]
    return [everything] + [[] for _ in words[1:]]


class ExactWords:
    """A tokenizers pre-tokenizer that gives every word the ``KoBertSegmenter``'s tokens.

    Each text segment between added tokens, as the pipeline has normalised it, is segmented by the engine's model
    (``KoBertSegmenter.pieces_of_normalized``: the normalisation the pipeline reproduces, then the same Viterbi and
    number rule; the normalised text is all a pre-tokenizer gets reliably, since a composed character's alignment
    to its original characters is partial), cut into words as
    ``metaspace()`` cuts it (so offsets and ``word_ids()`` are the pipeline's own), and each word receives its
    tokens, which leaves nothing for the Unigram model.
    Use it as ``Tokenizer.pre_tokenizer = PreTokenizer.custom(ExactWords(segmenter))``; a custom pre-tokenizer
    cannot be serialised, which is why ``tokenizer.json`` keeps ``metaspace()``.
    """

    def __init__(self, segmenter: KoBertSegmenter) -> None:
        self.segmenter = segmenter

    def pre_tokenize(self, pretokenized: PreTokenizedString) -> None:
        words: list[list[Token]] = []

        def segment(_: int, text: NormalizedString) -> list[NormalizedString]:
            pieces = self.segmenter.pieces_of_normalized(text.normalized)
            words.extend(word_tokens(pieces, self.segmenter.ids_of_pieces(pieces), text.normalized))
            # metaspace(), step by step: a custom pre-tokenizer cannot call a built-in one.
            text.replace(" ", SPIECE_UNDERLINE)
            if text.normalized and not text.normalized.startswith(SPIECE_UNDERLINE):
                text.prepend(SPIECE_UNDERLINE)
            return text.split(SPIECE_UNDERLINE, "merged_with_next")

        pretokenized.split(segment)
        queue = iter(words)
        pretokenized.tokenize(lambda _word: next(queue))


def portable_pipeline_differences(scores: dict[str, float]) -> list[str]:
    """When ``tokenizer.json``'s Unigram pipeline, built from these SentencePiece scores, can differ from the engine."""
    differences = []
    digit_comma = [piece for piece in scores if ends_with_digit_comma(piece)]
    if digit_comma:
        differences.append(
            f"pieces such as {digit_comma[:3]} are re-split by KoBERT's number rule, which tokenizer.json cannot "
            "express: loaded without this file's classes, it may split numbers with commas differently"
        )
    if any(not (score * SCORE_GRID).is_integer() for score in scores.values()):
        differences.append(
            f"piece scores are not multiples of 1/{SCORE_GRID}: loaded without this file's classes, tokenizer.json "
            "may order equally likely pieces of runs of repeated characters ('ㅋㅋㅋㅋ', '....') differently"
        )
    return differences


def build_backend(
    vocab_file: str,
    vocab_txt: str,
    special_tokens: dict[str, str],
    remove_space: bool = True,
    keep_accents: bool = False,
    do_lower_case: bool = False,
) -> Tokenizer:
    """Convert a SentencePiece model plus ``vocab.txt`` into a ``tokenizers.Tokenizer`` with ``vocab.txt`` ids.

    This is the portable pipeline that ``tokenizer.json`` holds; ``KoBertTokenizerFast`` swaps ``ExactWords`` in
    for its pre-tokenizer while it encodes.

    The unigram vocabulary is ``vocab.txt`` in order, scored with SentencePiece's scores; ``vocab.txt`` entries that
    are not SentencePiece pieces (the special tokens) get score 0 and are matched as added tokens only.
    """
    from sentencepiece import sentencepiece_model_pb2

    tokens = load_vocab(vocab_txt, list(special_tokens.values()))
    vocab = {token: i for i, token in enumerate(tokens)}
    sp_model = load_sentencepiece(vocab_file)
    check_pieces_in_vocab(sp_model, vocab, vocab_txt)
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(sp_model.serialized_model_proto())
    scores = {p.piece: p.score for p in proto.pieces if p.type in _SP_PIECE_TYPES_IN_VOCAB}
    for difference in portable_pipeline_differences(scores):
        logger.info("%s: %s", vocab_file, difference)

    unk_token = special_tokens["unk_token"]
    backend = Tokenizer(models.Unigram([(t, scores.get(t, 0.0)) for t in tokens], unk_id=vocab[unk_token]))
    backend.normalizer = build_normalizer(
        proto.normalizer_spec.name,
        proto.normalizer_spec.precompiled_charsmap,
        remove_space,
        keep_accents,
        do_lower_case,
    )
    backend.pre_tokenizer = metaspace()
    backend.decoder = decoders.Metaspace(replacement=SPIECE_UNDERLINE, prepend_scheme="always")
    cls, sep = special_tokens["cls_token"], special_tokens["sep_token"]
    backend.post_processor = processors.TemplateProcessing(
        single=f"{cls}:0 $A:0 {sep}:0",
        pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
        special_tokens=[(cls, vocab[cls]), (sep, vocab[sep])],
    )
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special_tokens.values()])
    return backend


# Where a character's normalised form may stand without joining its neighbours in one grapheme cluster (tokenizers'
# Precompiled looks a short cluster up whole): blocks without prepended, spacing-mark or extending characters once the
# categories below are left out (emoji modifiers, 1F3FB-1F3FF, extend the emoji before them).
_ALONE_BLOCKS = (
    (0x20, 0x7E),
    (0xA0, 0x2FF),
    (0x370, 0x52F),
    (0x1100, 0x11FF),
    (0x2000, 0x2BFF),
    (0x3000, 0x33FF),
    (0x4E00, 0x9FFF),
    (0xAC00, 0xD7A3),
    (0xFF00, 0xFFEF),
    (0x1F300, 0x1F3FA),
    (0x1F400, 0x1FAFF),
)
_CLUSTERING_CATEGORIES = {"Mn", "Mc", "Me", "Cf", "Cc", "Co", "Cs", "Cn", "Zs", "Zl", "Zp"}


@functools.cache
def _composing_seconds() -> frozenset[str]:
    """The characters canonical composition joins to the character before them: the second of every two-character
    canonical decomposition, and Hangul's vowels and final consonants (composed by rule)."""
    seconds = {chr(c) for c in [*range(0x1161, 0x1176), *range(0x11A8, 0x11C3)]}
    for code in range(sys.maxunicode + 1):
        decomposition = unicodedata.decomposition(chr(code)).split()
        if len(decomposition) == 2 and not decomposition[0].startswith("<"):
            seconds.add(chr(int(decomposition[1], 16)))
    return frozenset(seconds)


def normalizes_alone(character: str, normalized: str, lower_case: bool) -> bool:
    """Whether the pipeline's normaliser, which makes ``normalized`` of ``character`` alone, makes the same of it
    wherever it stands in a space-collapsed text of such characters, so that a text of them normalises character by
    character.

    Step by step (``build_normalizer``): the space and mark steps act on one character at a time (the quote step
    replaces pairs, which ``_normalized_by_character`` leaves to the normaliser); NFKD's reordering and NFKC's
    composition reach the character before only through a first decomposed character that is a combining mark or
    the second of a composition; lower-casing only through capital sigma; tokenizers' Precompiled only through a
    grapheme cluster shorter than 6 bytes that the output joins (``_ALONE_BLOCKS``); the final space steps only
    through an output that is a space or nothing. The decompositions are Python's: stable for every character
    assigned in its Unicode version, which this requires.
    """
    if len(normalized) != 1 or normalized == " " or unicodedata.category(character) == "Cn":
        return False
    decomposed = unicodedata.normalize("NFKD", character)
    if unicodedata.combining(decomposed[0]) or decomposed[0] in _composing_seconds():
        return False
    if lower_case and "\u03a3" in decomposed:
        return False
    code = ord(normalized)
    return unicodedata.category(normalized) not in _CLUSTERING_CATEGORIES and any(
        first <= code <= last for first, last in _ALONE_BLOCKS
    )


class AloneCharacters(dict):
    """A ``str.translate`` table, filled as characters are first met: each character that ``normalizes_alone`` to
    its normalised form, each other character to None (translate drops it, so the text comes out shorter), the space
    of a space-collapsed text to itself."""

    def __init__(self, normalized_character: Callable[[str], str], lower_case: bool) -> None:
        super().__init__({ord(" "): " "})
        self._normalized_character = normalized_character
        self._lower_case = lower_case

    def __missing__(self, code: int) -> str | None:
        character = chr(code)
        normalized = self._normalized_character(character)
        alone = normalizes_alone(character, normalized, self._lower_case)
        self[code] = normalized if alone else None
        return self[code]


_NON_SPACE_RUNS = re.compile("[^ ]+")
# Characters the pipeline's normaliser and KoBERT's preprocessing leave as they are, alone and next to each other:
# printable ASCII and Hangul syllables (tests/test_tokenization_kobert.py checks each against the normaliser).
_KEPT_AS_THEY_ARE = re.compile("[ -~\uac00-\ud7a3]*")


def spaces_collapsed(text: str) -> str:
    """``text`` with runs of U+0020 made one and none at either end: what the pipeline's normaliser does to spaces."""
    return " ".join(_NON_SPACE_RUNS.findall(text))


def word_split(normalized: str) -> str:
    """A normalised text as the pipeline's pre-tokenizer writes it, and its pieces spell it: ``▁`` before each word."""
    return SPIECE_UNDERLINE + normalized.replace(" ", SPIECE_UNDERLINE)


def unknown_runs_filled(pieces: list[str], unknown: list[bool], written: str) -> list[str] | None:
    """``pieces`` with each unknown piece replaced by the characters it covers in ``written`` (``word_split``): the
    run up to where the next piece's text starts, since SentencePiece makes a run of characters it has no piece for
    one unknown piece, and a known piece holds none of them. None when the pieces do not spell ``written``."""
    surfaces: list[str] = []
    position = 0
    for index, (piece, is_unknown) in enumerate(zip(pieces, unknown, strict=True)):
        if is_unknown:
            following = pieces[index + 1] if index + 1 < len(pieces) else None
            end = len(written) if following is None else written.find(following, position + 1)
            if end <= position:
                return None
            piece = written[position:end]
        elif not written.startswith(piece, position):
            return None
        surfaces.append(piece)
        position += len(piece)
    return surfaces


def bulk_alignment(text: str, normalized: str, surfaces: list[str]) -> tuple[list[tuple[int, int]], list[int]] | None:
    """The character offsets and word ids of the pieces spelling ``surfaces`` in ``text`` (their text in
    ``word_split(normalized)``), as the tokenizers pipeline gives them, when the pipeline normalises ``text`` to
    ``normalized`` character for character apart from spaces (the length of ``spaces_collapsed(text)``, each
    character replaced by at most one); None when the surfaces do not spell ``word_split(normalized)``.

    The pipeline's alignment, which tests/test_tokenization_kobert.py holds this to on 50,000 lines: a kept space
    stands for the last of its run, the ``▁`` prepended to the first word for that word's first character, and a
    token spans the original characters of its own.
    """
    if not surfaces:
        return ([], []) if not normalized else None
    if "".join(surfaces) != word_split(normalized):
        return None
    ends = list(itertools.accumulate(map(len, surfaces)))
    if len(normalized) == len(text):  # no space dropped: character i of the word split is text's i - 1 (0 for i = 0)
        offsets = [(start - 1, end - 1) for start, end in itertools.pairwise(ends)]
        offsets.insert(0, (0, max(ends[0] - 1, 1)))  # a lone prepended ▁ spans the first character
    else:
        origin = []  # the original index of each character of the word split, its first ▁ included
        for match in _NON_SPACE_RUNS.finditer(text):
            origin.append(match.start() - 1 if origin else match.start())
            origin.extend(range(match.start(), match.end()))
        offsets = [(origin[start], origin[end - 1] + 1) for start, end in zip([0, *ends[:-1]], ends, strict=True)]
    starts_word = (surface[0] == SPIECE_UNDERLINE for surface in surfaces)
    return offsets, list(itertools.accumulate(starts_word, initial=-1))[1:]


# A text's ids, tokens (None: the ids' own pieces), offsets and word ids, before special tokens.
AlignedRow = tuple[list[int], list[str] | None, list[tuple[int, int]], list[int]]


class LengthAlignment(NamedTuple):
    """``alignment_from_lengths``'s result: flat lists over all rows' pieces, and where each row ends in them."""

    offsets: list[tuple[int, int]]
    word_ids: list[int]
    row_ends: list[int]
    row_characters: list[int]  # the length of each row's pieces together: the word split's when they spell it


# Offsets starting before this and spanning fewer characters than this are tuples made once (``_shared_offsets``).
_SHARED_STARTS, _SHARED_SPANS = 1024, 16


@functools.cache
def _shared_offsets() -> np.ndarray:
    """One ``(start, end)`` tuple for each offset a short text's piece can have, at ``start * _SHARED_SPANS + end -
    start``. Each new tuple is visited by Python's cycle collector while it is young (about a fifth of the bulk path's
    time before these were shared); these are made once, and the collector soon stops tracking them (tuples of ints)."""
    offsets = np.empty(_SHARED_STARTS * _SHARED_SPANS, dtype=object)
    offsets[:] = [(start, start + span) for start in range(_SHARED_STARTS) for span in range(_SHARED_SPANS)]
    return offsets


def offset_tuples(starts: np.ndarray, ends: np.ndarray) -> list[tuple[int, int]]:
    """``list(zip(starts, ends))``, with the tuples of short texts' offsets shared (``_shared_offsets``)."""
    spans = ends - starts
    shared = (starts < _SHARED_STARTS) & (spans < _SHARED_SPANS)
    offsets = _shared_offsets()[np.where(shared, starts * _SHARED_SPANS + spans, 0)]
    others = np.flatnonzero(~shared)
    if len(others):
        offsets[others] = list(zip(starts[others].tolist(), ends[others].tolist(), strict=True))
    return offsets.tolist()


def alignment_from_lengths(counts: np.ndarray, lengths: np.ndarray, starts_word: np.ndarray) -> LengthAlignment:
    """``bulk_alignment`` of many texts at once, for texts the pipeline normalises one character for one, spaces
    included (``len(normalized) == len(text)``), spelled by their pieces: the offsets follow from the pieces' lengths.

    ``counts``: each text's number of pieces; ``lengths`` and ``starts_word``: each piece's length (an unknown
    token's: the text it covers) and whether it begins with ``▁``, all rows' one after the other. The caller checks
    that the pieces spell the texts.
    """
    row_ends = np.cumsum(counts)
    row_starts = row_ends - counts
    characters = np.concatenate(([0], np.cumsum(lengths)))
    ends = characters[1:] - np.repeat(characters[row_starts], counts)  # characters of the row up to each piece's end
    starts = ends - lengths - 1  # character i of the word split (its first ▁ included) is the text's i - 1
    ends -= 1
    firsts = row_starts[counts > 0]
    starts[firsts] = 0  # the prepended ▁ belongs to the first word's first character; a lone one spans it
    ends[firsts] = np.maximum(ends[firsts], 1)
    words = np.concatenate(([0], np.cumsum(starts_word)))
    word_ids = words[1:] - np.repeat(words[row_starts], counts) - 1
    return LengthAlignment(
        offset_tuples(starts, ends),
        word_ids.tolist(),
        row_ends.tolist(),
        (characters[row_ends] - characters[row_starts]).tolist(),
    )


def pad_row(row: dict[str, Any], padded_ids: list[int], side: str, pad_token: str) -> None:
    """Pad a known row (``KnownEncoding``) to ``padded_ids`` as the pipeline pads its encodings."""
    missing = len(padded_ids) - len(row["ids"])
    if missing <= 0:
        return
    fill = {"tokens": pad_token, "offsets": (0, 0), "word_ids": None}
    for key, value in fill.items():
        if row[key] is not None:
            row[key] = row[key] + [value] * missing if side == "right" else [value] * missing + row[key]
    row["ids"] = list(padded_ids)


class KnownEncoding:
    """One row's encoding whose ids, tokens, offsets, word ids and sequence ids were computed in bulk; anything else
    (``char_to_token``, ``overflowing``, ...) is the pipeline's ``tokenizers.Encoding``, computed on first use."""

    def __init__(self, known: dict[str, Any], pieces: list[str], pipeline: Callable[[], Any]) -> None:
        self.ids, self.offsets, self.word_ids = known["ids"], known["offsets"], known["word_ids"]
        self._tokens, self._pieces, self._pipeline = known["tokens"], pieces, pipeline

    @property
    def tokens(self) -> list[str]:
        return list(map(self._pieces.__getitem__, self.ids)) if self._tokens is None else self._tokens

    @property
    def words(self) -> list[int | None]:
        return self.word_ids

    @property
    def sequence_ids(self) -> list[int | None]:
        """A single text's: 0 for its tokens, None for special tokens and padding."""
        return [None if word is None else 0 for word in self.word_ids]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pipeline(), name)

    def __len__(self) -> int:
        return len(self.ids)

    def __reduce__(self) -> tuple[Any, ...]:
        return _pipeline_encoding, (self._pipeline,)


def _pipeline_encoding(compute: Callable[[], Any]) -> Any:
    return compute()


class LazyEncodings(Sequence):
    """The ``tokenizers.Encoding`` objects of a batch, computed by ``compute`` the first time one is needed.

    ``KoBertTokenizerFast`` computes ids in bulk without them; ``word_ids()``, ``tokens()``, ``char_to_token()`` and
    the other ``BatchEncoding`` methods then get them from the pipeline, for the same inputs and options.
    """

    def __init__(
        self,
        compute: Callable[[], list[Any]],
        length: int,
        known: list[dict[str, Any]] | None = None,
        pieces: list[str] | None = None,
    ) -> None:
        """``known``: rows computed in bulk (``KnownEncoding``), whose tokens may be left to their ids' ``pieces``."""
        self._compute = compute
        self._length = length
        self._encodings: list[Any] | None = None
        self._known = known or [None] * length
        self._pieces = pieces or []

    def _all(self) -> list[Any]:
        if self._encodings is None:
            self._encodings = self._compute()
        return self._encodings

    def _row(self, index: int) -> Any:
        known = self._known[index]
        if known is None:
            return self._pipeline_row(index)
        return KnownEncoding(known, self._pieces, functools.partial(self._pipeline_row, index))

    def _pipeline_row(self, index: int) -> Any:
        return self._all()[index]

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self._row(i) for i in range(self._length)[index]]
        return self._row(range(self._length)[index])

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[Any]:
        return (self._row(i) for i in range(self._length))

    def __reduce__(self) -> tuple[Any, ...]:
        return list, (self._all(),)


@contextlib.contextmanager
def cycle_collection_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: for building many lists of ints, which cannot form cycles.

    Each collection the allocations would trigger re-scans every object alive, which costs a bulk encoding about a
    third of its time once a caller holds many earlier results; the collector runs as before afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# Options only the tokenizers pipeline serves.
_NEEDS_THE_PIPELINE = (
    "return_overflowing_tokens",
    "sanitize_control_tokens",
)


class KoBertTokenizerFast(_KoBertLayout, PreTrainedTokenizerFast):
    """The KoBERT tokenizer ``AutoTokenizer`` returns: ``KoBertTokenizer``'s ids for every text, fast, plus offsets.

    Plain calls (texts or pairs, padding, truncation of single texts, ``return_tensors``) are encoded in bulk by
    ``KoBertSegmenter.encode_batch``; ``word_ids()``, ``tokens()`` and the other ``BatchEncoding`` methods work on
    the result as on any fast tokenizer's. Offsets of single texts and texts given as lists of words are aligned
    with the ids (``bulk_alignment``, the pipeline's own alignment; ``offsets_in_bulk = False`` leaves them to the
    pipeline). Calls that need the pipeline (offsets of pairs, overflow with stride, truncation of pairs,
    ``split_special_tokens``) run through the ``tokenizers`` backend, whose pre-tokenizer (``ExactWords``) gives it
    the same ids. Loads ``tokenizer.json`` when the folder has one, otherwise
    converts the SentencePiece model and ``vocab.txt`` on the fly; either way it needs the SentencePiece model. Takes
    the same constructor arguments as ``KoBertTokenizer``.
    """

    vocab_files_names = FAST_VOCAB_FILES_NAMES
    model_input_names = MODEL_INPUT_NAMES
    slow_tokenizer_class = KoBertTokenizer
    # Offsets and word ids of single texts computed with the ids (``bulk_alignment``); False: by the pipeline.
    offsets_in_bulk = True

    def __init__(
        self,
        vocab_file: str | None = None,
        vocab_txt: str | None = None,
        tokenizer_file: str | None = None,
        do_lower_case: bool = False,
        remove_space: bool = True,
        keep_accents: bool = False,
        unk_token: str = "[UNK]",
        sep_token: str = "[SEP]",
        pad_token: str = "[PAD]",
        cls_token: str = "[CLS]",
        mask_token: str = "[MASK]",
        **kwargs: Any,
    ) -> None:
        if kwargs.pop("tokenizer_object", None) is not None:
            raise ValueError(
                "KoBertTokenizerFast makes its ids with KoBERT's SentencePiece model and vocab.txt, not from a "
                "tokenizers.Tokenizer: wrap one in PreTrainedTokenizerFast(tokenizer_object=...)"
            )
        special_tokens = {
            "unk_token": str(unk_token),
            "sep_token": str(sep_token),
            "pad_token": str(pad_token),
            "cls_token": str(cls_token),
            "mask_token": str(mask_token),
        }
        if tokenizer_file is not None and os.path.isfile(tokenizer_file):
            backend = Tokenizer.from_file(tokenizer_file)
        elif vocab_file is not None and vocab_txt is not None:
            backend = build_backend(vocab_file, vocab_txt, special_tokens, remove_space, keep_accents, do_lower_case)
        else:
            raise ValueError(
                "KoBertTokenizerFast needs tokenizer.json, or both the SentencePiece model (vocab_file) and vocab.txt"
            )
        sp_model = load_sentencepiece(vocab_file)  # the engine of the ids: tokenizer.json alone cannot be exact
        self.vocab_txt = vocab_txt
        self.do_lower_case = do_lower_case
        self.remove_space = remove_space
        self.keep_accents = keep_accents
        kwargs["backend"] = "tokenizers"  # as the slow class names its own (a config it saved says "sentencepiece")
        super().__init__(
            tokenizer_object=backend,
            vocab_file=vocab_file,
            vocab_txt=vocab_txt,
            do_lower_case=do_lower_case,
            remove_space=remove_space,
            keep_accents=keep_accents,
            **special_tokens,
            **kwargs,
        )
        vocab = self._tokenizer.get_vocab(with_added_tokens=False)
        check_pieces_in_vocab(sp_model, vocab, vocab_txt or str(tokenizer_file))
        self.segmenter = KoBertSegmenter(
            sp_model, vocab, special_tokens["unk_token"], remove_space, keep_accents, do_lower_case
        )
        self._attach_segmenter()

    def _attach_segmenter(self) -> None:
        # The backend keeps tokenizer.json's pipeline, so backend_tokenizer serialises and trains like any other;
        # ExactWords stands in for its pre-tokenizer only while this class encodes, under one lock.
        self._backend_lock = threading.Lock()
        self._exact_words = pre_tokenizers.PreTokenizer.custom(ExactWords(self.segmenter))

    def portable_backend(self) -> Tokenizer:
        """The pipeline as ``tokenizer.json`` stores it: tokenizers' own pre-tokenizer, the Unigram model splits."""
        with self._backend_lock:
            return Tokenizer.from_str(self._tokenizer.to_str())

    def train_new_from_iterator(self, *args: Any, **kwargs: Any) -> PreTrainedTokenizerFast:
        """A new vocabulary trained through ``tokenizer.json``'s pipeline (normaliser, pre-tokenizer, Unigram model,
        ``[CLS] A [SEP]`` layout). KoBERT's exact engine belongs to KoBERT's SentencePiece model, so the result is a
        plain ``PreTrainedTokenizerFast``: it saves and loads without this file."""
        portable = PreTrainedTokenizerFast(
            tokenizer_object=self.portable_backend(),
            model_input_names=self.model_input_names,
            **{
                name: str(getattr(self, name))
                for name in ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
            },
        )
        return portable.train_new_from_iterator(*args, **kwargs)

    @classmethod
    def convert_to_native_format(cls, trust_remote_code: bool = False, **kwargs: Any) -> dict[str, Any]:
        # Our __init__ builds the backend itself; transformers' generic conversion would guess wrongly.
        return kwargs

    def _encode_plus(self, text: Any, text_pair: Any = None, **kwargs: Any) -> BatchEncoding:
        # transformers drops an empty single text_pair (`[(text, text_pair)] if text_pair else [text]`); a blank one
        # normalises to the same empty segment, giving [CLS] A [SEP] [SEP] like the slow tokenizer.
        if isinstance(text, str) and text_pair == "":
            text_pair = " "
        if self._bulk_can_encode(text, text_pair, kwargs):
            with cycle_collection_paused():
                return self._encode_in_bulk(text, text_pair, **kwargs)
        return self._encode_with_backend(text, text_pair, **kwargs)

    def _encode_with_backend(self, text: Any, text_pair: Any = None, **kwargs: Any) -> BatchEncoding:
        with self._backend_lock:
            portable = self._tokenizer.pre_tokenizer
            self._tokenizer.pre_tokenizer = self._exact_words
            try:
                return super()._encode_plus(text, text_pair, **kwargs)
            finally:
                self._tokenizer.pre_tokenizer = portable

    def _bulk_can_encode(self, text: Any, text_pair: Any, options: dict[str, Any]) -> bool:
        """Whether ``_encode_in_bulk`` gives what the backend would: plain texts, no offsets, no overflow."""
        if any(options.get(flag) for flag in _NEEDS_THE_PIPELINE):
            return False
        if options.get("return_offsets_mapping") and (text_pair is not None or not self.offsets_in_bulk):
            return False
        if options.get("split_special_tokens", self.split_special_tokens):
            return False
        if options.get("is_split_into_words"):  # words as lists: single sequences, aligned word by word
            words = text if _is_words_batch(text) else [text]
            if text_pair is not None or not self.offsets_in_bulk or not all(map(_is_text_batch, words)) or not words:
                return False
            text = [word for row in words for word in row]
        batched = not isinstance(text, str)
        if batched and not (_is_text_batch(text) and (text_pair is None or _is_text_batch(text_pair))):
            return False
        if not batched and not (text_pair is None or isinstance(text_pair, str)):
            return False
        truncation = options.get("truncation_strategy", TruncationStrategy.DO_NOT_TRUNCATE)
        if truncation != TruncationStrategy.DO_NOT_TRUNCATE:
            max_length = options.get("max_length")
            single = truncation in (TruncationStrategy.LONGEST_FIRST, TruncationStrategy.ONLY_FIRST)
            specials = 2 if options.get("add_special_tokens", True) else 0
            if text_pair is not None or not single or self.truncation_side != "right":
                return False
            if max_length is None or max_length < specials:
                return False
        return self._added_tokens_are_plain()

    def _added_tokens_are_plain(self) -> bool:
        """Added tokens matched on the raw text as they are (no stripping, whole words or normalisation)."""
        return all(
            not (token.normalized or token.lstrip or token.rstrip or token.single_word)
            for token in self._tokenizer.get_added_tokens_decoder().values()
        )

    def _added_tokens_pattern(self) -> re.Pattern[str]:
        contents = sorted(self._tokenizer.get_added_tokens_decoder().values(), key=lambda t: -len(t.content))
        key = tuple(token.content for token in contents)
        if getattr(self, "_added_pattern_key", None) != key:
            self._added_pattern = re.compile("(" + "|".join(re.escape(content) for content in key) + ")")
            self._added_pattern_key = key
        return self._added_pattern

    def _ids_and_preprocessed(self, texts: Sequence[str]) -> tuple[list[list[int]], list[str] | None]:
        """``_ids_without_specials``, and the preprocessed texts when no text holds an added token."""
        if self._added_tokens_pattern().search("\n".join(texts)) is not None:
            return self._ids_without_specials(texts), None
        preprocessed = self.segmenter.preprocess_batch(texts)
        return self.segmenter.encode_preprocessed(preprocessed), preprocessed

    def _ids_without_specials(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's ids: added tokens where the text has them, the engine's ids between them.

        Every stretch of text, of every row, goes through one ``encode_batch`` call, once.
        """
        pattern = self._added_tokens_pattern()
        if pattern.search("\n".join(texts)) is None:  # one scan for the usual batch, which has none
            return self.segmenter.encode_batch(texts)
        split = [pattern.split(text) for text in texts]  # text, token, text, ..., text (one text without a token)
        encoded = iter(self.segmenter.encode_batch([part for parts in split for part in parts[0::2]]))
        rows = []
        for parts in split:
            ids: list[int] = []
            for i, part in enumerate(parts):
                ids.extend(next(encoded) if i % 2 == 0 else [self._tokenizer.token_to_id(part)])
            rows.append(ids)
        return rows

    def _bulk_columns(
        self,
        firsts: list[list[int]],
        seconds: list[list[int]] | None,
        add_special_tokens: bool,
        keys: set[str],
    ) -> dict[str, list[list[int]]]:
        """``input_ids`` of each text or pair, and those of ``token_type_ids``, ``attention_mask`` and
        ``special_tokens_mask`` that ``keys`` names."""
        cls, sep = self.cls_token_id, self.sep_token_id
        pairs = list(zip(firsts, seconds or [[]] * len(firsts), strict=True))
        if not add_special_tokens:
            columns = {"input_ids": firsts if seconds is None else [a + b for a, b in pairs]}
        elif seconds is None:
            columns = {"input_ids": [[cls, *a, sep] for a in firsts]}
        else:
            columns = {"input_ids": [[cls, *a, sep, *b, sep] for a, b in pairs]}
        if "token_type_ids" in keys:
            a_specials = 2 if add_special_tokens else 0  # [CLS] A [SEP]
            b_specials = 1 if add_special_tokens and seconds is not None else 0  # B [SEP]
            columns["token_type_ids"] = [[0] * (len(a) + a_specials) + [1] * (len(b) + b_specials) for a, b in pairs]
        if "attention_mask" in keys:
            columns["attention_mask"] = [[1] * len(ids) for ids in columns["input_ids"]]
        if "special_tokens_mask" in keys:
            if seconds is not None and add_special_tokens:
                columns["special_tokens_mask"] = [[1, *[0] * len(a), 1, *[0] * len(b), 1] for a, b in pairs]
            elif add_special_tokens:
                columns["special_tokens_mask"] = [[1, *[0] * len(a), 1] for a in firsts]
            else:
                columns["special_tokens_mask"] = [[0] * len(ids) for ids in columns["input_ids"]]
        return columns

    @functools.cached_property
    def _pieces_by_id(self) -> list[str]:
        vocab = self._tokenizer.get_vocab(with_added_tokens=True)
        pieces = [""] * (max(vocab.values()) + 1)
        for piece, index in vocab.items():
            pieces[index] = piece
        return pieces

    def _normalized_alike(self, text: str, collapsed: str, preprocessed: str | None) -> str | None:
        """What the pipeline's normaliser makes of ``text`` when it only collapses its spaces and replaces characters
        one for one (``bulk_alignment`` can align it), else None."""
        if preprocessed == collapsed and _KEPT_AS_THEY_ARE.fullmatch(text):
            return collapsed
        by_character = self._normalized_by_character(collapsed)
        if by_character is not None:
            return by_character
        normalized = self._normalized(text)
        if len(normalized) != len(collapsed):
            return None
        for before, after in zip(collapsed, normalized, strict=True):
            if before != after and self._normalized_character(before) != after:
                return None
        return normalized

    def _normalized(self, text: str) -> str:
        """``text`` through the pipeline's normaliser."""
        normalizer = self._tokenizer.normalizer
        return normalizer.normalize_str(text) if normalizer is not None else text

    def _normalized_character(self, character: str) -> str:
        """``character`` alone through the pipeline's normaliser, remembered."""
        normalized = self._characters.get(character)
        if normalized is None:
            normalized = self._characters[character] = self._normalized(character)
        return normalized

    @functools.cached_property
    def _characters(self) -> dict[str, str]:
        return {}

    @functools.cached_property
    def _alone_table(self) -> AloneCharacters:
        return AloneCharacters(self._normalized_character, self.do_lower_case)

    def _normalized_by_character(self, collapsed: str) -> str | None:
        """The pipeline's normalised ``collapsed`` (a text with its spaces collapsed, which stay), character by
        character, when each of its characters ``normalizes_alone``; else None."""
        if "``" in collapsed or "''" in collapsed:  # the normaliser's first steps make each pair one '"'
            return None
        normalized = collapsed.translate(self._alone_table)
        return normalized if len(normalized) == len(collapsed) else None

    @functools.cached_property
    def _piece_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """Each id's piece length, and whether its piece begins with ``▁`` (``alignment_from_lengths``'s tables)."""
        pieces = self._pieces_by_id
        return np.array(list(map(len, pieces)), dtype=np.int64), np.array(
            [piece.startswith(SPIECE_UNDERLINE) for piece in pieces], dtype=np.int64
        )

    def _rows_aligned_at_once(
        self, written: list[str], rows: list[list[int]], filled: dict[int, list[str]] | None = None
    ) -> list[AlignedRow | None]:
        """Rows of texts the normaliser changes one character for one, spaces included (``written``: each text as it
        normalises it), aligned all at once by ``alignment_from_lengths``; ``filled``: by row, the surfaces of rows with
        unknown tokens (``unknown_runs_filled``). None for a row whose pieces do not spell its text."""
        filled = filled or {}
        pieces, unknown = self._pieces_by_id, self.unk_token_id
        piece_lengths, piece_starts_word = self._piece_tables
        counts = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
        flat = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=int(counts.sum()))
        lengths, starts_word = piece_lengths[flat], piece_starts_word[flat]
        if filled:  # an unknown token covers the characters it stands for (rows in order, as ``flat`` has them)
            covered = [itertools.compress(filled[i], map(unknown.__eq__, rows[i])) for i in filled]
            surfaces = list(itertools.chain.from_iterable(covered))
            unknowns = np.flatnonzero(flat == unknown)
            lengths[unknowns] = list(map(len, surfaces))
            starts_word[unknowns] = [surface.startswith(SPIECE_UNDERLINE) for surface in surfaces]
        # Rows with unknown tokens spell their text as far as their length already (``unknown_runs_filled``).
        plain = [i for i in range(len(rows)) if i not in filled]
        spelled = map(pieces.__getitem__, itertools.chain.from_iterable(map(rows.__getitem__, plain)))
        misspelled: set[int] = set()
        if "".join(spelled) != "".join(map(word_split, map(written.__getitem__, plain))):
            misspelled = {i for i in plain if "".join(map(pieces.__getitem__, rows[i])) != word_split(written[i])}
        found = alignment_from_lengths(counts, lengths, starts_word)
        aligned: list[AlignedRow | None] = []
        start = 0
        for i, (text, ids, end, characters) in enumerate(
            zip(written, rows, found.row_ends, found.row_characters, strict=True)
        ):
            row = (ids, filled.get(i), found.offsets[start:end], found.word_ids[start:end])
            aligned.append(row if characters == len(text) + 1 and i not in misspelled else None)
            start = end
        return aligned

    def _aligned_rows(
        self, texts: list[str], preprocessed: list[str] | None, rows: list[list[int]]
    ) -> list[AlignedRow]:
        """Each text's ids, tokens, offsets and word ids (no special tokens, no truncation) as the pipeline gives
        them; tokens None where they are the ids' pieces. Where the normaliser only collapses spaces and replaces
        characters one for one (``_normalized_alike``) and the text has no added token: texts with no space to drop
        aligned all at once (``_rows_aligned_at_once``), the others text by text (``bulk_alignment``, on the engine's
        ``rows``); from the pipeline otherwise (``preprocessed``: the texts through KoBERT's preprocessing, or
        None)."""
        pattern, by_id, unknown = self._added_tokens_pattern(), self._pieces_by_id, self.unk_token_id
        aligned: list[AlignedRow | None] = [None] * len(texts)
        at_once: list[int] = []
        written: list[str] = []
        filled: dict[int, list[str]] = {}
        for i, (text, ids) in enumerate(zip(texts, rows, strict=True)):
            before = None if preprocessed is None else preprocessed[i]
            if before is None and pattern.search(text) is not None:
                continue
            has_unknown = unknown in ids
            if text and text == before and not has_unknown and _KEPT_AS_THEY_ARE.fullmatch(text):
                normalized: str | None = text
            else:
                normalized = self._normalized_alike(text, spaces_collapsed(text), before)
            if normalized is None:
                continue
            surfaces = None
            if has_unknown:  # an unknown token reads as the text it covers, as in the pipeline
                is_unknown = [index == unknown for index in ids]
                surfaces = unknown_runs_filled(list(map(by_id.__getitem__, ids)), is_unknown, word_split(normalized))
                if surfaces is None:
                    continue
            if normalized and len(normalized) == len(text):
                if surfaces is not None:
                    filled[len(at_once)] = surfaces
                at_once.append(i)
                written.append(normalized)
            else:
                found = bulk_alignment(text, normalized, surfaces or list(map(by_id.__getitem__, ids)))
                aligned[i] = None if found is None else (ids, surfaces, *found)
        for i, row in zip(
            at_once, self._rows_aligned_at_once(written, [rows[i] for i in at_once], filled), strict=True
        ):
            aligned[i] = row
        others = [text for text, row in zip(texts, aligned, strict=True) if row is None]
        if others:
            piped = iter(self._encode_with_backend(others, add_special_tokens=False, verbose=False).encodings)
            for i, row in enumerate(aligned):
                if row is None:
                    encoding = next(piped)
                    aligned[i] = (encoding.ids, encoding.tokens, encoding.offsets, encoding.word_ids)
        return aligned

    def _aligned_word_rows(self, rows: list[list[str]]) -> list[AlignedRow]:
        """``_aligned_rows`` of texts given as lists of words: every word aligned as a text (its offsets inside it),
        word ids counting the words of the list, as the pipeline gives them for pre-tokenized input."""
        words = [word for row in rows for word in row]
        ids, preprocessed = self._ids_and_preprocessed(words)
        aligned_words = iter(self._aligned_rows(words, preprocessed, ids))
        pieces = self._pieces_by_id
        aligned: list[AlignedRow] = []
        for row in rows:
            ids_row: list[int] = []
            tokens: list[str] = []
            offsets: list[tuple[int, int]] = []
            word_ids: list[int] = []
            for index in range(len(row)):
                word_token_ids, word_tokens, word_offsets, _ = next(aligned_words)
                ids_row += word_token_ids
                tokens += map(pieces.__getitem__, word_token_ids) if word_tokens is None else word_tokens
                offsets += word_offsets
                word_ids += [index] * len(word_token_ids)
            aligned.append((ids_row, tokens, offsets, word_ids))
        return aligned

    def _known_rows(self, aligned: list[AlignedRow], keep: int | None, specials: bool) -> list[dict[str, Any]]:
        """Aligned rows truncated to ``keep`` tokens, between ``[CLS]`` and ``[SEP]`` with ``specials``."""
        if keep is not None:
            aligned = [
                (ids[:keep], None if tokens is None else tokens[:keep], offsets[:keep], words[:keep])
                for ids, tokens, offsets, words in aligned
            ]
        if not specials:
            return [
                {"ids": ids, "tokens": tokens, "offsets": offsets, "word_ids": words}
                for ids, tokens, offsets, words in aligned
            ]
        cls_id, sep_id, cls, sep = self.cls_token_id, self.sep_token_id, self.cls_token, self.sep_token
        return [
            {
                "ids": [cls_id, *ids, sep_id],
                "tokens": None if tokens is None else [cls, *tokens, sep],
                "offsets": [(0, 0), *offsets, (0, 0)],
                "word_ids": [None, *words, None],
            }
            for ids, tokens, offsets, words in aligned
        ]

    def _encode_in_bulk(
        self,
        text: str | Sequence[str],
        text_pair: str | Sequence[str] | None = None,
        add_special_tokens: bool = True,
        padding_strategy: PaddingStrategy = PaddingStrategy.DO_NOT_PAD,
        truncation_strategy: TruncationStrategy = TruncationStrategy.DO_NOT_TRUNCATE,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_tensors: Any = None,
        return_token_type_ids: bool | None = None,
        return_attention_mask: bool | None = None,
        return_special_tokens_mask: bool = False,
        return_offsets_mapping: bool = False,
        return_length: bool = False,
        verbose: bool = True,
        **kwargs: Any,
    ) -> BatchEncoding:
        split_into_words = kwargs.get("is_split_into_words", False)
        batched = _is_words_batch(text) if split_into_words else not isinstance(text, str)
        if batched:  # copies: the encodings computed later must see the texts as they are now
            text, text_pair = list(text), None if text_pair is None else list(text_pair)
        texts = text if batched else [text]
        seconds = aligned = None
        if split_into_words:  # each word aligned as a text of its own, as the pipeline segments it
            aligned = self._aligned_word_rows(texts)
            firsts = [row[0] for row in aligned]
        else:
            firsts, preprocessed = self._ids_and_preprocessed(texts)
            if return_offsets_mapping:  # single texts only (_bulk_can_encode)
                aligned = self._aligned_rows(texts, preprocessed, firsts)
                firsts = [row[0] for row in aligned]  # the pipeline's, where it aligned a row
        if text_pair is not None:
            seconds = self._ids_without_specials(text_pair if batched else [text_pair])
        keep = None
        if truncation_strategy != TruncationStrategy.DO_NOT_TRUNCATE:
            keep = max_length - (2 if add_special_tokens else 0)
            firsts = [ids[:keep] for ids in firsts]
        known = None if aligned is None else self._known_rows(aligned, keep, add_special_tokens)
        if return_token_type_ids is None:
            return_token_type_ids = "token_type_ids" in self.model_input_names
        if return_attention_mask is None:
            return_attention_mask = "attention_mask" in self.model_input_names

        keys = {"input_ids"}
        keys |= {"token_type_ids"} if return_token_type_ids else set()
        keys |= {"attention_mask"} if return_attention_mask else set()
        keys |= {"special_tokens_mask"} if return_special_tokens_mask else set()
        data = self._bulk_columns(firsts, seconds, add_special_tokens, keys)
        self._eventual_warn_about_too_long_sequence(max(data["input_ids"], key=len), max_length, verbose)
        if padding_strategy != PaddingStrategy.DO_NOT_PAD:
            target = max_length
            if padding_strategy == PaddingStrategy.LONGEST:
                target = max(len(ids) for ids in data["input_ids"])
            rows = [
                self._pad(
                    dict(zip(data, row, strict=True)),
                    max_length=target,
                    padding_strategy=PaddingStrategy.MAX_LENGTH,
                    pad_to_multiple_of=pad_to_multiple_of,
                    padding_side=padding_side,
                    return_attention_mask=return_attention_mask,
                )
                for row in zip(*data.values(), strict=True)
            ]
            data = {key: [row[key] for row in rows] for key in data}
        if known is not None:
            if padding_strategy != PaddingStrategy.DO_NOT_PAD:
                side = padding_side or self.padding_side
                for row, ids in zip(known, data["input_ids"], strict=True):
                    pad_row(row, ids, side, self.pad_token)
            if return_offsets_mapping:
                data["offset_mapping"] = [row["offsets"] for row in known]
        if return_length:
            data["length"] = [len(ids) for ids in data["input_ids"]]
        if not batched and return_tensors is None:  # as the pipeline's path unbatches: lists of lists only
            data = {key: value[0] if isinstance(value[0], list) else value for key, value in data.items()}

        options = {
            "add_special_tokens": add_special_tokens,
            "padding_strategy": padding_strategy,
            "truncation_strategy": truncation_strategy,
            "max_length": max_length,
            "pad_to_multiple_of": pad_to_multiple_of,
            "padding_side": padding_side,
            "verbose": False,
            **kwargs,
        }
        encodings = LazyEncodings(
            lambda: self._encode_with_backend(text, text_pair, **options).encodings,
            len(firsts),
            known,
            self._pieces_by_id,
        )
        return BatchEncoding(data, encodings, tensor_type=return_tensors, n_sequences=1 if seconds is None else 2)

    @property
    def can_save_slow_tokenizer(self) -> bool:
        return True  # the engine holds the SentencePiece model

    def _decode(
        self,
        token_ids: int | list[int],
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
        **kwargs: Any,
    ) -> str:
        ids = [token_ids] if isinstance(token_ids, int) else list(token_ids)
        return self.convert_tokens_to_string(self.convert_ids_to_tokens(ids, skip_special_tokens=skip_special_tokens))

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str, ...]:
        """Write ``vocab.txt`` from the backend's ids, and copy the SentencePiece model."""
        prefix = f"{filename_prefix}-" if filename_prefix else ""
        out_txt = os.path.join(save_directory, prefix + VOCAB_FILES_NAMES["vocab_txt"])
        id_to_token = {i: t for t, i in self._tokenizer.get_vocab(with_added_tokens=False).items()}
        write_vocab_txt([id_to_token[i] for i in range(len(id_to_token))], out_txt)
        out_model = os.path.join(save_directory, prefix + VOCAB_FILES_NAMES["vocab_file"])
        save_sentencepiece(self.segmenter.sp_model, self.vocab_file, out_model)
        return out_model, out_txt

    def _save_pretrained(
        self,
        save_directory: str | os.PathLike,
        file_names: tuple[str, ...],
        legacy_format: bool | None = None,
        filename_prefix: str | None = None,
    ) -> tuple[str, ...]:
        # tokenizer.json holds the portable pipeline; the slow files keep the folder a drop-in for kobert-transformers
        # users, loadable by KoBertTokenizer, and give this class its engine.
        prefix = f"{filename_prefix}-" if filename_prefix else ""
        tokenizer_file = os.path.join(str(save_directory), prefix + "tokenizer.json")
        self.portable_backend().save(tokenizer_file)
        return (*file_names, tokenizer_file, *self.save_vocabulary(str(save_directory), filename_prefix))

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_tokenizer"] = self.portable_backend().to_str()
        del state["_backend_lock"], state["_exact_words"]
        # Caches remade on use, left out so that the pickle is the same whatever was encoded before.
        caches = (
            "_added_pattern",
            "_added_pattern_key",
            "_pieces_by_id",
            "_piece_tables",
            "_characters",
            "_alone_table",
        )
        for cache in caches:
            state.pop(cache, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__ = {**state, "_tokenizer": Tokenizer.from_str(state["_tokenizer"])}
        self._attach_segmenter()

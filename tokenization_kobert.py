"""KoBERT tokenizers: a SentencePiece unigram model whose ids come from a separate ``vocab.txt``.

``KoBertTokenizer`` reproduces the tokens and ids of the ``KoBertTokenizer`` in kobert-transformers 0.6.0 /
DistilKoBERT for every text, and works under transformers 5. ``KoBertTokenizerFast`` gives the same ids from a
``tokenizers`` pipeline and adds offsets and ``word_ids()``.

Special-token layout (BERT's)::

    single sequence:    [CLS] A [SEP]            token_type_ids 0 ... 0
    pair of sequences:  [CLS] A [SEP] B [SEP]    token_type_ids 0 ... 0 1 ... 1
    padding:            [PAD]                    token_type_ids 0, attention_mask 0

Special tokens (``[CLS]``, ``[SEP]``, ``[PAD]``, ``[MASK]``, ``[UNK]`` and any added special token) are never
split, wherever they stand in the text.

This file is shipped to the Hub as remote code, so it imports only transformers, sentencepiece, tokenizers and the
standard library.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import sys
import unicodedata
from typing import Any

import sentencepiece as spm
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizer, PreTrainedTokenizerFast
from transformers.utils import logging

logger = logging.get_logger(__name__)

VOCAB_FILES_NAMES = {"vocab_file": "tokenizer_78b3253a26.model", "vocab_txt": "vocab.txt"}
FAST_VOCAB_FILES_NAMES = {**VOCAB_FILES_NAMES, "tokenizer_file": "tokenizer.json"}
SPIECE_UNDERLINE = "▁"
MODEL_INPUT_NAMES = ["input_ids", "token_type_ids", "attention_mask"]
# Written into every saved tokenizer_config.json, so AutoTokenizer can never fall back to a WordPiece BertTokenizer.
AUTO_MAP = {"AutoTokenizer": ["tokenization_kobert.KoBertTokenizer", "tokenization_kobert.KoBertTokenizerFast"]}
_SP_PIECE_TYPES_IN_VOCAB = (1, 4)  # sentencepiece ModelProto piece types NORMAL and USER_DEFINED
# SentencePiece adds path scores in float32, tokenizers in float64. Scores that are multiples of 1/64 make both exact
# (for |path score| < 2**18), so both break ties between equal segmentations alike; pretrain.build_tokenizer
# writes such models.
SCORE_GRID = 64


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


def preprocess_text(text: str, remove_space: bool, keep_accents: bool, do_lower_case: bool) -> str:
    """KoBERT's text normalisation before SentencePiece (the order matters and is the original's)."""
    if remove_space:
        text = " ".join(text.strip().split())
    text = text.replace("``", '"').replace("''", '"')
    if not keep_accents:
        # NFKD also turns the compatibility jamo "ㅋ" into the conjoining "ᄏ", often [UNK]: kept for parity.
        text = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in text if not unicodedata.combining(c))
    if do_lower_case:
        text = text.lower()
    return text


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


def _validate_text(text: Any, name: str) -> None:
    """A clear TypeError for input that is not text, instead of a failure deep inside the tokenizer."""
    items = text if isinstance(text, (list, tuple)) else [text]
    for item in items:
        inner = item if isinstance(item, (list, tuple)) else [item]
        for value in inner:
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
        self.vocab_file = vocab_file
        self.vocab_txt = vocab_txt
        self.do_lower_case = do_lower_case
        self.remove_space = remove_space
        self.keep_accents = keep_accents
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

    def _tokenize(self, text: str, **kwargs: Any) -> list[str]:
        text = preprocess_text(text, self.remove_space, self.keep_accents, self.do_lower_case)
        pieces = self.sp_model.encode(text, out_type=str)
        return split_digit_comma_pieces(pieces, lambda s: self.sp_model.encode(s, out_type=str))

    def _convert_token_to_id(self, token: str) -> int:
        return self.token2idx.get(token, self.token2idx[str(self.unk_token)])

    def _convert_id_to_token(self, index: int) -> str:
        return self.idx2token[index]

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str, str]:
        prefix = f"{filename_prefix}-" if filename_prefix else ""
        out_model = os.path.join(save_directory, prefix + VOCAB_FILES_NAMES["vocab_file"])
        out_txt = os.path.join(save_directory, prefix + VOCAB_FILES_NAMES["vocab_txt"])
        if os.path.abspath(self.vocab_file) != os.path.abspath(out_model):
            shutil.copyfile(self.vocab_file, out_model)
        write_vocab_txt(self.idx2token, out_txt)
        return out_model, out_txt

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["sp_model"] = self.sp_model.serialized_model_proto()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        serialized = state.pop("sp_model")
        self.__dict__ = state
        self.sp_model = spm.SentencePieceProcessor()
        self.sp_model.LoadFromSerializedProto(serialized)


@functools.cache
def _char_class(predicate_name: str) -> str:
    """An Oniguruma character class of every code point Python's ``predicate`` accepts, as ranges."""
    predicate = {
        "isspace": str.isspace,
        "combining": lambda c: unicodedata.combining(c) != 0,
    }[predicate_name]
    ranges: list[tuple[int, int]] = []
    for cp in range(sys.maxunicode + 1):
        if predicate(chr(cp)):
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1] = (ranges[-1][0], cp)
            else:
                ranges.append((cp, cp))
    parts = [f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges]
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


def fast_parity_warnings(scores: dict[str, float]) -> list[str]:
    """Why a fast tokenizer built from these SentencePiece scores could differ from the slow one, if it could."""
    warnings = []
    digit_comma = [piece for piece in scores if ends_with_digit_comma(piece)]
    if digit_comma:
        warnings.append(
            f"pieces such as {digit_comma[:3]} are re-split by KoBERT's number rule in the slow tokenizer only: "
            "the fast tokenizer may split numbers with commas differently (use KoBertTokenizer for exact ids)"
        )
    if any(not (score * SCORE_GRID).is_integer() for score in scores.values()):
        warnings.append(
            f"piece scores are not multiples of 1/{SCORE_GRID}: on runs of repeated characters ('ㅋㅋㅋㅋ', '....') "
            "the fast tokenizer may order equally likely pieces differently (use KoBertTokenizer for exact ids)"
        )
    return warnings


def build_backend(
    vocab_file: str,
    vocab_txt: str,
    special_tokens: dict[str, str],
    remove_space: bool = True,
    keep_accents: bool = False,
    do_lower_case: bool = False,
) -> Tokenizer:
    """Convert a SentencePiece model plus ``vocab.txt`` into a ``tokenizers.Tokenizer`` with ``vocab.txt`` ids.

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
    for warning in fast_parity_warnings(scores):
        logger.warning("%s: %s", vocab_file, warning)

    unk_token = special_tokens["unk_token"]
    backend = Tokenizer(models.Unigram([(t, scores.get(t, 0.0)) for t in tokens], unk_id=vocab[unk_token]))
    backend.normalizer = build_normalizer(
        proto.normalizer_spec.name,
        proto.normalizer_spec.precompiled_charsmap,
        remove_space,
        keep_accents,
        do_lower_case,
    )
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement=SPIECE_UNDERLINE, prepend_scheme="always")
    backend.decoder = decoders.Metaspace(replacement=SPIECE_UNDERLINE, prepend_scheme="always")
    cls, sep = special_tokens["cls_token"], special_tokens["sep_token"]
    backend.post_processor = processors.TemplateProcessing(
        single=f"{cls}:0 $A:0 {sep}:0",
        pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
        special_tokens=[(cls, vocab[cls]), (sep, vocab[sep])],
    )
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special_tokens.values()])
    return backend


class KoBertTokenizerFast(_KoBertLayout, PreTrainedTokenizerFast):
    """The ``tokenizers``-backed KoBERT tokenizer: same ids as ``KoBertTokenizer``, plus offsets and ``word_ids()``.

    Loads ``tokenizer.json`` when the folder has one, otherwise converts the SentencePiece model and ``vocab.txt``
    on the fly. Takes the same constructor arguments as ``KoBertTokenizer``.
    """

    vocab_files_names = FAST_VOCAB_FILES_NAMES
    model_input_names = MODEL_INPUT_NAMES
    slow_tokenizer_class = KoBertTokenizer

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
        kwargs.pop("tokenizer_object", None)
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
        self.vocab_txt = vocab_txt
        self.do_lower_case = do_lower_case
        self.remove_space = remove_space
        self.keep_accents = keep_accents
        super().__init__(
            tokenizer_object=backend,
            vocab_file=vocab_file,
            do_lower_case=do_lower_case,
            remove_space=remove_space,
            keep_accents=keep_accents,
            **special_tokens,
            **kwargs,
        )

    @classmethod
    def convert_to_native_format(cls, trust_remote_code: bool = False, **kwargs: Any) -> dict[str, Any]:
        # Our __init__ builds the backend itself; transformers' generic conversion would guess wrongly.
        return kwargs

    def _encode_plus(self, text: Any, text_pair: Any = None, *args: Any, **kwargs: Any) -> Any:
        # transformers drops an empty single text_pair (`[(text, text_pair)] if text_pair else [text]`); a blank one
        # normalises to the same empty segment, giving [CLS] A [SEP] [SEP] like the slow tokenizer.
        if isinstance(text, str) and text_pair == "":
            text_pair = " "
        return super()._encode_plus(text, text_pair, *args, **kwargs)

    @property
    def can_save_slow_tokenizer(self) -> bool:
        return bool(self.vocab_file) and os.path.isfile(self.vocab_file)

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
        """Write ``vocab.txt`` from the backend's ids, and copy the SentencePiece model when we have it."""
        prefix = f"{filename_prefix}-" if filename_prefix else ""
        out_txt = os.path.join(save_directory, prefix + VOCAB_FILES_NAMES["vocab_txt"])
        id_to_token = {i: t for t, i in self.backend_tokenizer.get_vocab(with_added_tokens=False).items()}
        write_vocab_txt([id_to_token[i] for i in range(len(id_to_token))], out_txt)
        if not self.can_save_slow_tokenizer:
            return (out_txt,)
        out_model = os.path.join(save_directory, prefix + VOCAB_FILES_NAMES["vocab_file"])
        if os.path.abspath(self.vocab_file) != os.path.abspath(out_model):
            shutil.copyfile(self.vocab_file, out_model)
        return out_model, out_txt

    def _save_pretrained(
        self,
        save_directory: str | os.PathLike,
        file_names: tuple[str, ...],
        legacy_format: bool | None = None,
        filename_prefix: str | None = None,
    ) -> tuple[str, ...]:
        # transformers 5 writes only tokenizer.json for fast tokenizers; the slow files keep the folder a drop-in
        # for kobert-transformers users and loadable by KoBertTokenizer.
        files = super()._save_pretrained(save_directory, file_names, legacy_format, filename_prefix)
        return (*files, *self.save_vocabulary(str(save_directory), filename_prefix))

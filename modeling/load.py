"""The model-loading API of kobert-transformers, for local folders and Hub ids, with a clear offline error.

from modeling import get_distilkobert_model, get_tokenizer

model = get_distilkobert_model()                    # monologg/distilkobert
model = get_distilkobert_model("runs/mini/student")  # or any folder this project wrote
tokenizer = get_tokenizer()                         # KoBertTokenizerFast for monologg/kobert
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from huggingface_hub import constants as hub_constants
from transformers import (
    AutoModel,
    AutoModelForMaskedLM,
    AutoTokenizer,
    BertForMaskedLM,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.utils import cached_file

from tokenization_kobert import VOCAB_FILES_NAMES, KoBertTokenizer, KoBertTokenizerFast

KOBERT = "monologg/kobert"
KOBERT_LM = "monologg/kobert-lm"
DISTILKOBERT = "monologg/distilkobert"

T = TypeVar("T")


def hub_or_local(loader: Callable[..., T], name_or_path: str, what: str, **kwargs: Any) -> T:
    """Call ``loader(name_or_path)``; when a Hub id cannot be fetched, say why and how to use a local folder."""
    try:
        return loader(name_or_path, **kwargs)
    except OSError as err:
        if os.path.isdir(name_or_path):
            raise
        raise unavailable(name_or_path, what, err) from err


def unavailable(name_or_path: str, what: str, cause: Exception | None = None) -> OSError:
    offline = hub_constants.HF_HUB_OFFLINE or os.environ.get("TRANSFORMERS_OFFLINE") == "1"
    reason = "the Hub is switched off (HF_HUB_OFFLINE=1)" if offline else "it could not be fetched from the Hub"
    hint = {"tokenizer": "get_tokenizer", "KoBERT masked LM": "get_kobert_lm"}.get(what, "get_kobert_model")
    return OSError(
        f"Cannot load the {what} {name_or_path!r}: it is not a local folder, not in the Hugging Face cache, and "
        f"{reason}. Download it where there is network (`hf download {name_or_path}`) or pass a local folder, "
        f"e.g. {hint}('path/to/folder')." + (f" Original error: {cause}" if cause else "")
    )


def get_kobert_model(name_or_path: str = KOBERT, **kwargs: Any) -> PreTrainedModel:
    """KoBERT's encoder (``BertModel``), from the Hub or a local folder."""
    return hub_or_local(AutoModel.from_pretrained, name_or_path, "KoBERT model", **kwargs)


def get_kobert_lm(name_or_path: str = KOBERT_LM, **kwargs: Any) -> PreTrainedModel:
    """KoBERT with its masked-LM head (``BertForMaskedLM``), the usual distillation teacher."""
    return hub_or_local(AutoModelForMaskedLM.from_pretrained, name_or_path, "KoBERT masked LM", **kwargs)


def get_distilkobert_model(name_or_path: str = DISTILKOBERT, **kwargs: Any) -> PreTrainedModel:
    """DistilKoBERT's encoder (``DistilBertModel``)."""
    return hub_or_local(AutoModel.from_pretrained, name_or_path, "DistilKoBERT model", **kwargs)


def get_distilkobert_lm(name_or_path: str = DISTILKOBERT, **kwargs: Any) -> PreTrainedModel:
    """DistilKoBERT with its masked-LM head (``DistilBertForMaskedLM``)."""
    return hub_or_local(AutoModelForMaskedLM.from_pretrained, name_or_path, "DistilKoBERT masked LM", **kwargs)


def get_tokenizer(name_or_path: str = KOBERT, use_fast: bool = True, **kwargs: Any) -> PreTrainedTokenizerBase:
    """The KoBERT tokenizer of a folder or Hub id (``KoBertTokenizerFast``, or ``KoBertTokenizer`` if not fast)."""
    if not os.path.isdir(name_or_path) and not has_kobert_tokenizer(name_or_path):
        # transformers would call the class with no files at all; say what is missing instead.
        raise unavailable(name_or_path, "tokenizer")
    cls = KoBertTokenizerFast if use_fast else KoBertTokenizer
    return hub_or_local(cls.from_pretrained, name_or_path, "tokenizer", **kwargs)


def has_kobert_tokenizer(name_or_path: str) -> bool:
    """Whether a folder or Hub repo holds KoBERT's SentencePiece model (checked in the cache when offline)."""
    sp_model = VOCAB_FILES_NAMES["vocab_file"]
    if os.path.isdir(name_or_path):
        return os.path.isfile(os.path.join(name_or_path, sp_model))
    found = cached_file(
        name_or_path,
        sp_model,
        _raise_exceptions_for_missing_entries=False,
        _raise_exceptions_for_connection_errors=False,
    )
    return found is not None


def load_tokenizer(name_or_path: str) -> PreTrainedTokenizerBase:
    """KoBERT's tokenizer when the folder has one, else whatever ``AutoTokenizer`` finds there."""
    if has_kobert_tokenizer(name_or_path):
        return get_tokenizer(name_or_path)
    return hub_or_local(AutoTokenizer.from_pretrained, name_or_path, "tokenizer")


def load_teacher(name_or_path: str) -> BertForMaskedLM:
    """A ``BertForMaskedLM`` with a trained MLM head; anything else is a ValueError that says what it is."""
    config = hub_or_local(PretrainedConfig.get_config_dict, name_or_path, "KoBERT masked LM")[0]
    if config.get("model_type") != "bert":
        raise ValueError(
            f"{name_or_path}: the teacher must be a BERT masked LM, but its config.json says model_type "
            f"{config.get('model_type')!r} (architectures {config.get('architectures')})"
        )
    teacher, info = hub_or_local(
        BertForMaskedLM.from_pretrained, name_or_path, "KoBERT masked LM", output_loading_info=True
    )
    missing_head = [k for k in info["missing_keys"] if k.startswith("cls.")]
    if missing_head:
        raise ValueError(
            f"{name_or_path}: the checkpoint has no masked-LM head ({missing_head[0]} and others are missing); "
            "use a BertForMaskedLM checkpoint such as monologg/kobert-lm, not a BertModel such as monologg/kobert"
        )
    return teacher.eval()

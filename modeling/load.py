"""The model-loading API of kobert-transformers, for local folders and Hub ids, with a clear offline error.

from modeling import get_distilkobert_model, get_tokenizer

model = get_distilkobert_model()                    # monologg/distilkobert
model = get_distilkobert_model("runs/mini/student")  # or any folder this project wrote
tokenizer = get_tokenizer()                         # KoBertTokenizerFast for monologg/kobert
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
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

import modeling.bilstm  # noqa: F401  (registers the BiLSTM with the Auto classes every loader here uses)
from common.io import looks_local
from tokenization_kobert import VOCAB_FILES_NAMES, KoBertTokenizer, KoBertTokenizerFast

KOBERT = "monologg/kobert"
KOBERT_LM = "monologg/kobert-lm"
DISTILKOBERT = "monologg/distilkobert"

T = TypeVar("T")
logger = logging.getLogger(__name__)
# The logger of transformers' from_pretrained, which writes the LOAD REPORT table (utils/loading_report.py).
REPORT_LOGGER = logging.getLogger("transformers.modeling_utils")
NEW_HEAD_TIE = re.compile(r"This checkpoint seem corrupted\. .* to tie cls\.predictions\.")


def hub_or_local(loader: Callable[..., T], name_or_path: str, what: str, **kwargs: Any) -> T:
    """Call ``loader(name_or_path)``; when a Hub id cannot be fetched, say why and how to use a local folder. A
    mistyped local path is never looked up on the Hub."""
    if looks_local(name_or_path) and not os.path.exists(name_or_path):
        raise unavailable(name_or_path, what)
    try:
        return loader(name_or_path, **kwargs)
    except OSError as err:
        if os.path.isdir(name_or_path):
            raise
        raise unavailable(name_or_path, what, err) from err


def unavailable(name_or_path: str, what: str, cause: Exception | None = None) -> OSError:
    """The error for a model or tokenizer that cannot be loaded: a missing local path is named as such (a download
    hint would be wrong), a Hub id gets why it could not be fetched and how to pass a local folder instead."""
    if looks_local(name_or_path):
        problem = "not a folder" if os.path.exists(name_or_path) else "no such folder"
        return OSError(f"{problem}: {name_or_path}")
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
    if looks_local(name_or_path):
        return os.path.isfile(os.path.join(name_or_path, sp_model))
    found = cached_file(
        name_or_path,
        sp_model,
        _raise_exceptions_for_missing_entries=False,
        _raise_exceptions_for_connection_errors=False,
    )
    return found is not None


# The files a tokenizer folder is read from, one at least (KoBERT's SentencePiece model, a fast tokenizer's
# tokenizer.json, WordPiece and BPE vocabularies, other SentencePiece models).
TOKENIZER_FILES = (
    VOCAB_FILES_NAMES["vocab_file"],
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "sentencepiece.bpe.model",
)


def check_tokenizer_folder(name_or_path: str) -> None:
    """ValueError for a local folder with no tokenizer file in it, which transformers would answer with advice to
    install sentencepiece."""
    if os.path.isdir(name_or_path) and not any(os.path.isfile(os.path.join(name_or_path, f)) for f in TOKENIZER_FILES):
        raise ValueError(
            f"{name_or_path}: no tokenizer in this folder (none of {', '.join(TOKENIZER_FILES)}); give the folder "
            "of a model with its tokenizer, or one written by python -m pretrain.build_tokenizer"
        )


def load_tokenizer(name_or_path: str, **kwargs: Any) -> PreTrainedTokenizerBase:
    """KoBERT's tokenizer when the folder has one (its two files are enough), else whatever ``AutoTokenizer`` finds
    there; ``kwargs`` go to ``from_pretrained`` (e.g. ``model_max_length=512``)."""
    check_tokenizer_folder(name_or_path)
    if has_kobert_tokenizer(name_or_path):
        return get_tokenizer(name_or_path, **kwargs)
    return hub_or_local(AutoTokenizer.from_pretrained, name_or_path, "tokenizer", **kwargs)


def check_vocabulary_fits(tokenizer: PreTrainedTokenizerBase, model: PreTrainedModel, name_or_path: str) -> None:
    """ValueError when the tokenizer has ids the model's embedding has no row for: a tokenizer of another model."""
    rows = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > rows:
        raise ValueError(
            f"{name_or_path}: the tokenizer has {len(tokenizer):,} tokens but the model's embedding {rows:,} rows "
            f"(ids from {rows:,} up have none): use the tokenizer the model was trained with"
        )


def check_model_type(name_or_path: str, allowed: Collection[str], what: str, advice: str) -> None:
    """ValueError naming the folder when its config.json (read alone, before the weights and the tokenizer) has a
    ``model_type`` not in ``allowed``: transformers would answer with a list of every model type it knows."""
    # transformers reads an empty config from a file or a folder without config.json: "model of no model_type".
    if os.path.isfile(name_or_path):
        raise ValueError(f"{name_or_path}: a file, not a model folder; {advice}")
    if os.path.isdir(name_or_path) and not os.path.isfile(os.path.join(name_or_path, "config.json")):
        holds = " (it holds a tokenizer)" if os.path.isfile(os.path.join(name_or_path, "tokenizer_config.json")) else ""
        raise ValueError(f"{name_or_path}: no config.json, so not a model folder{holds}; {advice}")
    config = hub_or_local(PretrainedConfig.get_config_dict, name_or_path, what)[0]
    model_type = config.get("model_type")
    if model_type not in allowed:
        raise ValueError(
            f"{name_or_path}: a {model_type or 'model of no model_type'} checkpoint "
            f"(architectures {config.get('architectures')}); {advice}"
        )


def load_bert_teacher(name_or_path: str) -> tuple[BertForMaskedLM, bool]:
    """A BERT teacher as a ``BertForMaskedLM`` and whether its checkpoint has a trained masked-LM head. A ``BertModel``
    checkpoint (an encoder such as multilingual-e5) loads with a new, untrained head: distil it through its hidden
    states, not its logits. Anything but a BERT is a ValueError that says what it is."""
    check_model_type(name_or_path, ["bert"], "teacher", "the teacher must be a BERT (a masked LM or an encoder)")
    with held_load_report():
        teacher, info = hub_or_local(BertForMaskedLM.from_pretrained, name_or_path, "teacher", output_loading_info=True)
    has_head = not any(k.startswith("cls.") for k in info["missing_keys"])
    others = [k for k in info["missing_keys"] if not k.startswith("cls.")]
    if others:
        raise ValueError(f"{name_or_path}: the checkpoint lacks encoder weights ({', '.join(sorted(others)[:3])}, ...)")
    if not has_head:
        logger.info("%s: an encoder without a masked-LM head (its logits are not used)", name_or_path)
    return teacher.eval(), has_head


def load_teacher(name_or_path: str) -> BertForMaskedLM:
    """A ``BertForMaskedLM`` with a trained MLM head; anything else is a ValueError that says what it is."""
    teacher, has_head = load_bert_teacher(name_or_path)
    if not has_head:
        raise ValueError(
            f"{name_or_path}: the checkpoint has no masked-LM head (cls.predictions.* are missing); use a "
            "BertForMaskedLM checkpoint such as monologg/kobert-lm, not a BertModel such as monologg/kobert"
        )
    return teacher


@contextmanager
def held_load_report() -> Iterator[None]:
    """Hold back the LOAD REPORT that transformers' ``from_pretrained`` logs (and its warning about a new head's tied
    bias), for the caller to restate from the loading info. If loading fails (transformers raises after the report on
    mismatched shapes or failed conversions, pointing at it), the report is let through as it was."""
    held: list[logging.LogRecord] = []

    def hold(record: logging.LogRecord) -> bool:
        # The report, and the warning that a masked-LM head's tied bias is missing from the checkpoint: a BertModel
        # loaded with a new head (which the report's caller restates) has none.
        if record.funcName == "log_state_dict_report" or NEW_HEAD_TIE.match(record.getMessage()):
            held.append(record)
            return False
        return True

    REPORT_LOGGER.addFilter(hold)
    try:
        yield
    except BaseException:
        REPORT_LOGGER.removeFilter(hold)
        for record in held:
            REPORT_LOGGER.handle(record)
        raise
    REPORT_LOGGER.removeFilter(hold)


def is_head_weight(key: str, base_prefix: str) -> bool:
    """Whether a weight belongs to a task head rather than to the encoder: it lies outside the base model (e.g.
    ``classifier.*``, ``cls.*``), or in BERT's pooler, which only next-sentence prediction trains (a masked LM has
    none, a classifier needs one)."""
    return not key.startswith(f"{base_prefix}.") or key.startswith(f"{base_prefix}.pooler.")


def summarise_weights(keys: set[str], base_prefix: str) -> str:
    """Weight names grouped by top-level module: ``classifier.bias, classifier.weight`` in full, ``cls.*`` for a
    module of more than two weights."""
    groups: dict[str, list[str]] = {}
    for key in sorted(keys):
        parts = key.split(".")
        groups.setdefault(".".join(parts[: 2 if parts[0] == base_prefix else 1]), []).append(key)
    return ", ".join(", ".join(names) if len(names) <= 2 else f"{module}.*" for module, names in groups.items())


def load_with_new_head(model_class: Any, name_or_path: str, **kwargs: Any) -> PreTrainedModel:
    """``model_class.from_pretrained`` for a task model (classifier, tagger, span extractor) made from an encoder
    checkpoint such as a masked LM. Its new task head and the checkpoint's unused head are expected: one INFO line
    names them. Any other weight missing, unused or of another shape is a WARNING that names it.

    transformers reports both kinds alike, in a table with terminal colour codes even when written to a file; that
    report is held back and replaced by these lines (or let through when loading fails).
    """
    with held_load_report():
        model, info = model_class.from_pretrained(name_or_path, output_loading_info=True, **kwargs)
    prefix = model.base_model_prefix
    new = {key for key in info["missing_keys"] if is_head_weight(key, prefix)}
    dropped = {key for key in info["unexpected_keys"] if is_head_weight(key, prefix)}
    if new or dropped:
        source = (model.config.architectures or ["checkpoint's"])[0]
        parts = [f"initialised a new {type(model).__name__} head ({summarise_weights(new, prefix)})"] if new else []
        parts += [f"dropped the {source} head ({summarise_weights(dropped, prefix)})"] if dropped else []
        logger.info("%s: %s", name_or_path, "; ".join(parts))
    problems = {
        "missing from the checkpoint (initialised at random)": info["missing_keys"] - new,
        "in the checkpoint but not in the model (unused)": info["unexpected_keys"] - dropped,
        "of another shape in the checkpoint (initialised at random)": {key for key, *_ in info["mismatched_keys"]},
    }
    for what, keys in problems.items():
        if keys:
            logger.warning(
                "%s does not fit %s: weights %s: %s", name_or_path, type(model).__name__, what, ", ".join(sorted(keys))
            )
    return model

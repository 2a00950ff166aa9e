"""Any model folder this project writes, as one module from input tensors to output tensors, with its kind and
tokenizer: what ``serve.export`` exports and the service runs.

    loaded = load_model("runs/mini/nsmc/distilled/best")
    loaded.kind, loaded.input_names, loaded.output_names   # "classify", ("input_ids", "attention_mask"), ("logits",)
    logits, = loaded.module(input_ids, attention_mask)

Kinds, from the folder: ``embed`` for a sentence-transformers folder (``modules.json``), else from the config's
architecture: ``classify`` (``*ForSequenceClassification``: BERT, DistilBERT, the KoBiLSTM), ``ner``
(``*ForTokenClassification``), ``qa`` (``*ForQuestionAnswering``).

Only question answering reads two segments, so only its BERT graph takes ``token_type_ids``; every other kind reads
one sentence, whose segment ids are all zeros, which is BERT's own default when they are not given.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    PreTrainedTokenizerBase,
)

from modeling.load import check_vocabulary_fits, hub_or_local, load_tokenizer

KINDS = ("classify", "ner", "qa", "embed")
HEADS = {
    "ForSequenceClassification": ("classify", AutoModelForSequenceClassification),
    "ForTokenClassification": ("ner", AutoModelForTokenClassification),
    "ForQuestionAnswering": ("qa", AutoModelForQuestionAnswering),
}
OUTPUT_NAMES = {
    "classify": ("logits",),
    "ner": ("logits",),
    "qa": ("start_logits", "end_logits"),
    "embed": ("sentence_embedding",),
}
# sentence-transformers modules an exported encoder may have, and the poolings written out in SentencePooling.
ENCODER_MODULES = ("Transformer", "Pooling", "Normalize")
POOLINGS = ("mean", "cls", "max")
# The longest input when neither the tokenizer nor the model sets one (the KoBiLSTM has no position embeddings).
DEFAULT_MAX_LENGTH = 512


@dataclass
class LoadedModel:
    """A model folder ready to run or export: ``module(*tensors in input_names order)`` returns the outputs."""

    path: str
    kind: str
    module: nn.Module
    tokenizer: PreTrainedTokenizerBase
    config: Any  # the transformers config: labels (id2label) and sizes
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    max_length: int  # tokens per input, special tokens included

    @property
    def labels(self) -> list[str]:
        """Label names in id order (classifiers and NER); empty for the other kinds."""
        if self.kind not in ("classify", "ner"):
            return []
        return [self.config.id2label[i] for i in range(self.config.num_labels)]


class NamedOutputs(nn.Module):
    """A transformers model called with positional tensors, returning the named fields of its output as a tuple."""

    def __init__(self, model: nn.Module, input_names: tuple[str, ...], output_names: tuple[str, ...]) -> None:
        super().__init__()
        self.model, self.input_names, self.output_names = model, input_names, output_names

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        output = self.model(**dict(zip(self.input_names, inputs, strict=True)), return_dict=True)
        return tuple(output[name] for name in self.output_names)


class SentencePooling(nn.Module):
    """A transformers encoder and a sentence-transformers pooling, written out so that it traces to ONNX: token
    vectors to one vector per sentence (mean or max over the real tokens, or the first token), unit length when the
    encoder normalises."""

    def __init__(self, encoder: nn.Module, pooling: str, normalize: bool) -> None:
        super().__init__()
        self.encoder, self.pooling, self.normalize = encoder, pooling, normalize

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor]:
        tokens = self.encoder(input_ids=input_ids, attention_mask=attention_mask, return_dict=True).last_hidden_state
        mask = attention_mask[:, :, None].to(tokens.dtype)
        if self.pooling == "cls":
            pooled = tokens[:, 0]
        elif self.pooling == "max":
            pooled = tokens.masked_fill(mask == 0, torch.finfo(tokens.dtype).min).amax(dim=1)
        else:
            pooled = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        if self.normalize:
            pooled = nn.functional.normalize(pooled, p=2.0, dim=1)
        return (pooled,)


def model_kind(path: str) -> str:
    """The kind of a model folder; ValueError naming the folder and what it found otherwise."""
    if os.path.isfile(os.path.join(path, "modules.json")):
        return "embed"
    architectures = AutoConfig.from_pretrained(path, trust_remote_code=True).architectures or []
    for architecture in architectures:
        for suffix, (kind, _) in HEADS.items():
            if architecture.endswith(suffix):
                return kind
    raise ValueError(
        f"{path}: config.json names the architectures {architectures or 'none'}; a served model is a fine-tuned "
        "classifier, token classifier or question-answering model, or a sentence-transformers folder: fine-tune "
        "this one first (python -m finetune.nsmc ...)"
    )


def max_length_of(tokenizer: PreTrainedTokenizerBase, config: Any) -> int:
    """The tokenizer's model_max_length, capped by the model's position embeddings (a tokenizer may say 1e30)."""
    limits = [tokenizer.model_max_length, getattr(config, "max_position_embeddings", None) or DEFAULT_MAX_LENGTH]
    return int(min(limits))


def load_model(path: str, max_length: int | None = None) -> LoadedModel:
    """The model folder ``path`` in eval mode on the CPU; ``max_length`` replaces the folder's own limit."""
    if not os.path.isdir(path):
        raise FileNotFoundError(f"model folder {path!r} does not exist (give a folder this project wrote)")
    kind = model_kind(path)
    if kind == "embed":
        return load_encoder(path, max_length)
    model_class = next(auto for suffix, (name, auto) in HEADS.items() if name == kind)
    model = hub_or_local(model_class.from_pretrained, path, "model", trust_remote_code=True).eval()
    tokenizer = load_tokenizer(path)
    check_vocabulary_fits(tokenizer, model, path)
    with_segments = kind == "qa" and getattr(model.config, "type_vocab_size", 0) > 1
    input_names = ("input_ids", "attention_mask", *(["token_type_ids"] if with_segments else []))
    output_names = OUTPUT_NAMES[kind]
    module = NamedOutputs(model, input_names, output_names).eval()
    length = max_length or max_length_of(tokenizer, model.config)
    return LoadedModel(path, kind, module, tokenizer, model.config, input_names, output_names, length)


def encoder_parts(path: str) -> list[str]:
    """The module types of a sentence-transformers folder; ValueError for one the export cannot write out."""
    with open(os.path.join(path, "modules.json"), encoding="utf-8") as f:
        types = [entry["type"].rsplit(".", 1)[-1] for entry in json.load(f)]
    unknown = [name for name in types if name not in ENCODER_MODULES]
    if unknown or types[:2] != ["Transformer", "Pooling"]:
        raise ValueError(
            f"{path}/modules.json: modules {types}; the service runs Transformer, Pooling and optionally Normalize"
        )
    return types


def load_encoder(path: str, max_length: int | None) -> LoadedModel:
    """A sentence-transformers folder (Transformer, Pooling, Normalize) as one SentencePooling module."""
    from sentence.model import load_encoder as load_sentence_transformer

    types = encoder_parts(path)
    encoder = load_sentence_transformer(path, max_seq_length=max_length)
    pooling = str(encoder[1].pooling_mode)
    if pooling not in POOLINGS:
        raise ValueError(f"{path}: pooling {pooling!r} is not one of {', '.join(POOLINGS)}, which the export writes")
    transformer = encoder[0].auto_model.eval()
    module = SentencePooling(transformer, pooling, normalize="Normalize" in types).eval()
    tokenizer = encoder.tokenizer
    names = ("input_ids", "attention_mask")
    return LoadedModel(
        path, "embed", module, tokenizer, transformer.config, names, OUTPUT_NAMES["embed"], encoder.max_seq_length
    )

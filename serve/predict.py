"""Texts in, answers out, for every model kind, on any backend (PyTorch or an ONNX Runtime session).

    predictor = Predictor(load_model(folder), onnx_backend("folder/onnx/model_quantized.onnx"))
    predictor.predict(["정말 재미있어요"])
    # [{"label": "positive", "score": 0.93, "probabilities": {"negative": 0.07, "positive": 0.93}}]

Items are texts, except for question answering: ``{"question": ..., "context": ...}``. Inputs run shortest first in
batches of ``batch_size``, each padded to its longest, and every item gets its own answer back in order.

- ``classify``: the label, its probability, and every label's probability (a softmax of the logits);
- ``ner``: the words (split at whitespace, as the training data is) with their tags, and the entities as character
  spans; a word's tag is that of its first token, as ``finetune.ner`` scores it, and words past the length limit are
  tagged ``O``;
- ``qa``: the answer cut from the context, its character span and score (start + end logit), the best over the
  windows a long context is cut into (``finetune.korquad``'s rules);
- ``embed``: the sentence vector.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers.modeling_outputs import SequenceClassifierOutput

from common.ner_tags import to_seqeval, word_starts, word_tags
from common.qa_spans import best_span, context_spans
from serve.models import LoadedModel

Arrays = dict[str, np.ndarray]
Backend = Callable[[Arrays], list[np.ndarray]]
WORD = re.compile(r"\S+")
OUTSIDE = "O"  # the seqeval tag of a word outside every entity
# Question answering: windows overlap by this many tokens, answers are at most this long; finetune.korquad's defaults.
QA_STRIDE = 128
QA_MAX_ANSWER_TOKENS = 30
QA_N_BEST = 20


def torch_backend(loaded: LoadedModel) -> Backend:
    """The PyTorch module of ``loaded`` as a backend: numpy arrays in, float32 numpy arrays out."""

    @torch.inference_mode()
    def run(arrays: Arrays) -> list[np.ndarray]:
        outputs = loaded.module(*(torch.from_numpy(arrays[name]) for name in loaded.input_names))
        return [output.float().numpy() for output in outputs]

    return run


def onnx_backend(path: str, threads: int | None = None) -> Backend:
    """An ONNX Runtime session on the CPU as a backend; ``threads`` for its operators (None: all cores)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # ONNX Runtime's threads otherwise spin for a while after every run, taking the cores from whatever runs next
    # (another model timed beside it, the tokenizer, the event loop): measured, it doubled PyTorch's latency there.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    input_names = [node.name for node in session.get_inputs()]

    def run(arrays: Arrays) -> list[np.ndarray]:
        return session.run(None, {name: arrays[name] for name in input_names})

    return run


class OnnxClassifier(torch.nn.Module):
    """A classifier's ONNX graph behind a transformers model's call, ``model(**inputs).logits``, for code that
    times or scores modules (``modeling.latency``); ``config`` is the model's (its vocabulary size and labels)."""

    def __init__(self, path: str, config: Any, threads: int | None = None) -> None:
        super().__init__()
        self.run, self.config = onnx_backend(path, threads), config

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **unused: Any) -> SequenceClassifierOutput:
        arrays = {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()}
        return SequenceClassifierOutput(logits=torch.from_numpy(self.run(arrays)[0]))


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def entities(text: str, words: Sequence[re.Match[str]], tags: Sequence[str]) -> list[dict[str, Any]]:
    """Character spans of the entities in seqeval ``tags`` (``B-PER``, ``I-PER``, ``O``), one tag per word: an entity
    starts at a ``B-`` tag or at an ``I-`` tag of another type than the word before, as seqeval reads them."""
    found: list[dict[str, Any]] = []
    previous = OUTSIDE
    for word, tag in zip(words, tags, strict=True):
        if tag == OUTSIDE:
            previous = tag
            continue
        prefix, entity = tag.split("-", 1)
        if prefix == "I" and previous != OUTSIDE and previous.split("-", 1)[1] == entity:
            found[-1]["end"] = word.end()
        else:
            found.append({"type": entity, "start": word.start(), "end": word.end()})
        previous = tag
    return [{**entity, "text": text[entity["start"] : entity["end"]]} for entity in found]


@dataclass
class Predictor:
    """A loaded model's tokenizer and post-processing around a backend."""

    loaded: LoadedModel
    backend: Backend
    batch_size: int = 32

    def __post_init__(self) -> None:
        self.tokenizer = self.loaded.tokenizer
        self.tokenizer.padding_side = "right"  # the KoBiLSTM reads right-padded batches only

    def predict(self, items: Sequence[Any]) -> list[Any]:
        """One answer per item, in order."""
        encoded, features = self.encode(items)
        outputs = self.run(features)
        kind = self.loaded.kind
        if kind == "ner":
            return self.tags(items, encoded, outputs)
        if kind == "qa":
            return self.answers(items, encoded, outputs)
        if kind == "embed":
            return [vector.tolist() for (vector,) in outputs]
        return [self.label(logits) for (logits,) in outputs]

    def outputs(self, items: Sequence[Any]) -> list[list[np.ndarray]]:
        """The backend's raw outputs for each input (each window of a long QA context), what the export compares."""
        return self.run(self.encode(items)[1])

    def encode(self, items: Sequence[Any]) -> tuple[Any, list[dict[str, list[int]]]]:
        """The tokenizer's encoding of the items and one feature (model inputs) per input: per item, except that a
        long QA context gives several windows."""
        limit = {"truncation": True, "max_length": self.loaded.max_length}
        if self.loaded.kind == "qa":
            encoded = self.tokenizer(
                [item["question"] for item in items],
                [item["context"] for item in items],
                **{**limit, "truncation": "only_second"},
                stride=min(QA_STRIDE, self.loaded.max_length // 4),  # a window must hold more than the overlap
                return_overflowing_tokens=True,
                return_offsets_mapping=True,
            )
        elif self.loaded.kind == "ner":
            words = [[w.group() for w in WORD.finditer(text)] for text in items]
            encoded = self.tokenizer(words, is_split_into_words=True, **limit)
        else:
            encoded = self.tokenizer(list(items), **limit)
        names = self.loaded.input_names
        return encoded, [{name: encoded[name][i] for name in names} for i in range(len(encoded["input_ids"]))]

    def label(self, logits: np.ndarray) -> dict[str, Any]:
        labels = self.loaded.labels
        probabilities = softmax(logits.astype(np.float64))
        best = int(probabilities.argmax())
        return {
            "label": labels[best],
            "score": float(probabilities[best]),
            "probabilities": dict(zip(labels, probabilities.tolist(), strict=True)),
        }

    def run(self, features: list[dict[str, list[int]]]) -> list[list[np.ndarray]]:
        """Each feature's outputs (per-token outputs cut to its tokens), the features run shortest first in padded
        batches."""
        order = sorted(range(len(features)), key=lambda i: len(features[i]["input_ids"]))
        results: list[list[np.ndarray]] = [[] for _ in features]
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            batch = self.tokenizer.pad(
                [{name: features[i][name] for name in self.loaded.input_names} for i in chunk], return_tensors="np"
            )
            outputs = self.backend({name: batch[name].astype(np.int64) for name in self.loaded.input_names})
            for row, index in enumerate(chunk):
                length = len(features[index]["input_ids"])
                results[index] = [out[row, :length] if self.per_token else out[row] for out in outputs]
        return results

    @property
    def per_token(self) -> bool:
        return self.loaded.kind in ("ner", "qa")

    def tags(self, texts: Sequence[str], encoded: Any, outputs: list[list[np.ndarray]]) -> list[dict[str, Any]]:
        # Imported here: finetune.ner brings seqeval and scikit-learn, which a classifier service never needs.
        tags = [to_seqeval(label) for label in self.loaded.labels]
        answers = []
        for i, (logits,) in enumerate(outputs):
            words = list(WORD.finditer(texts[i]))
            starts = word_starts(encoded.word_ids(i), len(words))
            predicted = word_tags(logits.argmax(axis=-1), starts, tags)
            answers.append(
                {
                    "words": [{"word": w.group(), "tag": t} for w, t in zip(words, predicted, strict=True)],
                    "entities": entities(texts[i], words, predicted),
                }
            )
        return answers

    def answers(
        self, items: Sequence[dict[str, str]], encoded: Any, outputs: list[list[np.ndarray]]
    ) -> list[dict[str, Any]]:
        best: dict[int, tuple[float, tuple[int, int]]] = {}
        for window, (start_logits, end_logits) in enumerate(outputs):
            item = encoded["overflow_to_sample_mapping"][window]
            context = items[item]["context"]
            spans = context_spans(encoded["offset_mapping"][window], encoded.sequence_ids(window), context)
            found = best_span(start_logits.tolist(), end_logits.tolist(), spans, QA_N_BEST, QA_MAX_ANSWER_TOKENS)
            if found is not None and (item not in best or found[0] > best[item][0]):
                best[item] = found
        answers = []
        for i, item in enumerate(items):
            score, (start, end) = best.get(i, (None, (0, 0)))  # no span inside the context: an empty answer
            answers.append({"answer": item["context"][start:end], "start": start, "end": end, "score": score})
        return answers

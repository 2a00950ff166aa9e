"""Sentence encoders as sentence-transformers models: load one, or wrap any transformers folder with pooling.

    encoder = load_encoder("runs/mini/distilled/final", pooling="mean")   # a DistilBERT + mean pooling
    encoder = load_encoder("runs/sentence/sts/best")                      # a sentence-transformers folder as saved

A saved encoder is a plain sentence-transformers folder: ``SentenceTransformer(folder)`` loads it offline. An encoder
with KoBERT's tokenizer uses our ``KoBertTokenizerFast`` (sentence-transformers alone would read the folder's
``tokenizer.json`` into a generic tokenizer and save that alone), so the folder it saves has the SentencePiece model,
the vocabulary and ``tokenization_kobert.py``: ``SentenceTransformer(folder, trust_remote_code=True)`` loads our
tokenizer, and without remote code ``tokenizer.json`` gives the same ids.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from sentence_transformers import CrossEncoder, SentenceTransformer
from sentence_transformers.base.modules.transformer import Transformer
from sentence_transformers.sentence_transformer.modules.pooling import Pooling

from modeling.load import check_vocabulary_fits, has_kobert_tokenizer, hub_or_local, load_tokenizer
from modeling.student import parameter_count
from sentence.arguments import POOLING_MODES

# What sentence-transformers writes into every folder it saves; a transformers model folder has none of it.
MODULES_FILE = "modules.json"


def is_sentence_transformer(path: str) -> bool:
    return os.path.isfile(os.path.join(path, MODULES_FILE))


def wrap_transformer(path: str, pooling: str, max_seq_length: int) -> SentenceTransformer:
    """A transformers encoder (BERT, DistilBERT, ...; a masked-LM head is left out) with a pooling layer on top."""
    if pooling not in POOLING_MODES:
        raise ValueError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLING_MODES)}")
    transformer = hub_or_local(Transformer, path, "encoder", max_seq_length=max_seq_length)
    return SentenceTransformer(modules=[transformer, Pooling(transformer.get_embedding_dimension(), pooling)])


@contextmanager
def seeded_new_weights(seed: int = 0) -> Iterator[None]:
    """Weights the folder lacks (a cross-encoder's head, an encoder's pooler) drawn from ``seed``, so that two runs
    start from, and save, the same model; the caller's random state is left as it was."""
    with torch.random.fork_rng(devices=[]):  # new weights are made on the CPU: its generator alone
        torch.random.default_generator.manual_seed(seed)  # torch.manual_seed would reseed every GPU's for good
        yield


def load_cross_encoder(path: str, max_seq_length: int) -> CrossEncoder:
    """A cross-encoder folder as saved, or any model folder with a new one-output head: both sentences in one input,
    scored in [0, 1] (a sigmoid) as STS score / 5."""
    with seeded_new_weights():
        model = hub_or_local(CrossEncoder, path, "cross-encoder", num_labels=1, max_length=max_seq_length)
    return with_kobert_tokenizer(model, path)


def with_kobert_tokenizer(encoder: Any, path: str) -> Any:
    """The encoder with our KoBERT tokenizer when ``path`` has KoBERT's tokenizer files (the same ids as the generic
    one sentence-transformers reads, measured in the tests), else as it is."""
    if has_kobert_tokenizer(path):
        encoder[0].processor = load_tokenizer(path, model_max_length=encoder.max_seq_length)
    return encoder


def load_encoder(path: str, pooling: str = "mean", max_seq_length: int | None = 128) -> SentenceTransformer:
    """The sentence-transformers folder ``path`` as saved (its own pooling), or any other model folder or Hub id
    wrapped with ``pooling``; ``max_seq_length`` (tokens, special tokens included) replaces the folder's when given."""
    if is_sentence_transformer(path):
        encoder = SentenceTransformer(path)
        if max_seq_length is not None:
            encoder.max_seq_length = max_seq_length
    else:
        with seeded_new_weights():
            encoder = wrap_transformer(path, pooling, max_seq_length or 128)
    encoder = with_kobert_tokenizer(encoder, path)
    check_vocabulary_fits(encoder[0].processor, encoder[0].model, path)
    return encoder


def pooling_mode(encoder: SentenceTransformer | CrossEncoder) -> str:
    """How the encoder turns token vectors into one sentence vector, as the published tables name it."""
    if isinstance(encoder, CrossEncoder):
        return "cross-encoder"
    modes = [module.pooling_mode for module in encoder if isinstance(module, Pooling)]
    return "+".join(str(mode) for mode in modes) or "none"


def encoder_summary(encoder: SentenceTransformer | CrossEncoder) -> dict[str, Any]:
    """What results.json records about an encoder: its size, output dimension (none for a cross-encoder) and
    pooling."""
    return {
        "params": parameter_count(encoder),
        "embedding_dimension": None if isinstance(encoder, CrossEncoder) else encoder.get_embedding_dimension(),
        "pooling": pooling_mode(encoder),
        "max_seq_length": encoder.max_seq_length,
    }

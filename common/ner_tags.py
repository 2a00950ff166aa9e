"""Naver NER's word tags against sub-word tokens, for training, scoring and serving alike: the label scheme (our
``PER-B``) as seqeval's (``B-PER``), each word's first token, the token labels a word's tag becomes, and the word tags
read back from token predictions. Plain data: the service uses it without any training code.
"""

from __future__ import annotations

from collections.abc import Sequence

IGNORED = -100  # the label id CrossEntropyLoss skips
OUTSIDE = "O"


def to_seqeval(label: str) -> str:
    """Our ``PER-B`` as seqeval's ``B-PER``; ``O`` and ``UNK`` are outside any entity."""
    if label in (OUTSIDE, "UNK"):
        return OUTSIDE
    entity, _, tag = label.rpartition("-")
    if not entity or tag not in ("B", "I"):
        raise ValueError(f"label {label!r} is not TYPE-B, TYPE-I, O or UNK (the B/I tag follows the type: PER-B)")
    return f"{tag}-{entity}"


def word_starts(word_ids: Sequence[int | None], n_words: int) -> list[int | None]:
    """Position of each word's first token, from the fast tokenizer's ``word_ids()``; None for a word without a
    token (cut off by truncation, or an empty word from a double space)."""
    starts: list[int | None] = [None] * n_words
    for position, word_id in enumerate(word_ids):
        if word_id is not None and starts[word_id] is None:
            starts[word_id] = position
    return starts


def align_labels(starts: Sequence[int | None], word_labels: Sequence[int], length: int) -> list[int]:
    """Token label ids (``length`` of them): each word's label on its first token, ``IGNORED`` elsewhere."""
    aligned = [IGNORED] * length
    for start, label in zip(starts, word_labels, strict=True):
        if start is not None:
            aligned[start] = label
    return aligned


def word_tags(token_predictions: Sequence[int], starts: Sequence[int | None], tags: Sequence[str]) -> list[str]:
    """Per-word tags from per-token predicted ids: the first token's, ``O`` for a word without a token."""
    return [OUTSIDE if start is None else tags[int(token_predictions[start])] for start in starts]

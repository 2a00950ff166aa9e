"""KorQuAD 1.0's official metric: exact match and character-level F1, as fractions (the official script prints
percent; so do our table and model card).

Written from the definition in the official ``KorQuAD_v1.0_evaluate.py`` (itself adapted from SQuAD v1.1's):

1. each of ``'`` ``"`` ``《`` ``》`` ``<`` ``>`` ``〈`` ``〉`` ``(`` ``)`` ``‘`` ``’`` is replaced by a space;
2. the text is lower-cased;
3. every character of ``string.punctuation`` (ASCII ``!"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~``) is deleted;
4. runs of whitespace become one space, and the ends are stripped.

Nothing else is touched: ``´``, ``“`` ``”``, ``「」『』``, ``【】`` and other non-ASCII marks stay. Because step 1 puts
a space where a quote or bracket was, ``'한국'어`` normalises to ``한국 어``, which is not an exact match for
``한국어``; the character F1 ignores spaces, so it gives that pair an F1 of 1.

Exact match compares normalised strings. F1 compares the multisets of characters of the normalised strings with
spaces removed (KorQuAD compares characters, not SQuAD's words, because Korean words carry particles). Each measure
takes a question's best reference answer for it; an unanswered question scores 0.
"""

from __future__ import annotations

import string
from collections import Counter
from collections.abc import Iterable
from typing import Any

SPACED_OUT = "'\"《》<>〈〉()‘’"
DELETED = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """The official normalisation (steps 1-4 of the module docstring)."""
    spaced = text.translate({ord(c): " " for c in SPACED_OUT}).lower()
    return " ".join("".join(c for c in spaced if c not in DELETED).split())


def exact_match(prediction: str, truth: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(truth)


def f1(prediction: str, truth: str) -> float:
    """Character-level F1 in [0, 1] of the normalised strings, spaces left out; 0 when nothing is shared."""
    predicted = Counter(normalize_answer(prediction).replace(" ", ""))
    expected = Counter(normalize_answer(truth).replace(" ", ""))
    shared = sum((predicted & expected).values())
    if shared == 0:
        return 0.0
    precision, recall = shared / sum(predicted.values()), shared / sum(expected.values())
    return 2 * precision * recall / (precision + recall)


def best_over_answers(prediction: str, truths: Iterable[str]) -> tuple[float, float]:
    """``(exact_match, f1)`` against the best-matching reference, each in [0, 1]."""
    truths = list(truths)
    return (
        max((float(exact_match(prediction, t)) for t in truths), default=0.0),
        max((f1(prediction, t) for t in truths), default=0.0),
    )


def evaluate(examples: list[dict[str, Any]], predictions: dict[str, str]) -> dict[str, float]:
    """Dataset EM and F1 in [0, 1]; ``examples`` as ``read_squad`` gives them, ``predictions`` ``{id: text}``."""
    if not examples:
        raise ValueError("no questions to evaluate")
    em_total = f1_total = 0.0
    for example in examples:
        if example["id"] not in predictions:
            continue
        em, f1_score = best_over_answers(predictions[example["id"]], (a["text"] for a in example["answers"]))
        em_total, f1_total = em_total + em, f1_total + f1_score
    return {"exact_match": em_total / len(examples), "f1": f1_total / len(examples)}

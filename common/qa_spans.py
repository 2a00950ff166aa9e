"""Extractive question answering's answer spans, for training, scoring and serving alike: the characters of the
context each token of a window stands for, and the best-scoring valid span of a window. Plain data: the service
uses it without any training code.
"""

from __future__ import annotations

from collections.abc import Sequence

Span = tuple[int, int]


def context_spans(offsets: Sequence[Span], sequence_ids: Sequence[int | None], context: str) -> list[Span | None]:
    """The characters of ``context`` each token of a window stands for; None where no answer may start or end.

    KoBertTokenizerFast's offsets of a word-initial piece ('▁모') include the space before it, so leading whitespace
    is dropped. A lone '▁' piece then covers nothing, or, at the start of a text, gets the offsets of the character
    after it and overlaps the next piece (``('▁', (0, 1)), ('198', (0, 3))``): neither bounds an answer.
    """
    spans: list[Span | None] = []
    for i, ((start, end), sequence) in enumerate(zip(offsets, sequence_ids, strict=True)):
        while start < end and context[start].isspace():
            start += 1
        overlaps_next = i + 1 < len(offsets) and sequence_ids[i + 1] == 1 and end > offsets[i + 1][0]
        spans.append((start, end) if sequence == 1 and start < end and not overlaps_next else None)
    return spans


def best_span(
    start_logits: Sequence[float],
    end_logits: Sequence[float],
    spans: Sequence[Span | None],
    n_best: int,
    max_answer_length: int,
) -> tuple[float, Span] | None:
    """The best answer in one window: ``(start logit + end logit, its characters)``.

    Pairs the ``n_best`` highest start and end logits among the context tokens, keeping start <= end and at most
    ``max_answer_length`` tokens; None when no pair qualifies. Logits past ``len(spans)`` (padding) are ignored.
    """
    inside = [i for i, span in enumerate(spans) if span is not None]
    starts = sorted(inside, key=lambda i: start_logits[i], reverse=True)[:n_best]
    ends = sorted(inside, key=lambda i: end_logits[i], reverse=True)[:n_best]
    pairs = [(start_logits[s] + end_logits[e], s, e) for s in starts for e in ends if s <= e < s + max_answer_length]
    if not pairs:
        return None
    score, start, end = max(pairs, key=lambda pair: pair[0])
    return score, (spans[start][0], spans[end][1])

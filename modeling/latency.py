"""CPU inference latency of several models measured side by side: the same inputs, interleaved repeats, medians.

    latencies = compare_latency({"teacher": teacher, "student": student}, batch_sizes=[1, 32], seq_length=128)
    # {"teacher": {1: 8.9, 32: 135.0}, "student": {1: 3.4, 32: 64.4}}  (milliseconds)

Latency depends on the shape only, so the inputs are random ids. The models take turns within each repeat, so a
machine that slows down during the run (another process, thermal limits) slows all of them alike.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial

import torch
from torch import nn


def random_inputs(vocab_size: int, batch_size: int, seq_length: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Full-length inputs (no padding) of ids above the 5 special tokens."""
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(5, vocab_size, (batch_size, seq_length), generator=generator)
    return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}


def interleaved_medians(calls: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each call, after one warm-up call each; the calls take turns within every repeat."""
    for call in calls.values():
        call()  # warm-up: first-call allocations and kernel selection
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


@torch.inference_mode()
def compare_latency(
    models: dict[str, nn.Module], batch_sizes: Sequence[int], seq_length: int, repeats: int = 10
) -> dict[str, dict[int, float]]:
    """Median forward-pass time in milliseconds of every model at every batch size, after one warm-up pass."""
    vocab_size = min(model.config.vocab_size for model in models.values())
    for model in models.values():
        model.eval()
    latencies: dict[str, dict[int, float]] = {name: {} for name in models}
    for batch_size in batch_sizes:
        inputs = random_inputs(vocab_size, batch_size, seq_length)
        calls = {name: partial(model, **inputs) for name, model in models.items()}
        for name, seconds in interleaved_medians(calls, repeats).items():
            latencies[name][batch_size] = seconds * 1000
    return latencies

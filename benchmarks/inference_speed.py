"""CPU inference of a KoBERT-shaped teacher, its 6- and 3-layer students and a BiLSTM, each in PyTorch, ONNX and
ONNX int8, on real reviews, measured in one run as ratios to the teacher in PyTorch.

    python benchmarks/inference_speed.py
    python benchmarks/inference_speed.py --reviews 200 --batches 20 --threads 2

The models are the classifiers the service runs, with random weights in KoBERT's shape (12 layers, hidden 768, 12
heads, FFN 3072, 8,002 tokens; the students DistilBERTs of 6 and 3 such layers; the BiLSTM DistilKoBiLSTM-Base's
sizes over the same vocabulary): speed depends on the shape only. Each is exported and quantised by
``serve.export`` (the float graph checked against PyTorch on the reviews; the int8 accuracy check is skipped, as
random weights have no accuracy to keep). Inputs are the bundled NSMC test reviews, tokenized by the real KoBERT
tokenizer (``data/kobert``), cut at ``--max-length`` tokens. Batch 1: the latency of one review at a time, p50 and
p95 over ``--reviews`` reviews; batch 32: reviews per second over ``--batches`` batches of consecutive reviews,
each padded to its longest. The models take turns, a pass over the inputs each, for ``--rounds`` rounds, so a
machine that slows down slows all of them alike. Tokenization is left out: it is the same for every model.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    DistilBertConfig,
    DistilBertForSequenceClassification,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.report import write_report  # noqa: E402
from common.cli import command_parser  # noqa: E402
from common.readers import read_nsmc  # noqa: E402
from modeling.bilstm import KoBiLstmForSequenceClassification, bilstm_config  # noqa: E402
from modeling.random_teacher import SHAPES  # noqa: E402
from modeling.student import parameter_count  # noqa: E402
from serve.export import FLOAT_FILE, INT8_FILE, ONNX_FOLDER  # noqa: E402
from serve.export import parse_args as export_args  # noqa: E402
from serve.models import load_model  # noqa: E402
from serve.onnx_export import export  # noqa: E402
from serve.predict import onnx_backend, torch_backend  # noqa: E402
from tokenization_kobert import KoBertTokenizerFast  # noqa: E402

KOBERT_SHAPE = {"vocab_size": 8002, "pad_token_id": 1, **SHAPES["kobert"]}
KOBERT_TOKENIZER = {
    "vocab_file": str(ROOT / "data" / "kobert" / "tokenizer_78b3253a26.model"),
    "vocab_txt": str(ROOT / "data" / "kobert" / "vocab.txt"),
}
REVIEWS = str(ROOT / "data" / "nsmc_test.txt.gz")
BACKENDS = ("PyTorch", "ONNX", "ONNX int8")
Call = Callable[[dict[str, np.ndarray]], Any]


def parse_args() -> argparse.Namespace:
    parser = command_parser("python benchmarks/inference_speed.py", __doc__)
    parser.add_argument("--reviews", type=int, default=100, help="Reviews timed one at a time (batch 1).")
    parser.add_argument("--batches", type=int, default=10, help="Batches of --batch-size reviews timed.")
    parser.add_argument("--batch-size", type=int, default=32, help="Reviews per batch of the throughput figure.")
    parser.add_argument("--rounds", type=int, default=2, help="Passes of every model over the inputs, in turn.")
    parser.add_argument("--max-length", type=int, default=128, help="Tokens per review at most.")
    parser.add_argument("--student-layers", default="6,3", help="Comma-separated student depths.")
    parser.add_argument("--bilstm-preset", default="base", help="Sizes of the BiLSTM (modeling.bilstm presets).")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="CPU threads of every backend.")
    parser.add_argument(
        "--output", default=str(ROOT / "benchmarks" / "results" / "inference_speed.json"), help="The figures, as JSON."
    )
    return parser.parse_args()


def kobert_classifiers(student_depths: list[int], bilstm_preset: str) -> dict[str, torch.nn.Module]:
    """Random-weight classifiers in KoBERT's shape: the teacher, the students, the BiLSTM."""
    torch.manual_seed(0)
    models: dict[str, torch.nn.Module] = {
        "teacher (12 layers)": BertForSequenceClassification(BertConfig(**KOBERT_SHAPE))
    }
    shape = SHAPES["kobert"]
    for depth in student_depths:
        config = DistilBertConfig(
            vocab_size=KOBERT_SHAPE["vocab_size"],
            pad_token_id=KOBERT_SHAPE["pad_token_id"],
            dim=shape["hidden_size"],
            n_layers=depth,
            n_heads=shape["num_attention_heads"],
            hidden_dim=shape["intermediate_size"],
            max_position_embeddings=shape["max_position_embeddings"],
        )
        models[f"student ({depth} layers)"] = DistilBertForSequenceClassification(config)
    config = bilstm_config(bilstm_preset, vocab_size=KOBERT_SHAPE["vocab_size"], pad_token_id=1)
    models[f"BiLSTM ({bilstm_preset})"] = KoBiLstmForSequenceClassification(config)
    return models


def exported_backends(model: torch.nn.Module, folder: Path, threads: int) -> dict[str, Call]:
    """The model saved with the KoBERT tokenizer, exported and quantised; its three backends."""
    model.eval().save_pretrained(folder)
    KoBertTokenizerFast(**KOBERT_TOKENIZER).save_pretrained(folder)
    # Random weights: the int8 accuracy check has nothing to measure, so any drop passes.
    export(export_args(["--model", str(folder), "--output", str(folder), "--int8", "--max-metric-drop", "100"]))
    loaded = load_model(str(folder))
    return {
        "PyTorch": torch_backend(loaded),
        "ONNX": onnx_backend(str(folder / ONNX_FOLDER / FLOAT_FILE), threads),
        "ONNX int8": onnx_backend(str(folder / ONNX_FOLDER / INT8_FILE), threads),
    }


def encoded_batches(texts: list[str], batch_size: int, max_length: int) -> list[dict[str, np.ndarray]]:
    """Consecutive texts in padded batches of input ids and attention masks (int64, what the graphs take)."""
    tokenizer = KoBertTokenizerFast(**KOBERT_TOKENIZER)
    batches = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(texts[start : start + batch_size], truncation=True, max_length=max_length, padding=True)
        batches.append({key: np.array(batch[key], dtype=np.int64) for key in ("input_ids", "attention_mask")})
    return batches


def taking_turns(calls: dict[str, Call], inputs: list[dict[str, np.ndarray]], rounds: int) -> dict[str, list[float]]:
    """Seconds of every call on every input, after one warm-up call each. In each round every call runs over all
    the inputs in turn: turns of a whole pass rather than of one input, because a runtime's threads keep their
    cores busy for a moment after a call (OpenMP's and ONNX Runtime's spin-waits) and would slow the next call of
    another runtime."""
    for call in calls.values():
        call(inputs[0])
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            for arrays in inputs:
                start = time.perf_counter()
                call(arrays)
                seconds[name].append(time.perf_counter() - start)
    return seconds


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def file_mb(folder: Path, backend: str) -> float:
    if backend == "PyTorch":
        return (folder / "model.safetensors").stat().st_size / 2**20
    return (folder / ONNX_FOLDER / (INT8_FILE if backend == "ONNX int8" else FLOAT_FILE)).stat().st_size / 2**20


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    texts = [record["document"] for record in read_nsmc(REVIEWS, "test")]
    singles = encoded_batches(texts[: args.reviews], 1, args.max_length)
    batches = encoded_batches(texts[: args.batches * args.batch_size], args.batch_size, args.max_length)
    models = kobert_classifiers([int(d) for d in args.student_layers.split(",")], args.bilstm_preset)

    calls: dict[str, Call] = {}  # "model | backend", in the order of the rows
    rows = []
    with tempfile.TemporaryDirectory() as workspace:
        for number, (name, model) in enumerate(models.items()):
            folder = Path(workspace) / str(number)
            for backend, call in exported_backends(model, folder, args.threads).items():
                calls[f"{name} | {backend}"] = call
                rows.append(
                    {
                        "model": name,
                        "backend": backend,
                        "parameters": parameter_count(model),
                        "file_mb": round(file_mb(folder, backend), 1),
                    }
                )
        single_seconds = taking_turns(calls, singles, args.rounds)
        batch_seconds = taking_turns(calls, batches, args.rounds)

    reviews_timed = args.rounds * sum(len(b["input_ids"]) for b in batches)
    for row, label in zip(rows, calls, strict=True):
        row["b1_p50_ms"] = round(1000 * percentile(single_seconds[label], 50), 2)
        row["b1_p95_ms"] = round(1000 * percentile(single_seconds[label], 95), 2)
        row[f"b{args.batch_size}_reviews_per_s"] = round(reviews_timed / sum(batch_seconds[label]), 1)
    teacher = rows[0]
    throughput = f"b{args.batch_size}_reviews_per_s"
    for row in rows:
        row["speedup_b1"] = round(teacher["b1_p50_ms"] / row["b1_p50_ms"], 2)
        row[f"speedup_b{args.batch_size}"] = round(row[throughput] / teacher[throughput], 2)

    tokens = [int(s["attention_mask"].sum()) for s in singles]
    write_report(
        args.output,
        "inference_speed",
        {
            "threads": args.threads,
            "reviews": args.reviews,
            "rounds": args.rounds,
            "batches": len(batches),
            "batch_size": args.batch_size,
            "max_length": args.max_length,
            "review_tokens": {"mean": round(statistics.mean(tokens), 1), "max": max(tokens)},
            "results": rows,
        },
    )
    b = args.batch_size
    print(
        f"CPU, {args.threads} threads; {args.reviews} reviews one at a time ({statistics.mean(tokens):.1f} tokens on "
        f"average), {len(batches)} batches of {b}"
    )
    print(
        f"| model | backend | parameters | file (MB) | b1 p50 (ms) | b1 p95 (ms) | b{b} reviews/s | speed-up b1 "
        f"| speed-up b{b} |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['model']} | {row['backend']} | {row['parameters']:,} | {row['file_mb']} | {row['b1_p50_ms']} | "
            f"{row['b1_p95_ms']} | {row[throughput]} | {row['speedup_b1']}x | {row[f'speedup_b{b}']}x |"
        )


if __name__ == "__main__":
    main()

"""CPU inference of a KoBERT-shaped teacher, its 6- and 3-layer students and a BiLSTM, each in PyTorch, ONNX and
ONNX int8, on real reviews, measured in one run as ratios to the teacher in PyTorch.

    python -m benchmarks.inference_speed
    python -m benchmarks.inference_speed --reviews 200 --batches 20 --threads 2

The models are the classifiers the service runs, with random weights in KoBERT's shape (12 layers, hidden 768, 12
heads, FFN 3072, 8,002 tokens; the students DistilBERTs of 6 and 3 such layers; the BiLSTM DistilKoBiLSTM-Base's
sizes over the same vocabulary): speed depends on the shape only. Each is exported and quantised by
``serve.export`` (the float graph checked against PyTorch on the reviews; the int8 accuracy check is skipped, as
random weights have no accuracy to keep). Inputs are the bundled NSMC test reviews, tokenized by the real KoBERT
tokenizer (``data/kobert``), cut at ``--max_seq_length`` tokens. Batch 1: the latency of one review at a time, p50 and
p95 over ``--reviews`` reviews; batch 32: reviews per second over ``--batches`` batches of consecutive reviews,
each padded to its longest; full batches: reviews per second over ``--full_batches`` batches of 32 held-out reviews
(the ones after those) padded or cut to exactly ``--max_seq_length`` tokens (32 x 128), what long inputs cost. The
models take turns, a pass over the inputs each, for ``--rounds`` rounds, so a machine that slows down slows all of
them alike. Tokenization is left out: it is the same for every model.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    DistilBertConfig,
    DistilBertForSequenceClassification,
)

from benchmarks.report import write_report
from common.config import key, run_command
from common.readers import read_nsmc
from modeling.bilstm import KoBiLstmForSequenceClassification, bilstm_config
from modeling.random_teacher import SHAPES
from modeling.student import parameter_count
from serve.export import FLOAT_FILE, INT8_FILE, ONNX_FOLDER, ExportArguments, export
from serve.models import load_model
from serve.predict import onnx_backend, torch_backend
from tokenization_kobert import KoBertTokenizerFast

ROOT = Path(__file__).resolve().parent.parent
KOBERT_SHAPE = {"vocab_size": 8002, "pad_token_id": 1, **SHAPES["kobert"]}
KOBERT_TOKENIZER = {
    "vocab_file": str(ROOT / "data" / "kobert" / "tokenizer_78b3253a26.model"),
    "vocab_txt": str(ROOT / "data" / "kobert" / "vocab.txt"),
}
REVIEWS = str(ROOT / "data" / "nsmc_test.txt.gz")
Call = Callable[[dict[str, np.ndarray]], Any]


@dataclass(kw_only=True)
class InferenceSpeedOptions:
    """What ``python -m benchmarks.inference_speed`` reads."""

    reviews: int = key(100, "Reviews timed one at a time (batch 1).")
    batches: int = key(10, "Batches of --batch_size reviews timed.")
    full_batches: int = key(3, "Batches of --batch_size held-out reviews at exactly --max_seq_length tokens timed.")
    batch_size: int = key(32, "Reviews per batch of the throughput figure.")
    rounds: int = key(2, "Passes of every model over the inputs, in turn.")
    max_seq_length: int = key(128, "Tokens per review at most.")
    student_depths: list[int] = key([6, 3], "Layers of each student (one student per depth).")
    bilstm_preset: Literal["tiny", "mini", "small", "base", "large"] = key(
        "base", "Sizes of the BiLSTM (modeling.bilstm presets)."
    )
    threads: int = key(0, "CPU threads of every backend; 0: torch's default.")
    output_file: str = key(str(ROOT / "benchmarks" / "results" / "inference_speed.json"), "The figures, as JSON.")

    def validate(self) -> None:
        counts = {"--reviews": self.reviews, "--batches": self.batches, "--batch_size": self.batch_size}
        counts |= {"--full_batches": self.full_batches}
        counts |= {"--rounds": self.rounds, "--max_seq_length": self.max_seq_length}
        for flag, value in counts.items():
            if value < 1:
                raise ValueError(f"{flag} must be at least 1, got {value}")
        if self.reviews < 2:  # the p95 of one latency is no figure
            raise ValueError(f"--reviews must be at least 2, got {self.reviews}")
        if not self.student_depths or min(self.student_depths) < 1:
            raise ValueError(f"--student_depths must be layer counts of at least 1, got {self.student_depths}")
        if self.threads < 0:
            raise ValueError(f"--threads must be 0 (torch's default) or more, got {self.threads}")


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
    export(ExportArguments(model_name_or_path=str(folder), output_dir=str(folder), int8=True, max_metric_drop=100))
    loaded = load_model(str(folder))
    return {
        "PyTorch": torch_backend(loaded),
        "ONNX": onnx_backend(str(folder / ONNX_FOLDER / FLOAT_FILE), threads),
        "ONNX int8": onnx_backend(str(folder / ONNX_FOLDER / INT8_FILE), threads),
    }


def tried_int8_graphs(model: torch.nn.Module, folder: Path, threads: int, example: list[str]) -> dict[str, Call]:
    """Other int8 graphs of the model ``exported_backends`` saved in ``folder``, measured beside the one
    ``serve.export`` makes (traced on eager attention): traced on SDPA attention, as transformers loads a model (what
    ``serve.export`` did before issue 34), and the eager trace through ONNX Runtime's transformer optimizer (which
    fuses its attention, LayerNorms and GELUs) before quantising."""
    from onnxruntime.transformers import optimizer

    from serve.onnx_export import export_float, quantize_int8

    loaded, work = load_model(str(folder)), folder / "tried"
    work.mkdir()
    export_float(loaded, work / "sdpa.onnx", example, eager=False)
    quantize_int8(work / "sdpa.onnx", work / "sdpa_int8.onnx")
    heads, hidden = model.config.num_attention_heads, model.config.hidden_size
    fused = optimizer.optimize_model(str(folder / ONNX_FOLDER / FLOAT_FILE), "bert", heads, hidden, opt_level=1)
    fused.save_model_to_file(str(work / "fused.onnx"))
    quantize_int8(work / "fused.onnx", work / "fused_int8.onnx")
    return {
        "ONNX int8, SDPA trace": onnx_backend(str(work / "sdpa_int8.onnx"), threads),
        "ONNX int8, ORT transformer optimizer": onnx_backend(str(work / "fused_int8.onnx"), threads),
    }


def encoded_batches(
    texts: list[str], batch_size: int, max_length: int, padding: str = "longest"
) -> list[dict[str, np.ndarray]]:
    """Consecutive texts in padded batches of input ids and attention masks (int64, what the graphs take), padded
    to the longest of each batch or (``max_length``) to ``max_length``."""
    tokenizer = KoBertTokenizerFast(**KOBERT_TOKENIZER)
    batches = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(texts[start : start + batch_size], truncation=True, max_length=max_length, padding=padding)
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


TRIED_FILES = {"ONNX int8, SDPA trace": "sdpa_int8.onnx", "ONNX int8, ORT transformer optimizer": "fused_int8.onnx"}


def file_mb(folder: Path, backend: str) -> float:
    if backend == "PyTorch":
        return (folder / "model.safetensors").stat().st_size / 2**20
    if backend in TRIED_FILES:
        return (folder / "tried" / TRIED_FILES[backend]).stat().st_size / 2**20
    return (folder / ONNX_FOLDER / (INT8_FILE if backend == "ONNX int8" else FLOAT_FILE)).stat().st_size / 2**20


def measure_inference_speed(options: InferenceSpeedOptions) -> dict[str, Any]:
    """Every model in every backend, at batch 1 and at ``options.batch_size``; written to ``options.output_file``,
    and returned, as a report."""
    options.validate()
    if options.threads:
        torch.set_num_threads(options.threads)
    threads, size = torch.get_num_threads(), options.batch_size
    texts = [record["document"] for record in read_nsmc(REVIEWS, "test")]
    singles = encoded_batches(texts[: options.reviews], 1, options.max_seq_length)
    batches = encoded_batches(texts[: options.batches * size], size, options.max_seq_length)
    held_out = texts[options.batches * size : (options.batches + options.full_batches) * size]
    full_batches = encoded_batches(held_out, size, options.max_seq_length, padding="max_length")
    models = kobert_classifiers(options.student_depths, options.bilstm_preset)

    calls: dict[str, Call] = {}  # "model | backend", in the order of the rows
    rows = []
    with tempfile.TemporaryDirectory() as workspace:
        smallest = f"student ({min(options.student_depths)} layers)"
        for number, (name, model) in enumerate(models.items()):
            folder = Path(workspace) / str(number)
            backends = exported_backends(model, folder, threads)
            if name == smallest:
                backends |= tried_int8_graphs(model, folder, threads, texts[:2])
            for backend, call in backends.items():
                calls[f"{name} | {backend}"] = call
                rows.append(
                    {
                        "model": name,
                        "backend": backend,
                        "parameters": parameter_count(model),
                        "file_mb": round(file_mb(folder, backend), 1),
                    }
                )
        single_seconds = taking_turns(calls, singles, options.rounds)
        batch_seconds = taking_turns(calls, batches, options.rounds)
        full_seconds = taking_turns(calls, full_batches, options.rounds)

    reviews_timed = options.rounds * sum(len(b["input_ids"]) for b in batches)
    full_reviews_timed = options.rounds * sum(len(b["input_ids"]) for b in full_batches)
    throughput, full = f"b{size}_reviews_per_s", f"b{size}x{options.max_seq_length}_reviews_per_s"
    for row, label in zip(rows, calls, strict=True):
        row["b1_p50_ms"] = round(1000 * percentile(single_seconds[label], 50), 2)
        row["b1_p95_ms"] = round(1000 * percentile(single_seconds[label], 95), 2)
        row[throughput] = round(reviews_timed / sum(batch_seconds[label]), 1)
        row[full] = round(full_reviews_timed / sum(full_seconds[label]), 1)
    teacher = rows[0]
    for row in rows:
        row["speedup_b1"] = round(teacher["b1_p50_ms"] / row["b1_p50_ms"], 2)
        row[f"speedup_b{size}"] = round(row[throughput] / teacher[throughput], 2)
        row[f"speedup_b{size}x{options.max_seq_length}"] = round(row[full] / teacher[full], 2)

    tokens = [int(s["attention_mask"].sum()) for s in singles]
    return write_report(
        options.output_file,
        "inference_speed",
        {
            "threads": threads,
            "reviews": options.reviews,
            "rounds": options.rounds,
            "batches": len(batches),
            "batch_size": size,
            "full_batches": len(full_batches),
            "max_length": options.max_seq_length,
            "review_tokens": {"mean": round(statistics.mean(tokens), 1), "max": max(tokens)},
            "results": rows,
        },
    )


def main(argv: list[str] | None = None) -> int:
    report = run_command(
        measure_inference_speed, InferenceSpeedOptions, argv, "python -m benchmarks.inference_speed", __doc__
    )
    b, rows, throughput = report["batch_size"], report["results"], f"b{report['batch_size']}_reviews_per_s"
    full = f"b{b}x{report['max_length']}"
    print(
        f"CPU, {report['threads']} threads; {report['reviews']} reviews one at a time "
        f"({report['review_tokens']['mean']:.1f} tokens on average), {report['batches']} batches of {b}, "
        f"{report['full_batches']} of {b} x {report['max_length']} tokens"
    )
    print(
        f"| model | backend | parameters | file (MB) | b1 p50 (ms) | b1 p95 (ms) | b{b} reviews/s | {full} reviews/s "
        f"| speed-up b1 | speed-up b{b} | speed-up {full} |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['model']} | {row['backend']} | {row['parameters']:,} | {row['file_mb']} | {row['b1_p50_ms']} | "
            f"{row['b1_p95_ms']} | {row[throughput]} | {row[f'{full}_reviews_per_s']} | {row['speedup_b1']}x | "
            f"{row[f'speedup_b{b}']}x | {row[f'speedup_{full}']}x |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

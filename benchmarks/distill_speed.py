"""Task-specific distillation, measured in one run: a training epoch on cached teacher logits against the same epoch
running the teacher live, and the CPU latency of BiLSTM students against the teachers on real reviews.

    python -m benchmarks.distill_speed
    python -m benchmarks.distill_speed --teacher_name_or_path runs/mini/nsmc/teacher/best --reviews 400

The teacher users distil from is KoBERT-shaped (12 layers, hidden 768, 8,002 tokens, the real KoBERT tokenizer from
``data/kobert``) with random weights: time depends on the shape only. The BiLSTMs are the presets of
``modeling/bilstm.py`` with a 3,000-token WordPiece tokenizer trained on the bundled NSMC reviews
(``distill.tokenizer``). Inputs are real reviews (``data/nsmc_test.txt.gz``), each model's own tokenization of them.

- Epoch: the same batches of 64 reviews train two copies of BiLSTM-Base, one on cached logits (the student step
  alone: what ``distill.train`` does) and one with the teacher's forward pass before each step (what training
  without a cache would do); the two take turns batch by batch, and the ratio is of their examples per second.
- Latency: one review at a time (batch 1) and 32 at a time (padded), ``torch.inference_mode``, the models taking
  turns on each input after a warm-up; the median over the reviews is kept.
"""

from __future__ import annotations

import gzip
import itertools
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.report import write_report
from common.config import key, run_command
from modeling.random_teacher import SHAPES

if TYPE_CHECKING:  # torch and the models are imported where they are used: --help and refusals answer at once
    import torch

ROOT = Path(__file__).resolve().parent.parent
KOBERT_DIR = ROOT / "data" / "kobert"
NSMC_TRAIN, NSMC_TEST = ROOT / "data" / "nsmc_train.txt.gz", ROOT / "data" / "nsmc_test.txt.gz"
BATCH = 64


@dataclass(kw_only=True)
class DistillSpeedOptions:
    """What ``python -m benchmarks.distill_speed`` reads."""

    reviews: int = key(300, "Real reviews timed one at a time (batch 1); also 32 at a time.")
    epoch_batches: int = key(12, "Training batches of 64 reviews, each way.")
    max_seq_length: int = key(64, "Tokens per review, as distill.train's default.")
    vocab_size: int = key(3000, "The BiLSTMs' WordPiece vocabulary.")
    teacher_name_or_path: str = key("", "A fine-tuned classifier folder to time too (make demo's teacher).")
    threads: int = key(0, "torch CPU threads; 0: torch's default.")
    output_file: str = key(str(ROOT / "benchmarks" / "results" / "distill_speed.json"), "The figures, as JSON.")

    def validate(self) -> None:
        if self.reviews < 32:
            raise ValueError(f"--reviews must be at least 32 (one batch of 32), got {self.reviews}")
        if self.epoch_batches < 1:
            raise ValueError(f"--epoch_batches must be at least 1, got {self.epoch_batches}")
        if self.max_seq_length < 8:
            raise ValueError(f"--max_seq_length must be at least 8, got {self.max_seq_length}")
        if self.threads < 0:
            raise ValueError(f"--threads must be 0 (torch's default) or more, got {self.threads}")
        if self.teacher_name_or_path and not Path(self.teacher_name_or_path).is_dir():
            raise ValueError(f"--teacher_name_or_path {self.teacher_name_or_path!r}: not a folder")


def review_texts(path: Path, limit: int) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        next(f)  # header
        return [line.rstrip("\n").split("\t")[1] for line in itertools.islice(f, limit)]


def kobert_teacher() -> torch.nn.Module:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    return BertForSequenceClassification(BertConfig(vocab_size=8002, pad_token_id=1, **SHAPES["kobert"])).eval()


def encoder(tokenizer: Any, max_length: int, model: torch.nn.Module) -> Callable[[list[str]], dict[str, torch.Tensor]]:
    """The model's inputs for a list of texts, by its own tokenizer (no token types for models without them)."""
    keep_types = model.config.model_type == "bert"

    def encode(texts: list[str]) -> dict[str, torch.Tensor]:
        batch = tokenizer(texts, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
        return {k: v for k, v in batch.items() if keep_types or k != "token_type_ids"}

    return encode


def median_latency(models: dict[str, tuple[torch.nn.Module, Callable]], batches: list[list[str]]) -> dict[str, float]:
    """Median milliseconds per forward pass of each model over ``batches`` (inputs encoded beforehand)."""
    import torch

    inputs = {name: [encode(batch) for batch in batches] for name, (_, encode) in models.items()}
    times: dict[str, list[float]] = {name: [] for name in models}
    with torch.inference_mode():
        for name, (model, _) in models.items():
            model(**inputs[name][0])  # warm-up
        for i in range(len(batches)):
            for name, (model, _) in models.items():
                start = time.perf_counter()
                model(**inputs[name][i])
                times[name].append(time.perf_counter() - start)
    return {name: 1000 * statistics.median(values) for name, values in times.items()}


def training_step(
    student: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: dict, logits: torch.Tensor
) -> None:
    from distill.task_losses import distillation_loss

    loss = distillation_loss(student(**batch).logits, logits, None, alpha=0.0, soft="mse")
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()


def epoch_speed(
    teacher: torch.nn.Module,
    teacher_encode: Callable,
    student_encode: Callable,
    batches: list[list[str]],
    vocab: int,
    pad: int,
) -> dict[str, float]:
    """Examples per second of BiLSTM-Base training on cached logits and with the teacher run live, batch by batch."""
    import torch

    from modeling.bilstm import KoBiLstmForSequenceClassification, bilstm_config

    with torch.no_grad():  # not inference_mode: its tensors cannot enter a loss that is backpropagated
        cached = [teacher(**teacher_encode(batch)).logits for batch in batches]  # the cache, made beforehand
    students = {}
    for way in ("cached", "live"):
        torch.manual_seed(0)
        student = KoBiLstmForSequenceClassification(bilstm_config("base", vocab, pad)).train()
        students[way] = (student, torch.optim.AdamW(student.parameters(), lr=2e-3))
    seconds = {"cached": 0.0, "live": 0.0}
    for batch, logits in zip(batches, cached, strict=True):
        inputs = student_encode(batch)
        start = time.perf_counter()
        training_step(*students["cached"], inputs, logits)
        seconds["cached"] += time.perf_counter() - start
        start = time.perf_counter()
        with torch.no_grad():
            live_logits = teacher(**teacher_encode(batch)).logits
        training_step(*students["live"], inputs, live_logits)
        seconds["live"] += time.perf_counter() - start
    examples = sum(len(batch) for batch in batches)
    return {way: examples / value for way, value in seconds.items()}


def measure_distill_speed(options: DistillSpeedOptions) -> dict[str, Any]:
    """Latencies of the teachers and BiLSTMs, and the cached against the live epoch; written to
    ``options.output_file``, and returned, as a report."""
    options.validate()
    import torch
    from transformers import AutoModelForSequenceClassification

    from distill.tokenizer import train_student_tokenizer
    from modeling.bilstm import PRESETS, KoBiLstmForSequenceClassification, bilstm_config
    from modeling.load import load_tokenizer
    from modeling.student import parameter_count, size_mb

    if options.threads:
        torch.set_num_threads(options.threads)
    threads = torch.get_num_threads()
    reviews = review_texts(NSMC_TEST, max(options.reviews, BATCH * options.epoch_batches))
    kobert_tokenizer = load_tokenizer(str(KOBERT_DIR))
    student_tokenizer = train_student_tokenizer(lambda: review_texts(NSMC_TRAIN, 20_000), options.vocab_size)
    vocab, pad = len(student_tokenizer), student_tokenizer.pad_token_id

    teacher = kobert_teacher()
    teacher_encode = encoder(kobert_tokenizer, options.max_seq_length, teacher)
    models: dict[str, tuple[torch.nn.Module, Callable]] = {
        "KoBERT-shaped teacher (12 layers)": (teacher, teacher_encode)
    }
    if options.teacher_name_or_path:
        demo = AutoModelForSequenceClassification.from_pretrained(options.teacher_name_or_path).eval()
        models[f"demo teacher ({options.teacher_name_or_path})"] = (
            demo,
            encoder(load_tokenizer(options.teacher_name_or_path), options.max_seq_length, demo),
        )
    student_encode = None
    for preset in PRESETS:
        torch.manual_seed(0)
        bilstm = KoBiLstmForSequenceClassification(bilstm_config(preset, vocab, pad)).eval()
        models[f"BiLSTM-{preset.capitalize()}"] = (bilstm, encoder(student_tokenizer, options.max_seq_length, bilstm))
        student_encode = student_encode or models[f"BiLSTM-{preset.capitalize()}"][1]

    one_at_a_time = [[text] for text in reviews[: options.reviews]]
    by_32 = [reviews[i : i + 32] for i in range(0, options.reviews - 31, 32)]
    latency_b1, latency_b32 = median_latency(models, one_at_a_time), median_latency(models, by_32)
    epoch_batches = [reviews[i * BATCH : (i + 1) * BATCH] for i in range(options.epoch_batches)]
    speed = epoch_speed(teacher, teacher_encode, student_encode, epoch_batches, vocab, pad)

    teacher_name = next(iter(models))
    rows = [
        {
            "model": name,
            "parameters": parameter_count(model),
            "size_mb": round(size_mb(model), 3),
            "latency_ms_b1": round(latency_b1[name], 3),
            "latency_ms_b32": round(latency_b32[name], 2),
            "speedup_b1": round(latency_b1[teacher_name] / latency_b1[name], 1),
            "speedup_b32": round(latency_b32[teacher_name] / latency_b32[name], 1),
        }
        for name, (model, _) in models.items()
    ]
    epoch = {
        "examples": BATCH * options.epoch_batches,
        "cached_examples_per_s": round(speed["cached"], 1),
        "live_examples_per_s": round(speed["live"], 1),
        "cached_over_live": round(speed["cached"] / speed["live"], 1),
    }
    settings = {"threads": threads, "max_seq_length": options.max_seq_length, "reviews": options.reviews}
    figures = {**settings, "vocab_size": vocab, "latency": rows, "epoch": epoch}
    return write_report(options.output_file, "distill_speed", figures)


def main(argv: list[str] | None = None) -> int:
    report = run_command(
        measure_distill_speed, DistillSpeedOptions, argv, "python -m benchmarks.distill_speed", __doc__
    )
    rows, epoch = report["latency"], report["epoch"]
    print(f"CPU, {report['threads']} threads, real reviews (up to {report['max_seq_length']} tokens), medians")
    print("| model | parameters | size (MB) | latency b1 (ms) | speed-up b1 | latency b32 (ms) | speed-up b32 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['model']} | {row['parameters']:,} | {row['size_mb']} | {row['latency_ms_b1']} | "
            f"{row['speedup_b1']}x | {row['latency_ms_b32']} | {row['speedup_b32']}x |"
        )
    print(
        f"BiLSTM-Base training on {epoch['examples']} reviews: {epoch['cached_examples_per_s']} examples/s on cached "
        f"logits, {epoch['live_examples_per_s']} with the KoBERT-shaped teacher live: {epoch['cached_over_live']}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Distillation step throughput against its parts, in one process: is the step more than teacher + student?

    python -m benchmarks.pretrain_throughput                                 # CPU: batch 4 x 128 tokens
    python -m benchmarks.pretrain_throughput --per_device_train_batch_size 32 --max_seq_length 512 \
        --mixed_precision bf16                                               # one GPU

KoBERT-shaped random teacher (12 layers, hidden 768) and its 3-layer student. Three timings on the same masked
batches, in this run: a teacher forward alone, a student forward + backward alone (masked-LM loss), and the full
distillation step of pretrain/run.py (teacher forward, student forward, all loss terms, backward, AdamW step).
Prints tokens/s of each, the overhead ratio step / (teacher + student) (target: at most 1.15) and peak memory; on
a GPU also the model FLOPs utilisation of the step.
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from transformers import BertConfig, BertForMaskedLM

from benchmarks.inference_speed import KOBERT_SHAPE
from benchmarks.report import write_report
from common.config import key, run_command
from modeling.student import build_student
from pretrain.distillation_config import DistillationConfig
from pretrain.distillation_losses import masked_lm_cross_entropy
from pretrain.masking import token_weights
from pretrain.step import (
    DistillationStudent,
    build_optimizer,
    distillation_losses,
    masked_batch,
    teacher_outputs,
)

# Dense bf16 peak of the GPUs we are lent (NVIDIA data sheets, SXM parts).
PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


ROOT = Path(__file__).resolve().parent.parent


@dataclass(kw_only=True)
class PretrainThroughputOptions:
    """What ``python -m benchmarks.pretrain_throughput`` reads."""

    per_device_train_batch_size: int = key(4, "Blocks per step.")
    max_seq_length: int = key(128, "Tokens per block.")
    steps: int = key(5, "Timed steps per measurement (median kept).")
    mixed_precision: Literal["no", "bf16"] = key("no", "Autocast to bf16, or compute in float32 (no).")
    output_file: str = key(str(ROOT / "benchmarks" / "results" / "pretrain_throughput.json"), "The figures, as JSON.")

    def validate(self) -> None:
        if min(self.per_device_train_batch_size, self.steps) < 1:
            raise ValueError("--per_device_train_batch_size and --steps must be at least 1")
        if not 8 <= self.max_seq_length <= KOBERT_SHAPE["max_position_embeddings"]:
            raise ValueError(
                f"--max_seq_length must be from 8 to {KOBERT_SHAPE['max_position_embeddings']} (the teacher's "
                f"positions), got {self.max_seq_length}"
            )


def median_seconds(fn: Callable[[], None], steps: int, device: torch.device) -> float:
    fn()  # warm-up
    times = []
    for _ in range(steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def non_embedding_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for name, p in model.named_parameters() if "embeddings" not in name)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def measure_pretrain_throughput(options: PretrainThroughputOptions) -> dict[str, Any]:
    """The teacher alone, the student alone and the whole distillation step, timed on the same batches; written to
    ``options.output_file``, and returned, as a report."""
    options.validate()
    batch_size, seq_length, steps = options.per_device_train_batch_size, options.max_seq_length, options.steps
    bf16 = options.mixed_precision == "bf16"
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    autocast_dtype = torch.bfloat16 if bf16 else torch.float32
    torch.manual_seed(0)
    teacher = BertForMaskedLM(BertConfig(**KOBERT_SHAPE)).eval().requires_grad_(False).to(device)
    student = build_student(teacher, [0, 4, 8]).train().to(device)
    module = DistillationStudent(student)
    config = DistillationConfig()
    optimizer = build_optimizer(student, config)

    vocab = KOBERT_SHAPE["vocab_size"]
    blocks = torch.randint(5, vocab, (batch_size, seq_length), device=device)
    blocks[:, 0], blocks[:, -1] = 2, 3
    weights = token_weights(np.ones(vocab, dtype=np.int64), 0.7, [0, 1, 2, 3, 4])
    inputs, labels, attention_mask, positions = masked_batch(blocks, weights, 0, config, {"mask": 4, "pad": 1})
    targets = labels[positions]

    def autocast():
        return torch.autocast(device.type, dtype=autocast_dtype, enabled=bf16)

    def teacher_alone() -> None:
        with autocast():
            teacher_outputs(teacher, inputs, attention_mask, positions)

    def student_alone() -> None:
        with autocast():
            _, logits, _ = module(inputs, attention_mask, positions)
        masked_lm_cross_entropy(logits, targets).backward()
        optimizer.zero_grad()

    def full_step() -> None:
        with autocast():
            student_hidden, student_logits, _ = module(inputs, attention_mask, positions)
            teacher_hidden, teacher_logits, _ = teacher_outputs(teacher, inputs, attention_mask, positions)
        terms = distillation_losses(
            student_hidden, student_logits, teacher_hidden, teacher_logits, targets, attention_mask, config
        )
        terms["loss"].backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), config.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad()

    tokens = batch_size * seq_length
    seconds = {
        "teacher_forward": median_seconds(teacher_alone, steps, device),
        "student_forward_backward": median_seconds(student_alone, steps, device),
        "distillation_step": median_seconds(full_step, steps, device),
    }
    overhead = seconds["distillation_step"] / (seconds["teacher_forward"] + seconds["student_forward_backward"])
    # 2 FLOPs per parameter and token forward, 4 more backward (Kaplan et al., 2020); attention scores excluded.
    step_flops = tokens * (2 * non_embedding_parameters(teacher) + 6 * non_embedding_parameters(student))
    peak = next(
        (v for k, v in PEAK_BF16_FLOPS.items() if device.type == "cuda" and k in torch.cuda.get_device_name()), None
    )
    mfu = step_flops / seconds["distillation_step"] / peak if peak and bf16 else None
    figures = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads",
        "dtype": "bf16" if bf16 else "fp32",
        "batch_size": batch_size,
        "seq_length": seq_length,
        "steps": steps,
        "tokens_per_s": {k: round(tokens / v) for k, v in seconds.items()},
        "seconds": {k: round(v, 4) for k, v in seconds.items()},
        "overhead_ratio": round(overhead, 3),
        "peak_memory_mb": round(peak_memory_mb(device)),
        "model_flops_utilisation": round(mfu, 3) if mfu is not None else None,
    }
    return write_report(options.output_file, "pretrain_throughput", figures)


def main(argv: list[str] | None = None) -> int:
    prog = "python -m benchmarks.pretrain_throughput"
    report = run_command(measure_pretrain_throughput, PretrainThroughputOptions, argv, prog, __doc__)
    mfu = report["model_flops_utilisation"]
    print(
        f"{report['device']}, {report['dtype']}, batch {report['batch_size']} x {report['seq_length']} tokens, "
        f"median of {report['steps']}"
    )
    print("| measurement | seconds | tokens/s |")
    print("|---|---:|---:|")
    for name, value in report["seconds"].items():
        print(f"| {name} | {value:.4f} | {report['tokens_per_s'][name]:,} |")
    print(f"overhead ratio step / (teacher + student): {report['overhead_ratio']:.3f} (target <= 1.15)")
    print(f"peak memory: {report['peak_memory_mb']} MB" + (f", MFU: {mfu:.1%}" if mfu is not None else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Distillation step throughput against its parts, in one process: is the step more than teacher + student?

    python benchmarks/pretrain_throughput.py                                 # CPU: batch 4 x 128 tokens
    python benchmarks/pretrain_throughput.py --batch-size 32 --seq-length 512 --dtype bf16   # one GPU

KoBERT-shaped random teacher (12 layers, hidden 768) and its 3-layer student. Three timings on the same masked
batches, in this run: a teacher forward alone, a student forward + backward alone (masked-LM loss), and the full
distillation step of pretrain/run.py (teacher forward, student forward, all loss terms, backward, AdamW step).
Prints tokens/s of each, the overhead ratio step / (teacher + student) (target: at most 1.15) and peak memory; on
a GPU also the model FLOPs utilisation of the step.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from transformers import BertConfig, BertForMaskedLM

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.inference_speed import KOBERT_SHAPE  # noqa: E402
from benchmarks.report import write_report  # noqa: E402
from common.cli import command_parser  # noqa: E402
from modeling.student import build_student  # noqa: E402
from pretrain.config import DistillationConfig  # noqa: E402
from pretrain.losses import masked_lm_cross_entropy  # noqa: E402
from pretrain.masking import token_weights  # noqa: E402
from pretrain.step import (  # noqa: E402
    DistillationStudent,
    build_optimizer,
    distillation_losses,
    masked_batch,
    teacher_outputs,
)

# Dense bf16 peak of the GPUs we are lent (NVIDIA data sheets, SXM parts).
PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


def parse_args() -> argparse.Namespace:
    parser = command_parser("python benchmarks/pretrain_throughput.py", __doc__)
    parser.add_argument("--batch-size", type=int, default=4, help="Blocks per step.")
    parser.add_argument("--seq-length", type=int, default=128, help="Tokens per block.")
    parser.add_argument("--steps", type=int, default=5, help="Timed steps per measurement (median kept).")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32", help="Autocast precision.")
    parser.add_argument(
        "--output",
        default=str(ROOT / "benchmarks" / "results" / "pretrain_throughput.json"),
        help="The figures, as JSON.",
    )
    return parser.parse_args()


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


def main() -> None:
    args = parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    autocast_dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    torch.manual_seed(0)
    teacher = BertForMaskedLM(BertConfig(**KOBERT_SHAPE)).eval().requires_grad_(False).to(device)
    student = build_student(teacher, [0, 4, 8]).train().to(device)
    module = DistillationStudent(student)
    config = DistillationConfig()
    optimizer = build_optimizer(student, config)

    vocab = KOBERT_SHAPE["vocab_size"]
    blocks = torch.randint(5, vocab, (args.batch_size, args.seq_length), device=device)
    blocks[:, 0], blocks[:, -1] = 2, 3
    weights = token_weights(np.ones(vocab, dtype=np.int64), 0.7, [0, 1, 2, 3, 4])
    inputs, labels, attention_mask, positions = masked_batch(blocks, weights, 0, config, {"mask": 4, "pad": 1})
    targets = labels[positions]

    def autocast():
        return torch.autocast(device.type, dtype=autocast_dtype, enabled=args.dtype != "fp32")

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

    tokens = args.batch_size * args.seq_length
    seconds = {
        "teacher_forward": median_seconds(teacher_alone, args.steps, device),
        "student_forward_backward": median_seconds(student_alone, args.steps, device),
        "distillation_step": median_seconds(full_step, args.steps, device),
    }
    overhead = seconds["distillation_step"] / (seconds["teacher_forward"] + seconds["student_forward_backward"])
    # 2 FLOPs per parameter and token forward, 4 more backward (Kaplan et al., 2020); attention scores excluded.
    step_flops = tokens * (2 * non_embedding_parameters(teacher) + 6 * non_embedding_parameters(student))
    peak = next(
        (v for k, v in PEAK_BF16_FLOPS.items() if device.type == "cuda" and k in torch.cuda.get_device_name()), None
    )
    mfu = step_flops / seconds["distillation_step"] / peak if peak and args.dtype == "bf16" else None
    figures = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads",
        "dtype": args.dtype,
        "batch_size": args.batch_size,
        "seq_length": args.seq_length,
        "tokens_per_s": {k: round(tokens / v) for k, v in seconds.items()},
        "seconds": {k: round(v, 4) for k, v in seconds.items()},
        "overhead_ratio": round(overhead, 3),
        "peak_memory_mb": round(peak_memory_mb(device)),
        "model_flops_utilisation": round(mfu, 3) if mfu is not None else None,
    }
    write_report(args.output, "pretrain_throughput", figures)
    print(
        f"{figures['device']}, {args.dtype}, batch {args.batch_size} x {args.seq_length} tokens, median of {args.steps}"
    )
    print("| measurement | seconds | tokens/s |")
    print("|---|---:|---:|")
    for name, value in seconds.items():
        print(f"| {name} | {value:.4f} | {tokens / value:,.0f} |")
    print(f"overhead ratio step / (teacher + student): {overhead:.3f} (target <= 1.15)")
    print(f"peak memory: {figures['peak_memory_mb']} MB" + (f", MFU: {mfu:.1%}" if mfu is not None else ""))


if __name__ == "__main__":
    main()

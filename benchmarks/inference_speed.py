"""CPU inference latency of a KoBERT-shaped teacher and its 6- and 3-layer students, measured in one run.

    python benchmarks/inference_speed.py
    python benchmarks/inference_speed.py --seq-length 128 --batch-sizes 1,32 --repeats 5

Random weights in KoBERT's shape (12 layers, hidden 768, 12 heads, FFN 3072, 8,002 tokens): latency depends on the
shape only. Each model is the encoder (``BertModel`` / ``DistilBertModel``, what a fine-tuned model runs), timed with
``torch.inference_mode`` after a warm-up, the models taking turns; the median of the repeats is kept
(``modeling.latency``). Prints parameters, size, latency and
the students' speed-ups over the teacher, and writes them as JSON.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from transformers import BertConfig, BertForMaskedLM

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.report import write_report  # noqa: E402
from common.cli import command_parser  # noqa: E402
from modeling.latency import compare_latency  # noqa: E402
from modeling.random_teacher import SHAPES  # noqa: E402
from modeling.student import build_student, parameter_count, select_layers, size_mb  # noqa: E402

KOBERT_SHAPE = {"vocab_size": 8002, "pad_token_id": 1, **SHAPES["kobert"]}


def parse_args() -> argparse.Namespace:
    parser = command_parser("python benchmarks/inference_speed.py", __doc__)
    parser.add_argument("--seq-length", type=int, default=128, help="Tokens per sequence.")
    parser.add_argument("--batch-sizes", default="1,32", help="Comma-separated batch sizes.")
    parser.add_argument("--student-layers", default="6,3", help="Comma-separated student depths.")
    parser.add_argument("--repeats", type=int, default=5, help="Timed forward passes per model and batch size.")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads.")
    parser.add_argument(
        "--output", default=str(ROOT / "benchmarks" / "results" / "inference_speed.json"), help="The figures, as JSON."
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    teacher = BertForMaskedLM(BertConfig(**KOBERT_SHAPE)).eval()
    models = {"teacher (12 layers)": (teacher, teacher.bert)}
    for depth in (int(d) for d in args.student_layers.split(",")):
        layers = select_layers(12, num_layers=depth)
        student = build_student(teacher, layers).eval()
        models[f"student ({depth} layers: {layers})"] = (student, student.distilbert)

    latencies = compare_latency(
        {name: encoder for name, (_, encoder) in models.items()}, batch_sizes, args.seq_length, args.repeats
    )
    rows = [
        {
            "model": name,
            "parameters": parameter_count(full_model),
            "size_mb": round(size_mb(full_model), 1),
            "latency_ms": {b: round(latencies[name][b], 1) for b in batch_sizes},
        }
        for name, (full_model, _) in models.items()
    ]
    for row in rows:
        row["speedup"] = {b: round(rows[0]["latency_ms"][b] / row["latency_ms"][b], 2) for b in batch_sizes}

    write_report(
        args.output,
        "inference_speed",
        {"seq_length": args.seq_length, "threads": args.threads, "repeats": args.repeats, "results": rows},
    )
    header = " | ".join(f"batch {b} (ms) | speed-up b{b}" for b in batch_sizes)
    print(f"CPU, {args.threads} threads, sequence length {args.seq_length}, median of {args.repeats}")
    print(f"| model | parameters | size (MB) | {header} |")
    print("|---|---:|---:|" + "---:|---:|" * len(batch_sizes))
    for row in rows:
        cells = " | ".join(f"{row['latency_ms'][b]} | {row['speedup'][b]}x" for b in batch_sizes)
        print(f"| {row['model']} | {row['parameters']:,} | {row['size_mb']} | {cells} |")


if __name__ == "__main__":
    main()

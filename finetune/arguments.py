"""The flags every fine-tuning command takes, and their checks: argparse and file checks alone, so that a command
answers ``--help`` and refuses a mistyped file or a used output folder before it imports torch."""

from __future__ import annotations

import argparse
from typing import Any

from common.io import check_data_files, check_output_place


def add_common_args(parser: argparse.ArgumentParser, **defaults: Any) -> None:
    """Flags every task takes; ``defaults`` are the task's (those of the original sub-task repositories)."""
    parser.add_argument("--model", required=True, help="Model folder or Hub id (BERT or DistilBERT).")
    parser.add_argument("--output", required=True, help="Folder for the best model, results.json and logs.")
    parser.add_argument(
        "--max-seq-length",
        type=int,
        default=defaults.get("max_seq_length", 128),
        help="Tokens per input, special tokens included.",
    )
    parser.add_argument("--batch-size", type=int, default=defaults.get("batch_size", 32), help="Per device.")
    parser.add_argument("--eval-batch-size", type=int, default=defaults.get("eval_batch_size", 64), help="Per device.")
    parser.add_argument(
        "--learning-rate", type=float, default=defaults.get("learning_rate", 5e-5), help="Peak learning rate of AdamW."
    )
    parser.add_argument("--epochs", type=int, default=defaults.get("epochs", 3), help="Training epochs.")
    parser.add_argument(
        "--warmup-ratio",
        type=float,
        default=defaults.get("warmup_ratio", 0.0),
        help="Share of steps with linear warm-up.",
    )
    parser.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay.")
    parser.add_argument(
        "--gradient-accumulation-steps", type=int, default=1, help="Batches whose gradients make one optimizer update."
    )
    parser.add_argument("--max-grad-norm", type=float, default=1.0, help="Gradient clipping; 0 disables it.")
    parser.add_argument(
        "--validation-split",
        type=float,
        default=0.1,
        help="Share of the training data held out to pick the best epoch (seeded).",
    )
    parser.add_argument("--max-train-samples", type=int, default=None, help="Train on at most this many examples.")
    parser.add_argument(
        "--max-eval-samples", type=int, default=None, help="Validate and test on at most this many examples."
    )
    parser.add_argument(
        "--mixed-precision",
        choices=["no", "fp16", "bf16"],
        default="no",
        help="Compute in bf16 or fp16 (GPUs), or in float32 (no).",
    )
    parser.add_argument(
        "--group-by-length",
        action="store_true",
        help="Batch training examples of similar length (less padding, faster; the order is still random).",
    )
    parser.add_argument(
        "--seed", type=int, default=42, help="Seeds the new head, the validation split, the data order and dropout."
    )


def check_common_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not 0 < args.validation_split < 1:
        parser.error("--validation-split must be in (0, 1)")
    if args.max_seq_length < 8:
        parser.error("--max-seq-length must be at least 8")
    if args.epochs < 1 or args.batch_size < 1:
        parser.error("--epochs and --batch-size must be at least 1")
    check_data_files(parser, args)
    check_output_place(parser, args.output)

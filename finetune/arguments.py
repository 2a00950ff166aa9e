"""The flags every fine-tuning command takes, and their checks: argparse and file checks alone, so that a command
answers ``--help`` and refuses a mistyped file or a used output folder before it imports torch."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from common.checkpoints import latest_checkpoint, resume_point
from common.cli import add_mixed_precision
from common.io import check_data_files, check_output_place, first_process

BEST_DIR = "best"
RESULTS_FILE = "results.json"
# What a run writes in --output besides checkpoint-N folders (KorQuAD adds predictions.json).
RUN_OUTPUTS = (BEST_DIR, RESULTS_FILE, "predictions.json")


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
    add_mixed_precision(parser)
    parser.add_argument(
        "--group-by-length",
        action="store_true",
        help="Batch training examples of similar length (less padding, faster; the order is still random).",
    )
    parser.add_argument(
        "--seed", type=int, default=42, help="Seeds the new head, the validation split, the data order and dropout."
    )
    parser.add_argument(
        "--save-steps",
        type=int,
        default=0,
        help="Also checkpoint every this many optimizer updates (0: at the end of each epoch only).",
    )
    parser.add_argument("--resume", action="store_true", help="Continue from the newest checkpoint in --output.")
    parser.add_argument("--overwrite", action="store_true", help="Delete an earlier run's outputs in --output first.")


def check_common_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not 0 < args.validation_split < 1:
        parser.error("--validation-split must be in (0, 1)")
    if args.max_seq_length < 8:
        parser.error("--max-seq-length must be at least 8")
    if args.epochs < 1 or args.batch_size < 1:
        parser.error("--epochs and --batch-size must be at least 1")
    if args.save_steps < 0:
        parser.error("--save-steps must be 0 (each epoch's end) or more")
    if args.resume and args.overwrite:
        parser.error("--resume continues the run in --output and --overwrite deletes it: choose one")
    check_data_files(parser, args)
    check_output_place(parser, args.output)  # what it holds is checked under its lock (Task.main)


def resume_from(args: argparse.Namespace) -> Path | None:
    """The checkpoint the run continues, after refusing an ``--output`` whose earlier run neither ``--resume`` nor
    ``--overwrite`` says what to do with (ValueError). Apart from parsing, which the recipe also uses to read a
    preset's settings: only the command itself is refused for what its output folder holds."""
    if not first_process():  # the others could find what the first process of a launch began to write
        return latest_checkpoint(args.output) if args.resume else None
    return resume_point(args.output, RUN_OUTPUTS, args.resume, args.overwrite, "--output")

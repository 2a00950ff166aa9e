"""The flags every sentence-encoder training command shares, their checks, and how a command picks its best
checkpoint: argparse and file checks alone, so that a command answers ``--help`` and refuses a mistyped file or a
used output folder before it imports torch and sentence-transformers."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from common.cli import add_mixed_precision
from common.io import check_data_files, check_output_folder, first_process, setup_logging

POOLING_MODES = ("mean", "cls")
DISTANCES = ("mse", "cosine", "similarity")  # sentence.distill's losses (sentence.losses)
CHECKPOINTS = "checkpoints"  # OUTPUT/checkpoints: the trainer's, resumed with --resume
MODEL_HELP = (
    "Encoder to start from: any model folder or Hub id (with --pooling on top), or a sentence-transformers "
    "folder (its own pooling)."
)


def add_training_args(
    parser: argparse.ArgumentParser, *, epochs: float, batch_size: int, learning_rate: float, pooling: bool = True
) -> None:
    """The flags of every training command but the model's; the defaults given are the command's (its paper's)."""
    parser.add_argument("--output", required=True, help="Folder for best/ (the encoder), results.json, checkpoints.")
    if pooling:  # a bi-encoder's; a cross-encoder has none
        parser.add_argument(
            "--pooling", choices=POOLING_MODES, default="mean", help="Token vectors -> sentence vector."
        )
    parser.add_argument("--max-seq-length", type=int, default=128, help="Tokens per sentence, special tokens included.")
    parser.add_argument("--batch-size", type=int, default=batch_size, help="Examples per step, per process.")
    parser.add_argument("--learning-rate", type=float, default=learning_rate, help="Peak learning rate of AdamW.")
    parser.add_argument("--epochs", type=float, default=epochs, help="Passes over the training data.")
    parser.add_argument("--warmup-ratio", type=float, default=0.1, help="Share of steps with linear warm-up.")
    parser.add_argument(
        "--validation-split",
        type=float,
        default=0.1,
        help="Share of the training data held out (seeded) to pick the best checkpoint.",
    )
    parser.add_argument("--eval-steps", type=int, default=500, help="Validate and checkpoint every this many steps.")
    parser.add_argument("--max-train-samples", type=int, default=None, help="Train on at most this many examples.")
    add_mixed_precision(parser)
    parser.add_argument("--seed", type=int, default=42, help="Seeds the hold-out, the data order and dropout.")
    parser.add_argument("--resume", action="store_true", help="Continue from the last checkpoint in OUTPUT.")
    parser.add_argument("--overwrite", action="store_true", help="Replace a non-empty OUTPUT.")


def check_training_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse what cannot work before anything is read (through ``parser.error``, naming the flag)."""
    if not 0 < args.validation_split < 1:
        parser.error("--validation-split must be in (0, 1)")
    if args.epochs <= 0 or args.batch_size < 1 or args.eval_steps < 1:
        parser.error("--epochs, --batch-size and --eval-steps must be positive")
    if args.max_seq_length < 8:
        parser.error("--max-seq-length must be at least 8")
    check_data_files(parser, args)
    if args.resume:
        if not os.path.isdir(os.path.join(args.output, CHECKPOINTS)):
            parser.error(f"--resume: {args.output!r} has no {CHECKPOINTS}/ folder to resume from")
    elif first_process():
        # The first process of a launch alone: the others could find the folder it has begun to fill.
        check_output_folder(parser, args.output, args.overwrite)


@dataclass(frozen=True)
class Selection:
    """How the best checkpoint is chosen: a key of the Trainer's evaluation metrics and its direction."""

    metric: str  # e.g. "eval_loss" or "eval_validation_spearman_cosine"
    greater_is_better: bool


def setup_command_logging() -> None:
    """Our INFO logs (the teacher pass's progress, reused caches) on the main process, warnings on the others (by
    the launcher's RANK: the process group starts later, inside the trainer)."""
    setup_logging(first_process())

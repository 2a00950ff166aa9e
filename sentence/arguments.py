"""The options every sentence-encoder training command shares, their checks, and how a command picks its best
checkpoint: a dataclass each command extends, checked before anything imports torch and sentence-transformers, so
that a command answers ``--help`` and refuses a mistyped file or a used output folder at once. The names are those of
transformers' ``TrainingArguments`` and example scripts (``--output_dir``, ``--per_device_train_batch_size``,
``--num_train_epochs``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal, get_args

from common.config import key, required
from common.io import first_process, require_data_files, require_output_folder, setup_logging

Pooling = Literal["mean", "cls"]
POOLING_MODES = get_args(Pooling)
Distance = Literal["mse", "cosine", "similarity"]  # sentence.distil_embeddings's losses (sentence.embedding_losses)
DISTANCES = get_args(Distance)
MixedPrecision = Literal["no", "fp16", "bf16"]  # accelerate's names
CHECKPOINTS = "checkpoints"  # OUTPUT_DIR/checkpoints: the trainer's, resumed with --resume
MODEL_HELP = (
    "Encoder to start from: any model folder or Hub id (with --pooling on top), or a sentence-transformers "
    "folder (its own pooling)."
)
TRAIN_FILE_HELP = "STS training pairs (KorSTS TSV, KLUE-STS JSON, or a Hub dataset NAME[:CONFIG]:SPLIT)."
TEST_FILE_HELP = (
    "STS pairs scored once at the end and reported, never used to pick the checkpoint (KorSTS TSV, KLUE-STS JSON, "
    "or a Hub dataset NAME[:CONFIG]:SPLIT)."
)


@dataclass(kw_only=True)
class SentenceTrainingArguments:
    """What every training command reads besides its model and data; a command's subclass adds those and sets its
    defaults (its paper's). These defaults are Reimers and Gurevych (2019)'s for STS: batch 16, learning rate 2e-5,
    4 epochs, 10% warm-up."""

    output_dir: str = required("Folder for best/ (the encoder), results.json and checkpoints/.")
    max_seq_length: int = key(128, "Tokens per sentence, special tokens included.")
    per_device_train_batch_size: int = key(16, "Examples per step, per process (the validation batches too).")
    learning_rate: float = key(2e-5, "Peak learning rate of AdamW.")
    num_train_epochs: float = key(4.0, "Passes over the training data.")
    warmup_ratio: float = key(0.1, "Share of steps with linear warm-up.")
    validation_split: float = key(0.1, "Share of the training data held out (seeded) to pick the best checkpoint.")
    eval_steps: int = key(500, "Validate and checkpoint every this many steps.")
    max_train_samples: int | None = key(None, "Train on at most this many examples.")
    mixed_precision: MixedPrecision = key("no", "Compute in bf16 or fp16 (GPUs), or in float32 (no).")
    seed: int = key(42, "Seeds the hold-out, the data order and dropout.")
    resume: bool = key(False, "Continue from the last checkpoint in --output_dir.")
    overwrite: bool = key(False, "Replace a non-empty --output_dir.")

    def data_options(self) -> tuple[str, ...]:
        """The options that name data files, checked to be there (a command's subclass names its own)."""
        return ()

    def validate(self) -> None:
        """ValueError naming the option whose value cannot work, before anything is read: the data files must be
        there, and --output_dir empty (or --overwrite), or holding checkpoints/ to --resume from."""
        if not 0 < self.validation_split < 1:
            raise ValueError("--validation_split must be in (0, 1)")
        if self.num_train_epochs <= 0 or self.per_device_train_batch_size < 1 or self.eval_steps < 1:
            raise ValueError("--num_train_epochs, --per_device_train_batch_size and --eval_steps must be positive")
        if self.max_seq_length < 8:
            raise ValueError("--max_seq_length must be at least 8")
        require_data_files(self, self.data_options())
        if self.resume:
            if not os.path.isdir(os.path.join(self.output_dir, CHECKPOINTS)):
                raise ValueError(f"--resume: {self.output_dir!r} has no {CHECKPOINTS}/ folder to resume from")
        elif first_process():
            # The first process of a launch alone: the others could find the folder it has begun to fill.
            require_output_folder(self.output_dir, self.overwrite, "--output_dir")


@dataclass(kw_only=True)
class EncoderTrainingArguments(SentenceTrainingArguments):
    """A bi-encoder's training: each sentence to one vector, by ``--pooling`` when the model is not yet a
    sentence-transformers folder (a cross-encoder has no pooling)."""

    pooling: Pooling = key("mean", "Token vectors -> sentence vector.")


@dataclass(frozen=True)
class Selection:
    """How the best checkpoint is chosen: a key of the Trainer's evaluation metrics and its direction."""

    metric: str  # e.g. "eval_loss" or "eval_validation_spearman_cosine"
    greater_is_better: bool


def setup_command_logging() -> None:
    """Our INFO logs (the teacher pass's progress, reused caches) on the main process, warnings on the others (by
    the launcher's RANK: the process group starts later, inside the trainer)."""
    setup_logging(first_process())

"""The options every fine-tuning command takes, and their checks: a dataclass each task extends, checked before
anything imports torch, so that a command answers ``--help`` and refuses a mistyped file or a used output folder at
once. The names are those of transformers' ``TrainingArguments`` and example scripts (``--output_dir``,
``--per_device_train_batch_size``, ``--num_train_epochs``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from common.checkpoints import latest_checkpoint, resume_point
from common.config import key, required
from common.io import first_process, require_data_files, require_output_place

BEST_DIR = "best"
RESULTS_FILE = "results.json"
# What a run writes in --output_dir besides checkpoint-N folders (KorQuAD adds predictions.json).
RUN_OUTPUTS = (BEST_DIR, RESULTS_FILE, "predictions.json")


@dataclass(kw_only=True)
class FinetuneArguments:
    """What every task reads; a task's subclass adds its own options and sets its defaults (those of the original
    sub-task repositories)."""

    model_name_or_path: str = required("Model folder or Hub id (BERT or DistilBERT).")
    train_file: str = required("Training file or Hub dataset (name or name:split).")
    test_file: str = required("Test file or Hub dataset (name or name:split).")
    output_dir: str = required("Folder for the best model, results.json and logs.")
    max_seq_length: int = key(128, "Tokens per input, special tokens included.")
    per_device_train_batch_size: int = key(32, "Training examples per device per step.")
    per_device_eval_batch_size: int = key(64, "Evaluation examples per device per step.")
    learning_rate: float = key(5e-5, "Peak learning rate of AdamW.")
    num_train_epochs: int = key(3, "Training epochs.")
    warmup_ratio: float = key(0.0, "Share of steps with linear warm-up.")
    weight_decay: float = key(0.0, "AdamW weight decay.")
    gradient_accumulation_steps: int = key(1, "Batches whose gradients make one optimizer update.")
    max_grad_norm: float = key(1.0, "Gradient clipping; 0 disables it.")
    validation_split: float = key(0.1, "Share of the training data held out to pick the best epoch (seeded).")
    max_train_samples: int | None = key(None, "Train on at most this many examples.")
    max_eval_samples: int | None = key(None, "Validate and test on at most this many examples.")
    mixed_precision: Literal["no", "fp16", "bf16"] = key("no", "Compute in bf16 or fp16 (GPUs), or in float32 (no).")
    group_by_length: bool = key(
        False, "Batch training examples of similar length (less padding, faster; the order is still random)."
    )
    seed: int = key(42, "Seeds the new head, the validation split, the data order and dropout.")
    save_steps: int = key(0, "Also checkpoint every this many optimizer updates (0: at the end of each epoch only).")
    resume: bool = key(False, "Continue from the newest checkpoint in --output_dir.")
    overwrite: bool = key(False, "Delete an earlier run's outputs in --output_dir first.")

    def data_options(self) -> tuple[str, ...]:
        """The options that name data (a task with more adds them)."""
        return ("train_file", "test_file")

    def validate(self) -> None:
        """ValueError naming the option whose value cannot work; the data files must be there."""
        if not 0 < self.validation_split < 1:
            raise ValueError("--validation_split must be in (0, 1)")
        if self.max_seq_length < 8:
            raise ValueError("--max_seq_length must be at least 8")
        if self.num_train_epochs < 1 or self.per_device_train_batch_size < 1 or self.per_device_eval_batch_size < 1:
            raise ValueError("--num_train_epochs and the batch sizes must be at least 1")
        if self.save_steps < 0:
            raise ValueError("--save_steps must be 0 (each epoch's end) or more")
        if self.resume and self.overwrite:
            raise ValueError("--resume continues the run in --output_dir and --overwrite deletes it: choose one")
        require_data_files(self, self.data_options())
        require_output_place(self.output_dir, "--output_dir")  # what it holds is checked under its lock


def resume_from(args: FinetuneArguments) -> Path | None:
    """The checkpoint the run continues, after refusing an ``--output_dir`` whose earlier run neither ``--resume``
    nor ``--overwrite`` says what to do with (ValueError)."""
    if not first_process():  # the others could find what the first process of a launch began to write
        return latest_checkpoint(args.output_dir) if args.resume else None
    return resume_point(args.output_dir, RUN_OUTPUTS, args.resume, args.overwrite, "--output_dir")

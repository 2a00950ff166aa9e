"""What every sentence-encoder training command shares: the trainer, the saved best encoder, results.json.

Training is sentence-transformers' ``SentenceTransformerTrainer`` (transformers' Trainer underneath): ``accelerate
launch`` or ``torchrun`` for several processes, a progress bar, TensorBoard logs, checkpoints every ``--eval_steps``
and ``--resume`` from the last one. The best checkpoint by the command's validation metric (on a seeded hold-out of
the training data, never on the data reported) becomes ``OUTPUT_DIR/best``, a sentence-transformers folder, written
whole or not at all.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from accelerate import PartialState
from datasets import Dataset
from sentence_transformers import (
    CrossEncoder,
    CrossEncoderTrainer,
    CrossEncoderTrainingArguments,
    SentenceTransformer,
    SentenceTransformerTrainer,
)
from sentence_transformers.base.evaluation.evaluator import BaseEvaluator
from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments
from torch import nn
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from common.io import (
    new_folder,
    output_written,
    run_metadata,
    write_json,
)
from sentence.arguments import CHECKPOINTS, Selection, SentenceTrainingArguments
from sentence.model import encoder_summary

logger = logging.getLogger(__name__)

BEST = "best"
RESULTS = "results.json"


def is_complete_checkpoint(folder: Path) -> bool:
    """The Trainer writes trainer_state.json last: a checkpoint without a readable one was cut short by a kill."""
    try:
        json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True


def last_complete_checkpoint(folder: Path) -> str | None:
    """The newest checkpoint a kill did not cut short; the incomplete ones after it are removed, with a warning
    (the Trainer would otherwise try to load them, or write the same step into their leftovers)."""
    numbered = [path for path in folder.glob(f"{PREFIX_CHECKPOINT_DIR}-*") if path.name.split("-")[-1].isdigit()]
    for path in sorted(numbered, key=lambda path: int(path.name.split("-")[-1]), reverse=True):
        if is_complete_checkpoint(path):
            return str(path)
        logger.warning("%s was cut short while saving (no trainer_state.json): removed, resuming before it", path)
        shutil.rmtree(path)
    logger.warning("%s holds no complete checkpoint: training starts from the beginning", folder)
    return None


def trainer_classes(model: SentenceTransformer | CrossEncoder) -> tuple[type, type]:
    """sentence-transformers' trainer and its arguments for a bi-encoder or a cross-encoder."""
    if isinstance(model, CrossEncoder):
        return CrossEncoderTrainer, CrossEncoderTrainingArguments
    return SentenceTransformerTrainer, SentenceTransformerTrainingArguments


def training_arguments(
    arguments_class: type, args: SentenceTrainingArguments, selection: Selection, in_batch_negatives: bool
) -> Any:
    """sentence-transformers' training arguments (transformers' ``TrainingArguments``) of a command's options."""
    return arguments_class(
        output_dir=str(Path(args.output_dir) / CHECKPOINTS),
        num_train_epochs=args.num_train_epochs,
        per_device_train_batch_size=args.per_device_train_batch_size,
        per_device_eval_batch_size=args.per_device_train_batch_size,
        learning_rate=args.learning_rate,
        warmup_steps=args.warmup_ratio,  # a float below 1 is a share of the steps (transformers 5)
        eval_strategy="steps",
        eval_steps=args.eval_steps,
        save_strategy="steps",
        save_steps=args.eval_steps,
        save_total_limit=2,  # the best and the last, for --resume
        load_best_model_at_end=True,
        metric_for_best_model=selection.metric,
        greater_is_better=selection.greater_is_better,
        logging_steps=max(1, min(50, args.eval_steps)),
        report_to=["tensorboard"],
        seed=args.seed,
        data_seed=args.seed,
        dataloader_pin_memory=torch.cuda.is_available(),  # pinning is for copies to a GPU; on a CPU it only warns
        fp16=args.mixed_precision == "fp16",
        bf16=args.mixed_precision == "bf16",
        # In-batch negatives are wrong when a batch holds one sentence twice (it would be its own negative).
        batch_sampler="no_duplicates" if in_batch_negatives else "batch_sampler",
    )


def fit(
    encoder: SentenceTransformer | CrossEncoder,
    loss: nn.Module,
    train: Dataset,
    validation: Dataset,
    args: SentenceTrainingArguments,
    selection: Selection,
    evaluator: BaseEvaluator | None = None,
    in_batch_negatives: bool = False,
    arguments: Any = None,
) -> dict[str, Any]:
    """Train, keep the best checkpoint as ``OUTPUT_DIR/best``; returns what results.json says about the training.
    ``arguments``: the trainer's arguments when the command made them earlier (``training_arguments``)."""
    trainer_class, arguments_class = trainer_classes(encoder)
    trainer = trainer_class(
        model=encoder,
        args=arguments or training_arguments(arguments_class, args, selection, in_batch_negatives),
        train_dataset=train,
        eval_dataset=validation,
        loss=loss,
        evaluator=evaluator,
    )
    checkpoint = last_complete_checkpoint(Path(trainer.args.output_dir)) if args.resume else None
    started = time.perf_counter()
    with output_written(args.output_dir, "--output_dir"):
        try:
            trainer.train(resume_from_checkpoint=checkpoint)
        except BaseException:
            close_progress_bars(trainer)
            raise
        seconds = time.perf_counter() - started
        if trainer.is_world_process_zero():
            save_encoder(encoder, Path(args.output_dir) / BEST)
    state = trainer.state
    return {
        "steps": state.global_step,
        "best_checkpoint": state.best_model_checkpoint,
        "validation": {selection.metric: state.best_metric},
        "training_time_s": round(seconds, 1),
        "examples_per_s": round(
            state.global_step * trainer.args.train_batch_size * trainer.args.world_size / seconds, 1
        ),
        "resumed_from": checkpoint,
        "processes": trainer.args.world_size,
    }


def close_progress_bars(trainer: Any) -> None:
    """Close the bars the trainer's ``ProgressCallback`` holds, which it leaves open when training fails: the error
    that follows then starts a line of its own."""
    for callback in trainer.callback_handler.callbacks:
        # the inner bar first: closing it moves the cursor back up to the training bar, which then ends its line
        for bar in (getattr(callback, "prediction_bar", None), getattr(callback, "training_bar", None)):
            if bar is not None:
                bar.close()


def save_encoder(encoder: SentenceTransformer | CrossEncoder, folder: Path) -> None:
    """A sentence-transformers folder at ``folder``, published whole (an old one stays until the new one is in)."""
    with new_folder(folder, folder.name) as staging:
        encoder.save(str(staging))


def write_results(
    args: SentenceTrainingArguments, command: str, encoder: SentenceTransformer | CrossEncoder, **results: Any
) -> dict[str, Any]:
    """``OUTPUT_DIR/results.json``: the command and its arguments, the encoder, what the run measured, the machine;
    written by the main process alone, returned on every process."""
    options = dataclasses.asdict(args)
    record = {
        "command": command,
        "arguments": {key: value for key, value in options.items() if key not in ("overwrite", "resume")},
        "model_dir": str(Path(args.output_dir) / BEST),
        **encoder_summary(encoder),
        **results,
        **run_metadata(),
    }
    if PartialState().is_main_process:
        with output_written(args.output_dir, "--output_dir"):
            write_json(Path(args.output_dir) / RESULTS, record)
    return record


def announce(message: str) -> None:
    """Print the command's last line, once however many processes run it."""
    if PartialState().is_main_process:
        print(message)

"""The fine-tuning every task shares, on ``transformers.Trainer``: AdamW with warm-up and linear decay, gradient
accumulation, mixed precision, checkpoints and their resume are Trainer's; what it has no notion of is added here by
a callback on ``common.training``'s ``StagedTrainer``: evaluation on a validation split carved from the training
data after each epoch (the task's own ``evaluate``, on ``trainer.accelerator``), the best epoch published to
``OUTPUT/best`` and tested once, and ``results.json``.

A task (``finetune.tasks.Task``) declares how to read, encode, collate and score its data; ``run`` reads and encodes
it for ``finetune.tasks.fine_tune``, and ``train_and_test`` trains.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator, PartialState
from accelerate.utils import set_seed
from torch import nn
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from common.checkpoints import complete_checkpoints, delete_earlier_outputs
from common.io import setup_logging
from common.readers import data_source, first, split_train_validation, write_results
from common.training import (
    STAGING_DIR,
    StagedTrainer,
    best_model,
    predict,
    resumed_run_state,
    save_best,
    takes_token_type_ids,
    train_quietly,
    training_arguments,
)
from finetune.arguments import BEST_DIR, RESULTS_FILE, RUN_OUTPUTS, FinetuneArguments
from finetune.tasks import Split, Task
from modeling.load import (
    check_model_type,
    check_vocabulary_fits,
    hub_or_local,
    load_tokenizer,
    load_with_new_head,
)
from modeling.student import parameter_count, size_mb

logger = logging.getLogger("finetune")


def check_max_seq_length(model: nn.Module, max_seq_length: int) -> None:
    """Inputs must fit the model's position embeddings, or it fails deep inside with an index error."""
    positions = model.config.max_position_embeddings
    if max_seq_length > positions:
        raise ValueError(
            f"--max_seq_length {max_seq_length} is longer than the model's {positions} position embeddings; "
            f"pass --max_seq_length {positions} or less"
        )


TASK_MODEL_TYPES = ("bert", "distilbert")  # what the tasks' collate functions and heads are written for


def load_task_model(args: FinetuneArguments, model_class: Any, **model_kwargs: Any) -> tuple[Any, nn.Module]:
    """The tokenizer and task model of ``args.model_name_or_path``: seeded before the new head is initialised (and
    the head and the checkpoint's unused one named in one line), and checked to take ``--max_seq_length`` tokens. Raises
    ValueError/OSError for the task's start-up error handling."""
    check_model_type(
        args.model_name_or_path,
        TASK_MODEL_TYPES,
        "model",
        "fine-tuning takes BERT or DistilBERT (a KoBiLSTM student is trained by distill.train)",
    )
    tokenizer = load_tokenizer(args.model_name_or_path)
    set_seed(args.seed)
    model = hub_or_local(partial(load_with_new_head, model_class), args.model_name_or_path, "model", **model_kwargs)
    check_vocabulary_fits(tokenizer, model, args.model_name_or_path)
    check_max_seq_length(model, args.max_seq_length)
    return tokenizer, model


def predicted_labels(
    accelerator: Accelerator,
    model: nn.Module,
    split: Split,
    args: FinetuneArguments,
    collate: Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]],
) -> torch.Tensor:
    """The arg-max label of each feature of ``split`` (a row of token labels for token classification)."""
    outputs = predict(
        accelerator,
        model,
        split.features,
        collate,
        args.per_device_eval_batch_size,
        lambda out: {"label": out.logits.argmax(-1)},
    )
    return outputs["label"]


def finetune_arguments(args: FinetuneArguments) -> TrainingArguments:
    """Trainer's options from ours. Checkpoints: every ``--save_steps`` updates (Trainer's own trigger), and at each
    epoch's end after the validation (``EpochValidation``); the newest is kept."""
    return training_arguments(
        args,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        save_strategy="steps" if args.save_steps else "no",
        save_steps=args.save_steps or 500,  # unused when 0: "no" leaves the epoch ends alone
        report_to="none",
        dataloader_num_workers=0,
    )


def run(task: Task, args: FinetuneArguments, resume_from: Path | None) -> dict[str, Any]:
    """``finetune.tasks.fine_tune`` once its options are checked and its output folder locked: read and encode the
    task's data, then ``train_and_test`` (from the checkpoint ``resume_from``, if one is given).

    Bad input (a malformed line, a model that cannot take the sequence length) raises ValueError or OSError naming
    it, before any training.
    """
    training_args = finetune_arguments(args)  # starts the process group of a launch
    setup_logging(PartialState().is_main_process)
    data = task.read(args)
    tokenizer, model = load_task_model(args, task.auto_class(), **data.model_kwargs)
    train, validation = split_train_validation(data.train, args.validation_split, args.seed, source=args.train_file)
    records = {
        "train": first(train, args.max_train_samples),
        "validation": first(validation, args.max_eval_samples),
        "test": first(data.test, args.max_eval_samples),
    }
    splits = {
        name: Split(name, subset, task.encode(tokenizer, subset, args, model.config, name == "train"))
        for name, subset in records.items()
    }
    counts = {"examples": {name: len(split.records) for name, split in splits.items()}}
    sources = {"data": {"train": data_source(args.train_file), "test": data_source(args.test_file)}}
    extra_results = {**data.extra_results, **sources, **counts, **task.extra_results(splits)}
    return train_and_test(training_args, args, task, model, tokenizer, splits, extra_results, resume_from)


@dataclasses.dataclass
class RunState:
    """What the run adds to Trainer's state, carried by every checkpoint: the validation history (metrics and
    learning rate after each epoch), the best epoch and its score, the optimizer updates made (fp16 skips an update
    whose gradients overflowed) and the training seconds so far."""

    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    best_score: float | None = None
    best_epoch: int = 0
    updates_made: int = 0
    train_seconds: float = 0.0


class EpochValidation(TrainerCallback):
    """After each epoch: the task's metrics on the validation split and the learning rate into the history, the
    model published to ``OUTPUT/best`` when its primary metric is the best so far, and a checkpoint. Counts the
    updates made."""

    def __init__(
        self,
        trainer: StagedTrainer,
        task: Task,
        args: FinetuneArguments,
        validation: Split,
        collate: Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]],
        tokenizer: Any,
    ) -> None:
        self.trainer, self.task, self.args, self.validation = trainer, task, args, validation
        self.collate, self.tokenizer = collate, tokenizer

    @property
    def run_state(self) -> RunState:
        return self.trainer.run_state

    def on_train_begin(self, args: Any, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        logger.info("  Optimizer updates = %d", state.max_steps)

    def on_step_end(self, args: Any, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        self.run_state.updates_made += int(not self.trainer.accelerator.optimizer_step_was_skipped)
        if float(state.epoch).is_integer():  # the epoch's last update: its checkpoint follows the validation
            control.should_save = False

    def on_epoch_end(self, args: Any, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        accelerator, model, epoch = self.trainer.accelerator, kwargs["model"], round(state.epoch)
        validation = scalars(self.task.evaluate(accelerator, model, self.validation, self.args, self.collate))
        learning_rate = kwargs["lr_scheduler"].get_last_lr()[0]
        self.run_state.history.append({"epoch": epoch, **validation, "learning_rate": learning_rate})
        logger.info(
            "  epoch %d validation: %s, learning rate %.3g",
            epoch,
            {k: round(v, 4) for k, v in validation.items()},
            learning_rate,
        )
        score = validation[self.task.primary_metric]
        if self.run_state.best_score is None or score > self.run_state.best_score:
            self.run_state.best_score, self.run_state.best_epoch = score, epoch
            save_best(accelerator, model, self.tokenizer, Path(self.args.output_dir) / BEST_DIR)
        control.should_save = True


def train_and_test(
    training_args: TrainingArguments,
    args: FinetuneArguments,
    task: Task,
    model: nn.Module,
    tokenizer: Any,
    splits: dict[str, Split],
    extra_results: dict[str, Any],
    resume_from: Path | None,
) -> dict[str, Any]:
    """Train on ``splits["train"]`` with ``transformers.Trainer``, keep the epoch best on the task's primary metric on
    ``splits["validation"]``, test it once on ``splits["test"]``, write ``results.json`` (main process only).

    A checkpoint is written at the end of every epoch (and every ``--save_steps`` updates); ``resume_from``
    continues one exactly (Trainer restores the model, optimizer, scheduler and random states and skips the epoch's
    batches already seen). ``results.json`` holds the test metrics, the validation history (metrics and learning
    rate after each epoch), the optimizer updates made, the run's configuration and ``extra_results``.
    """
    output = Path(args.output_dir)
    collate = partial(task.collate, tokenizer=tokenizer, with_token_types=takes_token_type_ids(model))
    train_features = list(splits["train"].features)
    if resume_from is not None:
        run_state, trainer_state = resumed_run_state(resume_from, RunState)
        logger.info(
            "Resuming from %s (epoch %d, update %d)",
            resume_from,
            int(trainer_state["epoch"]) + 1,
            trainer_state["global_step"],
        )
    else:
        run_state = RunState()
        state = PartialState()
        if args.overwrite and state.is_main_process:
            delete_earlier_outputs(args.output_dir, RUN_OUTPUTS)
        state.wait_for_everyone()
    trainer = StagedTrainer(
        model=model,
        args=training_args,
        train_dataset=train_features,
        data_collator=collate,
        processing_class=tokenizer,
        run_state=run_state,
        # transformers' option of the same name: batches of similar length, so less padding to compute.
        lengths=[len(f["input_ids"]) for f in train_features] if args.group_by_length else None,
    )
    trainer.add_callback(EpochValidation(trainer, task, args, splits["validation"], collate, tokenizer))
    accelerator = trainer.accelerator

    logger.info("***** Fine-tuning %s on %s *****", args.model_name_or_path, task.name)
    logger.info(
        "  Train features = %d, epochs = %d, processes = %d, batch per device = %d, gradient accumulation = %d",
        len(train_features),
        args.num_train_epochs,
        accelerator.num_processes,
        args.per_device_train_batch_size,
        args.gradient_accumulation_steps,
    )
    train_quietly(trainer, resume_from)

    best = best_model(trainer, output / BEST_DIR)
    start = time.perf_counter()
    test_output = task.evaluate(accelerator, best, splits["test"], args, collate)
    test_metrics = scalars(test_output)
    test_seconds = time.perf_counter() - start
    results = {
        "task": task.name,
        "metrics": test_metrics,
        "best_epoch": run_state.best_epoch,
        "validation": run_state.history,
        "optimizer_steps": run_state.updates_made,
        "processes": accelerator.num_processes,
        "model": args.model_name_or_path,
        "model_dir": str(output / BEST_DIR),
        "params": parameter_count(best),
        "size_mb": round(size_mb(best), 1),
        "train_seconds": round(run_state.train_seconds, 1),
        "eval_examples_per_s": round(len(splits["test"].records) / test_seconds, 1),
        "config": dataclasses.asdict(args),
        **{k: v for k, v in test_output.items() if k not in test_metrics},
        **extra_results,
    }
    if accelerator.is_main_process:
        write_results(output / RESULTS_FILE, results)
        for checkpoint in complete_checkpoints(output):  # done: best/ and results.json are the run's outputs
            shutil.rmtree(checkpoint)
        shutil.rmtree(output / STAGING_DIR, ignore_errors=True)
        accelerator.print(result_summary(test_metrics, run_state.best_epoch, output / RESULTS_FILE))
    return results


def result_summary(metrics: dict[str, float], best_epoch: int, results_file: Path) -> str:
    """What a fine-tuning command prints when done, metrics as fractions rounded to 4 places:
    ``test accuracy 0.5300 (best epoch 2); results in runs/x/results.json``."""
    scores = ", ".join(f"{name} {value:.4f}" for name, value in metrics.items())
    return f"test {scores} (best epoch {best_epoch}); results in {results_file}"


def scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float))}

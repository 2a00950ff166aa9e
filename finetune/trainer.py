"""The fine-tuning loop every task shares: accelerate, AdamW with warm-up and linear decay, evaluation on a
validation split carved from the training data after each epoch, the best checkpoint kept and tested once.

A task (``finetune.tasks.Task``) declares how to read, encode, collate and score its data; ``run`` reads and encodes
it for ``finetune.tasks.fine_tune``, and ``train_and_test`` trains.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import math
import shutil
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup
from transformers.trainer_pt_utils import LengthGroupedSampler

from common.checkpoints import complete_checkpoints, delete_earlier_outputs
from common.io import new_folder, setup_logging
from common.readers import data_source, first, split_train_validation, write_results
from common.resume import quiet_accelerate_checkpoint_logs, resume_state, save_checkpoint
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
DATA_ORDER_FILE = "data_order.pt"  # the generator state of the epoch a checkpoint is in

Features = Sequence[dict[str, Any]]


def takes_token_type_ids(model: nn.Module) -> bool:
    """BERT does, DistilBERT does not: collate functions drop the key for the latter."""
    return "token_type_ids" in inspect.signature(model.forward).parameters


def check_max_seq_length(model: nn.Module, max_seq_length: int) -> None:
    """Inputs must fit the model's position embeddings, or it fails deep inside with an index error."""
    positions = model.config.max_position_embeddings
    if max_seq_length > positions:
        raise ValueError(
            f"--max-seq-length {max_seq_length} is longer than the model's {positions} position embeddings; "
            f"pass --max-seq-length {positions} or less"
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


def pad_inputs(features: list[dict[str, Any]], tokenizer: Any, with_token_types: bool) -> dict[str, torch.Tensor]:
    """Pad the model inputs of a batch; ``token_type_ids`` only for models that take them, from tokenizers that give
    them (XLM-R's does not: a BERT with its vocabulary, such as multilingual-e5, reads segment 0 throughout)."""
    with_token_types = with_token_types and "token_type_ids" in features[0]
    keys = ["input_ids", "attention_mask", *(["token_type_ids"] if with_token_types else [])]
    return tokenizer.pad([{k: f[k] for k in keys} for f in features], return_tensors="pt")


def predict(
    accelerator: Accelerator,
    model: nn.Module,
    features: Features,
    collate: Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]],
    batch_size: int,
    outputs: Callable[[Any], dict[str, torch.Tensor]],
) -> dict[str, torch.Tensor]:
    """Run ``model`` over ``features`` on every process; ``outputs`` picks per-example tensors from the model
    output (first dimension = batch). Returns them concatenated in feature order, gathered from all processes.

    Features run shortest first, so that a batch holds inputs of similar length and little padding.
    """
    order = sorted(range(len(features)), key=lambda i: len(features[i]["input_ids"]))
    loader = accelerator.prepare(DataLoader([features[i] for i in order], batch_size=batch_size, collate_fn=collate))
    model.eval()
    collected: dict[str, list[torch.Tensor]] = {}
    with torch.no_grad():
        for batch in loader:
            with accelerator.autocast():
                out = model(**{k: v for k, v in batch.items() if k != "labels"})
            for key, value in outputs(out).items():
                padded = accelerator.pad_across_processes(value, dim=1) if value.ndim > 1 else value
                collected.setdefault(key, []).append(accelerator.gather_for_metrics(padded).cpu())
    model.train()
    restore = torch.empty(len(order), dtype=torch.long)
    restore[torch.tensor(order, dtype=torch.long)] = torch.arange(len(order))
    return {key: pad_cat(values)[restore] for key, values in collected.items()}


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


def pad_cat(values: list[torch.Tensor]) -> torch.Tensor:
    """Concatenate along dim 0, padding dim 1 with -100 where batches differ in length."""
    if values[0].ndim == 1:
        return torch.cat(values)
    width = max(v.shape[1] for v in values)
    return torch.cat([nn.functional.pad(v, (0, width - v.shape[1]), value=-100) for v in values])


def run(task: Task, args: FinetuneArguments, resume_from: Path | None) -> dict[str, Any]:
    """``finetune.tasks.fine_tune`` once its options are checked and its output folder locked: read and encode the
    task's data, then ``fine_tune`` (from the checkpoint ``resume_from``, if one is given).

    Bad input (a malformed line, a model that cannot take the sequence length) raises ValueError or OSError naming
    it, before any training.
    """
    accelerator = Accelerator(
        mixed_precision=args.mixed_precision, gradient_accumulation_steps=args.gradient_accumulation_steps
    )
    setup_logging(accelerator.is_main_process)
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
    return train_and_test(accelerator, args, task, model, tokenizer, splits, extra_results, resume_from)


def linear_schedule(optimizer: torch.optim.Optimizer, warmup_ratio: float, updates: int, processes: int) -> Any:
    """Linear warm-up and decay to 0 over ``updates`` optimizer updates (of each process).

    A scheduler passed through ``accelerator.prepare`` steps ``processes`` times per update (accelerate's
    ``AcceleratedScheduler``, as batches grow with the processes), and not at all on the micro-batches of gradient
    accumulation, so its length is counted in updates times processes.
    """
    return get_linear_schedule_with_warmup(
        optimizer, math.ceil(warmup_ratio * updates) * processes, updates * processes
    )


def train_and_test(
    accelerator: Accelerator,
    args: FinetuneArguments,
    task: Task,
    model: nn.Module,
    tokenizer: Any,
    splits: dict[str, Split],
    extra_results: dict[str, Any],
    resume_from: Path | None,
) -> dict[str, Any]:
    """Train on ``splits["train"]``, keep the epoch best on the task's primary metric on ``splits["validation"]``,
    test it once on ``splits["test"]``, write ``results.json`` (main process only).

    A checkpoint is written at the end of every epoch (and every ``--save_steps`` updates); ``resume_from``
    continues one exactly: the model, optimizer, scheduler and random states, and the epoch's data order from the
    batch it stopped at. ``results.json`` holds the test metrics, the validation history (metrics and learning rate
    after each epoch), the optimizer updates made, the run's configuration and ``extra_results``.
    """
    output = Path(args.output_dir)
    collate = partial(task.collate, tokenizer=tokenizer, with_token_types=takes_token_type_ids(model))
    train_features = splits["train"].features
    set_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    # transformers' Trainer option of the same name: batches of similar length, so less padding to compute.
    sampler = (
        LengthGroupedSampler(
            args.per_device_train_batch_size, lengths=[len(f["input_ids"]) for f in train_features], generator=generator
        )
        if args.group_by_length
        else None
    )
    loader = DataLoader(
        list(train_features),
        batch_size=args.per_device_train_batch_size,
        shuffle=sampler is None,
        sampler=sampler,
        collate_fn=collate,
        generator=generator,
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay)
    # Counted on the prepared loader, whose length is this process's share of the batches.
    loader = accelerator.prepare(loader)
    updates = math.ceil(len(loader) / args.gradient_accumulation_steps) * args.num_train_epochs
    scheduler = linear_schedule(optimizer, args.warmup_ratio, updates, accelerator.num_processes)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    quiet_accelerate_checkpoint_logs()
    state = start_state(accelerator, args, generator, resume_from)

    logger.info("***** Fine-tuning %s on %s *****", args.model_name_or_path, task.name)
    logger.info(
        "  Train features = %d, epochs = %d, processes = %d, batch per device = %d, gradient accumulation = %d",
        len(train_features),
        args.num_train_epochs,
        accelerator.num_processes,
        args.per_device_train_batch_size,
        args.gradient_accumulation_steps,
    )
    logger.info("  Optimizer updates = %d", updates)
    files = checkpoint_files(accelerator, model, tokenizer)
    with tqdm(total=updates, initial=state["step"], disable=not accelerator.is_local_main_process, desc=task.name) as (
        progress
    ):
        start = time.perf_counter() - state["train_seconds"]
        while state["epoch"] <= args.num_train_epochs:
            model.train()
            # The sampler draws the epoch's order from the generator when iterated: a checkpoint inside the epoch
            # keeps the state it drew from, so that a resumed run sees the same batches.
            epoch_order = generator.get_state()
            skip = state["batch_in_epoch"]
            for batch in accelerator.skip_first_batches(loader, skip) if skip else loader:
                with accelerator.accumulate(model):
                    loss = model(**batch).loss
                    accelerator.backward(loss)
                    if accelerator.sync_gradients and args.max_grad_norm > 0:
                        accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad()
                state["batch_in_epoch"] += 1
                if accelerator.sync_gradients:
                    state["step"] += 1
                    # fp16 skips an update whose gradients overflowed (and accelerate then leaves the scheduler alone).
                    state["updates_made"] += int(not accelerator.optimizer_step_was_skipped)
                    progress.update(1)
                    progress.set_postfix(loss=f"{loss.item():.4f}")
                    if (
                        args.save_steps
                        and state["step"] % args.save_steps == 0
                        and state["batch_in_epoch"] < len(loader)
                    ):
                        state["train_seconds"] = time.perf_counter() - start
                        save_checkpoint(accelerator, output, state, 1, files(epoch_order))
            validation = scalars(task.evaluate(accelerator, model, splits["validation"], args, collate))
            state["history"].append(
                {"epoch": state["epoch"], **validation, "learning_rate": scheduler.get_last_lr()[0]}
            )
            logger.info(
                "  epoch %d validation: %s, learning rate %.3g",
                state["epoch"],
                {k: round(v, 4) for k, v in validation.items()},
                state["history"][-1]["learning_rate"],
            )
            if state["best_score"] is None or validation[task.primary_metric] > state["best_score"]:
                state.update(best_score=validation[task.primary_metric], best_epoch=state["epoch"])
                save_best(accelerator, model, tokenizer, output / BEST_DIR)
            state.update(epoch=state["epoch"] + 1, batch_in_epoch=0, train_seconds=time.perf_counter() - start)
            save_checkpoint(accelerator, output, state, 1, files(generator.get_state()))
    train_seconds = time.perf_counter() - start

    accelerator.wait_for_everyone()
    best = type(accelerator.unwrap_model(model)).from_pretrained(output / BEST_DIR)
    best = accelerator.prepare(best)
    start = time.perf_counter()
    test_output = task.evaluate(accelerator, best, splits["test"], args, collate)
    test_metrics = scalars(test_output)
    test_seconds = time.perf_counter() - start
    unwrapped = accelerator.unwrap_model(best)
    results = {
        "task": task.name,
        "metrics": test_metrics,
        "best_epoch": state["best_epoch"],
        "validation": state["history"],
        "optimizer_steps": state["updates_made"],
        "processes": accelerator.num_processes,
        "model": args.model_name_or_path,
        "model_dir": str(output / BEST_DIR),
        "params": parameter_count(unwrapped),
        "size_mb": round(size_mb(unwrapped), 1),
        "train_seconds": round(train_seconds, 1),
        "eval_examples_per_s": round(len(splits["test"].records) / test_seconds, 1),
        "config": dataclasses.asdict(args),
        **{k: v for k, v in test_output.items() if k not in test_metrics},
        **extra_results,
    }
    if accelerator.is_main_process:
        write_results(output / RESULTS_FILE, results)
        for checkpoint in complete_checkpoints(output):  # done: best/ and results.json are the run's outputs
            shutil.rmtree(checkpoint)
        accelerator.print(result_summary(test_metrics, state["best_epoch"], output / RESULTS_FILE))
    return results


def start_state(
    accelerator: Accelerator, args: FinetuneArguments, generator: torch.Generator, resume_from: Path | None
) -> dict[str, Any]:
    """Where training starts: the checkpoint ``resume_from`` restored (its trainer state returned, the data
    order's generator set back), or the beginning, after deleting an earlier run's outputs under ``--overwrite``
    (only now: a run that fails to start leaves the earlier one whole)."""
    if resume_from is not None:
        state = resume_state(accelerator, resume_from)
        generator.set_state(torch.load(resume_from / DATA_ORDER_FILE))
        logger.info("Resuming from %s (epoch %d, update %d)", resume_from, state["epoch"], state["step"])
        return state
    if args.overwrite and accelerator.is_main_process:
        delete_earlier_outputs(args.output_dir, RUN_OUTPUTS)
    accelerator.wait_for_everyone()
    return {
        "step": 0,
        "epoch": 1,
        "batch_in_epoch": 0,
        "best_score": None,
        "best_epoch": 0,
        "history": [],
        "updates_made": 0,
        "train_seconds": 0.0,
    }


def checkpoint_files(
    accelerator: Accelerator, model: nn.Module, tokenizer: Any
) -> Callable[[torch.Tensor], Callable[[Path], None]]:
    """What a checkpoint holds besides the training state: the model to load, its tokenizer, and the generator
    state the epoch's data order is drawn from (given when saving)."""

    def with_order(order: torch.Tensor) -> Callable[[Path], None]:
        def write(folder: Path) -> None:
            accelerator.unwrap_model(model).save_pretrained(folder)
            tokenizer.save_pretrained(folder)
            torch.save(order, folder / DATA_ORDER_FILE)

        return write

    return with_order


def result_summary(metrics: dict[str, float], best_epoch: int, results_file: Path) -> str:
    """What a fine-tuning command prints when done, metrics as fractions rounded to 4 places:
    ``test accuracy 0.5300 (best epoch 2); results in runs/x/results.json``."""
    scores = ", ".join(f"{name} {value:.4f}" for name, value in metrics.items())
    return f"test {scores} (best epoch {best_epoch}); results in {results_file}"


def scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float))}


def save_best(accelerator: Accelerator, model: nn.Module, tokenizer: Any, folder: Path) -> None:
    """The model and tokenizer into ``folder``, replacing the previous best whole (a crash leaves one of the two)."""
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        with new_folder(folder, "best") as staging:
            accelerator.unwrap_model(model).save_pretrained(staging)
            tokenizer.save_pretrained(staging)
    accelerator.wait_for_everyone()

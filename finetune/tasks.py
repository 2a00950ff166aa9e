"""The fine-tuning tasks, one declared ``Task`` each, and their registry.

A task module (``finetune/nsmc.py``) declares everything that differs between tasks in one ``TASK``: how it reads
and encodes its data, collates a batch and scores a model, which metric picks the best epoch, and how its results
appear in the sub-task table and the model card. ``finetune.trainer.run`` does the rest: the module's command is
``main(argv)``, which returns ``TASK.main(argv)``. The trainer, ``finetune.table`` and ``hub_upload.card`` read tasks
from here and never name one; the recipe names the one it compares models on (``reproduce.stages.FINETUNE_TASK``).

To add a task, write ``finetune/<name>.py`` declaring its ``TASK`` (as ``finetune/nsmc.py`` does) and add the module
to ``TASK_MODULES`` below.

Metrics are stored as fractions in results.json; the table and the model card show them in percent.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache, partial
from typing import Any

from common.io import output_written
from finetune.arguments import FinetuneArguments, resume_from

# The registration: one module per task, each defining TASK. Their order is the order of the table's columns.
TASK_MODULES = ("finetune.nsmc", "finetune.ner", "finetune.korquad", "finetune.nli")

Records = list[dict[str, Any]]


def label_options(labels: Sequence[str]) -> dict[str, Any]:
    """The ``from_pretrained`` options that give a classifier its label names, so that a saved model, ``pipeline()``
    and the service answer ``positive`` rather than ``LABEL_1``."""
    return {
        "num_labels": len(labels),
        "id2label": dict(enumerate(labels)),
        "label2id": {label: i for i, label in enumerate(labels)},
    }


@dataclass(frozen=True)
class TaskData:
    """What a task's reader gives the trainer."""

    train: Records  # training records; the trainer holds out the validation share
    test: Records
    model_kwargs: dict[str, Any] = field(default_factory=dict)  # from_pretrained options: label count and names
    extra_results: dict[str, Any] = field(default_factory=dict)  # written to results.json (skipped answers)


@dataclass(frozen=True)
class Split:
    """One split of a run: the records as read and their features (model inputs and what scoring needs)."""

    name: str  # "train", "validation" or "test"
    records: Records
    features: Records


def no_extra_results(splits: dict[str, Split]) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Task:
    """One fine-tuning task: what it reads, how it trains and scores, how its results are shown."""

    name: str  # results.json's "task"; the command is python -m finetune.<name>
    column: str  # title of the task's column in the sub-task table, e.g. "NSMC (acc)"
    table_metrics: tuple[str, ...]  # test metrics shown in that column, joined by "/", e.g. ("exact_match", "f1")
    primary_metric: str  # the validation metric that picks the best epoch
    model_class: str  # the transformers Auto class of the task model, by name (importing it takes seconds)
    hub_task: tuple[str, str]  # the model card's model-index task: type and name
    dataset: tuple[str, str]  # the model card's dataset: name and Hub id
    # The command's options: a FinetuneArguments subclass with the task's options and defaults.
    arguments: type[FinetuneArguments]
    # Reads the data named by the options; raises ValueError or OSError naming what is wrong.
    read: Callable[[Any], TaskData]
    # (tokenizer, records, options, model config, is training split) -> features; the config holds the label names.
    encode: Callable[[Any, Records, Any, Any, bool], Records]
    # (features, tokenizer, with_token_types) -> a batch of tensors, with labels when the features have them.
    collate: Callable[[Records, Any, bool], dict[str, Any]]
    # (accelerator, model, split, args, collate function) -> metrics by name, gathered over all processes. Numbers
    # are the metrics (fractions); anything else (per-type scores) goes beside them in results.json.
    evaluate: Callable[[Any, Any, Split, Any, Callable[..., Any]], dict[str, Any]]
    # The encoded splits -> extra results.json entries (words cut off by truncation, windows per split).
    extra_results: Callable[[dict[str, Split]], dict[str, Any]] = no_extra_results

    def auto_class(self) -> Any:
        return getattr(importlib.import_module("transformers"), self.model_class)

    def main(self, argv: list[str] | None = None) -> int:
        """The task's command: its options read and checked (before torch is imported), then ``fine_tune``."""
        from common.config import run_command

        run_command(partial(fine_tune, self), self.arguments, argv, f"python -m finetune.{self.name}", self.doc())
        return 0

    def doc(self) -> str | None:
        return importlib.import_module(self.arguments.__module__).__doc__


def fine_tune(task: Task | str, args: FinetuneArguments) -> dict[str, Any]:
    """Fine-tune ``args.model_name_or_path`` on the task (a ``Task`` or its name), keep the epoch best on validation,
    test it: writes ``args.output_dir`` (``best/``, ``results.json``) and returns the results. ValueError or OSError
    names an option or input that cannot work, before any training."""
    task = get_task(task) if isinstance(task, str) else task
    args.validate()
    # The output is checked under its lock: a run that started first cannot fill it between check and work.
    with output_written(args.output_dir, "--output_dir"):
        checkpoint = resume_from(args)
        from finetune.trainer import run  # torch and accelerate, once the options are checked: refusals are quick

        return run(task, args, checkpoint)


@cache
def registry() -> dict[str, Task]:
    """The registered tasks by name, in column order. Imported on first use: the task modules import this one."""
    tasks = (importlib.import_module(module).TASK for module in TASK_MODULES)
    return {task.name: task for task in tasks}


def all_tasks() -> list[Task]:
    return list(registry().values())


def get_task(name: str) -> Task:
    """The registered task called ``name``; ValueError naming the known tasks otherwise."""
    tasks = registry()
    if name not in tasks:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(tasks)}")
    return tasks[name]

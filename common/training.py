"""The training machinery fine-tuning (``finetune/trainer.py``) and task distillation (``distill/trainer.py``) share,
on ``transformers.Trainer``: AdamW with warm-up and linear decay, gradient accumulation, mixed precision, several
processes, checkpoints and their exact resume are Trainer's. What Trainer has no notion of is added here:

- ``StagedTrainer``: checkpoints published whole (written into a staging folder, then renamed to
  ``checkpoint-STEP``) with the run's own state inside (``RUN_STATE_FILE``: a dataclass with ``train_seconds``,
  which the trainer keeps, resumed runs included), the ``group_by_length`` order seeded
  by epoch (Trainer's draws from the global generator, which a resume has not restored yet: measured 0.0023 off the
  uninterrupted weights in epoch 2), and the loss of accumulated micro-batches averaged for our models;
- ``QuietProgress``: Trainer's progress bar without the log lines it prints to stdout;
- ``training_arguments``: the TrainingArguments both build on;
- evaluation helpers (``predict``, ``pad_inputs``) and best-model publishing (``save_best``).

pretrain/run.py keeps its own accelerate loop (``common.resume``), as the design asks.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import torch
from accelerate import Accelerator
from torch import nn
from torch.utils.data import DataLoader
from transformers import (
    ProgressCallback,
    Trainer,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)
from transformers.utils import is_torch_bf16_gpu_available

from common.checkpoints import checkpoint_path, read_trainer_state, rotate
from common.io import new_folder, publish_folder, read_json, write_json
from common.resume import EpochLengthGroupedSampler

logger = logging.getLogger(__name__)

Features = Sequence[dict[str, Any]]
RunState = TypeVar("RunState")
RUN_STATE_FILE = "run_state.json"  # in each checkpoint: what Trainer's trainer_state.json has no field for
STAGING_DIR = ".checkpoint-staging"  # a checkpoint is written here, then renamed to checkpoint-STEP


# The options every run's dataclass spells the same way (the one flag dialect), passed to TrainingArguments as named.
SHARED_OPTIONS = (
    "output_dir",
    "per_device_train_batch_size",
    "per_device_eval_batch_size",
    "learning_rate",
    "weight_decay",
    "num_train_epochs",
    "max_grad_norm",
    "seed",
)


def training_arguments(options: Any, **fields: Any) -> TrainingArguments:
    """Trainer's options from a run's (``SHARED_OPTIONS``, ``warmup_ratio``, ``mixed_precision``) and ``fields``
    (what the run sets of its own: checkpoint steps, epochs or steps, ...): AdamW and a linear schedule, mixed
    precision from our one option (bf16 on a CPU when no GPU computes it, as accelerate does, where Trainer refuses
    it unless told), no evaluation or logging of Trainer's own (the runs validate and log themselves), the collate
    function picking the inputs. Creating them starts the process group of a launch."""
    mixed_precision = options.mixed_precision
    return TrainingArguments(
        **{name: getattr(options, name) for name in SHARED_OPTIONS},
        warmup_steps=options.warmup_ratio,  # below 1: a share of the updates, rounded up
        lr_scheduler_type="linear",
        optim="adamw_torch",
        fp16=mixed_precision == "fp16",
        bf16=mixed_precision == "bf16",
        use_cpu=mixed_precision == "bf16" and not is_torch_bf16_gpu_available(),
        ddp_find_unused_parameters=False,  # as accelerate's default: our models use all their weights
        save_total_limit=None,  # StagedTrainer rotates
        eval_strategy="no",
        logging_strategy="no",
        remove_unused_columns=False,
        dataloader_pin_memory=torch.cuda.is_available(),
        disable_tqdm=False,
        **fields,
    )


class StagedTrainer(Trainer):
    """``Trainer`` whose checkpoints are published whole: written into a staging folder, then renamed to
    ``checkpoint-STEP`` with ``run_state`` (a dataclass) inside, so that a folder of that name is always complete (a
    run killed while saving leaves the staging folder, which the next save replaces); the newest
    ``keep_checkpoints`` are kept. ``run_state.train_seconds`` counts the training time, carried across resumes.
    With ``lengths`` (one per training example), batches of similar length in an order seeded by epoch."""

    def __init__(
        self, *args: Any, run_state: Any, lengths: list[int] | None, keep_checkpoints: int = 1, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.run_state = run_state
        self.lengths = lengths
        self.keep_checkpoints = keep_checkpoints
        self.sampler: EpochLengthGroupedSampler | None = None
        self.staging: Path | None = None
        # Our models average their loss over the batch and ignore num_items_in_batch (their forward takes **kwargs,
        # which makes Trainer think otherwise and skip dividing by the accumulated micro-batches).
        self.model_accepts_loss_kwargs = False
        self.clock = TrainingClock(run_state)
        self.add_callback(SamplerEpoch(self))
        self.add_callback(self.clock)

    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        if self.lengths is None:
            return super()._get_train_sampler(train_dataset)
        self.sampler = EpochLengthGroupedSampler(
            self.args.train_batch_size * self.args.gradient_accumulation_steps, self.lengths, self.args.seed
        )
        return self.sampler

    def _get_output_dir(self, trial: Any) -> str:
        return str(self.staging) if self.staging is not None else super()._get_output_dir(trial)

    def before_checkpoint(self) -> None:
        """Called on every process before a checkpoint is written: bring ``run_state`` up to date."""

    def checkpoint_files(self, folder: Path) -> None:
        """Called on the main process: files of the run's own to put in the checkpoint ``folder``."""

    def _save_checkpoint(self, model: nn.Module, trial: Any) -> None:
        self.clock.update()
        self.before_checkpoint()
        output = Path(self.args.output_dir)
        staging = output / STAGING_DIR
        if self.args.should_save:
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
        self.accelerator.wait_for_everyone()
        self.staging = staging
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self.staging = None
        self.accelerator.wait_for_everyone()  # every process's random states are in
        if self.args.should_save:
            step = self.state.global_step
            folder = staging / f"checkpoint-{step}"
            self.checkpoint_files(folder)
            write_json(folder / RUN_STATE_FILE, dataclasses.asdict(self.run_state))
            publish_folder(folder, checkpoint_path(output, step))
            shutil.rmtree(staging, ignore_errors=True)
            rotate(output, self.keep_checkpoints)
            logger.info("Checkpoint saved: %s", checkpoint_path(output, step))
        self.accelerator.wait_for_everyone()


class SamplerEpoch(TrainerCallback):
    """Seeds the ``group_by_length`` order of ``StagedTrainer`` by the epoch about to start."""

    def __init__(self, trainer: StagedTrainer) -> None:
        self.trainer = trainer

    def on_epoch_begin(self, args: Any, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if self.trainer.sampler is not None:
            self.trainer.sampler.set_epoch(int(state.epoch))


class TrainingClock(TrainerCallback):
    """Keeps ``run_state.train_seconds``: the seconds since training began, plus those of the run it resumes."""

    def __init__(self, run_state: Any) -> None:
        self.run_state = run_state
        self.started = time.perf_counter()

    def update(self) -> None:
        self.run_state.train_seconds = time.perf_counter() - self.started

    def on_train_begin(self, args: Any, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        self.started = time.perf_counter() - self.run_state.train_seconds

    def on_step_end(self, args: Any, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        self.update()

    def on_train_end(self, args: Any, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        self.update()


def resumed_run_state(checkpoint: Path, state_class: type[RunState]) -> tuple[RunState, dict[str, Any]]:
    """The run's state in ``checkpoint`` and Trainer's (``trainer_state.json``); ValueError for a checkpoint
    ``StagedTrainer`` did not write (an earlier version's)."""
    trainer_state = read_trainer_state(checkpoint)
    if not (checkpoint / RUN_STATE_FILE).is_file() or "global_step" not in trainer_state:
        raise ValueError(
            f"cannot resume from {checkpoint}: it was written by an earlier version of the training (no "
            f"{RUN_STATE_FILE}); pass --overwrite to start afresh"
        )
    return state_class(**read_json(checkpoint / RUN_STATE_FILE)), trainer_state


def best_model(trainer: Trainer, folder: Path) -> nn.Module:
    """The best model a run published to ``folder``, loaded as the trained model's class on its device, once every
    process has trained."""
    trainer.accelerator.wait_for_everyone()
    model_class = type(trainer.accelerator.unwrap_model(trainer.model))
    return model_class.from_pretrained(folder).to(trainer.accelerator.device)


class QuietProgress(ProgressCallback):
    """Trainer's progress bar (stderr) without its log lines, which it writes to stdout: the command's stdout is
    its one-line answer."""

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        """End the bar's line (a run that fails mid-epoch: its error then starts a line of its own)."""
        if self.training_bar is not None:
            self.training_bar.close()
            self.training_bar = None


def train_quietly(trainer: Trainer, resume_from: Path | None) -> None:
    """``trainer.train`` (from the checkpoint ``resume_from``, if given) with ``QuietProgress`` as its bar."""
    trainer.remove_callback(ProgressCallback)
    progress = QuietProgress()
    trainer.add_callback(progress)
    try:
        trainer.train(resume_from_checkpoint=str(resume_from) if resume_from is not None else None)
    finally:
        progress.close()


# ------------------------------------------------------------------------------------------------- evaluation


def takes_token_type_ids(model: nn.Module) -> bool:
    """BERT does, DistilBERT does not: collate functions drop the key for the latter."""
    return "token_type_ids" in inspect.signature(model.forward).parameters


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


def pad_cat(values: list[torch.Tensor]) -> torch.Tensor:
    """Concatenate along dim 0, padding dim 1 with -100 where batches differ in length."""
    if values[0].ndim == 1:
        return torch.cat(values)
    width = max(v.shape[1] for v in values)
    return torch.cat([nn.functional.pad(v, (0, width - v.shape[1]), value=-100) for v in values])


def save_best(accelerator: Accelerator, model: nn.Module, tokenizer: Any, folder: Path) -> None:
    """The model and tokenizer into ``folder``, replacing the previous best whole (a crash leaves one of the two)."""
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        with new_folder(folder, "best") as staging:
            accelerator.unwrap_model(model).save_pretrained(staging)
            tokenizer.save_pretrained(staging)
    accelerator.wait_for_everyone()

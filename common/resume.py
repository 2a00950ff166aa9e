"""What makes an accelerate training loop resumable (pretrain/run.py's; fine-tuning and task distillation run on
``transformers.Trainer``, ``common.training``, which takes the running losses, the epoch-seeded order and the trimmed
metrics log from here): the one checkpoint writer, restoring a checkpoint exactly, a data order fixed by seed and
epoch, the running losses of the interval a checkpoint falls in, and a metrics log trimmed back to the resumed step.
Finding, publishing and rotating checkpoint folders, and the output-folder checks, are ``common.checkpoints`` (no
torch).

A checkpoint is ``OUTPUT_DIR/checkpoint-STEP/``: the model to load (``save_pretrained`` + tokenizer),
``training_state/`` (accelerate's ``save_state``: weights, optimizer, scheduler, RNG states), what the loop adds,
and ``trainer_state.json``. It is written under a temporary name and renamed when complete, so a folder
named ``checkpoint-STEP`` is always complete: a crash mid-save leaves only a ``.tmp`` folder, ignored and replaced.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import time
from collections.abc import Callable, Sized
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import gather_object
from accelerate.utils import load as load_accelerate_file
from accelerate.utils.constants import RNG_STATE_NAME
from torch.utils.data import RandomSampler
from transformers.trainer_pt_utils import LengthGroupedSampler

from common.checkpoints import checkpoint_path, publish, read_trainer_state, rotate, staging_path

TRAINING_STATE_DIR = "training_state"
# accelerate's loggers of save_state and load_state, which log a line at INFO for each file of each checkpoint
# ("Saving current state to ...", "Model weights saved in ...", "All random states loaded successfully").
logger = logging.getLogger(__name__)
ACCELERATE_CHECKPOINT_LOGGERS = ("accelerate.accelerator", "accelerate.checkpointing")


class RunningLosses:
    """The loss terms summed over the micro-batches since the last log line, on the device (no sync per step). A
    checkpoint carries the sums (``carried``, ``restore``): the first line logged after a resume is then the
    uninterrupted run's, not a mean over the steps since the resume."""

    def __init__(self, terms: list[str], device: torch.device) -> None:
        self.names = ["loss", *terms]
        self.sums = torch.zeros(len(self.names), device=device)
        self.micro_batches = 0  # since the last log line, those before a resume too
        self.timed, self.since = 0, time.perf_counter()  # since the last log line or the resume: for rates

    def add(self, terms: dict[str, torch.Tensor]) -> None:
        self.sums += torch.stack([terms[name] for name in self.names]).detach()
        self.micro_batches += 1
        self.timed += 1

    def pop(self, accelerator: Accelerator) -> tuple[dict[str, float], int, float]:
        """Means over micro-batches and processes, the micro-batches timed and their seconds; then reset."""
        means = (accelerator.reduce(self.sums, "mean") / self.micro_batches).tolist()
        timed, seconds = self.timed, time.perf_counter() - self.since
        self.sums.zero_()
        self.micro_batches, self.timed, self.since = 0, 0, time.perf_counter()
        return dict(zip(self.names, means, strict=True)), timed, seconds

    def carried(self, accelerator: Accelerator) -> dict[str, Any]:
        """The sums so far, averaged over processes, for trainer_state.json (every process must call it)."""
        sums = accelerator.reduce(self.sums, "mean").tolist()
        return {"names": self.names, "sums": sums, "count": self.micro_batches}

    def restore(self, carried: dict[str, Any] | None) -> None:
        """Go on from a checkpoint's sums (a checkpoint written before they were carried has none: start at 0)."""
        if carried and carried["names"] == self.names:
            self.sums = torch.tensor(carried["sums"], dtype=self.sums.dtype, device=self.sums.device)
            self.micro_batches = carried["count"]


def quiet_accelerate_checkpoint_logs() -> None:
    """Only warnings from accelerate's checkpoint loggers: run.py logs one line per checkpoint itself.

    This also hides the INFO line with which ``load_state`` reports that it could not restore the random states
    ("Could not load random states"), so run.py checks them itself (``unrestored_random_states``).
    """
    for name in ACCELERATE_CHECKPOINT_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def differing_random_states(saved: dict[str, Any]) -> list[str]:
    """The generators whose current state is not the one in ``saved`` (a ``random_states_N.pkl`` of accelerate's
    ``save_state``: Python's, NumPy's, torch's CPU and CUDA generators); a generator missing from it differs."""
    differing = []
    if saved.get("random_state") != random.getstate():
        differing.append("random")
    numpy_saved, numpy_now = saved.get("numpy_random_seed"), np.random.get_state()
    if (
        numpy_saved is None
        or len(numpy_saved) != len(numpy_now)
        or not all(np.array_equal(a, b) for a, b in zip(numpy_saved, numpy_now, strict=True))
    ):
        differing.append("numpy")
    torch_saved = saved.get("torch_manual_seed")
    if torch_saved is None or not torch.equal(torch_saved, torch.get_rng_state()):
        differing.append("torch")
    if torch.cuda.is_available():
        cuda_saved, cuda_now = saved.get("torch_cuda_manual_seed"), torch.cuda.get_rng_state_all()
        if cuda_saved is None or len(cuda_saved) != len(cuda_now) or not all(map(torch.equal, cuda_saved, cuda_now)):
            differing.append("torch.cuda")
    return differing


def unrestored_random_states(training_state: Path, process_index: int) -> str | None:
    """Called right after ``accelerator.load_state(training_state)``: what keeps this process's random states from
    being the saved ones, or None when they are. Without them a resumed run draws other dropout masks than the
    uninterrupted run, and accelerate says so only at INFO, which ``quiet_accelerate_checkpoint_logs`` hides."""
    path = Path(training_state) / f"{RNG_STATE_NAME}_{process_index}.pkl"
    try:
        saved = load_accelerate_file(path)  # as load_state reads it
    except Exception as err:  # load_state swallows any error here too
        first_line = next(iter(str(err).splitlines()), "")
        return f"{path.name} could not be read ({type(err).__name__}: {first_line})"
    differing = differing_random_states(saved)
    return f"{path.name} did not restore the {', '.join(differing)} generator states" if differing else None


def empty_staging(accelerator: Accelerator, staging: Path) -> None:
    """``staging`` made empty by the main process (a run that died while saving may have left one) before any
    process writes into it."""
    if accelerator.is_main_process:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
    accelerator.wait_for_everyone()


class EpochSampler(RandomSampler):
    """A random order that depends only on (seed, epoch), so a resumed run sees the same batches."""

    def __init__(self, data_source: Sized, seed: int) -> None:
        super().__init__(data_source, generator=torch.Generator())
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.generator.manual_seed(self.seed + epoch)


class EpochLengthGroupedSampler(LengthGroupedSampler):
    """transformers' length-grouped order (random megabatches, each sorted by length) that depends only on (seed,
    epoch), as ``EpochSampler`` does for a plain random order: a resumed run sees the same batches (the sampler of
    Trainer's own ``group_by_length`` draws from the global generator, which a resume has not restored yet)."""

    def __init__(self, batch_size: int, lengths: list[int], seed: int) -> None:
        super().__init__(batch_size, lengths=lengths, generator=torch.Generator())
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.generator.manual_seed(self.seed + epoch)


def due(step: int, every: int, total: int) -> bool:
    """Whether a periodic action (log, evaluation, checkpoint) runs after ``step``: every N steps and at the end."""
    return step == total or step % every == 0


def save_checkpoint(
    accelerator: Accelerator,
    output_dir: str | Path,
    state: dict[str, Any],
    keep: int,
    write_files: Callable[[Path], None],
) -> Path:
    """``checkpoint-{state["step"]}`` written whole or not at all: accelerate's training state (model, optimizer,
    scheduler, random states: every process), then ``write_files(folder)`` on the main process (the model to load,
    its tokenizer, the config), then ``trainer_state.json`` (``state``) and the rename; the newest ``keep`` are kept.
    pretrain/run.py's checkpoint writer."""
    staging, final = staging_path(output_dir, state["step"]), checkpoint_path(output_dir, state["step"])
    empty_staging(accelerator, staging)
    accelerator.save_state(str(staging / TRAINING_STATE_DIR))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        write_files(staging)
        publish(staging, final, state)
        rotate(output_dir, keep)
        logger.info("Checkpoint saved: %s", final)
    accelerator.wait_for_everyone()
    return final


def resume_state(accelerator: Accelerator, checkpoint: Path) -> dict[str, Any]:
    """Restore the model, optimizer, scheduler and random states of ``checkpoint``; returns its trainer state (step,
    epoch, batch in epoch). ValueError in every process when a process's random states were not restored, which
    accelerate reports only in a log line we hide: the run would go on, but no longer as the uninterrupted one would."""
    training_state = checkpoint / TRAINING_STATE_DIR
    accelerator.load_state(str(training_state))
    problems = gather_object([unrestored_random_states(training_state, accelerator.process_index)])
    if problem := next((p for p in problems if p), None):
        raise ValueError(
            f"cannot resume from {checkpoint} exactly: {problem}. Delete {checkpoint} to resume from the "
            "checkpoint before it, or pass --overwrite to start afresh"
        )
    return read_trainer_state(checkpoint)


def resume_logged_run(accelerator: Accelerator, checkpoint: Path, metrics_path: Path) -> dict[str, Any]:
    """``resume_state``, with the metrics an interrupted run logged after ``checkpoint`` dropped (main process)."""
    state = resume_state(accelerator, checkpoint)
    if accelerator.is_main_process:
        trim_metrics(metrics_path, state["step"])
    logger.info("Resuming from %s (step %d)", checkpoint, state["step"])
    return state


def trim_metrics(path: Path, step: int) -> None:
    """Drop lines logged after ``step`` by an interrupted run, so a resumed run's log reads as one run's."""
    if path.exists():
        kept = [line for line in path.read_text().splitlines() if json.loads(line)["step"] <= step]
        path.write_text("".join(f"{line}\n" for line in kept))


def log_metrics(accelerator: Accelerator, path: Path, metrics: dict[str, Any], step: int) -> None:
    if accelerator.is_main_process:
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"step": step, **metrics}) + "\n")
    accelerator.log({k: v for k, v in metrics.items() if isinstance(v, (int, float))}, step=step)

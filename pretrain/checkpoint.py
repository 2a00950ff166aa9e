"""Checkpoint folders: atomic publication, the newest complete one, rotation.

A checkpoint is ``OUTPUT_DIR/checkpoint-STEP/``: the exported student (``save_pretrained`` + tokenizer, loadable by
``AutoModelForMaskedLM``), ``training_state/`` (accelerate's ``save_state``: weights, optimizer, scheduler, RNG
states) and ``trainer_state.json``. It is written under a temporary name and renamed when complete, so a folder
named ``checkpoint-STEP`` is always complete: a crash mid-save leaves only a ``.tmp`` folder, ignored and replaced.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path
from typing import Any

from common.io import publish_folder, write_json

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
TRAINER_STATE = "trainer_state.json"
TRAINING_STATE_DIR = "training_state"
# accelerate's loggers of save_state and load_state, which log a line at INFO for each file of each checkpoint
# ("Saving current state to ...", "Model weights saved in ...", "All random states loaded successfully").
ACCELERATE_CHECKPOINT_LOGGERS = ("accelerate.accelerator", "accelerate.checkpointing")


def quiet_accelerate_checkpoint_logs() -> None:
    """Only warnings from accelerate's checkpoint loggers: run.py logs one line per checkpoint itself."""
    for name in ACCELERATE_CHECKPOINT_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def checkpoint_path(output_dir: str | Path, step: int) -> Path:
    return Path(output_dir) / f"checkpoint-{step}"


def staging_path(output_dir: str | Path, step: int) -> Path:
    return Path(output_dir) / f".checkpoint-{step}.tmp"


def complete_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoint folders, oldest first."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return []
    found = [
        (int(match.group(1)), path)
        for path in folder.iterdir()
        if (match := CHECKPOINT_PATTERN.match(path.name)) and (path / TRAINER_STATE).is_file()
    ]
    return [path for _, path in sorted(found)]


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest complete checkpoint, or None."""
    checkpoints = complete_checkpoints(output_dir)
    return checkpoints[-1] if checkpoints else None


def publish(staging: Path, final: Path, trainer_state: dict[str, Any]) -> None:
    """Write ``trainer_state.json`` last, then put the staging folder in place (replacing an earlier run's
    checkpoint of the same step)."""
    write_json(staging / TRAINER_STATE, trainer_state)
    publish_folder(staging, final)


def rotate(output_dir: str | Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` complete checkpoints; returns the deleted folders."""
    doomed = complete_checkpoints(output_dir)[:-keep] if keep > 0 else []
    for path in doomed:
        shutil.rmtree(path)
    return doomed


def read_trainer_state(checkpoint: Path) -> dict[str, Any]:
    return json.loads((checkpoint / TRAINER_STATE).read_text(encoding="utf-8"))

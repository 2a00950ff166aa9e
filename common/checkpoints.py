"""Checkpoint folders and the resume checks every training loop shares: which checkpoints are complete, the newest
one, what an earlier run left in an output folder, and whether a run may continue or replace it. Files alone (no
torch), so that a command refuses a used output folder before it imports the libraries it trains with.

A checkpoint is ``OUTPUT/checkpoint-STEP``, written under ``.checkpoint-STEP.tmp`` and renamed once complete, with
``trainer_state.json`` written last.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from common.io import publish_folder, require_output_place, write_json

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
TRAINER_STATE = "trainer_state.json"


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


def earlier_outputs(output_dir: str | Path, run_outputs: Iterable[str]) -> list[Path]:
    """What an earlier run wrote in ``output_dir``: its checkpoints (complete or not) and the files and folders
    named in ``run_outputs``. Anything else there (the recipe keeps a student's initial weights beside them) is not
    the run's."""
    folder, names = Path(output_dir), set(run_outputs)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name in names or p.name.startswith(("checkpoint-", ".checkpoint-")))


def delete_earlier_outputs(output_dir: str | Path, run_outputs: Iterable[str]) -> None:
    """``overwrite``: start afresh, as if the earlier run had never been (its metrics are not appended to)."""
    for path in earlier_outputs(output_dir, run_outputs):
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def resume_point(
    output_dir: str, run_outputs: Iterable[str], resume: bool, overwrite: bool, name: str = "output_dir"
) -> Path | None:
    """The checkpoint a run continues (``resume``), or None to start from the beginning, after refusing an
    ``output_dir`` whose earlier run the flags neither continue nor replace. The advice is the one that works: an
    earlier run with no complete checkpoint (killed before its first) has nothing to resume, so it is --overwrite
    with or without --resume (such a run was told "drop --resume" with it and "pass --resume" without). ``name`` is
    how the command calls the folder (``output_dir``, or ``--output``)."""
    require_output_place(output_dir, name if name.startswith("--") else f"--{name}")
    earlier, latest = earlier_outputs(output_dir, run_outputs), latest_checkpoint(output_dir)
    if resume and latest is not None:
        return latest
    if resume and not earlier:
        raise ValueError(
            f"resume: nothing to resume in {output_dir!r} (no checkpoint-STEP folder with a {TRAINER_STATE}); "
            "drop --resume to start afresh"
        )
    if earlier and not overwrite:
        names = ", ".join(p.name for p in earlier)
        if latest is None:
            raise ValueError(
                f"{name} {output_dir!r} holds an earlier run ({names}) with no complete checkpoint to resume from: "
                f"pass --overwrite to delete it and start afresh, or choose another {name}"
            )
        raise ValueError(
            f"{name} {output_dir!r} holds an earlier run ({names}): pass --resume to continue it (from "
            f"{latest.name}), --overwrite to delete it and start afresh, or choose another {name}"
        )
    return None


def continue_options(output_dir: str | Path, run_outputs: Iterable[str]) -> dict[str, bool]:
    """How a recipe takes up a stage's interrupted run in ``output_dir``: ``resume`` from its newest complete
    checkpoint, ``overwrite`` when it stopped before its first, neither for a folder with no earlier run."""
    if latest_checkpoint(output_dir) is not None:
        return {"resume": True}
    return {"overwrite": True} if earlier_outputs(output_dir, run_outputs) else {}


def continue_flags(output_dir: str | Path, run_outputs: Iterable[str]) -> list[str]:
    """``continue_options`` as a command line takes them (``--resume``, ``--overwrite``)."""
    return [f"--{name}" for name in continue_options(output_dir, run_outputs)]


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

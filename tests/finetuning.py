"""Fine-tuning as the tests run it: a task's options given as its command line would give them, through the typed
function ``finetune.tasks.fine_tune``, which returns the results (the command prints them and writes results.json)."""

from __future__ import annotations

from typing import Any

from common.config import load_config
from finetune.tasks import fine_tune, get_task


def fine_tuned(task: str, argv: list[str]) -> dict[str, Any]:
    return fine_tune(task, load_config(get_task(task).arguments, None, argv))

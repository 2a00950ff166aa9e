"""What every benchmark records beside its figures: machine, date, command and commit, written as JSON."""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from finetune.data_io import git_commit, machine_description

ROOT = Path(__file__).resolve().parent.parent


def write_report(path: str | Path, name: str, figures: dict[str, Any]) -> dict[str, Any]:
    """Write ``figures`` with the run's context to ``path``; returns the whole report."""
    report = {
        "benchmark": name,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "machine": machine_description(),
        "command": " ".join(["python", os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]]),
        "git_commit": git_commit(),
        **figures,
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return report

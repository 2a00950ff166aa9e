"""What every benchmark records beside its figures: machine, date, command and commit, written as JSON."""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from common.io import ROOT, git_commit, machine_description, write_json


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
    write_json(path, report)
    return report

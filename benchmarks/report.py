"""What every benchmark records beside its figures: machine, date, command and commit, written as JSON."""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from common.io import ROOT, git_commit, machine_description, write_json


def command_line() -> str:
    """The command line that is running, as typed from the repository: ``python -m benchmarks.NAME --flag ...`` (a
    script run by its path shows its path)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    program = ["-m", spec.name] if spec is not None and spec.name else [os.path.relpath(sys.argv[0], ROOT)]
    return " ".join(["python", *program, *sys.argv[1:]])


def write_report(path: str | Path, name: str, figures: dict[str, Any]) -> dict[str, Any]:
    """Write ``figures`` with the run's context to ``path``; returns the whole report."""
    report = {
        "benchmark": name,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "machine": machine_description(),
        "command": command_line(),
        "git_commit": git_commit(),
        **figures,
    }
    write_json(path, report)
    return report

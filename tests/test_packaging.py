"""The wheel `pip install .` builds holds every module of the project, the files its commands read beside their code
(the recipe's presets, the run configs, the service's page) and the `distilkobert` command."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import ROOT

PACKAGES = ("common", "distill", "finetune", "hub_upload", "modeling", "pretrain", "reproduce", "sentence", "serve")
DATA_FILES = ("reproduce/presets/*.yaml", "pretrain/configs/*.yaml", "pretrain/accelerate_configs/*.yaml",
              "distill/configs/*.yaml", "serve/page.html")  # fmt: skip


def tracked(*patterns: str) -> set[str]:
    listed = subprocess.run(["git", "ls-files", *patterns], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(listed.stdout.split())


def test_the_wheel_holds_the_code_the_presets_and_the_command(tmp_path: Path) -> None:
    # Built from a copy of the tracked files as they are: the build writes build/ and *.egg-info where it runs.
    source = tmp_path / "source"
    for name in tracked():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name, follow_symlinks=False)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), "."],
        cwd=source,
        check=True,
        capture_output=True,
    )
    wheel = zipfile.ZipFile(next(tmp_path.glob("distilkobert-*.whl")))
    names = set(wheel.namelist())
    code = tracked(*(f"{package}/*.py" for package in PACKAGES)) | {"tokenization_kobert.py", "distilkobert.py"}
    assert code <= names
    assert tracked(*DATA_FILES) <= names and "reproduce/presets/smoke.yaml" in names
    entry_points = next(name for name in names if name.endswith("entry_points.txt"))
    assert "distilkobert = distilkobert:main" in wheel.read(entry_points).decode()

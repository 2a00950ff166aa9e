"""The wheel `pip install .` builds holds every module of the project, the files its commands read beside their code
(the recipe's presets, the run configs, the service's page), the bundled data and the `distilkobert` command; and,
installed in a fresh environment, it runs from a folder outside the checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT

PACKAGES = ("common", "distill", "finetune", "hub_upload", "modeling", "pretrain", "reproduce", "sentence", "serve")
DATA_FILES = ("reproduce/presets/*.yaml", "pretrain/configs/*.yaml", "pretrain/accelerate_configs/*.yaml",
              "distill/configs/*.yaml", "serve/page.html")  # fmt: skip


def tracked(*patterns: str) -> set[str]:
    listed = subprocess.run(["git", "ls-files", *patterns], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(listed.stdout.split())


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of the tracked files as they are (a copy: the build writes build/ and *.egg-info where it runs)."""
    built = tmp_path_factory.mktemp("wheel")
    source = built / "source"
    for name in tracked():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name, follow_symlinks=False)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(built), "."],
        cwd=source,
        check=True,
        capture_output=True,
    )
    return next(built.glob("distilkobert-*.whl"))


def test_the_wheel_holds_the_code_the_presets_the_data_and_the_command(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    code = tracked(*(f"{package}/*.py" for package in PACKAGES)) | {"tokenization_kobert.py", "distilkobert.py"}
    assert code <= names
    assert tracked(*DATA_FILES) <= names and "reproduce/presets/smoke.yaml" in names
    bundled = {name.split(".data/data/share/distilkobert/", 1)[-1] for name in names if ".data/data/" in name}
    assert tracked("data/*") <= bundled and "data/kobert/vocab.txt" in bundled
    entry_points = next(name for name in names if name.endswith("entry_points.txt"))
    assert "distilkobert = distilkobert:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_the_installed_wheel_runs_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    """A fresh environment with the wheel installed (its dependencies seen from this one's site-packages, where the
    checkout is installed editable, which a plain path entry does not activate), run from a folder elsewhere."""
    fresh = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(fresh)], check=True)
    python = fresh / "bin" / "python"
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index"]
    subprocess.run([*install, str(wheel)], check=True, capture_output=True)
    site_packages = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], capture_output=True, text=True
    ).stdout.strip()
    (Path(site_packages) / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"} | {"HF_HUB_OFFLINE": "1"}
    command = fresh / "bin" / "distilkobert"

    def run(*argv: str) -> str:
        done = subprocess.run([*argv], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        return done.stdout

    located = run(
        str(python), "-c", "import common.io, reproduce; print(reproduce.__file__, common.io.bundled_data_dir())"
    )
    assert located.startswith(site_packages) and str(ROOT) not in located
    assert "distilkobert finetune nsmc" in run(str(command), "--help")
    assert "--model_name_or_path" in run(str(command), "serve", "--help")
    table = run(str(command), "reproduce", "--preset", "smoke")
    assert "| distilled-onnx-int8 |" in table
    results = json.loads((elsewhere / "runs" / "smoke" / "results.json").read_text())
    assert [row["name"] for row in results][:3] == ["teacher", "distilled", "baseline"]

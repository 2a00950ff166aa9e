"""Every command checks its arguments before it imports the heavy libraries (torch, accelerate, transformers'
models, sentence-transformers, datasets, onnxruntime): ``--help``, a mistyped data file and a used output folder are
answered without them. Timed side by side in ``benchmarks/startup.py``; held here by what was imported."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from benchmarks.startup import commands, refusals, run


@pytest.fixture(scope="module")
def help_runs() -> dict[str, tuple[float, int, str, list[str]]]:
    names = commands()
    with ThreadPoolExecutor(4) as pool:  # subprocesses: threads wait, processes work
        return dict(zip(names, pool.map(lambda name: run(name, ["--help"]), names), strict=True))


def test_every_command_is_found() -> None:
    found = commands()
    assert {"pretrain/run.py", "finetune.nsmc", "serve", "reproduce", "sentence.sts", "hub_upload"} <= set(found)


@pytest.mark.parametrize("name", commands())
def test_help_imports_no_heavy_library(help_runs: dict[str, tuple[float, int, str, list[str]]], name: str) -> None:
    _, code, stderr, heavy = help_runs[name]
    assert code == 0, stderr
    assert heavy == []


@pytest.mark.parametrize("case", ["finetune.nsmc, a mistyped --train_file", "modeling.extract, a used --output_dir"])
def test_a_refusal_is_one_line_before_any_heavy_import(tmp_path: Path, case: str) -> None:
    target, *args = refusals(tmp_path)[case]
    _, code, stderr, heavy = run(target, args)
    assert code == 2 and len(stderr.strip().splitlines()) == 1
    assert "no such file: data/nsmc_train.txt" in stderr or "exists and is not empty" in stderr
    assert heavy == []

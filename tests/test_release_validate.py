"""hub_upload.validate keeps checking under ``python -O`` (which strips ``assert`` statements)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

# Validation of a folder whose tokenizer does not round-trip Korean text: decode is broken on purpose (on the base
# class, since AutoTokenizer loads the folder's own copy of tokenization_kobert.py).
BROKEN_DECODE = """
import sys
from transformers.tokenization_utils_base import PreTrainedTokenizerBase
PreTrainedTokenizerBase.decode = lambda self, ids, **kwargs: "something else"
from hub_upload.validate import main
main(["--release_dir", sys.argv[1]])
"""


@pytest.mark.parametrize("flags", [[], ["-O"]])
def test_a_failed_check_fails_with_and_without_optimisation(models: dict[str, Path], flags: list[str]) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, *flags, "-c", BROKEN_DECODE, str(models["distilbert"])],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert result.returncode == 1, result.stdout
    assert "validation failed at 'round trip of a Korean sentence'" in result.stderr
    assert "decoded 'something else'" in result.stderr

"""python -m modeling.random_teacher: the stand-in teachers the README and the recipe make."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT
from transformers import AutoModelForMaskedLM, AutoTokenizer

from modeling.random_teacher import main


def test_tiny_teacher_folder_loads_with_the_auto_classes(tokenizer_dir: Path, tmp_path: Path, capsys) -> None:
    output = tmp_path / "tiny-teacher"
    main(["--shape", "tiny", "--tokenizer_name_or_path", str(tokenizer_dir), "--output_dir", str(output)])
    # Embeddings 8,002 x 64 + 512 positions + 2 types + LayerNorm; 4 layers of attention (4 x 64 x 64 + biases),
    # FFN (64 x 128 x 2 + biases) and 2 LayerNorms; the MLM head's transform, LayerNorm and bias (decoder tied).
    embeddings = (8002 + 512 + 2) * 64 + 2 * 64
    layer = 4 * (64 * 64 + 64) + (64 * 128 + 128) + (128 * 64 + 64) + 2 * 2 * 64
    head = 64 * 64 + 64 + 2 * 64 + 8002
    expected = embeddings + 4 * layer + head
    assert f"{expected:,} parameters" in capsys.readouterr().out
    model = AutoModelForMaskedLM.from_pretrained(output)
    tokenizer = AutoTokenizer.from_pretrained(output, trust_remote_code=True)
    assert type(model).__name__ == "BertForMaskedLM" and model.config.num_hidden_layers == 4
    assert model.config.vocab_size == len(tokenizer) and model.config.pad_token_id == tokenizer.pad_token_id
    assert sum(p.numel() for p in model.parameters()) == expected


def test_a_non_empty_output_is_refused(tokenizer_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "kept.txt").write_text("previous work")
    with pytest.raises(SystemExit):
        main(["--shape", "tiny", "--tokenizer_name_or_path", str(tokenizer_dir), "--output_dir", str(tmp_path)])
    assert (tmp_path / "kept.txt").read_text() == "previous work"


def test_no_progress_bar_for_a_second_of_saving(tokenizer_dir: Path, tmp_path: Path) -> None:
    """transformers' "Writing model shards" bar, in a process of its own (another command's set-up in this one
    would hide it)."""
    command = [
        sys.executable,
        "-m",
        "modeling.random_teacher",
        "--shape",
        "tiny",
        "--tokenizer_name_or_path",
        str(tokenizer_dir),
    ]
    shown = subprocess.run([*command, "--output_dir", str(tmp_path / "t")], capture_output=True, text=True, cwd=ROOT)
    assert shown.returncode == 0 and "Writing model shards" not in shown.stderr, shown.stderr

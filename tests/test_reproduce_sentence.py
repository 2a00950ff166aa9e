"""The sentence-encoder recipe (reproduce.sentence) end to end on tiny made-up pairs: every stage runs, the results
list names teacher, distilled and baseline with their scores and a folder sentence-transformers loads, and a second
run skips every stage."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import yaml
from sentence_transformers import SentenceTransformer
from test_sentence import sts_pairs, write_kornli, write_korsts

from reproduce.__main__ import main

TINY = {"max_seq_length": 32, "epochs": 1, "batch_size": 8, "eval_steps": 4}


def write_preset(root: Path, models: dict[str, Path]) -> Path:
    sts = str(write_korsts(root / "sts.tsv", sts_pairs()))
    preset = {
        "pipeline": "sentence",
        "teacher": str(models["bert"]),
        "student": str(models["distilbert"]),
        "nli": [str(write_kornli(root / "nli.tsv"))],
        "sts_train": sts,
        "sts_dev": str(write_korsts(root / "dev.tsv", sts_pairs()[::3])),
        "sentences": [sts],
        "simcse": {**TINY, "validation_split": 0.25},
        "sts": TINY,
        "distill": TINY,
        "evaluate": {"repeats": 1},
    }
    path = root / "tiny-sentence.yaml"
    path.write_text(yaml.safe_dump(preset), encoding="utf-8")
    return path


def test_the_sentence_recipe_runs_every_stage_then_skips_them(
    models: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    preset, output = write_preset(tmp_path, models), tmp_path / "run"
    table = main(["--preset", str(preset), "--output", str(output)])
    rows = json.loads((output / "sentence" / "results.json").read_text(encoding="utf-8"))
    assert [row["name"] for row in rows] == ["teacher", "distilled", "baseline"]
    for row in rows:
        assert set(row) >= {"params", "korsts_dev_spearman", "sentences_per_s_b64", "model_dir"}
        assert SentenceTransformer(row["model_dir"], device="cpu").encode(["한 남자가 춤을 춘다."]).shape == (1, 32)
    assert rows[0]["params"] > rows[1]["params"] == rows[2]["params"]  # a BERT teacher, DistilBERT students
    assert rows[1]["model_dir"].endswith("sentence/distilled/best")
    assert "| teacher |" in table and (output / "sentence" / "results.md").read_text(encoding="utf-8") == table
    # The distilled student learned from the STS-trained teacher's embeddings.
    distill = json.loads((output / "sentence" / "distill" / "results.json").read_text(encoding="utf-8"))
    assert distill["teacher"] == str(output / "sentence" / "teacher" / "best")

    caplog.clear()
    caplog.set_level(logging.INFO, logger="reproduce")
    main(["--preset", str(preset), "--output", str(output)])
    assert caplog.text.count("up to date, skipped") == 6


def test_a_sentence_preset_with_an_unknown_option_stops_before_any_stage(
    models: dict[str, Path], tmp_path: Path
) -> None:
    preset, output = write_preset(tmp_path, models), tmp_path / "run"
    with pytest.raises(SystemExit, match="preset section 'sts'"):
        main(["--preset", str(preset), "--output", str(output), "--set", "sts.epoch=3"])
    assert not (output / "sentence").exists()
    with pytest.raises(SystemExit, match="unknown section 'stss'; did you mean 'sts'"):
        main(["--preset", str(preset), "--output", str(output), "--set", "stss.epochs=3"])

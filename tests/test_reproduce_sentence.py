"""The sentence-encoder recipe (reproduce.sentence) end to end on tiny made-up pairs, with both teacher types: every
stage runs, the results list names teacher, distilled, cross_encoder, augmented and baseline with their scores and a
folder sentence-transformers loads, and a second run skips every stage."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import yaml
from sentence_transformers import SentenceTransformer
from test_sentence import sts_pairs, write_kornli, write_korsts

from reproduce.__main__ import ReproduceArguments, main, reproduce
from reproduce.preset import preset_path
from reproduce.sentence import SentenceRecipe, load_sentence_preset

TINY = {"max_seq_length": 32, "num_train_epochs": 1, "per_device_train_batch_size": 8, "eval_steps": 4}


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
        "teacher_type": ["bi-encoder", "cross-encoder"],
        "cross_encoder": TINY,
        "silver": {"pairs_per_sentence": 1, "max_seq_length": 32},
    }
    path = root / "tiny-sentence.yaml"
    path.write_text(yaml.safe_dump(preset), encoding="utf-8")
    return path


def test_the_sentence_recipe_runs_every_stage_then_skips_them(
    models: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    preset, output = write_preset(tmp_path, models), tmp_path / "run"
    table = reproduce(ReproduceArguments(preset=str(preset), output_dir=str(output)))
    rows = {row["name"]: row for row in json.loads((output / "sentence" / "results.json").read_text("utf-8"))}
    assert list(rows) == ["teacher", "distilled", "cross_encoder", "augmented", "baseline"]
    bi_encoders = [row for row in rows.values() if row["kind"] == "bi-encoder"]
    for row in bi_encoders:
        assert set(row) >= {"params", "korsts_dev_spearman", "sentences_per_s_b64", "model_dir"}
        assert SentenceTransformer(row["model_dir"], device="cpu").encode(["한 남자가 춤을 춘다."]).shape == (1, 32)
    assert rows["teacher"]["params"] > rows["distilled"]["params"] == rows["baseline"]["params"]  # BERT, DistilBERTs
    assert rows["distilled"]["model_dir"].endswith("sentence/distilled/best")
    assert [rows["distilled"]["teacher"], rows["augmented"]["teacher"]] == ["teacher", "cross_encoder"]
    assert rows["cross_encoder"]["sentences_per_s_b64"] is None and rows["cross_encoder"]["params"] > 0
    assert "| teacher |" in table and (output / "sentence" / "results.md").read_text(encoding="utf-8") == table
    # The distilled student learned from the STS-trained teacher's embeddings ...
    distill = json.loads((output / "sentence" / "distill" / "results.json").read_text(encoding="utf-8"))
    assert distill["teacher"] == str(output / "sentence" / "teacher" / "best")
    # ... and the augmented one from the gold pairs and the cross-encoder's silver pairs.
    augmented = json.loads((output / "sentence" / "augmented" / "results.json").read_text(encoding="utf-8"))
    assert augmented["arguments"]["silver"] == [str(output / "sentence" / "silver" / "silver.tsv")]
    assert augmented["examples"]["silver"] > 0

    caplog.clear()
    caplog.set_level(logging.INFO, logger="reproduce")
    reproduce(ReproduceArguments(preset=str(preset), output_dir=str(output)))
    assert caplog.text.count("up to date, skipped") == 9


def test_a_sentence_preset_with_an_unknown_option_stops_before_any_stage(
    models: dict[str, Path], tmp_path: Path
) -> None:
    preset, output = write_preset(tmp_path, models), tmp_path / "run"
    with pytest.raises(SystemExit, match="preset section 'sts': unrecognized arguments: --epochs 3"):
        main(["--preset", str(preset), "--output_dir", str(output), "--set", "sts.epochs=3"])
    assert not (output / "sentence").exists()
    with pytest.raises(SystemExit, match="unknown section 'stss'; did you mean 'sts'"):
        main(["--preset", str(preset), "--output_dir", str(output), "--set", "stss.num_train_epochs=3"])


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("teacher_type=[bi-encoder, cross]", "teacher_type .*expected one or both of bi-encoder, cross-encoder"),
        ("teacher_type=[]", "teacher_type"),
        ("base_set=[teacher.model.num_hidden_layers=12]", "base_set changes the base preset: give base too"),
    ],
)
def test_a_sentence_preset_with_bad_teacher_types_or_base_changes_is_refused(
    models: dict[str, Path], tmp_path: Path, assignment: str, message: str
) -> None:
    with pytest.raises(SystemExit, match=message):
        main(
            [
                "--preset",
                str(write_preset(tmp_path, models)),
                "--output_dir",
                str(tmp_path / "run"),
                "--set",
                assignment,
            ]
        )


def test_sentence_mini_starts_from_a_twelve_layer_teacher_and_its_layers_0_4_8(tmp_path: Path) -> None:
    """base_set reaches the base recipe: the student has a quarter of the teacher's layers (the speed target)."""
    recipe = SentenceRecipe(load_sentence_preset(preset_path("sentence-mini"), []), tmp_path)
    assert recipe.base is not None
    assert recipe.base.preset.teacher["model"]["num_hidden_layers"] == 12
    assert recipe.base.preset.student["layers"] == [0, 4, 8]
    assert recipe.models == ["teacher", "distilled", "cross_encoder", "augmented", "baseline"]


def test_sentence_full_names_hub_models_and_data_and_every_command_accepts_its_options(tmp_path: Path) -> None:
    """The GPU preset cannot run here (no Hub): its stages and their arguments are checked without running them."""
    recipe = SentenceRecipe(load_sentence_preset(preset_path("sentence-full"), []), tmp_path)
    recipe.check()
    assert recipe.base is None and recipe.start("teacher") == "klue/roberta-large"
    assert recipe.evaluate_arguments().data == ["kakaobrain/kor_nlu:sts:validation"]
    assert [stage.name for stage in recipe.stages][-1] == "sentence-evaluate" and len(recipe.stages) == 9


def test_a_sentence_preset_whose_data_is_not_there_says_which_and_what_runs_instead(tmp_path: Path) -> None:
    """sentence-mini on a fresh clone (no ../shared) was answered by sentence.simcse's parser, about --dev."""
    overrides = ["sts_dev=../nowhere/sts-dev.tsv", "nli=[../nowhere/nli.tsv]"]
    recipe = SentenceRecipe(load_sentence_preset(preset_path("sentence-smoke"), overrides), tmp_path)
    with pytest.raises(ValueError) as error:
        recipe.check()
    assert str(error.value) == (
        "preset 'sentence-smoke': no such file: nli '../nowhere/nli.tsv', sts_dev '../nowhere/sts-dev.tsv' (give the "
        "files with --set KEY=PATH; --preset sentence-smoke runs on the samples bundled in data/)"
    )


def test_a_launched_stage_reads_the_options_the_recipe_made(
    models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under ``launcher:`` a stage is its command in other processes: its options go as ``--config FILE``, which the
    command reads back into the same options class the recipe made."""
    from common.config import load_config
    from sentence.sts import StsArguments

    recipe = SentenceRecipe(
        load_sentence_preset(write_preset(tmp_path, models), ["launcher=accelerate launch"]), tmp_path
    )
    commands = []
    monkeypatch.setattr("reproduce.sentence.subprocess.run", lambda command, check: commands.append(command))
    recipe.baseline.folder.mkdir(parents=True)
    recipe.run_stage(recipe.baseline)
    [command] = commands
    assert command[:5] == ["accelerate", "launch", "-m", "sentence.sts", "--config"]
    assert load_config(StsArguments, command[5]) == recipe.sts_arguments("baseline")
    assert recipe.sts_arguments("baseline").num_train_epochs == 1  # the preset's section, over the command's default

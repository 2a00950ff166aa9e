"""`python -m reproduce` end to end on the smoke preset: every artefact exists and loads, re-runs skip what is done,
a changed input re-runs only what depends on it, a failing stage is named and the stages before it are kept."""

from __future__ import annotations

import gzip
import json
import logging
import os
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from conftest import ROOT
from PIL import Image
from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer

from common.config import load_config
from reproduce.__main__ import ReproduceArguments, reproduce
from reproduce.__main__ import main as reproduce_command
from reproduce.preset import PRESETS_DIR, load_preset
from reproduce.stages import STAGE_FILE

STAGES = ["tokenizer", "data", "teacher", "distilled", "baseline", "nsmc/teacher", "nsmc/distilled", "nsmc/baseline"]
STAGES += ["bilstm/cache", "bilstm/distilled", "bilstm/baseline", "onnx", "latency", "release"]
RESULT_KEYS = {"name", "params", "size_mb", "latency_ms_b1", "latency_ms_b32", "nsmc_accuracy", "nsmc_model_dir"}


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("reproduce") / "smoke"
    cwd = Path.cwd()
    os.chdir(ROOT)  # the preset names the bundled data relative to the repository
    try:
        # The recipe as a Python user runs it: a function of typed options, no command line.
        table = reproduce(ReproduceArguments(preset="smoke", output_dir=str(output)))
        assert table == (output / "results.md").read_text()
    finally:
        os.chdir(cwd)
    return output


def stage_records(output: Path) -> dict[str, dict]:
    return {stage: json.loads((output / stage / STAGE_FILE).read_text()) for stage in STAGES}


def run_in_root(argv: list[str]) -> str:
    """The recipe of the options ``argv`` gives, run from the repository (the presets name data/ from there)."""
    cwd = Path.cwd()
    os.chdir(ROOT)
    try:
        return reproduce(load_config(ReproduceArguments, None, argv))
    finally:
        os.chdir(cwd)


def test_every_artefact_exists_and_loads(smoke_run: Path) -> None:
    rows = json.loads((smoke_run / "results.json").read_text())
    names = ["teacher", "distilled", "baseline", "bilstm-distilled", "bilstm-baseline", "distilled-onnx-int8"]
    assert [row["name"] for row in rows] == names
    onnx = rows.pop()
    report = json.loads((smoke_run / "onnx" / "distilled" / "onnx" / "export.json").read_text())
    assert onnx["nsmc_accuracy"] == report["int8"]["int8"] / 100
    assert report["int8"]["examples"] == 200  # the smoke preset's finetune.max_eval_samples
    # The float graph scores the test reviews as the fine-tuned PyTorch model did.
    assert report["int8"]["float"] == pytest.approx(100 * rows[1]["nsmc_accuracy"], abs=0.005)
    assert onnx["latency_ms_b32"] > 0 and onnx["size_mb"] < rows[1]["size_mb"]
    for row in rows:
        assert set(row) >= RESULT_KEYS
        assert 0 <= row["nsmc_accuracy"] <= 1 and row["latency_ms_b1"] > 0 and row["latency_ms_b32"] > 0
        model = AutoModelForSequenceClassification.from_pretrained(row["nsmc_model_dir"], trust_remote_code=True)
        tokenizer = AutoTokenizer.from_pretrained(row["nsmc_model_dir"], trust_remote_code=True)
        inputs = tokenizer(["재밌는 영화", "지루했다"], padding=True, return_tensors="pt")
        if model.config.model_type == "distilbert":
            inputs.pop("token_type_ids", None)
        assert model(**inputs).logits.shape == (2, 2)
    assert rows[1]["speedup_b32"] == pytest.approx(rows[0]["latency_ms_b32"] / rows[1]["latency_ms_b32"], abs=0.01)

    markdown = (smoke_run / "results.md").read_text()
    for row in rows:
        assert f"| {row['name']} | {row['params']:,} |" in markdown
    for plot in ("accuracy_vs_latency.png", "training_curves.png"):
        with Image.open(smoke_run / plot) as image:
            image.verify()

    teacher = AutoModelForMaskedLM.from_pretrained(smoke_run / "teacher" / "final")
    distilled = AutoModelForMaskedLM.from_pretrained(smoke_run / "distilled" / "final")
    baseline = AutoModelForMaskedLM.from_pretrained(smoke_run / "baseline" / "final")
    assert (type(teacher).__name__, teacher.config.num_hidden_layers) == ("BertForMaskedLM", 4)
    assert distilled.config.to_diff_dict() == baseline.config.to_diff_dict()
    assert distilled.config.n_layers == 2
    for name in ("distilled", "baseline"):
        assert (smoke_run / name / "metrics.jsonl").is_file()

    # The student started as teacher layers 0 and 2; the baseline from random weights with the same token budget.
    distilled_record = json.loads((smoke_run / "distilled" / "final" / "distillation.json").read_text())
    baseline_record = json.loads((smoke_run / "baseline" / "final" / "distillation.json").read_text())
    assert distilled_record["student_layers_from_teacher"] == [0, 2]
    assert baseline_record["teacher"] is None and distilled_record["teacher"].endswith("teacher/final")
    budget = ("max_steps", "num_train_epochs", "per_device_train_batch_size", "gradient_accumulation_steps")
    assert {k: baseline_record["config"][k] for k in budget} == {k: distilled_record["config"][k] for k in budget}
    init = AutoModelForMaskedLM.from_pretrained(smoke_run / "distilled" / "init")
    random_init = AutoModelForMaskedLM.from_pretrained(smoke_run / "baseline" / "init")
    assert not torch.equal(
        init.distilbert.transformer.layer[0].ffn.lin1.weight,
        random_init.distilbert.transformer.layer[0].ffn.lin1.weight,
    )
    assert torch.equal(init.distilbert.transformer.layer[1].ffn.lin1.weight, teacher_layer_2_start(smoke_run))

    release = smoke_run / "release"
    assert {"config.json", "model.safetensors", "README.md", "tokenization_kobert.py"} <= {
        p.name for p in release.iterdir()
    }
    card = (release / "README.md").read_text()
    assert yaml.safe_load(card.split("---")[1])["model-index"]

    # The BiLSTMs: the distilled one trained on the fine-tuned teacher's cached logits, the baseline on labels alone.
    cache = json.loads((smoke_run / "bilstm" / "cache" / "logits" / "cache.json").read_text())
    assert cache["complete"] and cache["teachers"][0]["path"].endswith("nsmc/teacher/best")
    distilled_bilstm, baseline_bilstm = (
        json.loads((smoke_run / "bilstm" / name / "run" / "results.json").read_text())
        for name in ("distilled", "baseline")
    )
    assert distilled_bilstm["distilled"] and distilled_bilstm["cache_dir"].endswith("bilstm/cache/logits")
    assert not baseline_bilstm["distilled"] and baseline_bilstm["examples"]["unlabelled"] == 0
    assert distilled_bilstm["params"] == baseline_bilstm["params"] == rows[3]["params"] == rows[4]["params"]


def teacher_layer_2_start(run: Path) -> torch.Tensor:
    """The teacher's layer 2 feed-forward weight as the distillation began (teacher/final is never changed by it)."""
    teacher = AutoModelForMaskedLM.from_pretrained(run / "teacher" / "final")
    return teacher.bert.encoder.layer[2].intermediate.dense.weight


def test_a_second_run_skips_every_stage(smoke_run: Path, caplog: pytest.LogCaptureFixture) -> None:
    before = stage_records(smoke_run)
    results_before = json.loads((smoke_run / "results.json").read_text())
    with caplog.at_level(logging.INFO, logger="reproduce"):
        run_in_root(["--preset", "smoke", "--output_dir", str(smoke_run)])
    assert caplog.text.count("up to date, skipped") == len(STAGES)
    assert stage_records(smoke_run) == before
    assert json.loads((smoke_run / "results.json").read_text()) == results_before


def test_a_changed_input_reruns_only_what_depends_on_it(smoke_run: Path, tmp_path: Path, caplog) -> None:
    run = tmp_path / "run"
    shutil.copytree(smoke_run, run)
    before = stage_records(run)
    with caplog.at_level(logging.INFO, logger="reproduce"):
        run_in_root(["--preset", "smoke", "--output_dir", str(run), "--set", "finetune.learning_rate=2e-3"])
    after = stage_records(run)
    rerun = {stage for stage in STAGES if after[stage] != before[stage]}
    # The distilled BiLSTM learns from the fine-tuned teacher's logits; its baseline from the labels alone.
    assert rerun == {"nsmc/teacher", "nsmc/distilled", "nsmc/baseline", "bilstm/cache", "bilstm/distilled"} | {
        "onnx",
        "latency",
        "release",
    }
    assert json.loads((run / "nsmc" / "teacher" / "results.json").read_text())["config"]["learning_rate"] == 2e-3


def test_an_interrupted_pretraining_stage_resumes_from_its_checkpoint(smoke_run: Path, tmp_path: Path, caplog) -> None:
    run = tmp_path / "run"
    shutil.copytree(smoke_run, run)
    # As if killed after its last checkpoint: no final model and no record of having finished.
    shutil.rmtree(run / "baseline" / "final")
    (run / "baseline" / STAGE_FILE).unlink()
    with caplog.at_level(logging.INFO):
        run_in_root(["--preset", "smoke", "--output_dir", str(run)])
    assert f"Resuming from {run / 'baseline' / 'checkpoint-10'}" in caplog.text
    assert (run / "baseline" / "final" / "model.safetensors").is_file()


def test_a_failing_stage_is_named_and_earlier_stages_are_kept(smoke_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(smoke_run, run)
    broken = tmp_path / "nsmc_train.txt.gz"
    with gzip.open(ROOT / "data" / "nsmc_train.txt.gz", "rt", encoding="utf-8") as f:
        lines = f.read().splitlines()
    lines[5] = lines[5].rsplit("\t", 1)[0] + "\tpositive"
    with gzip.open(broken, "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    before = stage_records(run)
    message = r"stage 'nsmc-teacher' failed: /.*nsmc_train.txt.gz:6: label must be 0 or 1"
    with pytest.raises(ValueError, match=message) as failure:
        run_in_root(["--preset", "smoke", "--output_dir", str(run), "--set", f"nsmc_train={broken}"])
    assert "stages before it are kept" in str(failure.value)
    after = {stage: json.loads((run / stage / STAGE_FILE).read_text()) for stage in STAGES[:5]}
    assert after == {stage: before[stage] for stage in STAGES[:5]}
    assert not (run / "nsmc" / "teacher" / STAGE_FILE).exists()


class TestStartupErrors:
    """Bad presets fail before any stage runs, saying what is wrong."""

    @pytest.mark.parametrize(
        ("overrides", "message"),
        [
            # A mistyped --set is named as the --set, not blamed on the preset file.
            (["colour=blue"], r"^--set colour=blue: unknown key 'colour'; known keys: baseline, bilstm, corpus"),
            (
                ["finetun.epochs=2"],
                r"^--set finetun.epochs=2: unknown section 'finetun'; did you mean 'finetune'\?",
            ),
            (["tokenizer.vocab_sizes=100"], r"preset section 'tokenizer'"),
            (["baseline.train.max_steps=99"], r"baseline.train cannot change \['max_steps'\]"),
            (["student.train.alpha_kd=1"], r"student.train.*unrecognized arguments: --alpha_kd 1"),
            (["latency.batch_sizes=[1, 8]"], "must include 1 and 32"),
            (["nsmc_test=data/missing.txt"], "does not exist"),
            (["teacher.from_pretrained=x/y"], "from_pretrained, or model and train, not both"),
            (["tokenizer.from_pretrained=data/kobert"], r"only model_max_length may be given, not \['input_sentence"),
            (["finetune"], "expected KEY=VALUE"),
        ],
    )
    def test_bad_preset(self, overrides: list[str], message: str, tmp_path: Path) -> None:
        output = tmp_path / "run"
        argv = ["--preset", "smoke", "--output_dir", str(output)]
        for assignment in overrides:
            argv += ["--set", assignment]
        with pytest.raises(ValueError, match=message):
            run_in_root(argv)
        assert not output.exists()

    def test_unknown_key_in_a_preset_file_names_the_file(self, tmp_path: Path) -> None:
        preset = tmp_path / "mine.yaml"
        preset.write_text((PRESETS_DIR / "smoke.yaml").read_text() + "colour: blue\n")
        with pytest.raises(ValueError, match=r"mine\.yaml: unknown preset keys \['colour'\]"):
            run_in_root(["--preset", str(preset), "--output_dir", str(tmp_path / "run")])

    def test_unknown_preset(self, tmp_path: Path) -> None:
        with pytest.raises(
            ValueError,
            match="unknown preset; known presets: e5-local, full, kobert-local, mini, sentence-full, sentence-mini, "
            "sentence-smoke, small, smoke",
        ):
            run_in_root(["--preset", "huge", "--output_dir", str(tmp_path / "run")])

    def test_output_written_by_something_else(self, tmp_path: Path, capsys) -> None:
        (tmp_path / "notes.txt").write_text("mine")
        with pytest.raises(SystemExit):
            reproduce_command(["--preset", "smoke", "--output_dir", str(tmp_path)])
        assert "was not written by this command" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["smoke", "mini", "small", "full", "kobert-local"])
def test_every_preset_parses(name: str) -> None:
    overrides = ["corpus=[data/reviews.txt.gz]"] if name == "full" else []
    preset = load_preset(name, overrides)
    assert preset.name == name and (PRESETS_DIR / f"{name}.yaml").is_file()


def test_a_launcher_runs_pretraining_in_its_own_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Multi-GPU presets run pretrain/run.py through `accelerate launch`, with the resolved config as a file.
    from reproduce import stages

    commands = []
    monkeypatch.setattr(stages.subprocess, "run", lambda command, check: commands.append(command))
    settings = {"teacher": "t", "student": "s", "data_dir": "d", "max_steps": 7}
    stages.run_pretraining(settings, tmp_path, "accelerate launch --config_file 'my config.yaml'")
    config_file = tmp_path / "pretrain_config.yaml"
    assert commands == [
        [
            "accelerate",
            "launch",
            "--config_file",
            "my config.yaml",
            str(ROOT / "pretrain" / "run.py"),
            "--config",
            str(config_file),
        ]
    ]
    saved = yaml.safe_load(config_file.read_text())
    assert (saved["max_steps"], saved["output_dir"]) == (7, str(tmp_path))
    assert (saved["resume"], saved["overwrite"]) == (False, True), "no checkpoint: start afresh"

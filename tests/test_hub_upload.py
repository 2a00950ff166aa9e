"""hub_upload: dry-run release folders, the model card, refusals, and the upload at the huggingface_hub boundary."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest
import yaml

import hub_upload.__main__ as release
from hub_upload.__main__ import main, validate
from hub_upload.card import build_card, is_hub_id

TOKEN = "hf_SECRETtoken1234567890"


def results_file(folder: Path, task: str, model: Path, metrics: dict[str, float]) -> Path:
    path = folder / f"{task}.json"
    path.write_text(json.dumps({"task": task, "model": str(model), "size_mb": 2.4, "metrics": metrics}))
    return path


@pytest.fixture()
def student(models: dict[str, Path], tmp_path: Path) -> Path:
    """The tiny DistilBERT with a distillation record, as pretrain/run.py exports it."""
    folder = tmp_path / "student"
    shutil.copytree(models["distilbert"], folder)
    config = {
        "alpha_ce": 5.0,
        "alpha_mlm": 2.0,
        "alpha_cos": 1.0,
        "alpha_mse": 0.0,
        "temperature": 2.0,
        "mlm_probability": 0.15,
        "mlm_smoothing": 0.7,
    }
    record = {
        "teacher": "monologg/kobert-lm",
        "student_layers_from_teacher": [0, 4],
        "config": config,
        "data": {"dir": "d", "stats": {"lines": 1000, "tokens": 12345, "blocks": {"train": 90, "validation": 1}}},
    }
    (folder / "distillation.json").write_text(json.dumps(record))
    return folder


def test_dry_run_builds_a_folder_the_auto_classes_load(student: Path, tmp_path: Path, capsys) -> None:
    results = [
        results_file(tmp_path, "nsmc", student, {"accuracy": 0.8841}),
        results_file(tmp_path, "korquad", student, {"exact_match": 0.5412, "f1": 0.778}),
    ]
    output = tmp_path / "release"
    main(
        [
            "--model_name_or_path",
            str(student),
            "--repo_id",
            "me/distilkobert",
            "--results_files",
            *map(str, results),
            "--dry_run",
            "--output_dir",
            str(output),
        ]
    )
    assert "validated" in capsys.readouterr().out
    names = {p.name for p in output.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "tokenizer_78b3253a26.model",
        "vocab.txt",
        "tokenizer.json",
        "tokenizer_config.json",
        "tokenization_kobert.py",
        "README.md",
    } <= names
    config = json.loads((output / "tokenizer_config.json").read_text())
    assert config["auto_map"]["AutoTokenizer"] == [
        "tokenization_kobert.KoBertTokenizer",
        "tokenization_kobert.KoBertTokenizerFast",
    ]
    # A fresh process, offline, as a user would: the folder loads and runs.
    code = (
        "import sys; from transformers import AutoModelForMaskedLM, AutoTokenizer; "
        "t = AutoTokenizer.from_pretrained(sys.argv[1], trust_remote_code=True); "
        "m = AutoModelForMaskedLM.from_pretrained(sys.argv[1]); "
        "print(type(t).__name__, m(**t('모델', return_tensors='pt', return_token_type_ids=False)).logits.shape[-1])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(output)],
        capture_output=True,
        text=True,
        check=True,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
    )
    assert out.stdout.split() == ["KoBertTokenizerFast", "8002"]

    card = (output / "README.md").read_text()
    meta = yaml.safe_load(card.split("---")[1])
    assert meta["language"] == ["ko"] and meta["library_name"] == "transformers"
    assert meta["pipeline_tag"] == "fill-mask" and meta["base_model"] == "monologg/kobert-lm"
    index = {r["task"]["type"]: r["metrics"] for r in meta["model-index"][0]["results"]}
    assert index["text-classification"] == [{"type": "accuracy", "name": "Accuracy", "value": 88.41}]
    assert [m["value"] for m in index["question-answering"]] == [54.12, 77.8]
    assert "teacher layers [0, 4]" in card and "12,345 tokens" in card
    assert "| distilkobert | 2 | 88.41 | - | 54.12/77.80 |" in card
    assert 'AutoTokenizer.from_pretrained("me/distilkobert", trust_remote_code=True)' in card


@pytest.mark.parametrize(
    ("name", "hub_id"),
    [
        ("monologg/kobert-lm", True),
        ("runs/mini/teacher/final", False),
        ("runs/mini", False),
        ("./teacher/final", False),
        ("/data/models/teacher", False),
        ("~/teacher", False),
        ("teacher/final/export", False),
        ("kobert", False),
        ("local/teacher", False),  # an existing folder, made below
    ],
)
def test_only_namespace_name_that_is_no_local_folder_is_a_hub_id(
    name: str, hub_id: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "local" / "teacher").mkdir(parents=True)
    assert is_hub_id(name) == hub_id


def test_a_local_teacher_is_named_in_the_text_not_as_base_model() -> None:
    # The demo's release: its teacher is a folder of the run, which the Hub refuses as base_model.
    teacher = "runs/mini/teacher/final"
    config = {"model_type": "distilbert", "n_layers": 3, "dim": 128, "n_heads": 2, "vocab_size": 8002}
    extraction = {"teacher": teacher, "student_layers_from_teacher": [0, 2, 4]}
    card = build_card("me/distilkobert-mini", config, 1000, 6.3, True, "apache-2.0", [], None, extraction)
    meta = yaml.safe_load(card.split("---")[1])
    assert "base_model" not in meta
    assert f"- Teacher: `{teacher}` (a local model, not on the Hub); the student's layers started as teacher " in card


def nsmc_result(train: str, train_hub: str | None, test: str, test_hub: str | None) -> dict:
    """A results.json of finetune.nsmc, as the trainer writes it, with the data it was run on."""
    return {
        "task": "nsmc",
        "model": "runs/distil-tiny/final",
        "size_mb": 2.4,
        "metrics": {"accuracy": 0.6},
        "data": {"train": {"source": train, "hub_id": train_hub}, "test": {"source": test, "hub_id": test_hub}},
        "examples": {"train": 1800, "validation": 200, "test": 1000},
    }


def test_the_card_of_a_model_fine_tuned_on_the_bundled_sample_names_that_sample() -> None:
    # The README's release: NSMC on the bundled files, which are a sample of e9t/nsmc, not e9t/nsmc.
    config = {"model_type": "distilbert", "n_layers": 2, "dim": 64, "n_heads": 2, "vocab_size": 8002}
    result = nsmc_result("data/nsmc_train.txt.gz", None, "data/nsmc_test.txt.gz", None)
    card = build_card("me/distil-tiny", config, 1000, 2.4, True, "apache-2.0", [result], None, None)
    meta = yaml.safe_load(card.split("---")[1])
    assert "datasets" not in meta
    assert meta["model-index"][0]["results"][0]["dataset"] == {
        "name": "NSMC, local file nsmc_test.txt.gz (1,000 examples)",
        "type": "nsmc_test.txt.gz",
    }
    assert (
        "- NSMC: trained on `nsmc_train.txt.gz` (local file, 1,800 examples); best epoch picked on 200 held-out "
        "examples; tested on `nsmc_test.txt.gz` (local file, 1,000 examples)."
    ) in card
    # From the Hub, the card names the Hub dataset and the split tested on.
    result = nsmc_result("e9t/nsmc:train", "e9t/nsmc", "e9t/nsmc:test", "e9t/nsmc")
    card = build_card("me/distil-tiny", config, 1000, 2.4, True, "apache-2.0", [result], None, None)
    meta = yaml.safe_load(card.split("---")[1])
    assert meta["datasets"] == ["e9t/nsmc"]
    assert meta["model-index"][0]["results"][0]["dataset"] == {"name": "NSMC", "type": "e9t/nsmc", "split": "test"}
    assert "trained on `e9t/nsmc:train` (Hub dataset, 1,800 examples)" in card


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("no_weights", "no weights"),
        ("no_config", "no config.json"),
        ("small_tokenizer", "tokens but the model has"),
        ("other_results", "results of"),
        ("not_results", "not a fine-tuning results file"),
    ],
)
def test_broken_inputs_are_refused(breakage: str, message: str, student: Path, tmp_path: Path) -> None:
    extra = []
    if breakage == "no_weights":
        (student / "model.safetensors").unlink()
    elif breakage == "no_config":
        (student / "config.json").unlink()
    elif breakage == "small_tokenizer":
        config = json.loads((student / "config.json").read_text())
        (student / "config.json").write_text(json.dumps({**config, "vocab_size": 9000}))
        shutil.copy(student / "model.safetensors", tmp_path / "keep")
        from transformers import AutoModelForMaskedLM, DistilBertConfig

        AutoModelForMaskedLM.from_config(DistilBertConfig(**{**config, "vocab_size": 9000})).save_pretrained(student)
    elif breakage == "other_results":
        extra = ["--results_files", str(results_file(tmp_path, "nsmc", tmp_path / "other-model", {"accuracy": 0.5}))]
    elif breakage == "not_results":  # e.g. distill.train's results.json: it was "results of '', not of ..."
        (tmp_path / "results.json").write_text(json.dumps({"test": {"accuracy": 0.5}}))
        extra = ["--results_files", str(tmp_path / "results.json")]
    with pytest.raises(SystemExit, match=message):
        main(
            [
                "--model_name_or_path",
                str(student),
                "--repo_id",
                "me/x",
                *extra,
                "--dry_run",
                "--output_dir",
                str(tmp_path / "o"),
            ]
        )
    # Nothing is left behind, so the same command can simply be run again once the cause is fixed.
    assert not (tmp_path / "o").exists() and not list(tmp_path.glob(".release-*"))


def test_overwrite_replaces_a_release_only_once_the_new_one_is_validated(student: Path, tmp_path: Path) -> None:
    output = tmp_path / "release"
    output.mkdir()
    (output / "previous.txt").write_text("an earlier release")
    command = ["--model_name_or_path", str(student), "--repo_id", "me/x", "--dry_run", "--output_dir", str(output)]
    with pytest.raises(SystemExit):  # not empty, and no --overwrite
        main(command)
    (student / "model.safetensors").rename(tmp_path / "weights")
    with pytest.raises(SystemExit, match="no weights"):
        main([*command, "--overwrite"])
    assert (output / "previous.txt").read_text() == "an earlier release"
    (tmp_path / "weights").rename(student / "model.safetensors")
    options = {"model_name_or_path": str(student), "repo_id": "me/x", "dry_run": True, "output_dir": str(output)}
    report = release.upload(
        release.UploadArguments(**options, overwrite=True)
    )  # the typed function, as recipes call it
    assert report.folder == output and report.url is None and report.validation.startswith("validated")
    assert not (output / "previous.txt").exists() and (output / "README.md").is_file()
    assert not list(tmp_path.glob(".release-*"))


def test_a_folder_that_does_not_load_fails_validation(student: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(student, broken)
    (broken / "tokenization_kobert.py").unlink()
    with pytest.raises(ValueError, match="AutoTokenizer"):
        validate(broken)


@pytest.mark.parametrize("repo_id", ["distilkobert", "a/b/c", "me/", "/x"])
def test_repo_id_must_be_namespace_name(repo_id: str, student: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--model_name_or_path", str(student), "--repo_id", repo_id, "--dry_run", "--output_dir", "o"])
    assert "namespace/name" in capsys.readouterr().err


def test_real_upload_needs_a_token(student: Path, monkeypatch) -> None:
    monkeypatch.setattr(release, "get_token", lambda: None)
    with pytest.raises(SystemExit, match="no Hugging Face token"):
        main(["--model_name_or_path", str(student), "--repo_id", "me/x"])


class FakeApi:
    """Stands in for huggingface_hub.HfApi and records what would be sent."""

    calls: ClassVar[list[tuple[str, dict]]] = []

    def create_repo(self, repo_id: str, **kwargs) -> None:
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))

    def create_branch(self, repo_id: str, **kwargs) -> None:
        self.calls.append(("create_branch", {"repo_id": repo_id, **kwargs}))

    def upload_folder(self, **kwargs) -> str:
        files = sorted(p.name for p in Path(kwargs["folder_path"]).iterdir())
        self.calls.append(("upload_folder", {**kwargs, "files": files}))
        return "https://hub.invalid/me/distilkobert/commit/abc"

    def create_tag(self, repo_id: str, **kwargs) -> None:
        self.calls.append(("create_tag", {"repo_id": repo_id, **kwargs}))


def test_upload_sends_one_commit_and_never_shows_the_token(
    student: Path, tmp_path: Path, monkeypatch, capsys, caplog
) -> None:
    FakeApi.calls = []
    monkeypatch.setattr(release, "HfApi", FakeApi)
    monkeypatch.setattr(release, "get_token", lambda: TOKEN)
    output = tmp_path / "release"
    main(
        [
            "--model_name_or_path",
            str(student),
            "--repo_id",
            "me/distilkobert",
            "--private",
            "--revision",
            "v1-branch",
            "--tag",
            "v1.0",
            "--commit_message",
            "First release",
            "--output_dir",
            str(output),
        ]
    )
    names = [name for name, _ in FakeApi.calls]
    assert names == ["create_repo", "create_branch", "upload_folder", "create_tag"]
    calls = dict(FakeApi.calls)
    assert calls["create_repo"]["private"] is True and calls["create_repo"]["exist_ok"] is True
    assert calls["create_branch"]["branch"] == "v1-branch"
    upload = calls["upload_folder"]
    assert upload["repo_id"] == "me/distilkobert" and upload["revision"] == "v1-branch"
    assert upload["commit_message"] == "First release"
    assert {"model.safetensors", "tokenizer.json", "tokenization_kobert.py", "README.md"} <= set(upload["files"])
    assert calls["create_tag"]["tag"] == "v1.0"
    assert all(call["token"] == TOKEN for call in calls.values())
    shown = capsys.readouterr()
    assert TOKEN not in shown.out + shown.err + caplog.text
    assert not any(TOKEN in p.read_bytes().decode("utf-8", "ignore") for p in output.iterdir())

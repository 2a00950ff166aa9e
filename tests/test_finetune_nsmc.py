"""NSMC fine-tuning end to end, the shared fine-tuning helpers, task-file reading errors and the results table."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from finetuning import fine_tuned
from transformers import (
    AutoModelForSequenceClassification,
)

from common.config import load_config
from common.readers import data_source, first, read_nsmc, split_train_validation
from common.training import pad_cat, takes_token_type_ids
from finetune.table import TableArguments, subtask_table
from finetune.table import main as table_command

POSITIVE = ["정말 재밌어요", "최고의 영화", "감동적이고 좋았다", "배우 연기 최고", "또 보고 싶다", "강력 추천합니다"]
NEGATIVE = ["너무 지루하다", "시간 아까움", "최악의 영화", "돈 아깝다", "졸려서 잤다", "다시는 안 본다"]


def nsmc(argv: list[str]) -> dict:
    return fine_tuned("nsmc", argv)


def table(argv: list[str]) -> str:
    return subtask_table(load_config(TableArguments, None, argv))


def write_nsmc(path: Path, n: int, seed: int) -> Path:
    rng = random.Random(seed)
    lines = ["id\tdocument\tlabel"]
    for i in range(n):
        label = i % 2
        words = rng.sample(POSITIVE if label else NEGATIVE, 2)
        lines.append(f"{seed * 10_000 + i}\t{' '.join(words)}\t{label}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("kind", ["bert", "distilbert"])
def test_nsmc_end_to_end(kind: str, models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    train, test = write_nsmc(tmp_path / "train.txt", 200, 1), write_nsmc(tmp_path / "test.txt", 60, 2)
    output = tmp_path / "out"
    results = nsmc(
        [
            "--model_name_or_path",
            str(models[kind]),
            "--train_file",
            str(train),
            "--test_file",
            str(test),
            "--output_dir",
            str(output),
            "--num_train_epochs",
            "3",
            "--learning_rate",
            "3e-3",
            "--per_device_train_batch_size",
            "16",
        ]
    )
    saved = json.loads((output / "results.json").read_text())
    assert saved["metrics"] == results["metrics"]
    # The command's answer on stdout: the test metrics, rounded, and where the rest is.
    accuracy, best_epoch = saved["metrics"]["accuracy"], saved["best_epoch"]
    summary = f"test accuracy {accuracy:.4f} (best epoch {best_epoch}); results in {output / 'results.json'}\n"
    shown = capsys.readouterr()
    assert shown.out == summary
    assert "Writing model shards" not in shown.err and "Loading weights" not in shown.err  # saving the best epoch
    assert saved["metrics"]["accuracy"] > 0.9, "two word lists must be learnable"
    assert {
        "task",
        "metrics",
        "model",
        "params",
        "size_mb",
        "train_seconds",
        "eval_examples_per_s",
        "config",
        "versions",
        "git_commit",
        "best_epoch",
        "validation",
    } <= set(saved)
    assert saved["examples"] == {"train": 180, "validation": 20, "test": 60}
    # What the data was, for the model card: local files here, no Hub dataset.
    assert saved["data"] == {
        "train": {"source": str(train), "hub_id": None},
        "test": {"source": str(test), "hub_id": None},
    }
    assert len(saved["validation"]) == 3 and 1 <= saved["best_epoch"] <= 3
    best = AutoModelForSequenceClassification.from_pretrained(saved["model_dir"])
    assert best.config.id2label == {0: "negative", 1: "positive"}  # what pipeline() and the service answer
    assert takes_token_type_ids(best) == (kind == "bert")


def test_nsmc_reads_a_datasets_folder(models: dict[str, Path], tmp_path: Path) -> None:
    # Anything that is not a file goes through the datasets library: a Hub name, or a local dataset folder.
    import datasets

    folder = tmp_path / "nsmc_dataset"
    folder.mkdir()
    for split, seed, n in (("train", 1, 60), ("test", 2, 20)):
        records = read_nsmc(str(write_nsmc(tmp_path / f"{split}.txt", n, seed)))
        datasets.Dataset.from_list(records).to_parquet(folder / f"{split}.parquet")
    assert read_nsmc(str(folder), "test") == read_nsmc(str(tmp_path / "test.txt"))
    results = nsmc(
        [
            "--model_name_or_path",
            str(models["bert"]),
            "--train_file",
            f"{folder}:train",
            "--test_file",
            f"{folder}:test",
            "--output_dir",
            str(tmp_path / "out"),
            "--num_train_epochs",
            "1",
        ]
    )
    assert results["examples"]["test"] == 20
    assert results["data"]["test"] == {"source": f"{folder}:test", "hub_id": None}  # a local folder, not the Hub's


def test_data_source_names_the_hub_dataset_only_for_a_hub_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "nsmc_test.txt.gz").touch()
    assert data_source("data/nsmc_test.txt.gz") == {"source": "data/nsmc_test.txt.gz", "hub_id": None}
    assert data_source("data:test") == {"source": "data:test", "hub_id": None}  # a local dataset folder
    assert data_source("e9t/nsmc:test") == {"source": "e9t/nsmc:test", "hub_id": "e9t/nsmc"}
    assert data_source("e9t/nsmc") == {"source": "e9t/nsmc", "hub_id": "e9t/nsmc"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("id\tdocument\tlabel\n1\t좋다\t1\n2\t나쁘다\n", r"test\.txt:3: expected 3 tab-separated columns, got 2"),
        ("id\tdocument\tlabel\n1\t좋다\t2\n", r"test\.txt:2: label must be 0 or 1, got '2'"),
        ("document\tlabel\n좋다\t1\n", r"test\.txt:1: expected the header"),
    ],
)
def test_malformed_nsmc_lines_name_file_and_line(
    content: str, message: str, models: dict[str, Path], tmp_path: Path
) -> None:
    bad = tmp_path / "test.txt"
    bad.write_text(content, encoding="utf-8")
    train = write_nsmc(tmp_path / "train.txt", 20, 1)
    with pytest.raises(ValueError, match=message):
        nsmc(
            [
                "--model_name_or_path",
                str(models["bert"]),
                "--train_file",
                str(train),
                "--test_file",
                str(bad),
                "--output_dir",
                str(tmp_path / "o"),
            ]
        )


def test_split_train_validation_is_seeded_and_disjoint() -> None:
    records = list(range(100))
    train, validation = split_train_validation(records, 0.1, seed=3)
    assert len(validation) == 10 and sorted(train + validation) == records
    assert split_train_validation(records, 0.1, seed=3) == (train, validation)
    assert split_train_validation(records, 0.1, seed=4)[1] != validation
    assert first(records, 5) == [0, 1, 2, 3, 4] and first(records, None) == records


def test_pad_cat() -> None:
    merged = pad_cat([torch.tensor([[1, 2]]), torch.tensor([[3, 4, 5]])])
    assert merged.tolist() == [[1, 2, -100], [3, 4, 5]]
    assert pad_cat([torch.tensor([1]), torch.tensor([2, 3])]).tolist() == [1, 2, 3]


def result(task: str, model: str, size: float, metrics: dict[str, float]) -> dict:
    return {"task": task, "model": model, "size_mb": size, "metrics": metrics}


def test_table_has_the_published_layout(tmp_path: Path, capsys) -> None:
    files = []
    for i, item in enumerate(
        [
            result("nsmc", "monologg/kobert", 351.2, {"accuracy": 0.8963}),
            result("ner", "monologg/kobert", 351.3, {"f1": 0.8611}),
            result("korquad", "monologg/kobert", 351.3, {"exact_match": 0.5281, "f1": 0.8027}),
            result("nsmc", "runs/distilkobert/", 108.1, {"accuracy": 0.88414}),
        ]
    ):
        files.append(tmp_path / f"{i}.json")
        files[-1].write_text(json.dumps(item))
    out = tmp_path / "table.md"
    given = ["--results_files", *map(str, files)]
    rendered = table([*given, "--names", "monologg/kobert=KoBERT", "--output_file", str(out)])
    assert rendered == (
        "| | Model Size (MB) | NSMC (acc) | Naver NER (F1) | KorQuAD (Dev) (EM/F1) | NLI (acc) |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: |\n"
        "| KoBERT | 351 | 89.63 | 86.11 | 52.81/80.27 | - |\n"
        "| distilkobert | 108 | 88.41 | - | - | - |\n"
    )
    assert out.read_text() == rendered
    assert table_command([*given, "--names", "monologg/kobert=KoBERT"]) == 0
    assert capsys.readouterr().out == rendered
    # Model paths match with or without a trailing slash; a name that matches no model is an error, not ignored.
    assert "| DistilKoBERT | 108 |" in table(
        ["--results_files", *map(str, files), "--names", "runs/distilkobert=DistilKoBERT"]
    )
    unmatched = (
        r"--names runs/distil: matches none of the models of the results files \(monologg/kobert, runs/distilkobert/\)"
    )
    with pytest.raises(ValueError, match=unmatched):
        table([*given, "--names", "runs/distil=DistilKoBERT"])
    files.append(tmp_path / "dup.json")
    files[-1].write_text(json.dumps(result("nsmc", "monologg/kobert", 351, {"accuracy": 0.5})))
    with pytest.raises(ValueError, match="two nsmc results"):
        table(["--results_files", *map(str, files)])

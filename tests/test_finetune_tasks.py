"""The task registry: each command's module declares its task, and the table and the model card read every task from
the registry, so a new task shows up in both once registered, with nothing else changed."""

from __future__ import annotations

import dataclasses
import importlib

import pytest
import yaml

from finetune.table import build_rows, render
from finetune.tasks import TASK_MODULES, all_tasks, get_task, registry
from hub_upload.card import build_card

CONFIG = {"model_type": "distilbert", "n_layers": 3, "dim": 768, "n_heads": 12, "vocab_size": 8002}


def test_each_command_module_registers_its_task_in_column_order() -> None:
    assert [task.name for task in all_tasks()] == ["nsmc", "ner", "korquad", "nli"]
    for module_name, task in zip(TASK_MODULES, all_tasks(), strict=True):
        module = importlib.import_module(module_name)
        assert module.TASK is get_task(task.name) and module_name == f"finetune.{task.name}"
        assert task.arguments.__module__ == module_name, "the command keeps its own options"
    with pytest.raises(ValueError, match="unknown task 'sts'; known tasks: nsmc, ner, korquad, nli"):
        get_task("sts")


def test_a_registered_task_reaches_the_table_and_the_model_card(monkeypatch: pytest.MonkeyPatch) -> None:
    sts = dataclasses.replace(
        get_task("nsmc"),
        name="sts",
        column="KorSTS (Spearman)",
        table_metrics=("spearman",),
        primary_metric="spearman",
        hub_task=("sentence-similarity", "Semantic textual similarity"),
        dataset=("KorSTS", "kakaobrain/kor-sts"),
    )
    monkeypatch.setitem(registry(), "sts", sts)
    results = [
        {"task": "korquad", "model": "me/m", "size_mb": 108.4, "metrics": {"exact_match": 0.5412, "f1": 0.778}},
        {"task": "sts", "model": "me/m", "size_mb": 108.4, "metrics": {"spearman": 0.81234, "pearson": 0.8}},
    ]
    assert render(build_rows(results, {"me/m": "mine"})) == (
        "| | Model Size (MB) | NSMC (acc) | Naver NER (F1) | KorQuAD (Dev) (EM/F1) | NLI (acc) | KorSTS (Spearman) |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n"
        "| mine | 108 | - | - | 54.12/77.80 | - | 81.23 |\n"
    )
    card = build_card("me/m", CONFIG, 1000, 108.4, True, "apache-2.0", results, None, None)
    meta = yaml.safe_load(card.split("---")[1])
    assert meta["datasets"] == ["KorQuAD/squad_kor_v1", "kakaobrain/kor-sts"]
    entries = meta["model-index"][0]["results"]
    assert entries[1] == {
        "task": {"type": "sentence-similarity", "name": "Semantic textual similarity"},
        "dataset": {"name": "KorSTS", "type": "kakaobrain/kor-sts"},
        "metrics": [
            {"type": "spearman", "name": "Spearman", "value": 81.23},
            {"type": "pearson", "name": "Pearson", "value": 80.0},
        ],
    }
    assert entries[0]["metrics"] == [
        {"type": "exact_match", "name": "Exact match", "value": 54.12},
        {"type": "f1", "name": "F1", "value": 77.8},
    ]

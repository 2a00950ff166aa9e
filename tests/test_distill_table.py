"""distill.table: hand-written run folders -> the exact Markdown table, valid PNGs, other results.json skipped."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from distill.table import TableArguments, distill_table, find_results, learning_curves, main, size_cell, table_rows

TEACHER = {"models": ["runs/teacher/best"], "accuracy": 0.9026, "params": 92186880, "size_mb": 351.7}
ENSEMBLE = {"models": ["runs/t1", "runs/t2"], "accuracy": 0.91, "params": 184373760, "size_mb": 1400.0}


def results(name: str, student: str, preset: str | None, alpha: float, teacher: dict | None, **measured: Any) -> dict:
    """A results.json as distill.train writes it (the keys the table reads, and a few it does not)."""
    return {
        "name": name,
        "student": student,
        "preset": preset,
        "distilled": alpha < 1,
        "alpha": alpha,
        "soft": "kl",
        "temperature": 2.0,
        "best_validation_accuracy": 0.9,
        "best_step": 10,
        "train_seconds": 12.5,
        "teacher": teacher,
        "config": {"student": student, "alpha": alpha, "student_layers": [0, 4, 8]},
        **measured,
    }


def write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    runs = tmp_path / "runs"
    small = {"params": 146434, "size_mb": 0.5586}
    base = {"params": 391170, "size_mb": 1.4922}
    # base-distilled (read before small-distilled) leaves the teacher's accuracy out; small-distilled has it.
    write(
        runs / "grid" / "base-distilled" / "results.json",
        results("base-distilled", "bilstm", "base", 0.5, {**TEACHER, "accuracy": None}, accuracy=0.882, **base),
    )
    write(
        runs / "grid" / "small-distilled" / "results.json",
        results("small-distilled", "bilstm", "small", 0.5, TEACHER, accuracy=0.8717, **small),
    )
    write(
        runs / "grid" / "base-baseline" / "results.json",
        results("base-baseline", "bilstm", "base", 1.0, None, accuracy=0.8708, **base),
    )
    write(
        runs / "grid" / "small-baseline" / "results.json",
        results("small-baseline", "bilstm", "small", 1.0, None, accuracy=0.8554, **small),
    )
    write(
        runs / "distilbert" / "results.json",
        results("distilbert", "distilbert", None, 0.0, ENSEMBLE, accuracy=0.885, params=28000000, size_mb=106.8),
    )
    # Not distill.train's: a fine-tuning result, and a run's half-written staging folder.
    write(runs / "nsmc" / "results.json", {"task": "nsmc", "model": "m", "size_mb": 1.0, "metrics": {"accuracy": 1}})
    write(runs / "grid" / ".staging-x" / "results.json", results("staging", "bilstm", "base", 0.5, None, **base))
    for run, first, last in (("base-distilled", 0.8, 0.85), ("base-baseline", 0.75, 0.5)):
        metrics = [
            {"step": 5, "epoch": 0, "loss": 0.7, "learning_rate": 0.001},
            {"step": 5, "epoch": 0, "validation_accuracy": first},
            {"step": 10, "epoch": 1, "loss": 0.6, "learning_rate": 0.0005},
            {"step": 10, "epoch": 1, "validation_accuracy": last},
        ]
        lines = "".join(json.dumps(line) + "\n" for line in metrics)
        (runs / "grid" / run / "metrics.jsonl").write_text(lines, encoding="utf-8")
    return runs


EXPECTED = """\
| model | run | total parameters | model size | accuracy (%) |
| --- | --- | ---: | ---: | ---: |
| Teacher | `runs/teacher/best` | 92,186,880 | 352 MB | 90.26 |
| Teacher (ensemble of 2) | `runs/t1, runs/t2` | 184,373,760 | 1.37 GB | 91.00 |
| DistilKoBiLSTM-Small | `small-distilled` | 146,434 | 572 KB | 87.17 |
| DistilKoBiLSTM-Base | `base-distilled` | 391,170 | 1.49 MB | 88.20 |
| DistilKoBERT | `distilbert` | 28,000,000 | 107 MB | 88.50 |
| BiLSTM-Small (no teacher) | `small-baseline` | 146,434 | 572 KB | 85.54 |
| BiLSTM-Base (no teacher) | `base-baseline` | 391,170 | 1.49 MB | 87.08 |

Plots: [accuracy_vs_size.png](accuracy_vs_size.png), [learning_curves.png](learning_curves.png).
"""


def assert_png(path: Path) -> None:
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 100 and image.height > 100
        image.verify()


def test_the_table_and_plots(
    runs_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="distill.table")
    output = tmp_path / "report"
    assert main(["--runs_dir", str(runs_dir), "--output_dir", str(output)]) == 0
    assert capsys.readouterr().out == EXPECTED
    assert distill_table(TableArguments(runs_dir=str(runs_dir), output_dir=str(output))).markdown == EXPECTED
    assert (output / "table.md").read_text(encoding="utf-8") == EXPECTED
    assert_png(output / "accuracy_vs_size.png")
    assert_png(output / "learning_curves.png")
    assert f"Skipped {runs_dir / 'nsmc' / 'results.json'}: not a distill.train results file" in caplog.text
    assert "staging" not in caplog.text  # a dot folder is not looked into at all
    assert sorted(p.name for p in output.iterdir()) == ["accuracy_vs_size.png", "learning_curves.png", "table.md"]


def test_output_defaults_to_the_runs_folder(runs_dir: Path) -> None:
    main(["--runs_dir", str(runs_dir / "grid")])
    table = (runs_dir / "grid" / "table.md").read_text(encoding="utf-8")
    assert "| Teacher | `runs/teacher/best` | 92,186,880 | 352 MB | 90.26 |" in table
    assert "distilbert" not in table and "ensemble" not in table
    assert_png(runs_dir / "grid" / "learning_curves.png")


def test_learning_curves_are_the_validation_accuracies_of_the_students(runs_dir: Path) -> None:
    curves = learning_curves(table_rows(find_results(runs_dir)))
    assert [(row["run"], steps, values) for row, steps, values in curves] == [
        ("base-distilled", [5, 10], [80.0, 85.0]),
        ("base-baseline", [5, 10], [75.0, 50.0]),
    ]


@pytest.mark.parametrize(
    ("size_mb", "shown"),
    [(0.5, "512 KB"), (0.0009765625, "1 KB"), (1.0, "1 MB"), (56.6, "56.6 MB"), (999.0, "999 MB"), (2048, "2 GB")],
)
def test_size_cell(size_mb: float, shown: str) -> None:
    assert size_cell(size_mb) == shown


def test_errors_name_the_folder_or_file(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=re.escape(f"error: {tmp_path / 'missing'}: no such folder")):
        main(["--runs_dir", str(tmp_path / "missing")])
    write(tmp_path / "nsmc" / "results.json", {"task": "nsmc"})
    with pytest.raises(SystemExit, match=r"no results\.json written by distill\.train in it or below it"):
        main(["--runs_dir", str(tmp_path)])
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "results.json").write_text("{", encoding="utf-8")
    with pytest.raises(SystemExit, match=re.escape(f"error: {tmp_path / 'broken' / 'results.json'}: not valid JSON")):
        main(["--runs_dir", str(tmp_path)])


def test_an_abbreviated_option_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--runs_dir", str(tmp_path), "--out", "report"])
    assert stopped.value.code == 2 and "did you mean --output_dir?" in capsys.readouterr().err
    assert not (tmp_path / "report").exists()


def test_help(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--help"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out.startswith("usage: python -m distill.table ")

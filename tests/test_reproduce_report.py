"""reproduce.report: comparisons by hand, the Markdown table, the four result files and the plots' inputs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from reproduce.report import (
    accuracy_latency_figure,
    add_comparisons,
    metric_series,
    plot_accuracy_latency,
    plot_training_curves,
    read_metrics,
    render_markdown,
    write_results,
)

REQUIRED_KEYS = {"name", "params", "size_mb", "latency_ms_b1", "latency_ms_b32", "nsmc_accuracy", "nsmc_model_dir"}
COMPARISON_KEYS = {"accuracy_retained", "speedup_b1", "speedup_b32"}
CONTEXT = {
    "preset": "mini",
    "command": "python -m reproduce --preset mini --output_dir runs/mini",
    "machine": "Test CPU, 2 cores",
    "date": "2024-01-02",
    "seq_length": 128,
    "threads": 2,
    "wall_time_s": 1234.4,
}


def make_rows() -> list[dict]:
    return [
        {
            "name": "teacher",
            "params": 2345678,
            "size_mb": 8.9,
            "latency_ms_b1": 10.0,
            "latency_ms_b32": 100.0,
            "nsmc_accuracy": 0.80,
            "nsmc_model_dir": "runs/mini/nsmc/teacher/best",
        },
        {
            "name": "distilled",
            "params": 1234567,
            "size_mb": 4.7,
            "latency_ms_b1": 4.0,
            "latency_ms_b32": 50.0,
            "nsmc_accuracy": 0.78,
            "nsmc_model_dir": "runs/mini/nsmc/distilled/best",
        },
        {
            "name": "baseline",
            "params": 1234567,
            "size_mb": 4.7,
            "latency_ms_b1": 3.0,
            "latency_ms_b32": 40.0,
            "nsmc_accuracy": 0.7,
            "nsmc_model_dir": "runs/mini/nsmc/baseline/best",
        },
    ]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def metrics_records(start_loss: float, with_teacher: bool) -> list[dict]:
    records = []
    for step in (10, 20, 30):
        records.append({"step": step, "loss": start_loss / step, "loss_mlm": start_loss / step, "learning_rate": 1e-4})
        if step % 20 == 0:
            evaluation = {"step": step, "eval_mlm_loss": start_loss / step + 0.1, "eval_perplexity": 9.0}
            if with_teacher:
                evaluation["eval_top1_agreement"] = 0.5
            records.append(evaluation)
    return records


def test_add_comparisons_by_hand() -> None:
    rows = make_rows()
    compared = add_comparisons(rows)
    assert [row["name"] for row in compared] == ["teacher", "distilled", "baseline"]
    assert compared[0] == {**rows[0], "accuracy_retained": 1.0, "speedup_b1": 1.0, "speedup_b32": 1.0}
    assert compared[1]["accuracy_retained"] == 0.975
    assert compared[1]["speedup_b1"] == 2.5
    assert compared[1]["speedup_b32"] == 2.0
    assert compared[2]["accuracy_retained"] == 0.875
    assert compared[2]["speedup_b1"] == 3.33
    assert compared[2]["speedup_b32"] == 2.5
    assert all(COMPARISON_KEYS.isdisjoint(row) for row in rows), "the input rows are left unchanged"


def test_add_comparisons_rounds() -> None:
    rows = make_rows()
    rows[1]["nsmc_accuracy"] = 0.7777777
    assert add_comparisons(rows)[1]["accuracy_retained"] == 0.9722


def test_add_comparisons_without_teacher() -> None:
    with pytest.raises(ValueError, match=r"no row named 'teacher'.*'distilled', 'baseline'"):
        add_comparisons(make_rows()[1:])


def test_render_markdown() -> None:
    markdown = render_markdown(make_rows(), CONTEXT)
    lines = markdown.splitlines()
    assert lines[0].startswith("# ")
    assert "preset: mini" in lines[2]
    assert "`python -m reproduce --preset mini --output_dir runs/mini`" in lines[2]
    assert "wall time (s): 1234" in lines[2]
    assert "| model | parameters | size (MB) | latency b1 (ms) | latency b32 (ms) | speed-up b32 " in markdown
    assert "| teacher | 2,345,678 | 8.9 | 10.00 | 100.00 | 1.00× | 80.00 | 100.00 |" in lines
    assert "| distilled | 1,234,567 | 4.7 | 4.00 | 50.00 | 2.00× | 78.00 | 97.50 |" in lines
    assert "| baseline | 1,234,567 | 4.7 | 3.00 | 40.00 | 2.50× | 70.00 | 87.50 |" in lines
    assert "accuracy_vs_latency.png" in lines[-1]
    assert "training_curves.png" in lines[-1]


def test_render_markdown_same_for_compared_rows_and_partial_context() -> None:
    assert render_markdown(add_comparisons(make_rows()), CONTEXT) == render_markdown(make_rows(), CONTEXT)
    assert render_markdown(make_rows(), {"preset": "mini"}).splitlines()[2] == "preset: mini"


def test_read_metrics_and_series(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text(
        '{"step": 20, "loss_mlm": 2.0}\n\n{"step": 10, "loss_mlm": 3.0}\n{"step": 20, "loss_mlm": 1.5}\n'
        '{"step": 20, "eval_mlm_loss": 2.5}\n',
        encoding="utf-8",
    )
    records = read_metrics(path)
    assert len(records) == 4
    assert metric_series(records, "loss_mlm") == ([10, 20], [3.0, 1.5])
    assert metric_series(records, "eval_mlm_loss") == ([20], [2.5])
    assert metric_series(records, "eval_top1_agreement") == ([], [])
    assert read_metrics(tmp_path / "missing.jsonl") == []


@pytest.mark.parametrize("bad_line", ['{"step": 20, "loss_mlm": ', "[1, 2]", '{"loss_mlm": 1.0}'])
def test_malformed_metrics_line(tmp_path: Path, bad_line: str) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 10, "loss_mlm": 3.0}\n' + bad_line + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(f"{path}, line 2")):
        plot_training_curves({"teacher": path}, tmp_path / "curves.png")
    assert not (tmp_path / "curves.png").exists()


def assert_png(path: Path, min_width: int = 300, min_height: int = 200) -> None:
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.width >= min_width
        assert image.height >= min_height


def test_plots(tmp_path: Path) -> None:
    teacher = write_jsonl(tmp_path / "teacher.jsonl", metrics_records(9.0, with_teacher=False))
    distilled = write_jsonl(tmp_path / "distilled.jsonl", metrics_records(8.0, with_teacher=True))
    no_loss = write_jsonl(tmp_path / "other.jsonl", [{"step": 1, "tokens_per_s": 100.0}])
    plot_accuracy_latency(add_comparisons(make_rows()), tmp_path / "scatter.png")
    curves = {"teacher": teacher, "distilled": distilled, "baseline": tmp_path / "missing.jsonl", "other": no_loss}
    plot_training_curves(curves, tmp_path / "curves.png")
    plot_training_curves({}, tmp_path / "empty.png")
    assert_png(tmp_path / "scatter.png")
    assert_png(tmp_path / "curves.png", min_width=800)
    assert_png(tmp_path / "empty.png", min_width=800)
    assert not [path.name for path in tmp_path.iterdir() if path.suffix == ".tmp"], "no staging files left"


def test_every_model_is_named_once_and_no_label_sits_on_the_axes() -> None:
    """Labels beside the points overlapped (distilled and its ONNX int8 copy); the legend names each model."""
    rows = add_comparisons(make_rows())
    figure = accuracy_latency_figure(rows)
    [legend] = figure.legends
    assert [text.get_text() for text in legend.get_texts()] == [row["name"] for row in rows]
    assert not figure.axes[0].texts


def test_write_results(tmp_path: Path) -> None:
    curves = {
        "teacher": write_jsonl(tmp_path / "teacher.jsonl", metrics_records(9.0, with_teacher=False)),
        "distilled": write_jsonl(tmp_path / "distilled.jsonl", metrics_records(8.0, with_teacher=True)),
        "baseline": tmp_path / "missing.jsonl",
    }
    output = tmp_path / "runs" / "mini"
    markdown = write_results(make_rows(), CONTEXT, curves, output)
    assert sorted(path.name for path in output.iterdir()) == [
        "accuracy_vs_latency.png",
        "results.json",
        "results.md",
        "training_curves.png",
    ]
    assert (output / "results.md").read_text(encoding="utf-8") == markdown == render_markdown(make_rows(), CONTEXT)
    text = (output / "results.json").read_text(encoding="utf-8")
    assert text.endswith("]\n")
    results = json.loads(text)
    assert isinstance(results, list)
    assert len(results) == 3
    assert all(REQUIRED_KEYS | COMPARISON_KEYS <= set(row) for row in results)
    assert results == add_comparisons(make_rows())
    assert_png(output / "accuracy_vs_latency.png")
    assert_png(output / "training_curves.png", min_width=800)


def test_write_results_without_teacher_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="teacher"):
        write_results(make_rows()[1:], CONTEXT, {}, tmp_path / "out")
    assert not (tmp_path / "out").exists()

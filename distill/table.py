"""The DistilKoBiLSTM-style table of distillation runs: the teacher, the distilled students, the same students without.

    python -m distill.table --runs_dir runs/grid
    python -m distill.table --runs_dir runs/grid --output_dir runs/grid/report

Reads every results.json that ``distill.train`` wrote under ``--runs_dir`` (any other results.json is skipped, with
a log line) and writes into ``--output_dir`` (default: the runs' folder)::

    table.md               model, run, total parameters, model size, accuracy (%): the teacher first (one row per
                           distinct teacher), then the distilled students, then the baselines (alpha = 1), each group
                           by size; names as DistilKoBiLSTM's table gives them (DistilKoBiLSTM-Base, BiLSTM-Base)
    accuracy_vs_size.png   test accuracy against model size (log scale): distilled and baselines, the teacher marked
    learning_curves.png    validation accuracy against step, one line per run (from the run's metrics.jsonl)

The Markdown is printed too.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from common.config import key, required, run_command
from common.io import (
    metric_series,
    output_written,
    read_json,
    read_metrics,
    require_output_place,
    save_figure,
    write_text,
)

logger = logging.getLogger("distill.table")  # not __main__ under python -m

RESULTS_FILE = "results.json"
METRICS_FILE = "metrics.jsonl"
TABLE_FILE = "table.md"
ACCURACY_PLOT = "accuracy_vs_size.png"
CURVES_PLOT = "learning_curves.png"
# What distill.train's results.json holds, and the names of its students: (distilled, trained without a teacher).
REQUIRED_KEYS = ("name", "student", "distilled", "params", "size_mb", "accuracy", "config")
STUDENT_NAMES = {"bilstm": ("DistilKoBiLSTM", "BiLSTM"), "distilbert": ("DistilKoBERT", "DistilBERT")}
TEACHER, DISTILLED, BASELINE = "teacher", "distilled", "baseline"
GROUPS = (TEACHER, DISTILLED, BASELINE)  # the order of the table's rows
TABLE_HEADER = "| model | run | total parameters | model size | accuracy (%) |"
TABLE_ALIGN = "| --- | --- | ---: | ---: | ---: |"


def is_train_results(results: Any) -> bool:
    """Whether a results.json is distill.train's (fine-tuning and the recipe write results.json files too)."""
    return (
        isinstance(results, dict)
        and all(key in results for key in REQUIRED_KEYS)
        and results["student"] in STUDENT_NAMES
        and isinstance(results["config"], dict)
    )


def find_results(runs_dir: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every distill.train results.json under ``runs_dir`` with its contents, in path order. Folders whose name
    starts with a dot (a run's staging folder) are not looked into."""
    if not runs_dir.is_dir():
        raise ValueError(f"{runs_dir}: {'not a folder' if runs_dir.exists() else 'no such folder'}")
    found = []
    for path in sorted(runs_dir.rglob(RESULTS_FILE)):
        if any(part.startswith(".") for part in path.relative_to(runs_dir).parts):
            continue
        results = read_json(path)
        if is_train_results(results):
            found.append((path, results))
        else:
            logger.info("Skipped %s: not a distill.train results file", path)
    if not found:
        raise ValueError(f"{runs_dir}: no results.json written by distill.train in it or below it")
    return found


def student_name(results: dict[str, Any]) -> str:
    """``DistilKoBiLSTM-Base`` for a distilled BiLSTM of preset base, ``BiLSTM-Base (no teacher)`` for its baseline;
    ``DistilKoBERT`` and ``DistilBERT (no teacher)`` for a DistilBERT student (its size is its folder's: the run
    column tells them apart)."""
    distilled_name, baseline_name = STUDENT_NAMES[results["student"]]
    preset = (results.get("preset") or "").title()
    name = (distilled_name if results["distilled"] else baseline_name) + (f"-{preset}" if preset else "")
    return name if results["distilled"] else f"{name} (no teacher)"


def student_row(path: Path, results: dict[str, Any]) -> dict[str, Any]:
    return {
        "group": DISTILLED if results["distilled"] else BASELINE,
        "model": student_name(results),
        "run": results["name"],
        "params": results["params"],
        "size_mb": results["size_mb"],
        "accuracy": results["accuracy"],
        "metrics": path.parent / METRICS_FILE,
    }


def teacher_rows(found: list[tuple[Path, dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per distinct teacher (its list of models) of the runs; a measurement one run leaves out (None) is
    taken from another run of the same teacher."""
    teachers: dict[tuple[str, ...], dict[str, Any]] = {}
    for path, results in found:
        teacher = results.get("teacher")
        if teacher is None:
            continue
        if not isinstance(teacher, dict) or not isinstance(teacher.get("models"), list) or not teacher["models"]:
            raise ValueError(f"{path}: 'teacher' must be null or an object with a non-empty list of 'models'")
        models = tuple(teacher["models"])
        model = "Teacher" if len(models) == 1 else f"Teacher (ensemble of {len(models)})"
        row = teachers.setdefault(models, {"group": TEACHER, "model": model, "run": ", ".join(models)})
        for measure in ("params", "size_mb", "accuracy"):
            if row.get(measure) is None:
                row[measure] = teacher.get(measure)
    return list(teachers.values())


def table_rows(found: list[tuple[Path, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Teachers, then distilled students, then baselines; by size within each (an unknown size last)."""
    rows = teacher_rows(found) + [student_row(path, results) for path, results in found]

    def order(row: dict[str, Any]) -> tuple:
        size, params = row["size_mb"], row["params"]
        return GROUPS.index(row["group"]), size is None, size or 0, params or 0, row["run"]

    return sorted(rows, key=order)


def size_cell(size_mb: float | None) -> str:
    """Three significant digits in KB, MB or GB (of 1,024), whichever shows it below 1,000: ``547 KB``, ``1.5 MB``."""
    if size_mb is None:
        return "-"
    if size_mb * 1024 < 999.5:
        return f"{size_mb * 1024:.3g} KB"
    if size_mb < 999.5:
        return f"{size_mb:.3g} MB"
    return f"{size_mb / 1024:.3g} GB"


def table_line(row: dict[str, Any]) -> str:
    cells = [
        row["model"],
        f"`{row['run']}`",
        "-" if row["params"] is None else f"{row['params']:,}",
        size_cell(row["size_mb"]),
        "-" if row["accuracy"] is None else f"{100 * row['accuracy']:.2f}",
    ]
    return "| " + " | ".join(cells) + " |"


def render_markdown(rows: list[dict[str, Any]]) -> str:
    """The table and a line linking the plots."""
    lines = [TABLE_HEADER, TABLE_ALIGN, *(table_line(row) for row in rows)]
    lines += ["", f"Plots: [{ACCURACY_PLOT}]({ACCURACY_PLOT}), [{CURVES_PLOT}]({CURVES_PLOT})."]
    return "\n".join(lines) + "\n"


def plot_accuracy_size(rows: list[dict[str, Any]], path: Path) -> None:
    """PNG scatter of accuracy (%) against size (MB, log scale): distilled and baselines as two series, the teacher as
    a star; each point labelled with its model. Rows without a size or an accuracy are left out."""
    figure = Figure(figsize=(7, 4.8), layout="constrained")
    ax = figure.subplots()
    styles = {TEACHER: ("*", 160, "C3"), DISTILLED: ("o", 40, "C0"), BASELINE: ("s", 40, "C1")}
    labels = {TEACHER: "teacher", DISTILLED: "distilled", BASELINE: "no teacher"}
    for group in GROUPS:
        points = [row for row in rows if row["group"] == group and None not in (row["size_mb"], row["accuracy"])]
        if not points:
            continue
        marker, size, color = styles[group]
        xs, ys = [row["size_mb"] for row in points], [100 * row["accuracy"] for row in points]
        ax.scatter(xs, ys, marker=marker, s=size, color=color, label=labels[group])
        for row, x, y in zip(points, xs, ys, strict=True):
            ax.annotate(row["model"], (x, y), xytext=(5, 5), textcoords="offset points", fontsize=8)
    ax.set_xscale("log")
    ax.margins(0.15)
    ax.set_xlabel("model size (MB, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Accuracy against model size")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    save_figure(figure, path)


def learning_curves(rows: list[dict[str, Any]]) -> list[tuple[dict[str, Any], list[int], list[float]]]:
    """Each student row with a validation accuracy in its metrics.jsonl: the row, the steps and the accuracies (%)."""
    curves = []
    for row in rows:
        if "metrics" in row:  # a student (the teacher was trained elsewhere)
            steps, values = metric_series(read_metrics(row["metrics"]), "validation_accuracy")
            if steps:
                curves.append((row, steps, [100 * value for value in values]))
    return curves


def plot_learning_curves(rows: list[dict[str, Any]], path: Path) -> None:
    """PNG of validation accuracy (%) against step, one line per student run (baselines dashed)."""
    figure = Figure(figsize=(7, 4.8), layout="constrained")
    ax = figure.subplots()
    for row, steps, values in learning_curves(rows):
        style = "--" if row["group"] == BASELINE else "-"
        marker = "." if len(steps) < 20 else None
        ax.plot(steps, values, linestyle=style, marker=marker, label=f"{row['model']} ({row['run']})")
    if ax.lines:
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center")
    ax.set_xlabel("step")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title("Learning curves")
    ax.grid(alpha=0.3)
    save_figure(figure, path)


def write_report(runs_dir: Path, output_dir: Path) -> str:
    """The table and the two plots of the runs under ``runs_dir``, written into ``output_dir``, table.md last;
    returns the Markdown."""
    rows = table_rows(find_results(runs_dir))
    markdown = render_markdown(rows)
    output_dir.mkdir(parents=True, exist_ok=True)
    plot_accuracy_size(rows, output_dir / ACCURACY_PLOT)
    plot_learning_curves(rows, output_dir / CURVES_PLOT)
    write_text(output_dir / TABLE_FILE, markdown)
    return markdown


@dataclass(kw_only=True)
class TableArguments:
    """What ``python -m distill.table`` reads."""

    runs_dir: str = required("Folder searched for distill.train results.json files.")
    output_dir: str = key("", "Folder of table.md and the two PNGs (default: --runs_dir).")

    def validate(self) -> None:
        if self.output_dir:
            require_output_place(self.output_dir, "--output_dir")


@dataclass
class TableReport:
    markdown: str
    table_file: str  # table.md; the plots are beside it


def distill_table(args: TableArguments) -> TableReport:
    """Write the table and the two plots of the runs under ``args.runs_dir`` into ``args.output_dir`` (or the runs'
    folder). ValueError or OSError names the folder or results file that cannot be read or written."""
    args.validate()
    output = Path(args.output_dir or args.runs_dir)
    with output_written(output, "--output_dir"):
        markdown = write_report(Path(args.runs_dir), output)
    return TableReport(markdown, str(output / TABLE_FILE))


def main(argv: list[str] | None = None) -> int:
    report = run_command(distill_table, TableArguments, argv, "python -m distill.table", __doc__)
    sys.stdout.write(report.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())

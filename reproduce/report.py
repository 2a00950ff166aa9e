"""The measured rows of teacher, distilled and baseline as results.json, results.md and two PNG plots.

One row per model, teacher first::

    {"name": "teacher", "params": 2345678, "size_mb": 8.9, "latency_ms_b1": 8.88, "latency_ms_b32": 135.0,
     "nsmc_accuracy": 0.8123, "nsmc_model_dir": "runs/mini/nsmc/teacher/best"}

``add_comparisons`` relates every row to the teacher; ``write_results`` writes the four files into one folder.
Plots use ``matplotlib.figure.Figure`` directly: no pyplot, so no global figure registry and no GUI backend.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from common.io import metric_series, read_metrics, save_figure, write_text

TEACHER = "teacher"
RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
ACCURACY_PLOT = "accuracy_vs_latency.png"
CURVES_PLOT = "training_curves.png"
# Context keys shown under the heading, in this order, with their labels.
CONTEXT_LABELS = {
    "preset": "preset",
    "command": "command",
    "machine": "machine",
    "date": "date",
    "seq_length": "sequence length",
    "threads": "CPU threads",
    "wall_time_s": "wall time (s)",
}
TABLE_HEADER = (
    "| model | parameters | size (MB) | latency b1 (ms) | latency b32 (ms) | speed-up b32 "
    "| NSMC accuracy (%) | retained (%) |"
)
TABLE_ALIGN = "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
# Panels of the training-curves plot: (metrics.jsonl key, panel title, y-axis label). The third is the BiLSTMs'.
CURVE_PANELS = (
    ("loss_mlm", "training masked-LM loss", "masked-LM loss"),
    ("eval_mlm_loss", "validation masked-LM loss", "masked-LM loss"),
    ("validation_accuracy", "BiLSTM validation accuracy", "NSMC accuracy (validation)"),
)


def add_comparisons(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copies of ``rows`` with ``accuracy_retained`` (accuracy / teacher's, 4 places) and ``speedup_b1``,
    ``speedup_b32`` (teacher's latency / the model's, 2 places); the teacher is the row named "teacher"."""
    teacher = next((row for row in rows if row["name"] == TEACHER), None)
    if teacher is None:
        names = ", ".join(repr(row["name"]) for row in rows)
        raise ValueError(f"no row named {TEACHER!r} to compare with (rows: {names}); measure the teacher too")
    return [
        {
            **row,
            "accuracy_retained": round(row["nsmc_accuracy"] / teacher["nsmc_accuracy"], 4),
            "speedup_b1": round(teacher["latency_ms_b1"] / row["latency_ms_b1"], 2),
            "speedup_b32": round(teacher["latency_ms_b32"] / row["latency_ms_b32"], 2),
        }
        for row in rows
    ]


def context_line(context: dict[str, Any]) -> str:
    """The known context keys that are present, e.g. 'preset: mini · command: `python -m reproduce` · ...'."""
    parts = []
    for key, label in CONTEXT_LABELS.items():
        if key not in context:
            continue
        value = context[key]
        if key == "command":
            value = f"`{value}`"
        elif key == "wall_time_s":
            value = f"{value:.0f}"
        parts.append(f"{label}: {value}")
    return " · ".join(parts)


def table_row(row: dict[str, Any]) -> str:
    """One Markdown table line; accuracy and retained accuracy in percent with 2 decimals."""
    cells = [
        row["name"],
        f"{row['params']:,}",
        f"{row['size_mb']:.1f}",
        f"{row['latency_ms_b1']:.2f}",
        f"{row['latency_ms_b32']:.2f}",
        f"{row['speedup_b32']:.2f}×",
        f"{100 * row['nsmc_accuracy']:.2f}",
        f"{100 * row['accuracy_retained']:.2f}",
    ]
    return "| " + " | ".join(cells) + " |"


def render_markdown(rows: list[dict[str, Any]], context: dict[str, Any]) -> str:
    """The results page: heading, context line, the comparison table and a line naming the plots.

    The comparison columns are always recomputed with ``add_comparisons`` (it is idempotent), so ``rows`` may be
    the raw measurements or already compared ones; either way they need a "teacher" row.
    """
    lines = ["# DistilKoBERT reproduction", "", context_line(context), "", TABLE_HEADER, TABLE_ALIGN]
    lines += [table_row(row) for row in add_comparisons(rows)]
    lines += ["", f"Plots: [{ACCURACY_PLOT}]({ACCURACY_PLOT}), [{CURVES_PLOT}]({CURVES_PLOT})."]
    return "\n".join(lines) + "\n"


def accuracy_latency_figure(rows: list[dict[str, Any]]) -> Figure:
    """NSMC accuracy (%) against CPU latency at batch 32 (ms), one marker per model, named in a legend beside the
    axes: labels written next to the points overlapped where two models sit together (a model and its int8 copy)."""
    figure = Figure(figsize=(8, 4.5), layout="constrained")
    ax = figure.subplots()
    markers = "osD^vP*Xhp"
    for index, row in enumerate(rows):
        x, y = row["latency_ms_b32"], 100 * row["nsmc_accuracy"]
        ax.scatter([x], [y], marker=markers[index % len(markers)], label=row["name"])
    ax.margins(0.1)
    ax.set_xlabel("latency at batch 32 (ms)")
    ax.set_ylabel("NSMC accuracy (%)")
    ax.set_title("NSMC accuracy against CPU latency")
    ax.grid(alpha=0.3)
    figure.legend(loc="outside right upper")
    return figure


def plot_accuracy_latency(rows: list[dict[str, Any]], path: Path) -> None:
    save_figure(accuracy_latency_figure(rows), path)


def plot_training_curves(curves: dict[str, Path], path: Path) -> None:
    """PNG of training and validation masked-LM loss against step, one line per run, and the BiLSTMs' validation
    accuracy when a run has it.

    ``curves`` maps a run name to its ``metrics.jsonl``; a missing file, or one without the key of a panel, leaves
    that run out of the panel (the BiLSTM panel is left out when no run has its key). A malformed line raises
    ``ValueError`` naming the file and line.
    """
    records = {name: read_metrics(Path(metrics)) for name, metrics in curves.items()}
    panels = [panel for panel in CURVE_PANELS if any(metric_series(run, panel[0])[0] for run in records.values())]
    panels = panels or list(CURVE_PANELS[:2])
    figure = Figure(figsize=(5.5 * len(panels), 4.2), layout="constrained")
    for ax, (key, title, ylabel) in zip(figure.subplots(1, len(panels), squeeze=False)[0], panels, strict=True):
        for index, (name, run) in enumerate(records.items()):
            steps, values = metric_series(run, key)
            if steps:  # one colour per run in both panels, even where a run has only one of the keys
                ax.plot(steps, values, color=f"C{index}", marker="." if len(steps) < 20 else None, label=name)
        if ax.lines:
            ax.legend()
        else:
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center")
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.3)
    save_figure(figure, path)


def write_results(
    rows: list[dict[str, Any]], context: dict[str, Any], curves: dict[str, Path], output_dir: Path
) -> str:
    """Write results.json, results.md, accuracy_vs_latency.png and training_curves.png into ``output_dir``
    (created if needed), each atomically and results.json last, so its presence means the report is complete;
    returns the Markdown."""
    compared = add_comparisons(rows)
    markdown = render_markdown(compared, context)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    results = json.dumps(compared, indent=2, ensure_ascii=False) + "\n"
    plot_accuracy_latency(compared, output_dir / ACCURACY_PLOT)
    plot_training_curves(curves, output_dir / CURVES_PLOT)
    write_text(output_dir / RESULTS_MD, markdown)
    write_text(output_dir / RESULTS_JSON, results)
    return markdown

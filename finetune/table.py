"""Render results.json files as the sub-task table: one row per model, one column per task.

    python -m finetune.table --results_files runs/nsmc/*/results.json runs/ner/*/results.json
    python -m finetune.table --results_files runs/*/*/results.json --names runs/distilkobert=DistilKoBERT \
        --output_file results.md

Layout of the published table: Model Size (MB), then one column per registered task (``finetune.tasks``): NSMC (acc),
Naver NER (F1), KorQuAD (Dev) (EM/F1), in percent.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

from common.config import key, required, run_command
from common.io import output_written, read_json, require_output_place, write_text
from finetune.tasks import Task, all_tasks, get_task


@dataclass(kw_only=True)
class TableArguments:
    results_files: list[str] = required("results.json files written by the finetune.TASK commands.")
    names: list[str] = key([], "MODEL=NAME: the row name of a model path or id (default: the last part of the path).")
    output_file: str | None = key(None, "Also write the table to this file.")

    def validate(self) -> None:
        for path in self.results_files:
            if not os.path.isfile(path):
                raise ValueError(
                    f"--results_files {path!r}: {'not a file' if os.path.exists(path) else 'no such file'}"
                )
        if any("=" not in item for item in self.names):
            raise ValueError("--names takes MODEL=NAME")
        if self.output_file:
            require_output_place(self.output_file, "--output_file", folder=False)


RESULT_KEYS = ("task", "model", "size_mb", "metrics")  # what a finetune command's results.json gives the table


def read_results(path: str) -> dict[str, Any]:
    """A finetune command's results.json; ValueError naming the file when it is not one, or of an unknown task."""
    result = read_json(path)
    missing = [key for key in RESULT_KEYS if not isinstance(result, dict) or key not in result]
    if missing:
        raise ValueError(f"{path}: not a results.json of a finetune command (no {', '.join(missing)})")
    try:
        task = get_task(result["task"])
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    if absent := [name for name in task.table_metrics if name not in result["metrics"]]:
        raise ValueError(f"{path}: the {task.name} metrics lack {', '.join(absent)}")
    return result


def task_cell(task: Task, metrics: dict[str, float]) -> str:
    """The table cell of one task's test metrics: its table metrics in percent, two decimals, joined by "/"."""
    return "/".join(f"{100 * metrics[name]:.2f}" for name in task.table_metrics)


def build_rows(results: list[dict[str, Any]], names: dict[str, str]) -> list[list[str]]:
    """Rows in first-seen model order; a task a model has no results for shows '-'. ``names`` maps a model path or
    id (``runs/x`` or ``runs/x/``) to its row name; one that matches no model is a ValueError (a typo would otherwise
    leave the row under its default name unnoticed)."""
    rows: dict[str, dict[str, str]] = {}
    for result in results:
        row = rows.setdefault(result["model"], {"size": f"{result['size_mb']:.0f}"})
        if result["task"] in row:
            raise ValueError(f"two {result['task']} results for {result['model']}")
        row[result["task"]] = task_cell(get_task(result["task"]), result["metrics"])
    names = {os.path.normpath(model): name for model, name in names.items()}
    if unmatched := sorted(set(names) - {os.path.normpath(model) for model in rows}):
        raise ValueError(
            f"--names {', '.join(unmatched)}: matches none of the models of the results files ({', '.join(rows)})"
        )
    return [
        [
            names.get(os.path.normpath(model), os.path.basename(model.rstrip("/")) or model),
            row["size"],
            *(row.get(task.name, "-") for task in all_tasks()),
        ]
        for model, row in rows.items()
    ]


def render(rows: list[list[str]]) -> str:
    """The Markdown table: a header with one column per registered task, then ``rows``."""
    titles = ["Model Size (MB)", *(task.column for task in all_tasks())]
    header = ["| | " + " | ".join(titles) + " |", "| --- |" + " ---: |" * len(titles)]
    return "\n".join([*header, *("| " + " | ".join(row) + " |" for row in rows)]) + "\n"


def subtask_table(args: TableArguments) -> str:
    """The sub-task table of ``args.results_files`` (Markdown), also written to ``args.output_file`` if given."""
    args.validate()
    results = [read_results(path) for path in args.results_files]
    table = render(build_rows(results, dict(item.split("=", 1) for item in args.names)))
    if args.output_file:
        with output_written(args.output_file, "--output_file"):
            write_text(args.output_file, table)
    return table


def main(argv: list[str] | None = None) -> int:
    sys.stdout.write(run_command(subtask_table, TableArguments, argv, "python -m finetune.table", __doc__))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Reproduce the DistilKoBERT recipe end to end: tokenizer, data, a teacher, a layer-subset student distilled from
it, a same-shape baseline trained without the teacher, NSMC fine-tuning of all three, the distilled classifier as an
ONNX int8 graph (``serve.export``), CPU latency, the results table and plots, and the student's release folder.

    python -m reproduce --preset mini --output runs/mini     # `make demo`: the bundled data, 2 CPU cores
    python -m reproduce --preset smoke --output runs/smoke   # every stage in about a minute (the test suite's)
    python -m reproduce --preset small --output runs/small   # one GPU
    python -m reproduce --preset full --output runs/full --set corpus='[/data/ko/*.txt.gz]'   # KoBERT, your corpus
    python -m reproduce --preset kobert-local --output runs/kobert-local   # full's shapes on a CPU, offline
    python -m reproduce --preset mini --output runs/mini-long --set teacher.train.max_steps=4000
    python -m reproduce --preset sentence-mini --output runs/mini   # the sentence-encoder recipe (reproduce.sentence)
    python -m reproduce --preset e5-local --output runs/e5-local   # multilingual-e5-small as the teacher

Presets are YAML files in reproduce/presets/ (or a path to your own); ``--set KEY=VALUE`` changes one value. Each
stage writes its own folder under --output; running the same command again skips the stages whose inputs have not
changed, and continues a stopped pretraining stage from its newest checkpoint. A failing stage is named, and the
stages before it are kept. Writes OUTPUT/results.json, results.md, accuracy_vs_latency.png and training_curves.png.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.cli import command_parser
from common.io import setup_logging, write_json
from reproduce.preset import load_preset, preset_path

if TYPE_CHECKING:  # the recipes import torch and transformers: after the arguments are checked
    from reproduce.stages import Recipe

logger = logging.getLogger("reproduce")
MARKER = "reproduce.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = command_parser("python -m reproduce", __doc__)
    parser.add_argument(
        "--preset",
        default="mini",
        help="smoke, mini, small, full, kobert-local, e5-local, sentence-mini, sentence-full, or a preset YAML file.",
    )
    parser.add_argument("--output", required=True, help="Run folder; every stage writes a folder inside it.")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Change one preset value, e.g. --set finetune.epochs=3 (repeatable; VALUE is YAML).",
    )
    args = parser.parse_args(argv)
    output = Path(args.output)
    if output.is_dir() and any(output.iterdir()) and not (output / MARKER).is_file():
        parser.error(f"--output {args.output!r} is not empty and was not written by this command; choose a new folder")
    return args


def result_rows(recipe: Recipe, latency: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per model for the results table, from the fine-tuning (or BiLSTM training) results and the latency
    measurements."""
    from reproduce.stages import BILSTMS, MODELS, onnx_row

    rows = []
    for name in recipe.compared:
        results = json.loads(recipe.results_file(name).read_text())
        accuracy = results["accuracy"] if name in BILSTMS else results["metrics"]["accuracy"]
        rows.append(
            {
                "name": name,
                "params": results["params"],
                "size_mb": results["size_mb"],
                "latency_ms_b1": round(latency["latency_ms"][name]["1"], 2),
                "latency_ms_b32": round(latency["latency_ms"][name]["32"], 2),
                "nsmc_accuracy": accuracy,
                "nsmc_model_dir": results["model_dir"],
            }
        )
    rows.append(onnx_row(recipe, rows[MODELS.index("distilled")], latency))
    return rows


def run_context(recipe: Recipe, seconds: dict[str, float], argv: list[str] | None) -> dict[str, Any]:
    """What results.md says of the run: preset, command, machine (the latency stage's), date, wall time."""
    latency = json.loads((recipe.latency.folder / "latency.json").read_text())
    return {
        "preset": recipe.preset.name,
        "command": " ".join(["python -m reproduce", *(argv if argv is not None else sys.argv[1:])]),
        "machine": latency["machine"],
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "seq_length": latency["seq_length"],
        "threads": latency["threads"],
        "wall_time_s": sum(seconds.values()),
    }


def run_sentence_recipe(args: argparse.Namespace, output: Path) -> str:
    """The sentence-encoder recipe (``reproduce.sentence``): its stages, then results.json and results.md."""
    from reproduce.sentence import SentenceRecipe, load_sentence_preset, write_sentence_results
    from reproduce.stages import StageFailed, run_stages

    recipe = SentenceRecipe(load_sentence_preset(preset_path(args.preset), args.overrides), output)
    recipe.check()
    output.mkdir(parents=True, exist_ok=True)
    write_json(output / MARKER, {"preset": args.preset, "overrides": args.overrides})
    logger.info("Sentence-encoder preset %r in %s: %d stages", recipe.preset.name, output, len(recipe.stages))
    try:
        run_stages(recipe.stages)
    except StageFailed as err:
        raise SystemExit(f"error: {err}") from err
    table = write_sentence_results(recipe)
    print(table)
    return table


def run_real_teacher_recipe(args: argparse.Namespace, output: Path, argv: list[str] | None) -> str:
    """The real-teacher recipe (``reproduce.real_teacher``): its stages, then results.json, results.md and plots."""
    from reproduce.real_teacher import RealTeacherRecipe, load_real_teacher_preset, write_real_teacher_results
    from reproduce.stages import StageFailed, run_stages

    recipe = RealTeacherRecipe(load_real_teacher_preset(preset_path(args.preset), args.overrides), output)
    recipe.check()
    output.mkdir(parents=True, exist_ok=True)
    write_json(output / MARKER, {"preset": args.preset, "overrides": args.overrides})
    logger.info("Real-teacher preset %r in %s: %d stages", recipe.preset.name, output, len(recipe.stages))
    try:
        seconds = run_stages(recipe.stages)
    except StageFailed as err:
        raise SystemExit(f"error: {err}") from err
    table = write_real_teacher_results(recipe, run_context(recipe, seconds, argv))
    write_json(output / "stage_seconds.json", seconds)
    print(table)
    return table


def main(argv: list[str] | None = None) -> str:
    args = parse_args(argv)
    from reproduce.real_teacher import is_real_teacher_preset  # the recipes once the arguments are checked
    from reproduce.report import write_results
    from reproduce.sentence import is_sentence_preset
    from reproduce.stages import BILSTMS, MODELS, Recipe, StageFailed, run_stages

    setup_logging()
    output = Path(args.output)
    try:
        if is_sentence_preset(preset_path(args.preset)):
            return run_sentence_recipe(args, output)
        if is_real_teacher_preset(preset_path(args.preset)):
            return run_real_teacher_recipe(args, output, argv)
        preset = load_preset(args.preset, args.overrides)
        recipe = Recipe(preset, output)
        recipe.check()
    except ValueError as err:
        raise SystemExit(f"error: {err}") from err
    output.mkdir(parents=True, exist_ok=True)
    write_json(output / MARKER, {"preset": args.preset, "overrides": args.overrides})
    logger.info("Reproducing preset %r in %s: %d stages", preset.name, output, len(recipe.stages))

    try:
        seconds = run_stages(recipe.stages)
    except StageFailed as err:
        raise SystemExit(f"error: {err}") from err

    latency = json.loads((recipe.latency.folder / "latency.json").read_text())
    context = run_context(recipe, seconds, argv)
    curves = {name: recipe.model_dir(name).parent / "metrics.jsonl" for name in MODELS}
    curves |= {name: recipe.results_file(name).parent / "metrics.jsonl" for name in recipe.compared if name in BILSTMS}
    table = write_results(result_rows(recipe, latency), context, curves, output)
    print(table)
    return table


if __name__ == "__main__":
    main()

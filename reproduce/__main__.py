"""Reproduce the DistilKoBERT recipe end to end: tokenizer, data, a teacher, a layer-subset student distilled from
it, a same-shape baseline trained without the teacher, NSMC fine-tuning of all three, the distilled classifier as an
ONNX int8 graph (``serve.export``), CPU latency, the results table and plots, and the student's release folder.

    python -m reproduce --preset mini --output_dir runs/mini     # `make demo`: the bundled data, 2 CPU cores
    python -m reproduce --preset smoke --output_dir runs/smoke   # every stage in about a minute (the test suite's)
    python -m reproduce --preset small --output_dir runs/small   # one GPU
    python -m reproduce --preset full --output_dir runs/full --set corpus='[/data/ko/*.txt.gz]'   # KoBERT, your corpus
    python -m reproduce --preset kobert-local --output_dir runs/kobert-local   # full's shapes on a CPU, offline
    python -m reproduce --preset mini --output_dir runs/mini-long --set teacher.train.max_steps=4000
    python -m reproduce --preset sentence-mini --output_dir runs/mini   # the sentence-encoder recipe
    python -m reproduce --preset e5-local --output_dir runs/e5-local   # multilingual-e5-small as the teacher

Presets are YAML files in reproduce/presets/ (or a path to your own); ``--set KEY=VALUE`` changes one value. Each
stage writes its own folder under --output_dir; running the same command again skips the stages whose inputs have not
changed, and continues a stopped pretraining stage from its newest checkpoint. A failing stage is named, and the
stages before it are kept. Writes OUTPUT/results.json, results.md, accuracy_vs_latency.png and training_curves.png.
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.config import key, run_command
from common.io import write_json
from reproduce.preset import load_preset, preset_path

if TYPE_CHECKING:  # the recipes import torch and transformers: after the arguments are checked
    from reproduce.stages import Recipe

logger = logging.getLogger("reproduce")
MARKER = "reproduce.json"


@dataclass(kw_only=True)
class ReproduceArguments:
    preset: str = key(
        "mini", "smoke, mini, small, full, kobert-local, e5-local, sentence-mini, sentence-full, or a preset YAML file."
    )
    output_dir: str = key("", "Run folder; every stage writes a folder inside it (default: runs/PRESET).")
    set: list[str] = key(
        [],
        "KEY=VALUE: change one preset value, e.g. --set finetune.num_train_epochs=3 (repeatable; VALUE is YAML).",
        repeatable=True,
    )

    def __post_init__(self) -> None:
        self.output_dir = self.output_dir or str(Path("runs") / Path(self.preset).stem)

    def validate(self) -> None:
        output = Path(self.output_dir)
        if output.is_dir() and any(output.iterdir()) and not (output / MARKER).is_file():
            raise ValueError(
                f"--output_dir {self.output_dir!r} is not empty and was not written by this command; "
                "choose a new folder"
            )


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


def command_line(args: ReproduceArguments) -> str:
    """The command that runs the recipe of ``args``, as results.md shows it."""
    sets = [f"--set {shlex.quote(item)}" for item in args.set]
    return " ".join(["python -m reproduce --preset", args.preset, "--output_dir", args.output_dir, *sets])


def run_context(recipe: Recipe, seconds: dict[str, float], args: ReproduceArguments) -> dict[str, Any]:
    """What results.md says of the run: preset, command, machine (the latency stage's), date, wall time."""
    latency = json.loads((recipe.latency.folder / "latency.json").read_text())
    return {
        "preset": recipe.preset.name,
        "command": command_line(args),
        "machine": latency["machine"],
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "seq_length": latency["seq_length"],
        "threads": latency["threads"],
        "wall_time_s": sum(seconds.values()),
    }


def run_sentence_recipe(args: ReproduceArguments, output: Path) -> str:
    """The sentence-encoder recipe (``reproduce.sentence``): its stages, then results.json and results.md."""
    from reproduce.sentence import SentenceRecipe, load_sentence_preset, write_sentence_results
    from reproduce.stages import run_stages

    recipe = SentenceRecipe(load_sentence_preset(preset_path(args.preset), args.set), output)
    recipe.check()
    output.mkdir(parents=True, exist_ok=True)
    write_json(output / MARKER, {"preset": args.preset, "overrides": args.set})
    logger.info("Sentence-encoder preset %r in %s: %d stages", recipe.preset.name, output, len(recipe.stages))
    run_stages(recipe.stages)
    return write_sentence_results(recipe)


def run_real_teacher_recipe(args: ReproduceArguments, output: Path) -> str:
    """The real-teacher recipe (``reproduce.real_teacher``): its stages, then results.json, results.md and plots."""
    from reproduce.real_teacher import RealTeacherRecipe, load_real_teacher_preset, write_real_teacher_results
    from reproduce.stages import run_stages

    recipe = RealTeacherRecipe(load_real_teacher_preset(preset_path(args.preset), args.set), output)
    recipe.check()
    output.mkdir(parents=True, exist_ok=True)
    write_json(output / MARKER, {"preset": args.preset, "overrides": args.set})
    logger.info("Real-teacher preset %r in %s: %d stages", recipe.preset.name, output, len(recipe.stages))
    seconds = run_stages(recipe.stages)
    table = write_real_teacher_results(recipe, run_context(recipe, seconds, args))
    write_json(output / "stage_seconds.json", seconds)
    return table


def reproduce(args: ReproduceArguments) -> str:
    """Run (or continue) the recipe of ``args.preset`` in ``args.output_dir``: every stage whose inputs changed, then
    results.json, results.md and the plots; returns the results table (Markdown). A failing stage raises
    ``StageFailed`` (a ValueError) naming it; the stages before it are kept."""
    args.validate()
    from reproduce.real_teacher import is_real_teacher_preset  # the recipes once the arguments are checked
    from reproduce.report import write_results
    from reproduce.sentence import is_sentence_preset
    from reproduce.stages import BILSTMS, MODELS, Recipe, run_stages

    output = Path(args.output_dir)
    if is_sentence_preset(preset_path(args.preset)):
        return run_sentence_recipe(args, output)
    if is_real_teacher_preset(preset_path(args.preset)):
        return run_real_teacher_recipe(args, output)
    preset = load_preset(args.preset, args.set)
    recipe = Recipe(preset, output)
    recipe.check()
    output.mkdir(parents=True, exist_ok=True)
    write_json(output / MARKER, {"preset": args.preset, "overrides": args.set})
    logger.info("Reproducing preset %r in %s: %d stages", preset.name, output, len(recipe.stages))
    seconds = run_stages(recipe.stages)
    latency = json.loads((recipe.latency.folder / "latency.json").read_text())
    context = run_context(recipe, seconds, args)
    curves = {name: recipe.model_dir(name).parent / "metrics.jsonl" for name in MODELS}
    curves |= {name: recipe.results_file(name).parent / "metrics.jsonl" for name in recipe.compared if name in BILSTMS}
    return write_results(result_rows(recipe, latency), context, curves, output)


def main(argv: list[str] | None = None) -> int:
    print(run_command(reproduce, ReproduceArguments, argv, "python -m reproduce", __doc__))
    return 0


if __name__ == "__main__":
    sys.exit(main())

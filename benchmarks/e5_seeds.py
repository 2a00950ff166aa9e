"""General distillation's gain on NSMC under other fine-tuning seeds: the e5-local recipe's distilled student and its
baseline-layers (the same layers, not distilled) fine-tuned again with each seed, to set the gain beside the spread.

    python -m benchmarks.e5_seeds --run_dir runs/e5-local --seeds 1 2

Each fine-tuning is the recipe's own (the ``config`` its ``RUN/nsmc/MODEL/results.json`` records) with ``seed``
changed, into ``RUN-seeds/MODEL-seedN``; one whose ``results.json`` is there already is read, not run again. The
recipe's runs (seed 42) come first. Writes ``benchmarks/results/e5_local_seeds.json``: per seed, both accuracies
(%) and the gain, then their means.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.config import key, required, run_command
from common.io import run_metadata, write_json

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("distilled", "baseline-layers")
RESULTS = ROOT / "benchmarks" / "results" / "e5_local_seeds.json"
# The option names a results.json written before the one flag dialect (issue 33) records, and theirs now.
RENAMED = {
    "model": "model_name_or_path",
    "train": "train_file",
    "test": "test_file",
    "output": "output_dir",
    "batch_size": "per_device_train_batch_size",
    "eval_batch_size": "per_device_eval_batch_size",
    "epochs": "num_train_epochs",
}


@dataclass(kw_only=True)
class SeedOptions:
    """What ``python -m benchmarks.e5_seeds`` reads."""

    run_dir: str = required("The e5-local recipe's output folder.")
    seeds: list[int] = key([1, 2], "Fine-tuning seeds besides the recipe's.")
    output_file: str = key(str(RESULTS), "JSON file to write.")

    def validate(self) -> None:
        missing = [model for model in MODELS if not (Path(self.run_dir) / "nsmc" / model / "results.json").is_file()]
        if missing:
            raise ValueError(f"--run_dir: {self.run_dir} has no finished NSMC fine-tuning of {', '.join(missing)}")


def read_results(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def recipe_options(config: dict[str, Any], **changes: Any) -> Any:
    """The ``NsmcArguments`` a results.json's ``config`` records (under today's names), with ``changes``."""
    from finetune.nsmc import NsmcArguments

    names = {field.name for field in dataclasses.fields(NsmcArguments)}
    recorded = {RENAMED.get(name, name): value for name, value in config.items()}
    return NsmcArguments(**{name: value for name, value in {**recorded, **changes}.items() if name in names})


def fine_tuned(run: Path, model: str, seed: int) -> dict[str, Any]:
    """The results of ``model`` fine-tuned as the recipe did, with ``seed``; run now when they are not there."""
    config = read_results(run / "nsmc" / model / "results.json")["config"]
    output = Path(f"{run}-seeds") / f"{model}-seed{seed}"
    if not (output / "results.json").is_file():
        from finetune.tasks import fine_tune

        fine_tune("nsmc", recipe_options(config, seed=seed, output_dir=str(output)))
    return read_results(output / "results.json")


def seed_row(run: Path, seed: int | None) -> dict[str, Any]:
    """Both accuracies (%) and the gain; ``seed`` None: the recipe's own runs."""
    if seed is None:
        results = {model: read_results(run / "nsmc" / model / "results.json") for model in MODELS}
    else:
        results = {model: fine_tuned(run, model, seed) for model in MODELS}
    row = {model: round(100 * result["metrics"]["accuracy"], 2) for model, result in results.items()}
    return {
        "seed": results["distilled"]["config"]["seed"],
        **row,
        "gain": round(row["distilled"] - row["baseline-layers"], 2),
    }


def compare_seeds(options: SeedOptions) -> dict[str, Any]:
    """The recipe's seed and ``options.seeds``, a row each, their means and the smallest gain, written to
    ``options.output_file``; returned with that file's name (``output_file``)."""
    options.validate()
    run = Path(options.run_dir)
    rows = [seed_row(run, None), *(seed_row(run, seed) for seed in options.seeds)]
    means = {key: round(statistics.mean(row[key] for row in rows), 2) for key in (*MODELS, "gain")}
    results = {"run": str(run), "rows": rows, "mean": means, "smallest_gain": min(row["gain"] for row in rows)}
    write_json(options.output_file, {**results, **run_metadata()})
    return {**results, "output_file": options.output_file}


def main(argv: list[str] | None = None) -> int:
    results = run_command(compare_seeds, SeedOptions, argv, "python -m benchmarks.e5_seeds", __doc__)
    for row in results["rows"]:
        print(
            f"seed {row['seed']}: distilled {row['distilled']:.2f}, baseline-layers {row['baseline-layers']:.2f}, "
            f"gain {row['gain']:+.2f}"
        )
    written = results["output_file"]
    print(f"mean gain {results['mean']['gain']:+.2f} over {len(results['rows'])} seeds; written to {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

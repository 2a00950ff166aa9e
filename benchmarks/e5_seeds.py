"""General distillation's gain on NSMC under other fine-tuning seeds: the e5-local recipe's distilled student and its
baseline-layers (the same layers, not distilled) fine-tuned again with each seed, to set the gain beside the spread.

    python benchmarks/e5_seeds.py --run runs/e5-local --seeds 1 2

Each fine-tuning is the recipe's own (the ``config`` its ``RUN/nsmc/MODEL/results.json`` records) with ``--seed``
changed, into ``RUN-seeds/MODEL-seedN``; one whose ``results.json`` is there already is read, not run again. The
recipe's runs (seed 42) come first. Writes ``benchmarks/results/e5_local_seeds.json``: per seed, both accuracies
(%) and the gain, then their means.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.cli import command_parser
from common.io import ROOT, run_metadata, write_json
from reproduce.stages import as_argv

MODELS = ("distilled", "baseline-layers")
RESULTS = ROOT / "benchmarks" / "results" / "e5_local_seeds.json"


@dataclass(frozen=True)
class SeedOptions:
    run: str  # the e5-local recipe's output folder
    seeds: tuple[int, ...] = (1, 2)  # fine-tuning seeds besides the recipe's
    output: str = str(RESULTS)


def parse_args(argv: list[str] | None = None) -> SeedOptions:
    parser = command_parser("python benchmarks/e5_seeds.py", __doc__)
    parser.add_argument("--run", required=True, help="The e5-local recipe's output folder.")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2], help="Fine-tuning seeds besides the recipe's.")
    parser.add_argument("--output", default=str(RESULTS), help="JSON file to write.")
    args = parser.parse_args(argv)
    missing = [model for model in MODELS if not (Path(args.run) / "nsmc" / model / "results.json").is_file()]
    if missing:
        parser.error(f"--run: {args.run} has no finished NSMC fine-tuning of {', '.join(missing)}")
    return SeedOptions(args.run, tuple(args.seeds), args.output)


def read_results(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def fine_tuned(run: Path, model: str, seed: int) -> dict[str, Any]:
    """The results of ``model`` fine-tuned as the recipe did, with ``seed``; run now when they are not there."""
    config = read_results(run / "nsmc" / model / "results.json")["config"]
    output = Path(f"{run}-seeds") / f"{model}-seed{seed}"
    if not (output / "results.json").is_file():
        from finetune.nsmc import main as finetune

        finetune(as_argv({**config, "seed": seed, "output": str(output)}))
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
    """The recipe's seed and ``options.seeds``, a row each, their means and the smallest gain; written to
    ``options.output``."""
    run = Path(options.run)
    rows = [seed_row(run, None), *(seed_row(run, seed) for seed in options.seeds)]
    means = {key: round(statistics.mean(row[key] for row in rows), 2) for key in (*MODELS, "gain")}
    results = {"run": str(run), "rows": rows, "mean": means, "smallest_gain": min(row["gain"] for row in rows)}
    write_json(options.output, {**results, **run_metadata()})
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    options = parse_args(argv)
    results = compare_seeds(options)
    for row in results["rows"]:
        print(
            f"seed {row['seed']}: distilled {row['distilled']:.2f}, baseline-layers {row['baseline-layers']:.2f}, "
            f"gain {row['gain']:+.2f}"
        )
    print(f"mean gain {results['mean']['gain']:+.2f} over {len(results['rows'])} seeds; written to {options.output}")
    return results


if __name__ == "__main__":
    main()

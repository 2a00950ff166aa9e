"""General distillation's gain on NSMC under other fine-tuning seeds: the e5-local recipe's distilled student and its
baseline-layers (the same layers, not distilled) fine-tuned again with each seed, to set the gain beside the spread.

    python benchmarks/e5_seeds.py --run runs/e5-local --seeds 1 2

Each fine-tuning is the recipe's own (the ``config`` its ``RUN/nsmc/MODEL/results.json`` records) with ``--seed``
changed, into ``RUN-seeds/MODEL-seedN``; one whose ``results.json`` is there already is read, not run again. The
recipe's runs (seed 42) come first. Writes ``benchmarks/results/e5_local_seeds.json``: per seed, both accuracies
(%) and the gain, then their means.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from common.cli import command_parser
from common.io import ROOT, run_metadata, write_json
from reproduce.stages import as_argv

MODELS = ("distilled", "baseline-layers")
RESULTS = ROOT / "benchmarks" / "results" / "e5_local_seeds.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = command_parser("python benchmarks/e5_seeds.py", __doc__)
    parser.add_argument("--run", required=True, help="The e5-local recipe's output folder.")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2], help="Fine-tuning seeds besides the recipe's.")
    parser.add_argument("--output", default=str(RESULTS), help="JSON file to write.")
    args = parser.parse_args(argv)
    missing = [model for model in MODELS if not (Path(args.run) / "nsmc" / model / "results.json").is_file()]
    if missing:
        parser.error(f"--run: {args.run} has no finished NSMC fine-tuning of {', '.join(missing)}")
    return args


def accuracy(results_file: Path) -> float:
    return round(100 * json.loads(results_file.read_text(encoding="utf-8"))["metrics"]["accuracy"], 2)


def fine_tuned(run: Path, model: str, seed: int) -> Path:
    """The results.json of ``model`` fine-tuned as the recipe did, with ``seed``; run now when it is not there."""
    recorded = run / "nsmc" / model / "results.json"
    config = json.loads(recorded.read_text(encoding="utf-8"))["config"]
    output = Path(f"{run}-seeds") / f"{model}-seed{seed}"
    if not (output / "results.json").is_file():
        from finetune.nsmc import main as finetune

        finetune(as_argv({**config, "seed": seed, "output": str(output)}))
    return output / "results.json"


def seed_row(run: Path, seed: int | None) -> dict[str, Any]:
    """Both accuracies and the gain; ``seed`` None: the recipe's own runs."""
    files = {model: run / "nsmc" / model / "results.json" for model in MODELS}
    if seed is not None:
        files = {model: fine_tuned(run, model, seed) for model in MODELS}
    row = {model: accuracy(path) for model, path in files.items()}
    recorded = json.loads(files["distilled"].read_text(encoding="utf-8"))["config"]["seed"]
    return {"seed": recorded, **row, "gain": round(row["distilled"] - row["baseline-layers"], 2)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    run = Path(args.run)
    rows = [seed_row(run, None), *(seed_row(run, seed) for seed in args.seeds)]
    means = {key: round(statistics.mean(row[key] for row in rows), 2) for key in (*MODELS, "gain")}
    results = {"run": str(run), "rows": rows, "mean": means, "smallest_gain": min(row["gain"] for row in rows)}
    write_json(args.output, {**results, **run_metadata()})
    for row in rows:
        print(
            f"seed {row['seed']}: distilled {row['distilled']:.2f}, baseline-layers {row['baseline-layers']:.2f}, "
            f"gain {row['gain']:+.2f}"
        )
    print(f"mean gain {means['gain']:+.2f} over {len(rows)} seeds; written to {args.output}")
    return results


if __name__ == "__main__":
    main()

"""Run every combination of a distillation config whose values may be lists: one ``distill.train`` run each.

    python -m distill.grid grid.yaml --dry-run
    python -m distill.grid grid.yaml
    python -m distill.grid grid.yaml --output_dir runs/grid_seeds --seed 1 2 3
    python -m distill.table runs/grid

with a grid.yaml such as this one, DistilKoBiLSTM's table (two sizes, each distilled and without a teacher)::

    cache_dir: runs/cache/nsmc              # python -m distill.cache_logits
    test_data: data/nsmc_test.txt.gz
    output_dir: runs/grid
    bilstm_preset: [small, base]
    alpha: [0.0, 1.0]

Every key of CONFIG is a ``distill.config.TrainConfig`` field. A list value is a grid axis (for a list-typed field
such as ``student_layers`` only a list of lists is one: ``[[0, 6], [0, 4, 8]]``); the runs are every combination,
in the order of the file's keys. A ``--key value ...`` after CONFIG replaces that key of the file (several values:
an axis). Each run trains in its own folder under output_dir, named after its axis values::

    OUTPUT/bilstm_preset-base_alpha-0.0/grid_run.yaml    the run's own config, every value single
    OUTPUT/bilstm_preset-base_alpha-0.0/results.json     written by distill.train when the run is done
    OUTPUT/grid.json                                     every run's folder, axis values and results

The grid is resumable: a run whose folder holds a results.json is skipped, and a run that stopped part-way is taken
up from its newest checkpoint (``--resume true``), or afresh if it had none. A run (finished or not) whose recorded
config differs from the grid's is an error: another output_dir keeps both. A failed run stops the grid; the runs
before it stay done, and running the grid again continues with it.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import logging
import re
import sys
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from common.checkpoints import latest_checkpoint
from common.cli import closest, command_parser
from common.config import read_preset
from common.io import setup_logging, write_json, write_text

logger = logging.getLogger("distill.grid")  # not __main__ under python -m

Train = Callable[[list[str]], dict[str, Any]]
RUN_CONFIG = "grid_run.yaml"  # a name of its own, apart from the resolved config distill.train saves beside it
RESULTS = "results.json"
GRID_RESULTS = "grid.json"
OUTPUT_DIR = "output_dir"  # the grid's key, not a run's: each run gets a folder under it
DRY_RUN = "--dry-run"


@dataclass(frozen=True)
class Run:
    """One combination: its folder name, its axis values and every other value of its config, in the file's order."""

    name: str
    axes: dict[str, Any]
    values: dict[str, Any]


def field_types(config_class: type) -> dict[str, Any]:
    """Each field of a config dataclass and its type, annotations resolved (``list[int]``, ``str | None``)."""
    hints = typing.get_type_hints(config_class)
    return {field.name: hints[field.name] for field in dataclasses.fields(config_class)}


def type_options(hint: Any) -> tuple[Any, ...]:
    """The types a field's value may have: ``str | None`` -> (str, NoneType), ``list[int]`` -> (list[int],)."""
    return typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)


def list_type(hint: Any) -> Any | None:
    """The list type among a field's types (``list[int]``), None for a scalar field."""
    return next((option for option in type_options(hint) if typing.get_origin(option) is list), None)


def coerce_scalar(value: Any, kind: Any, where: str) -> Any:
    """``value`` as a ``kind`` field reads it: YAML's ``1e-3`` is a string and ``1`` an int, both a float here."""
    wrong = ValueError(f"{where}: expected {getattr(kind, '__name__', kind)}, got {value!r}")
    if isinstance(value, list | dict):
        raise wrong
    if kind is bool:
        if not isinstance(value, bool):
            raise wrong
        return value
    if kind in (int, float):
        if isinstance(value, bool) or (kind is int and isinstance(value, float) and not value.is_integer()):
            raise wrong  # YAML's true is no number, and 1.5 no int
        try:
            return kind(value)
        except ValueError:
            raise wrong from None
    return str(value) if kind is str else value  # a type of its own (a Literal): distill.train checks it


def coerce(value: Any, hint: Any, where: str) -> Any:
    """``value`` as the field of type ``hint`` reads it, so that two spellings of one value compare (and name a
    folder) alike; ValueError naming ``where`` for a value of the wrong type."""
    options = type_options(hint)
    if value is None:  # YAML's null, or a key with nothing after it
        if type(None) in options:
            return None
        raise ValueError(f"{where}: no value; give one, or leave the key out for its default")
    listed = list_type(hint)
    if listed is not None:
        if not isinstance(value, list):
            raise ValueError(f"{where}: expected a list, got {value!r}")
        (item_type,) = typing.get_args(listed) or (Any,)
        return [coerce(item, item_type, f"{where}[{index}]") for index, item in enumerate(value)]
    kind = next((option for option in options if option is not type(None)), Any)
    return value if kind is Any else coerce_scalar(value, kind, where)


def is_axis(value: Any, hint: Any) -> bool:
    """A list is an axis, except for a list-typed field, where only a list of lists is (a plain list is one value)."""
    if not isinstance(value, list):
        return False
    return list_type(hint) is None or (bool(value) and all(isinstance(item, list) for item in value))


def check_keys(keys: Iterable[str], known: Iterable[str], where: str) -> None:
    """ValueError for the first key that is not known, naming the closest known one."""
    known = list(known)
    for key in keys:
        if key not in known:
            suggestion = closest(key, known)
            hint = f"; did you mean {suggestion}?" if suggestion else ""
            raise ValueError(f"{where}: unknown config key {key}{hint} (the keys are distill.config.TrainConfig's)")


def read_grid(path: str | Path) -> dict[str, Any]:
    """The grid file's keys and values, in the file's order."""
    return read_preset(path, "a mapping of config keys to values (or to lists of values)")


def yaml_value(text: str) -> Any:
    """A command-line value as YAML reads it (``0.5`` a float, ``true`` a bool); text YAML cannot read stays text."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_overrides(argv: list[str]) -> dict[str, list[Any]]:
    """``--key v1 [v2 ...]`` (or ``--key=v``) groups: each key and its values, read as YAML."""
    overrides: dict[str, list[Any]] = {}
    values: list[Any] | None = None
    for arg in argv:
        if arg.startswith("--"):
            key, given, value = arg.partition("=")
            if key in overrides:
                raise ValueError(f"{key} is given twice; list all its values after one {key}")
            values = overrides[key] = [yaml_value(value)] if given else []
        elif values is None:
            raise ValueError(f"{arg!r}: a value before any --key (CONFIG comes first, then --key value ...)")
        else:
            values.append(yaml_value(arg))
    if empty := [key for key, values in overrides.items() if not values]:
        raise ValueError(f"{empty[0]} needs a value")
    return overrides


def check_options(overrides: dict[str, list[Any]], fields: dict[str, Any]) -> None:
    check_keys(overrides, [f"--{name}" for name in fields] + [DRY_RUN], "command line")


def with_overrides(values: dict[str, Any], overrides: dict[str, list[Any]], fields: dict[str, Any]) -> dict[str, Any]:
    """The grid file's values with the command line's on top: one value replaces, several make an axis; all the
    values of a list-typed field make one list. The command line's keys are checked (``check_options``)."""
    merged = dict(values)
    for option, items in overrides.items():
        name = option.removeprefix("--")
        merged[name] = items if list_type(fields[name]) is not None or len(items) > 1 else items[0]
    return merged


def value_label(value: Any) -> str:
    """A value as a folder name shows it: ``0.5``, ``0-4-8`` for a list, ``runs-teacher`` for ``runs/teacher``."""
    if isinstance(value, list):
        return "-".join(value_label(item) for item in value) or "none"
    return re.sub(r"[^\w.+-]+", "-", str(value)).strip("-") or "none"


def run_name(axes: dict[str, Any]) -> str:
    """``alpha-0.5_bilstm_preset-base``: each axis as key-value, in the file's order; ``run`` for a grid of one."""
    return "_".join(f"{key}-{value_label(value)}" for key, value in axes.items()) or "run"


def grid_runs(values: dict[str, Any], fields: dict[str, Any], where: str) -> list[Run]:
    """Every combination of the axes of ``values`` (output_dir left out), in the order of the keys; ValueError for an
    unknown key, a value of the wrong type, an empty axis or two runs that would share a folder."""
    check_keys(values, fields, where)
    if isinstance(values.get(OUTPUT_DIR), list):
        raise ValueError(f"{where}: output_dir is the grid's folder, one value (each run gets a folder in it)")
    axes: dict[str, list[Any]] = {}
    single: dict[str, Any] = {}
    for key, value in values.items():
        if key == OUTPUT_DIR:
            continue
        if not is_axis(value, fields[key]):
            single[key] = coerce(value, fields[key], f"{where}: {key}")
        elif not value:
            raise ValueError(f"{where}: {key} is an empty list, which makes no runs; give it one value or more")
        else:
            axes[key] = [coerce(item, fields[key], f"{where}: {key}[{index}]") for index, item in enumerate(value)]
    runs = []
    for combination in itertools.product(*axes.values()):
        chosen = dict(zip(axes, combination, strict=True))
        run_values = {key: chosen[key] if key in chosen else single[key] for key in values if key != OUTPUT_DIR}
        runs.append(Run(run_name(chosen), chosen, run_values))
    names = [run.name for run in runs]
    if shared := sorted({name for name in names if names.count(name) > 1}):
        raise ValueError(
            f"{where}: several runs would share the folder {shared[0]!r} (a value listed twice, or values that read "
            "alike in a folder name, such as a/b and a-b)"
        )
    return runs


def grid_output_dir(values: dict[str, Any], where: str) -> Path:
    if not values.get(OUTPUT_DIR):
        raise ValueError(f"{where}: no output_dir; set output_dir in the file or pass --output_dir")
    return Path(values[OUTPUT_DIR])


def config_differences(recorded: dict[str, Any], run: Run) -> list[str]:
    """The keys of ``run`` whose recorded value is another (or missing), with both values."""
    return [
        f"{key} (recorded {recorded[key]!r}, grid {value!r})" if key in recorded else f"{key} (not recorded)"
        for key, value in run.values.items()
        if key not in recorded or recorded[key] != value
    ]


def holds_run_outputs(folder: Path) -> bool:
    """Whether a run's folder holds anything besides the config the grid wrote (a run that started)."""
    return folder.is_dir() and any(path.name != RUN_CONFIG for path in folder.iterdir())


def recorded_config(folder: Path) -> tuple[Path, dict[str, Any] | None, dict[str, Any]] | None:
    """What an earlier grid left in a run's folder: the file, the results (None if the run did not finish) and the
    config they record; None for a folder the grid has not written."""
    path = folder / RESULTS
    if path.is_file():
        try:
            results = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from None
        recorded = results.get("config") if isinstance(results, dict) else None
        if not isinstance(recorded, dict):
            raise ValueError(f"{path}: records no config, so it is not distill.train's; use another output_dir")
        return path, results, recorded
    path = folder / RUN_CONFIG
    if holds_run_outputs(folder):  # a run that started and did not finish
        return path, None, read_grid(path) if path.is_file() else {}
    return None


def finished_results(run: Run, folder: Path) -> dict[str, Any] | None:
    """The results of ``run`` if its folder holds them, None if it is still to run. ValueError if the folder holds a
    run (finished or not) of another config: skipping or continuing it would pass off another run as this one."""
    found = recorded_config(folder)
    if found is None:
        return None
    path, results, recorded = found
    if differences := config_differences(recorded, run):
        state = "finished" if results is not None else "started"
        raise ValueError(
            f"{path}: {state} with another config than the grid's run {run.name}: {'; '.join(differences)}. "
            f"Use another output_dir for this grid (or delete {folder} to run it again)"
        )
    return results


def continue_arguments(run: Run, folder: Path) -> list[str]:
    """How distill.train takes up a run that did not finish (it refuses a folder with an earlier run's outputs
    otherwise): from its newest complete checkpoint (``--resume true``), or afresh (``--overwrite true``) when it
    stopped before its first one. Nothing for a new folder, or when the grid sets resume or overwrite itself."""
    if "resume" in run.values or "overwrite" in run.values or not holds_run_outputs(folder):
        return []
    return ["--resume", "true"] if latest_checkpoint(folder) else ["--overwrite", "true"]


def write_run_config(run: Run, folder: Path) -> Path:
    """The run's single-valued config, in its folder, for ``distill.train --config``."""
    folder.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump({OUTPUT_DIR: str(folder), **run.values}, sort_keys=False, allow_unicode=True)
    path = folder / RUN_CONFIG
    write_text(path, text)
    return path


def train_run(run: Run, folder: Path, train: Train) -> dict[str, Any]:
    taking_up = continue_arguments(run, folder)
    config = write_run_config(run, folder)
    logger.info("Run %s: training in %s %s", run.name, folder, " ".join(taking_up))
    try:
        return train(["--config", str(config), *taking_up])
    except (SystemExit, ValueError, OSError) as err:  # a clean error of the run: say which run it was
        message = str(err).removeprefix("error: ")
        raise ValueError(
            f"run {run.name} failed: {message}. The runs before it are done; run the grid again to continue"
        ) from err


def default_train() -> Train:
    from distill.train import main  # only when a run trains: a dry run or --help never imports torch

    return main


def run_grid(runs: list[Run], output_dir: Path, train: Train | None = None, dry_run: bool = False) -> list[dict]:
    """Train each run that has no results yet; returns (and, unless ``dry_run``, writes to grid.json) one entry per
    run: name, folder, axes and results (None for a run a dry run would train). Every finished run's config is
    checked before any training, so a conflict stops the grid before it starts."""
    finished = {run.name: finished_results(run, output_dir / run.name) for run in runs}
    if not dry_run and train is None and None in finished.values():
        train = default_train()
    entries = []
    for run in runs:
        folder = output_dir / run.name
        results = finished[run.name]
        if results is not None:
            logger.info("Run %s: done (%s), skipped", run.name, folder / RESULTS)
        elif not dry_run:
            results = train_run(run, folder, train)
        entries.append({"name": run.name, "folder": str(folder), "axes": run.axes, "results": results})
    if not dry_run:
        write_json(output_dir / GRID_RESULTS, entries)
    return entries


def markdown_table(header: list[str], align: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows]) + "\n"


def results_table(entries: list[dict]) -> str:
    """One row per run: name, test accuracy (%) and parameters."""
    rows = [
        [entry["name"], f"{100 * entry['results']['accuracy']:.2f}", f"{entry['results']['params']:,}"]
        for entry in entries
    ]
    return markdown_table(["run", "accuracy (%)", "parameters"], ["---", "---:", "---:"], rows)


def plan_table(entries: list[dict]) -> str:
    """One row per run: name, state (done or to run) and folder."""
    rows = [[entry["name"], "to run" if entry["results"] is None else "done", entry["folder"]] for entry in entries]
    return markdown_table(["run", "state", "folder"], ["---", "---", "---"], rows)


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, dict[str, list[Any]]]:
    """The grid's own arguments and the ``--key value ...`` overrides after them."""
    parser = command_parser("python -m distill.grid", __doc__)
    parser.add_argument("config", metavar="CONFIG", help="YAML file of TrainConfig keys; a list value is a grid axis.")
    parser.add_argument(f"--{OUTPUT_DIR}", default=None, help="Folder of the run folders (default: the file's).")
    parser.add_argument(DRY_RUN, action="store_true", help="List the runs and whether each is done; train nothing.")
    parser.epilog = "Any other --KEY VALUE [VALUE ...] sets that config key for the grid (several values: an axis)."
    args, rest = parser.parse_known_args(argv)
    try:
        return args, parse_overrides(rest)
    except ValueError as err:
        parser.error(str(err))


def main(argv: list[str] | None = None, train: Train | None = None, config_class: type | None = None) -> list[dict]:
    """The command; ``train`` (``distill.train.main``) and ``config_class`` (``TrainConfig``) can be stand-ins."""
    args, overrides = parse_args(argv)
    setup_logging()
    if config_class is None:
        from distill.config import TrainConfig as config_class
    try:
        fields = field_types(config_class)
        check_options(overrides, fields)  # a mistyped option is the first thing said, as argparse would
        values = with_overrides(read_grid(args.config), overrides, fields)
        if args.output_dir:
            values[OUTPUT_DIR] = args.output_dir
        output_dir = grid_output_dir(values, args.config)
        runs = grid_runs(values, fields, args.config)
        logger.info("Grid %s: %d runs in %s", args.config, len(runs), output_dir)
        entries = run_grid(runs, output_dir, train, dry_run=args.dry_run)
    except (OSError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    sys.stdout.write(plan_table(entries) if args.dry_run else results_table(entries))
    return entries


if __name__ == "__main__":
    main()

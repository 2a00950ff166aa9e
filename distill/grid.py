"""Run every combination of a distillation config whose values may be lists: one ``distill.train`` run each.

    python -m distill.grid --grid_file grid.yaml --dry_run
    python -m distill.grid --grid_file grid.yaml
    python -m distill.grid --grid_file grid.yaml --output_dir runs/grid_seeds --seed 1 2 3
    python -m distill.table --runs_dir runs/grid

    report = distill_grid(GridArguments(grid_file="grid.yaml"), {"seed": [1, 2, 3]})   # in Python

with a grid.yaml such as this one, DistilKoBiLSTM's table (two sizes, each distilled and without a teacher)::

    cache_dir: runs/cache/nsmc              # python -m distill.cache_logits
    test_file: data/nsmc_test.txt.gz
    output_dir: runs/grid
    bilstm_preset: [small, base]
    alpha: [0.0, 1.0]

Every key of the grid file is a ``distill.train_config.TrainConfig`` field. A list value is a grid axis (for a
list-typed field such as ``student_layers`` only a list of lists is one: ``[[0, 6], [0, 4, 8]]``); the runs are every
combination, in the order of the file's keys. A ``--key value ...`` on the command line replaces that key of the file
(several values: an axis). Each run (``distill.train.distill_task``) trains in its own folder under output_dir, named
after its axis values::

    OUTPUT/bilstm_preset-base_alpha-0.0/grid_run.yaml    the run's own config, every value single
    OUTPUT/bilstm_preset-base_alpha-0.0/results.json     written by distill.train when the run is done
    OUTPUT/grid.json                                     every run's folder, axis values and results

The grid is resumable: a run whose folder holds a results.json is skipped, and a run that stopped part-way is taken
up from its newest checkpoint (``resume``), or afresh if it had none (``overwrite``). A run (finished or not) whose
recorded config differs from the grid's is an error: another output_dir keeps both. A failed run stops the grid; the
runs before it stay done, and running the grid again continues with it.
"""

from __future__ import annotations

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
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from common.checkpoints import latest_checkpoint
from common.cli import closest
from common.config import field_names, key, read_preset, required, run_command
from common.io import write_json, write_text

logger = logging.getLogger("distill.grid")  # not __main__ under python -m

PROG = "python -m distill.grid"
Train = Callable[[Any], dict[str, Any]]  # a run's config (a TrainConfig) -> its results
RUN_CONFIG = "grid_run.yaml"  # a name of its own, apart from the resolved config distill.train saves beside it
RESULTS = "results.json"
GRID_RESULTS = "grid.json"
OUTPUT_DIR = "output_dir"  # the grid's key, not a run's: each run gets a folder under it


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
    for name in keys:
        if name not in known:
            suggestion = closest(name, known)
            hint = f"; did you mean {suggestion}?" if suggestion else ""
            raise ValueError(
                f"{where}: unknown config key {name}{hint} (the keys are distill.train_config.TrainConfig's)"
            )


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
    """``--key v1 [v2 ...]`` (or ``--key=v``) groups: each key (``--max-steps`` spelled ``--max_steps``) and its
    values, read as YAML."""
    overrides: dict[str, list[Any]] = {}
    values: list[Any] | None = None
    for arg in argv:
        if arg.startswith("--"):
            option, given, value = arg.partition("=")
            option = "--" + option[2:].replace("-", "_")
            if option in overrides:
                raise ValueError(f"{option} is given twice; list all its values after one {option}")
            values = overrides[option] = [yaml_value(value)] if given else []
        elif values is None:
            raise ValueError(f"{arg!r}: a value before any --key (the grid file is --grid_file FILE)")
        else:
            values.append(yaml_value(arg))
    if empty := [key for key, values in overrides.items() if not values]:
        raise ValueError(f"{empty[0]} needs a value")
    return overrides


def check_options(overrides: dict[str, list[Any]], fields: dict[str, Any]) -> None:
    """ValueError for a ``--key`` that is neither a config key nor one of the grid's own options (whose names are
    suggested too: ``--dry`` is ``--dry_run``)."""
    own = [f"--{name}" for name in field_names(GridArguments) if name not in fields]
    check_keys(overrides, [f"--{name}" for name in fields] + own, "command line")


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
    for name, value in values.items():
        if name == OUTPUT_DIR:
            continue
        if not is_axis(value, fields[name]):
            single[name] = coerce(value, fields[name], f"{where}: {name}")
        elif not value:
            raise ValueError(f"{where}: {name} is an empty list, which makes no runs; give it one value or more")
        else:
            axes[name] = [coerce(item, fields[name], f"{where}: {name}[{i}]") for i, item in enumerate(value)]
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


def continue_settings(run: Run, folder: Path) -> dict[str, bool]:
    """How distill.train takes up a run that did not finish (it refuses a folder with an earlier run's outputs
    otherwise): from its newest complete checkpoint (``resume``), or afresh (``overwrite``) when it stopped before its
    first one. Nothing for a new folder, or when the grid sets resume or overwrite itself."""
    if "resume" in run.values or "overwrite" in run.values or not holds_run_outputs(folder):
        return {}
    return {"resume": True} if latest_checkpoint(folder) else {"overwrite": True}


def write_run_config(run: Run, folder: Path) -> Path:
    """The run's single-valued config, in its folder (``distill.train --config`` reads it as it is)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump({OUTPUT_DIR: str(folder), **run.values}, sort_keys=False, allow_unicode=True)
    path = folder / RUN_CONFIG
    write_text(path, text)
    return path


def train_run(run: Run, folder: Path, train: Train, config_class: type) -> dict[str, Any]:
    taking_up = continue_settings(run, folder)
    write_run_config(run, folder)
    logger.info("Run %s: training in %s %s", run.name, folder, " ".join(f"--{name}" for name in taking_up))
    try:
        return train(config_class(**{OUTPUT_DIR: str(folder), **run.values, **taking_up}))
    except (ValueError, OSError) as err:  # a clean error of the run: say which run it was
        raise ValueError(
            f"run {run.name} failed: {err}. The runs before it are done; run the grid again to continue"
        ) from err


def default_train() -> Train:
    from distill.train import distill_task  # only when a run trains: a dry run or --help never imports torch

    return distill_task


def run_grid(
    runs: list[Run],
    output_dir: Path,
    train: Train | None = None,
    dry_run: bool = False,
    config_class: type | None = None,
) -> list[dict]:
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
            results = train_run(run, folder, train, config_class)
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


@dataclass(kw_only=True)
class GridArguments:
    """What ``python -m distill.grid`` reads besides the ``--KEY VALUE ...`` settings of the grid's keys."""

    grid_file: str = required(
        "YAML file of distill.train keys (TrainConfig's); a list value is a grid axis. Any other --KEY VALUE "
        "[VALUE ...] on the command line sets that key for the grid (several values: an axis)."
    )
    output_dir: str = key("", "Folder of the run folders (default: the grid file's output_dir).")
    dry_run: bool = key(False, "List the runs and whether each is done; train nothing.")

    def validate(self) -> None:
        if Path(self.grid_file).is_dir():
            raise ValueError(f"--grid_file {self.grid_file!r}: a folder, not a YAML file")
        if not Path(self.grid_file).is_file():
            raise ValueError(f"--grid_file: no such file: {self.grid_file}")


@dataclass
class GridReport:
    output_dir: str
    dry_run: bool
    entries: list[dict[str, Any]]  # per run: name, folder, axes and results (None: not run yet)


def distill_grid(
    args: GridArguments,
    overrides: dict[str, Any] | None = None,
    train: Train | None = None,
    config_class: type | None = None,
) -> GridReport:
    """Train every run of the grid that is not done yet (none with ``dry_run``). ``overrides`` replace keys of the
    file: ``{"alpha": 0.5, "seed": [1, 2, 3]}`` (several values make an axis; the values of a list-typed key make one
    list, ``{"student_layers": [0, 4]}``).
    ``train`` (``distill.train.distill_task``) and ``config_class`` (``TrainConfig``) can be stand-ins. ValueError or
    OSError names the key, file or run that cannot work; a failed run stops the grid, the runs before it done."""
    args.validate()
    if config_class is None:
        from distill.train_config import TrainConfig as config_class
    fields = field_types(config_class)
    overrides = {
        f"--{name.removeprefix('--')}": values if isinstance(values, list) else [values]
        for name, values in (overrides or {}).items()
    }
    check_options(overrides, fields)
    values = with_overrides(read_grid(args.grid_file), overrides, fields)
    if args.output_dir:
        values[OUTPUT_DIR] = args.output_dir
    output_dir = grid_output_dir(values, args.grid_file)
    runs = grid_runs(values, fields, args.grid_file)
    logger.info("Grid %s: %d runs in %s", args.grid_file, len(runs), output_dir)
    entries = run_grid(runs, output_dir, train, args.dry_run, config_class)
    return GridReport(str(output_dir), args.dry_run, entries)


def split_arguments(argv: list[str]) -> tuple[list[str], list[str]]:
    """The grid's own options (``GridArguments``', ``--config``, ``--help``) and the others (the grid's keys), each
    option with the values after it; a value before any option goes with the others (which refuse it)."""
    own_options = {f"--{name}" for name in field_names(GridArguments)} | {"--config", "--help", "-h"}
    own: list[str] = []
    others: list[str] = []
    target = others
    for arg in argv:
        if arg.startswith("--") or arg == "-h":
            name = arg.split("=", 1)[0]
            target = own if "--" + name[2:].replace("-", "_") in own_options or name == "-h" else others
        target.append(arg)
    return own, others


def main(argv: list[str] | None = None, train: Train | None = None, config_class: type | None = None) -> int:
    """The command; ``train`` and ``config_class`` can be stand-ins (see ``distill_grid``)."""
    argv = sys.argv[1:] if argv is None else argv
    own, others = split_arguments(argv)
    overrides: dict[str, list[Any]] = {}
    if not {"-h", "--help"} & set(own):
        if config_class is None:
            from distill.train_config import TrainConfig as config_class
        try:  # a mistyped option is the first thing said, before the grid file is looked at, as argparse would
            overrides = parse_overrides(others)
            check_options(overrides, field_types(config_class))
        except ValueError as err:
            sys.stderr.write(f"{PROG}: error: {err} (see {PROG} --help)\n")
            raise SystemExit(2) from err
    stage = partial(distill_grid, overrides=overrides, train=train, config_class=config_class)
    report = run_command(stage, GridArguments, own, PROG, __doc__)
    sys.stdout.write(plan_table(report.entries) if report.dry_run else results_table(report.entries))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Run configurations: a YAML preset loaded into a typed dataclass, with ``--key value`` overrides on top.

    config = load_config(DistillationConfig, "pretrain/configs/tiny.yaml", ["--max_steps", "100", "--seed", "1"])

Parsing is transformers' ``HfArgumentParser`` over the dataclass (lists as ``--student_layers 0 4 8``, booleans as
``--resume``, ``--resume true`` or ``--no_fold_token_type``); a preset's values become the defaults the command line
overrides. Unknown keys, in the file or on the command line, are errors that name the closest key. A config class
declares its fields with ``key(default, help)`` and has a ``validate()`` that raises ValueError for values that cannot
work. Used by ``pretrain/run.py`` (``DistillationConfig``) and ``distill.train`` (``TrainConfig``).
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import yaml
from transformers import HfArgumentParser

from common.cli import closest, parser_options
from common.io import open_text

Config = TypeVar("Config")


def key(default: Any, help: str) -> Any:
    """A config field with its ``--help`` text (a list default gets its own copy per instance)."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


class ConfigParser(HfArgumentParser):
    """``HfArgumentParser`` over one config dataclass that raises ValueError instead of exiting, so callers (the
    recipe's preset checks, a run's start-up errors) report bad values their own way."""

    def __init__(self, config_class: type, **kwargs: Any) -> None:
        super().__init__(config_class, **{"allow_abbrev": False, **kwargs})
        self.config_class = config_class
        # HfArgumentParser gives the --no_X flag of a boolean that defaults to true the help of X, which then reads as
        # the opposite of what the flag does.
        for action in self._actions:
            if action.option_strings and action.option_strings[0].startswith("--no_"):
                action.help = f"Turn {action.option_strings[0].replace('--no_', '--', 1)} off."

    def error(self, message: str) -> NoReturn:
        raise ValueError(message)


def as_argv(values: dict[str, Any]) -> list[str]:
    """Preset values as the command line would give them: ``{"student_layers": [0, 4]}`` -> ``--student_layers 0 4``."""
    argv = []
    for name, value in values.items():
        if value is None or value == []:  # argparse has no spelling of an empty list: the default stands
            continue
        argv += [f"--{name}", *(map(str, value) if isinstance(value, list) else [str(value)])]
    return argv


def field_names(config_class: type) -> list[str]:
    return [f.name for f in dataclasses.fields(config_class)]


def parse(parser: ConfigParser, argv: list[str]) -> Any:
    """The config ``argv`` gives over the parser's defaults; an unknown ``--key`` is an error."""
    *outputs, unknown = parser.parse_args_into_dataclasses(argv, return_remaining_strings=True)
    if unknown:
        names = field_names(parser.config_class)
        keys = [arg.split("=")[0].lstrip("-").replace("-", "_") for arg in unknown if arg.startswith("--")] or unknown
        close = closest(keys[0], names)
        hint = f"; did you mean --{close}?" if close else f"; known keys: {', '.join(names)}"
        raise ValueError(f"unknown config keys {keys}{hint}")
    return outputs[0]


def config_from_dict(config_class: type[Config], values: dict[str, Any], where: str = "") -> Config:
    """A checked config from plain values (a preset's YAML types, or strings)."""
    try:
        config = parse(ConfigParser(config_class), as_argv(values))
    except ValueError as err:
        raise ValueError(f"{where}: {err}" if where else str(err)) from None
    config.validate()
    return config


def read_preset(path: str | Path, expected: str = "a mapping of config keys to values") -> dict[str, Any]:
    """A YAML file's keys and values, in the file's order; a file that is not ``expected`` (an empty one too) is a
    ValueError."""
    try:
        with open_text(path) as f:
            values = yaml.safe_load(f)
    except yaml.YAMLError as err:  # its message runs over several lines: the line and the problem make one
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(err, "problem", None) or " ".join(str(err).split())
        raise ValueError(f"{where}: not valid YAML ({problem})") from None
    if values is None:  # an empty file, or comments alone: most likely not the file meant
        raise ValueError(f"{path}: no settings in it (empty, or comments alone); expected {expected}")
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected {expected}")
    return values


def load_config(config_class: type[Config], path: str | Path | None, overrides: list[str] | None = None) -> Config:
    """A YAML preset (optional) with command-line ``--key value`` overrides on top, every key and value checked."""
    parser = ConfigParser(config_class)
    if path is not None:
        values = read_preset(path)  # its errors name the file already
        try:
            preset = parse(parser, as_argv(values))
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
        parser.set_defaults(**dataclasses.asdict(preset))
    config = parse(parser, overrides or [])
    config.validate()
    return config


def build_parser(config_class: type, prog: str, doc: str | None, example: str) -> argparse.ArgumentParser:
    """The command line of a run, for ``--help``: ``--config PRESET`` and every config key with its default."""
    parser = ConfigParser(config_class, **parser_options(prog, doc))
    parser.add_argument("--config", default=None, help=f"YAML preset, e.g. {example}.")
    return parser


def parse_command_line(
    config_class: type[Config], prog: str, doc: str | None, example: str, argv: list[str] | None
) -> Config:
    """``--config PRESET``, then any config key as ``--key value`` over it; ``--help`` lists every key.

    Raises ValueError naming a bad key or value (and the preset file, when the value is the preset's)."""
    build_parser(config_class, prog, doc, example).parse_known_args(argv)  # answers --help
    preset = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    preset.add_argument("--config", default=None)
    known, overrides = preset.parse_known_args(argv)
    if known.config is not None and not Path(known.config).is_file():
        problem = "a folder, not a YAML file" if Path(known.config).is_dir() else "no such file"
        raise ValueError(f"--config {known.config!r}: {problem}")
    return load_config(config_class, known.config, overrides)


def save_config(config: Any, path: str | Path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(dataclasses.asdict(config), f, sort_keys=False, allow_unicode=True)


@dataclass(frozen=True)
class ConfigCommand:
    """The three ways a run reads one config class, bound to it: ``PRETRAIN = ConfigCommand(DistillationConfig,
    "pretrain/configs/tiny.yaml")`` gives ``PRETRAIN.load(path, overrides)``, ``PRETRAIN.from_dict(values)`` and
    ``PRETRAIN.parse_args(prog, doc, argv)``; ``example`` is the preset ``--help`` names."""

    config_class: type
    example: str

    def load(self, path: str | Path | None, overrides: list[str] | None = None) -> Any:
        return load_config(self.config_class, path, overrides)

    def from_dict(self, values: dict[str, Any], where: str = "") -> Any:
        return config_from_dict(self.config_class, values, where)

    def parse_args(self, prog: str, doc: str | None, argv: list[str] | None) -> Any:
        return parse_command_line(self.config_class, prog, doc, self.example, argv)

    def parse_or_exit(self, prog: str, doc: str | None, argv: list[str] | None) -> Any:
        """``parse_args`` for a command's shell: a bad key or value ends the command in one line."""
        try:
            return self.parse_args(prog, doc, argv)
        except ValueError as err:
            raise SystemExit(f"error: {err}") from err

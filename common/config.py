"""Options of every command: a typed dataclass, read from the command line and an optional YAML preset.

    @dataclass(kw_only=True)
    class ExportArguments:
        model_name_or_path: str = required("Model folder.")
        int8: bool = key(False, "Quantize the weights to int8.")

        def validate(self) -> None: ...          # ValueError naming the option, for values that cannot work

    def export(args: ExportArguments) -> ExportReport: ...   # the stage: what recipes and Python users call

    def main(argv: list[str] | None = None) -> int:          # the command: a thin shell
        report = run_command(export, ExportArguments, argv, "python -m serve.export", __doc__)
        print(f"wrote {report.output_dir}")
        return 0

Parsing is transformers' ``HfArgumentParser`` over the dataclass, so every command speaks the dialect of Hugging
Face's examples: ``--output_dir``, lists as ``--student_layers 0 4 8``, booleans as ``--resume``, ``--resume true`` or
``--no_fold_token_type``; the kebab spelling (``--output-dir``) is accepted too, and ``--help`` shows the snake one.
``--config FILE.yaml`` gives any option a value (the command line overrides it). Unknown options, in the file or on
the command line, are errors that name the closest option; abbreviations are refused.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import yaml
from transformers import HfArgumentParser

from common.cli import closest, parser_options
from common.io import bundled_path, first_process, open_text, setup_logging

Config = TypeVar("Config")
Result = TypeVar("Result")


def key(default: Any, help: str, repeatable: bool = False) -> Any:
    """A config field with its ``--help`` text (a list default gets its own copy per instance). A ``repeatable``
    list option adds up over repeats (``--set a=1 --set b=2``) instead of the last one winning."""
    metadata = {"help": help, **({"action": "extend"} if repeatable else {})}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def required(help: str, repeatable: bool = False) -> Any:
    """An option without a default: the command line (or the preset) must give it; a field of a
    ``dataclass(kw_only=True)``, so that it may follow fields with defaults. ``repeatable``: as for ``key``."""
    return field(metadata={"help": help, **({"action": "extend"} if repeatable else {})})


class ConfigParser(HfArgumentParser):
    """``HfArgumentParser`` over one config dataclass that raises ValueError instead of exiting, so callers (the
    recipe's preset checks, a run's start-up errors) report bad values their own way."""

    def __init__(self, config_class: type, required_options: bool = True, **kwargs: Any) -> None:
        super().__init__(config_class, **{"allow_abbrev": False, **kwargs})
        self.config_class = config_class
        if not required_options:  # a preset gives some options, the command line the others
            for action in self._actions:
                action.required = False
        # HfArgumentParser gives the --no_X flag of a boolean that defaults to true the help of X, which then reads as
        # the opposite of what the flag does.
        for action in self._actions:
            if action.option_strings and action.option_strings[0].startswith("--no_"):
                action.help = f"Turn {action.option_strings[0].replace('--no_', '--', 1)} off."

    def error(self, message: str) -> NoReturn:
        # argparse names an option by all its spellings ("--output_dir/--output-dir"): one is enough.
        raise ValueError(re.sub(r"(--\w+)/--[\w-]+", r"\1", message))

    def set_preset(self, values: dict[str, Any]) -> None:
        """A preset's values as defaults: an option it gives is no longer required on the command line."""
        self.set_defaults(**values)
        for action in self._actions:
            if action.dest in values:
                action.required = False


def as_argv(values: dict[str, Any]) -> list[str]:
    """Preset values as the command line would give them: ``{"student_layers": [0, 4]}`` -> ``--student_layers 0 4``."""
    argv = []
    for name, value in values.items():
        if value is None or value == []:  # argparse has no spelling of an empty list: the default stands
            continue
        argv += [f"--{name}", *(map(str, value) if isinstance(value, list) else [str(value)])]
    return argv


def validate(options: Any) -> None:
    """The options' own checks (their ``validate()``, if they have one): ValueError naming what cannot work."""
    if hasattr(options, "validate"):
        options.validate()


def field_names(config_class: type) -> list[str]:
    return [f.name for f in dataclasses.fields(config_class)]


def parse(parser: ConfigParser, argv: list[str]) -> Any:
    """The options ``argv`` gives over the parser's defaults; an unknown ``--key`` is an error naming the closest."""
    try:
        *outputs, unknown = parser.parse_args_into_dataclasses(argv, return_remaining_strings=True)
    except ValueError:  # a missing option: an unknown one beside it (an old spelling?) is the likelier mistake
        unknown = ConfigParser(parser.config_class, required_options=False).parse_known_args(argv)[1]
        if not unknown:
            raise
    if unknown:
        given = next((arg.split("=")[0] for arg in unknown if arg.startswith("--")), None)
        spelled = given.replace("-", "_").replace("__", "--", 1) if given else None
        options = [f"--{name}" for name in field_names(parser.config_class)]
        close = closest(spelled, options) if spelled else None
        hint = f"; did you mean {close}?" if close else ""
        raise ValueError(f"unrecognized arguments: {' '.join(unknown)}{hint}")
    return outputs[0]


def config_from_dict(config_class: type[Config], values: dict[str, Any], where: str = "", check: bool = True) -> Config:
    """A config from plain values (a preset's YAML types, or strings), every key and type checked, and its values
    too unless ``check`` is false (a recipe's later stage, whose inputs earlier stages write)."""
    try:
        config = parse(ConfigParser(config_class), as_argv(values))
        if check:
            validate(config)
    except ValueError as err:
        raise ValueError(f"{where}: {err}" if where else str(err)) from None
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
    return with_bundled_paths(values)


def with_bundled_paths(value: Any) -> Any:
    """Every ``data/...`` path in a preset's values found where it is (``common.io.bundled_path``): a preset runs
    from any folder, and from an installed wheel, as from the checkout."""
    if isinstance(value, dict):
        return {name: with_bundled_paths(item) for name, item in value.items()}
    if isinstance(value, list):
        return [with_bundled_paths(item) for item in value]
    return bundled_path(value) if isinstance(value, str) else value


def load_config(config_class: type[Config], path: str | Path | None, overrides: list[str] | None = None) -> Config:
    """A YAML preset (optional) with command-line ``--key value`` overrides on top, every key and value checked."""
    parser = ConfigParser(config_class)
    if path is not None:
        values = read_preset(path)  # its errors name the file already
        try:
            preset = parse(ConfigParser(config_class, required_options=False), as_argv(values))
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
        parser.set_preset({name: getattr(preset, name) for name in values})
    config = parse(parser, overrides or [])
    validate(config)
    return config


def build_parser(config_class: type, prog: str, doc: str | None, example: str) -> argparse.ArgumentParser:
    """The command line of a run, for ``--help``: ``--config PRESET`` and every config key with its default."""
    parser = ConfigParser(config_class, **parser_options(prog, doc))
    preset = f"YAML preset, e.g. {example}" if example else "YAML file of option values"
    parser.add_argument("--config", default=None, help=f"{preset}; the command line overrides its values.")
    return parser


def parse_command_line(
    config_class: type[Config], prog: str, doc: str | None, example: str, argv: list[str] | None
) -> Config:
    """``--config PRESET``, then any config key as ``--key value`` over it; ``--help`` lists every key.

    Raises ValueError naming a bad key or value (and the preset file, when the value is the preset's)."""
    argv = sys.argv[1:] if argv is None else argv
    if {"-h", "--help"} & set(argv):
        build_parser(config_class, prog, doc, example).parse_known_args(["--help"])
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
    """The ways a run reads one config class, bound to it: ``PRETRAIN = ConfigCommand(DistillationConfig,
    "pretrain/configs/tiny.yaml")`` gives ``PRETRAIN.load(path, overrides)`` and ``PRETRAIN.from_dict(values)``;
    ``example`` is the preset the command's ``--help`` names."""

    config_class: type
    example: str

    def load(self, path: str | Path | None, overrides: list[str] | None = None) -> Any:
        return load_config(self.config_class, path, overrides)

    def from_dict(self, values: dict[str, Any], where: str = "") -> Any:
        return config_from_dict(self.config_class, values, where)


def run_command(
    stage: Callable[[Config], Result],
    options_class: type[Config],
    argv: list[str] | None,
    prog: str,
    doc: str | None,
    example: str = "",
) -> Result:
    """The thin shell of a command: its options read (``--config FILE.yaml``, then ``--key value``) and checked, then
    ``stage(options)``. A bad option ends the command in one line naming it (exit 2, as argparse's errors do), as
    does a failure the stage reports as ValueError or OSError naming its file or option (exit 1); what the stage
    returns is returned, for the command to print."""
    setup_logging(first_process())  # the other processes of a launch log warnings alone
    try:
        options = parse_command_line(options_class, prog, doc, example, argv)
    except ValueError as err:
        sys.stderr.write(f"{prog}: error: {err} (see {prog} --help)\n")
        raise SystemExit(2) from err
    try:
        return stage(options)
    except (ValueError, OSError) as err:
        # The processes of a launch fail alike: the first says why, once.
        raise SystemExit(f"error: {err}" if first_process() else 1) from err

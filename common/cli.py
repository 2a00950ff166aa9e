"""The command line every command shares: one parser factory, so that all of them read and answer alike.

    parser = command_parser("python -m finetune.nsmc", __doc__)

The parser's usage line shows the command as typed, its description is the first paragraph of the module docstring,
``--help`` shows each option's default, and an option must be spelled in full: argparse would otherwise take
``--epoch`` for ``--epochs`` (or ``--set`` for ``--settings``) without a word. An unknown option is an error that
names the closest known one. Imports nothing of ours, so any command may use it.
"""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Iterable
from typing import Any, NoReturn


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends ``(default: X)`` to an option's help, except where there is nothing to show: no default (None, an
    empty string or list) or a flag that takes no value (its default is its absence)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.nargs == 0 or action.default in (None, "", []):
            return action.help
        return super()._get_help_string(action)


def first_paragraph(doc: str | None) -> str:
    """The first paragraph of a docstring (what the command does), as one line."""
    return " ".join((doc or "").strip().split("\n\n")[0].split())


def parser_options(prog: str, doc: str | None) -> dict[str, Any]:
    """The ``ArgumentParser`` settings of every command, also for parsers of another class (``HfArgumentParser``)."""
    return {"prog": prog, "description": first_paragraph(doc), "formatter_class": HelpFormatter, "allow_abbrev": False}


def initials(option: str) -> str:
    """``--learning-rate`` -> ``lr``: the short names people type (``--lr``, ``--bs``)."""
    return "".join(word[0] for word in re.split(r"[-_]+", option.lstrip("-")) if word)


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice ``word`` most likely meant: one it begins (an abbreviation), else one whose initials it is, else
    the most similar, else None. ``--help`` only when abbreviated: the error already points there (``--lr`` was
    answered "did you mean --help?")."""
    choices = list(choices)
    starting = [choice for choice in choices if choice.startswith(word)]
    options = [choice for choice in choices if choice not in ("-h", "--help")]
    initialled = [choice for choice in options if len(word.lstrip("-")) > 1 and initials(choice) == word.lstrip("-")]
    similar = difflib.get_close_matches(word, options, n=1)
    return (starting or initialled or similar or [None])[0]


class CommandParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose error for an unknown option suggests the known option closest to it, and whose
    errors are one line (the usage block would bury them; ``--help`` shows it)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_args(self, args: Any = None, namespace: Any = None) -> argparse.Namespace:
        parsed, unknown = self.parse_known_args(args, namespace)
        if unknown:
            self.unknown_arguments(unknown)
        return parsed

    def unknown_arguments(self, unknown: list[str]) -> NoReturn:
        message = f"unrecognized arguments: {' '.join(unknown)}"
        given = next((arg.split("=")[0] for arg in unknown if arg.startswith("--")), None)
        known = [option for action in self._actions for option in action.option_strings]
        suggestion = closest(given, known) if given else None
        self.error(message + (f"; did you mean {suggestion}?" if suggestion else ""))


def command_parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    """The parser of a command: ``prog`` as the user types it (``python -m finetune.nsmc``), its docstring."""
    return CommandParser(**parser_options(prog, doc))


MIXED_PRECISION = ("no", "fp16", "bf16")  # accelerate's names


def add_mixed_precision(
    parser: argparse.ArgumentParser, help: str = "Compute in bf16 or fp16 (GPUs), or in float32 (no)."
) -> None:
    """``--mixed-precision``, as every command that runs a model on GPUs takes it."""
    parser.add_argument("--mixed-precision", choices=MIXED_PRECISION, default="no", help=help)

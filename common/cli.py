"""How every command's command line reads and answers (``common.config.run_command`` builds the parser): the usage
line shows the command as typed, its description is the first paragraph of the module docstring, ``--help`` shows
each option once, in snake case, with its default, and an unknown option is answered with the closest known one
(abbreviations are refused: argparse would otherwise take ``--epoch`` for ``--epochs`` without a word). Imports
nothing of ours, so any module may use it.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import re
from collections.abc import Iterable
from typing import Any


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends ``(default: X)`` to an option's help, except where there is nothing to show: no default (None, an
    empty string or list) or a flag that takes no value (its default is its absence)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.nargs == 0 or action.default in (None, "", []) or action.required:
            return action.help
        return super()._get_help_string(action)

    def _format_action_invocation(self, action: argparse.Action) -> str:
        """One spelling per option: ``--output_dir OUTPUT_DIR``, not also the ``--output-dir`` that
        ``HfArgumentParser`` accepts beside it (``-h, --help`` stays as it is)."""
        if len(action.option_strings) > 1 and action.option_strings[0].startswith("--"):
            action = copy.copy(action)
            action.option_strings = action.option_strings[:1]
        return super()._format_action_invocation(action)


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

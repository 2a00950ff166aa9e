"""The README as a newcomer walks it: every ```console and ```python block, in order, in a copy of the repository with
no ../shared beside it, succeeds and prints what the README shows.

Conventions the README follows so that this test can read it:
- ```console blocks: lines starting with ``$ `` are commands (a trailing ``\\`` continues one); the lines after a
  command, up to the next, are what it prints. Each printed line must appear in the command's output (stdout and
  stderr interleaved, as a terminal shows them), in that order; other output lines may come between. Numbers match
  any number (timings, sizes and scores vary from machine to machine); ``...`` matches anything.
- ```python blocks run as a script; a comment line right after a ``print(...)`` line (``# [2, 4958, ...]``) is what
  that print shows, matched the same way.
- Commands that cannot run on a fresh clone (several GPUs, the Hub, data you bring) are in ```bash blocks, which are
  not run.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import ROOT

README = ROOT / "README.md"
BLOCK = re.compile(r"^```(console|python)\n(.*?)^```", re.MULTILINE | re.DOTALL)
NUMBER = r"-?\d[\d,]*(?:\.\d+)?(?:e-?\d+)?"
STEP_SECONDS = 300


@dataclass
class Step:
    line: int  # where the README shows it
    kind: str  # "console" or "python"
    source: str  # the command, or the script
    expected: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"README.md:{self.line}"


def console_steps(body: str, line: int) -> list[Step]:
    steps: list[Step] = []
    continued = False
    for offset, text in enumerate(body.splitlines()):
        if continued:
            steps[-1].source += "\n" + text
        elif text.startswith("$ "):
            steps.append(Step(line + 1 + offset, "console", text[2:]))
        elif text.strip() and steps:
            steps[-1].expected.append(text)
        continued = bool(steps) and text.endswith("\\") and (continued or text.startswith("$ "))
    return steps


def python_step(body: str, line: int) -> Step:
    lines = body.splitlines()
    expected = [
        text.removeprefix("# ")
        for previous, text in itertools.pairwise(lines)
        if previous.lstrip().startswith("print(") and text.startswith("# ")
    ]
    return Step(line + 1, "python", body, expected)


def readme_steps(text: str) -> list[Step]:
    steps: list[Step] = []
    for match in BLOCK.finditer(text):
        kind, body = match.groups()
        line = text.count("\n", 0, match.start()) + 1
        steps += console_steps(body, line) if kind == "console" else [python_step(body, line)]
    return steps


def pattern(expected: str) -> re.Pattern[str]:
    """A loose match for one shown line: numbers match any number, ``...`` anything, the rest literally."""
    parts = re.split(rf"(\.\.\.|{NUMBER})", expected.strip())
    regex = "".join(
        ".*" if part == "..." else NUMBER if re.fullmatch(NUMBER, part) else re.escape(part) for part in parts
    )
    return re.compile(regex)


def missing_lines(expected: list[str], output: str) -> list[str]:
    """The shown lines not found in ``output`` in order (empty when all are)."""
    lines, position = output.splitlines(), 0
    for shown in expected:
        regex = pattern(shown)
        found = next((i for i in range(position, len(lines)) if regex.search(lines[i])), None)
        if found is None:
            return expected[expected.index(shown) :]
        position = found + 1
    return []


STEPS = readme_steps(README.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def newcomer(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A copy of the repository's files (what a clone has) with no ../shared beside it, and the steps' outcomes."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True
    )
    copy = tmp_path_factory.mktemp("newcomer") / "distilkobert"
    for name in listed.stdout.splitlines():
        if (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    assert not (copy.parent / "shared").exists()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(copy)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # `python` is this environment's
    return {"dir": copy, "env": env, "failed": None}


def test_the_readme_has_steps() -> None:
    kinds = {step.kind for step in STEPS}
    assert kinds == {"console", "python"} and len(STEPS) >= 10


@pytest.mark.parametrize("step", STEPS, ids=str)
def test_readme_step(step: Step, newcomer: dict[str, object]) -> None:
    if newcomer["failed"] is not None:
        pytest.skip(f"an earlier step failed ({newcomer['failed']})")
    newcomer["failed"] = step
    command = ["bash", "-c", step.source] if step.kind == "console" else [sys.executable, "-c", step.source]
    # stderr into stdout, interleaved as a terminal shows them
    result = subprocess.run(
        command,
        cwd=newcomer["dir"],
        env=newcomer["env"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=STEP_SECONDS,
    )
    output = result.stdout
    assert result.returncode == 0, f"{step}: {step.source}\nexited {result.returncode}:\n{output[-3000:]}"
    missing = missing_lines(step.expected, output)
    assert not missing, f"{step}: {step.source}\ndoes not print {missing[0]!r}; it printed:\n{output[-3000:]}"
    newcomer["failed"] = None


class TestTheReader:
    """The conventions above, on a small README."""

    TEXT = (
        "Intro\n\n```console\n$ python -m x --a 1 \\\n    --b 2\nwrote out: 1,234 lines in 5.2 s\n"
        "$ echo done\ndone\n```\n\n```bash\n$ not run\n```\n\n"
        "```python\nprint(f(1))\n# [2, 3]\nx = 1  # not output\n```\n"
    )

    def test_steps(self) -> None:
        steps = readme_steps(self.TEXT)
        assert [(s.kind, s.source, s.expected) for s in steps] == [
            ("console", "python -m x --a 1 \\\n    --b 2", ["wrote out: 1,234 lines in 5.2 s"]),
            ("console", "echo done", ["done"]),
            ("python", "print(f(1))\n# [2, 3]\nx = 1  # not output\n", ["[2, 3]"]),
        ]
        assert [s.line for s in steps] == [4, 7, 16]

    def test_loose_numbers_and_order(self) -> None:
        output = "noise\nwrote out: 58,928 lines in 10.75 s\nmore\n[2, 3]\n"
        assert missing_lines(["wrote out: 1,234 lines in 5.2 s", "[2, 3]"], output) == []
        assert missing_lines(["[2, 3]", "wrote out: 1 lines in 1 s"], output) == ["wrote out: 1 lines in 1 s"]
        assert missing_lines(["wrote ... in 1 s"], output) == []
        assert missing_lines(["wrote in: 1 lines"], output) == ["wrote in: 1 lines"]

"""The README as a newcomer walks it: every ```console and ```python block of the README and of the pages under docs/
it links to (in the order of its links), in a copy of the repository with no ../shared beside it, must succeed and
print what the page shows; ``--write`` puts what they printed into it.

    python -m benchmarks.readme_walk            # walks it; names every shown line the commands no longer print
    python -m benchmarks.readme_walk --write    # ... and writes the printed numbers into the shown lines

Conventions the README follows so that this walk can read it (``tests/test_readme.py`` runs it, one test a step):
- ```console blocks: lines starting with ``$ `` are commands (a trailing ``\\`` continues one); the lines after a
  command, up to the next, are what it prints. Each shown line must be the end of a line of the command's output
  (stdout and stderr interleaved, as a terminal shows them; the end from the line's start or from a space, so a log
  line is shown without its time stamp), in that order; other output lines may come between. ``...`` matches
  anything.
- Numbers: a shown number with a decimal point matches a printed one within ``RELATIVE_TOLERANCE`` (2%: the last
  digits of a score trained on another CPU may differ), any other exactly; a duration or a rate (a number followed
  by ``s``, ``ms`` or ``.../s``) matches any number.
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
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from common.config import key, run_command

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS_LINK = re.compile(r"\]\((docs/[\w-]+\.md)(?:#[\w-]*)?\)")
BLOCK = re.compile(r"^```(console|python)\n(.*?)^```", re.MULTILINE | re.DOTALL)
NUMBER = r"-?\d+(?:,\d{3})*(?:\.\d+)?(?:e[-+]?\d+)?"  # 58,928 and 0.5320 and 1e-05; not "00," of a clock
TIME_UNIT = re.compile(r"\s?(?:ms|s|[\w/]*/s)\b")  # what follows a duration or a rate
RELATIVE_TOLERANCE = 0.02
STEP_SECONDS = 300


@dataclass
class Step:
    line: int  # where the page shows it
    kind: str  # "console" or "python"
    source: str  # the command, or the script
    expected: list[str] = field(default_factory=list)
    expected_lines: list[int] = field(default_factory=list)  # the page's line of each expected line
    page: str = "README.md"  # the page, relative to the repository

    def __str__(self) -> str:
        return f"{self.page}:{self.line}"


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
            steps[-1].expected_lines.append(line + 1 + offset)
        continued = bool(steps) and text.endswith("\\") and (continued or text.startswith("$ "))
    return steps


def python_step(body: str, line: int) -> Step:
    lines = body.splitlines()
    shown = [
        (line + 1 + offset + 1, text.removeprefix("# "))
        for offset, (previous, text) in enumerate(itertools.pairwise(lines))
        if previous.lstrip().startswith("print(") and text.startswith("# ")
    ]
    return Step(line + 1, "python", body, [text for _, text in shown], [number for number, _ in shown])


def readme_steps(text: str, page: str = "README.md") -> list[Step]:
    """The steps of one page, in order."""
    steps: list[Step] = []
    for match in BLOCK.finditer(text):
        kind, body = match.groups()
        line = text.count("\n", 0, match.start()) + 1
        steps += console_steps(body, line) if kind == "console" else [python_step(body, line)]
    for step in steps:
        step.page = page
    return steps


def pages(readme: Path) -> list[Path]:
    """The README, then each page under docs/ it links to, in the order of the first link to each."""
    linked = dict.fromkeys(DOCS_LINK.findall(readme.read_text(encoding="utf-8")))
    return [readme, *(readme.parent / name for name in linked)]


def walked_steps(readme: Path) -> list[Step]:
    """Every step of the README and of its docs pages, in the order a reader meets them."""
    return [
        step
        for page in pages(readme)
        for step in readme_steps(page.read_text(encoding="utf-8"), str(page.relative_to(readme.parent)))
    ]


def split_shown(shown: str) -> list[str]:
    """The shown line in parts: ``...``, numbers and literal text, alternating as re.split leaves them."""
    return re.split(rf"(\.\.\.|{NUMBER})", shown.strip())


def loose_pattern(shown: str) -> re.Pattern[str]:
    """The shown line with every number captured as any number and ``...`` as anything: the end of a printed line,
    from its start or a space (a log line's time stamp is not shown)."""
    regex = "".join(
        ".*" if part == "..." else f"({NUMBER})" if re.fullmatch(NUMBER, part) else re.escape(part)
        for part in split_shown(shown)
    )
    return re.compile(rf"(?:^|(?<=\s)){regex}$")


def shown_numbers(shown: str) -> list[tuple[str, bool]]:
    """Each number of the shown line, and whether it is a duration or a rate (matches any number)."""
    parts = split_shown(shown)
    return [
        (part, bool(TIME_UNIT.match(parts[index + 1]) if index + 1 < len(parts) else False))
        for index, part in enumerate(parts)
        if part != "..." and re.fullmatch(NUMBER, part)
    ]


def numbers_agree(shown: str, printed: str) -> bool:
    expected, actual = (float(text.replace(",", "")) for text in (shown, printed))
    if re.search(r"[.e]", shown):
        return abs(expected - actual) <= RELATIVE_TOLERANCE * max(abs(expected), abs(actual))
    return expected == actual


@dataclass
class Difference:
    index: int  # which of the step's shown lines
    shown: str
    printed: str | None  # the output line the shown one stands for; None when no line has its shape

    def __str__(self) -> str:
        if self.printed is None:
            return f"does not print {self.shown!r}"
        return f"shows {self.shown!r} where it prints {self.printed!r}"


def differences(expected: list[str], output: str, exact: bool = False) -> list[Difference]:
    """Each shown line against the first output line of its shape after the previous one's, in order: those whose
    numbers differ beyond the tolerance (``exact``: at all, durations too), and the first one not printed at all
    (the rest cannot be placed)."""
    lines, position, found = output.splitlines(), 0, []
    for index, shown in enumerate(expected):
        regex = loose_pattern(shown)
        place = next(((i, m) for i in range(position, len(lines)) if (m := regex.search(lines[i]))), None)
        if place is None:
            return [*found, Difference(index, shown, None)]
        position, match = place[0] + 1, place[1]
        pairs = zip(shown_numbers(shown), match.groups(), strict=True)
        agree = (
            number == printed if exact else timing or numbers_agree(number, printed)
            for (number, timing), printed in pairs
        )
        if not all(agree):
            found.append(Difference(index, shown, lines[place[0]]))
    return found


def rewritten(shown: str, printed: str) -> str:
    """The shown line with the printed numbers in place of its own (its ``...`` and text kept)."""
    numbers = iter(loose_pattern(shown).search(printed).groups())
    return "".join(next(numbers) if re.fullmatch(NUMBER, part) else part for part in split_shown(shown))


def newcomer_copy(destination: Path) -> dict[str, str]:
    """The repository's files as a clone has them, copied to ``destination`` (with no ../shared beside it); the
    environment its steps run in."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    for name in listed.stdout.splitlines():
        if (ROOT / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, destination / name)
    if (destination.parent / "shared").exists():
        raise RuntimeError(f"{destination.parent / 'shared'} exists: the walk must not see shared data")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(destination)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # `python` is this environment's
    return env


def run_step(step: Step, folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The step in ``folder``, stderr into stdout, interleaved as a terminal shows them."""
    command = ["bash", "-c", step.source] if step.kind == "console" else [sys.executable, "-c", step.source]
    return subprocess.run(
        command,
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=STEP_SECONDS,
    )


@dataclass
class WalkOptions:
    """What ``python -m benchmarks.readme_walk`` reads."""

    readme_file: Path = key(README, "The README to walk.")
    write: bool = key(False, "Write the printed numbers into the shown lines.")

    def validate(self) -> None:
        if not Path(self.readme_file).is_file():
            raise ValueError(f"--readme_file: no such file: {self.readme_file}")


class StepFailed(RuntimeError):
    """A step of the walk exited with an error: its command, and the end of what it printed."""


def walk(options: WalkOptions) -> list[tuple[Step, list[Difference]]]:
    """Every step in a fresh copy, in order, stopping at the first that fails; with ``write``, the README's shown
    lines rewritten from what was printed (a line no longer printed is left for a person to mend). A step that exits
    with an error ends the walk (StepFailed)."""
    options.validate()
    readme = Path(options.readme_file)
    report = []
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary) / "distilkobert"
        env = newcomer_copy(folder)
        for step in walked_steps(readme):
            result = run_step(step, folder, env)
            if result.returncode != 0:
                raise StepFailed(f"{step}: {step.source}\nexited {result.returncode}:\n{result.stdout[-3000:]}")
            report.append((step, differences(step.expected, result.stdout, exact=options.write)))
    if options.write:
        for page in pages(readme):
            write_printed(page, [(step, found) for step, found in report if readme.parent / step.page == page])
    return report


def write_printed(page: Path, report: list[tuple[Step, list[Difference]]]) -> None:
    """The page's shown lines rewritten from what its steps printed."""
    lines = page.read_text(encoding="utf-8").split("\n")
    for step, found in report:
        for difference in (d for d in found if d.printed is not None):
            number = step.expected_lines[difference.index] - 1
            lines[number] = lines[number].replace(difference.shown, rewritten(difference.shown, difference.printed))
    page.write_text("\n".join(lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    try:  # the options are printed beside the walk: --write says what became of the differences
        options, report = run_command(
            lambda options: (options, walk(options)), WalkOptions, argv, "python -m benchmarks.readme_walk", __doc__
        )
    except StepFailed as err:
        raise SystemExit(f"error: {err}") from err
    for step, found in report:
        for difference in found:
            print(f"{step}: {step.source.splitlines()[0]}: {difference}")
    changed = sum(len(found) for _, found in report)
    written = " (written)" if options.write else " beyond the tolerance (--write writes them)"
    print(f"{len(report)} steps walked; {changed} shown lines differ{written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

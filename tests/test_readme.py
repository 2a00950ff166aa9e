"""The README as a newcomer walks it (benchmarks/readme_walk.py, whose docstring has the conventions): every
```console and ```python block of the README and of the docs/ pages it links to, in order, in a copy of the
repository with no ../shared beside it, succeeds and prints what the page shows, its numbers within the stated
tolerance."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.readme_walk import (
    README,
    Step,
    WalkOptions,
    differences,
    newcomer_copy,
    readme_steps,
    rewritten,
    run_step,
    walk,
    walked_steps,
)

STEPS = walked_steps(README)


@pytest.fixture(scope="module")
def newcomer(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A copy of the repository's files (what a clone has) with no ../shared beside it, and the steps' outcomes."""
    copy = tmp_path_factory.mktemp("newcomer") / "distilkobert"
    return {"dir": copy, "env": newcomer_copy(copy), "failed": None}


def test_the_readme_has_steps() -> None:
    kinds = {step.kind for step in STEPS}
    assert kinds == {"console", "python"} and len(STEPS) >= 10


@pytest.mark.parametrize("step", STEPS, ids=str)
def test_readme_step(step: Step, newcomer: dict[str, object]) -> None:
    if newcomer["failed"] is not None:
        pytest.skip(f"an earlier step failed ({newcomer['failed']})")
    newcomer["failed"] = step
    result = run_step(step, newcomer["dir"], newcomer["env"])
    output = result.stdout
    assert result.returncode == 0, f"{step}: {step.source}\nexited {result.returncode}:\n{output[-3000:]}"
    found = differences(step.expected, output)
    assert not found, (
        f"{step}: {step.source}\n{found[0]} (python -m benchmarks.readme_walk --write); it printed:\n"
        + (output[-3000:])
    )
    newcomer["failed"] = None


class TestTheReader:
    """The conventions, on a small README."""

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
        assert [s.expected_lines for s in steps] == [[6], [8], [17]]
        assert [self.TEXT.split("\n")[line - 1] for line in (6, 8, 17)] == [
            "wrote out: 1,234 lines in 5.2 s",
            "done",
            "# [2, 3]",
        ]

    def test_lines_in_order_and_any_duration(self) -> None:
        output = "noise\nwrote out: 1,234 lines in 10.75 s\nmore\n[2, 3]\n"
        assert differences(["wrote out: 1,234 lines in 5.2 s", "[2, 3]"], output) == []
        assert [str(d) for d in differences(["[2, 3]", "wrote out: 1 lines in 1 s"], output)] == [
            "does not print 'wrote out: 1 lines in 1 s'"
        ]
        assert differences(["wrote ... in 1 s"], output) == []
        assert differences(["wrote in: 1 lines"], output)[0].printed is None

    def test_numbers_agree_within_the_tolerance(self) -> None:
        output = "test accuracy 0.5320 (best epoch 1); 8,002 tokens; 3.36 MB/s\n"
        assert differences(["test accuracy 0.5400 (best epoch 1); 8,002 tokens; 1.00 MB/s"], output) == []
        stale = "test accuracy 0.6000 (best epoch 1); 8,002 tokens; 3.36 MB/s"
        assert [(d.shown, d.printed) for d in differences([stale], output)] == [(stale, output.strip())]
        miscounted = "accuracy 0.5320 (best epoch 1); 8,003 tokens; 3.36 MB/s"  # the end of the line: matched
        assert differences([miscounted], output)[0].printed == output.strip()  # counts: exactly
        assert differences(["test accuracy 0.5320 (best epoch 1)"], output)[0].printed is None  # not a line's end
        assert differences(["test accuracy 0.5320 (best epoch 1); 8,002 tokens; 1.00 MB/s"], output, exact=True)

    def test_a_progress_bar_is_not_taken_for_a_shown_line_of_numbers(self) -> None:
        output = "Loading weights: 100%|█████| 199/199 [00:00<00:00, 11725.64it/s]\n0.963 0.831\n"
        assert differences(["0.963 0.831"], output) == []
        assert differences(["0.5 0.9"], output, exact=True)[0].printed == "0.963 0.831"

    def test_rewriting_keeps_the_shown_shape(self) -> None:
        printed = "INFO x: test accuracy 0.5320 (best epoch 2); took 3.1 s"
        assert rewritten("test accuracy 0.6000 (best epoch 1); took ... s", printed) == (
            "test accuracy 0.5320 (best epoch 2); took ... s"
        )

    def test_write_puts_what_was_printed_into_the_readme(self, tmp_path: Path) -> None:
        readme = tmp_path / "README.md"
        readme.write_text(
            "```console\n$ echo 'seen 41 of 7.5 in 1.0 s'\nseen 40 of 7.5 in 9.0 s\n```\n\n"
            "```python\nprint([1 + 1, 3])\n# [5, 3]\n```\n",
            encoding="utf-8",
        )
        report = walk(WalkOptions(readme, write=True))
        assert [len(found) for _, found in report] == [1, 1]
        assert readme.read_text(encoding="utf-8") == (
            "```console\n$ echo 'seen 41 of 7.5 in 1.0 s'\nseen 41 of 7.5 in 1.0 s\n```\n\n"
            "```python\nprint([1 + 1, 3])\n# [2, 3]\n```\n"
        )
        assert [found for _, found in walk(WalkOptions(readme))] == [[], []]

    def test_the_docs_pages_are_walked_after_the_readme_in_the_order_it_links_them(self, tmp_path: Path) -> None:
        (tmp_path / "docs").mkdir()
        readme = tmp_path / "README.md"
        readme.write_text(
            "See [serving](docs/serve.md) and [training](docs/train.md#resume), then [serving](docs/serve.md).\n\n"
            "```console\n$ echo front\nfront\n```\n",
            encoding="utf-8",
        )
        (tmp_path / "docs" / "train.md").write_text("```console\n$ echo 'epoch 1 of 3'\nepoch 2 of 3\n```\n")
        (tmp_path / "docs" / "serve.md").write_text("```python\nprint(1 + 1)\n# 2\n```\n")
        assert [str(step) for step in walked_steps(readme)] == ["README.md:4", "docs/serve.md:2", "docs/train.md:2"]
        report = walk(WalkOptions(readme, write=True))
        assert [len(found) for _, found in report] == [0, 0, 1]
        assert (tmp_path / "docs" / "train.md").read_text() == "```console\n$ echo 'epoch 1 of 3'\nepoch 1 of 3\n```\n"

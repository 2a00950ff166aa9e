"""The bad-input matrix (tests/bad_inputs.py): every command, fed each input people really produce, ends with
one error line naming the input, or succeeds where the input is merely unusual; never a traceback."""

from __future__ import annotations

from pathlib import Path

import bad_inputs
import pytest

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bad-inputs") / "fixtures"
    bad_inputs.build_fixtures(folder)
    return folder


NOT_YET = bad_inputs.recorded_wrong()
MATRIX = [
    pytest.param(
        case,
        id=case.id,
        marks=[pytest.mark.xfail(strict=True, reason="marked not yet right in docs/bad_inputs.md (issue 19)")]
        if case.id in NOT_YET
        else [],
    )
    for case in bad_inputs.cases()
]


@pytest.mark.parametrize("case", MATRIX)
def test_the_command_answers_as_expected(case: bad_inputs.Case, fixtures: Path, tmp_path: Path) -> None:
    try:
        outcome = bad_inputs.run_case(case, fixtures, tmp_path / "case")
    except bad_inputs.ReadOnlyUnavailable as why:  # root without the right to mount: nothing makes a place read-only
        pytest.skip(str(why))
    assert outcome.verdict(case) is None, outcome.verdict(case)


def test_the_matrix_covers_every_kind_and_the_verdicts_can_fail(tmp_path: Path) -> None:
    covered = {case.kind.name for case in bad_inputs.cases()}
    assert covered == {kind.name for kind in bad_inputs.KINDS}
    case = next(case for case in bad_inputs.cases() if case.kind.name == "cp949")
    given = str(tmp_path / "input.txt")
    assert bad_inputs.Outcome(0, "", False, given).verdict(case) == "accepted it and succeeded"
    assert "a traceback" in bad_inputs.Outcome(1, "UnicodeDecodeError: ...", True, given).verdict(case)
    assert "names neither" in bad_inputs.Outcome(1, "error: invalid start byte", False, given).verdict(case)
    assert bad_inputs.Outcome(1, f"error: {given}:1: not UTF-8 text", False, given).verdict(case) is None
    after_a_bar = bad_inputs.Outcome(1, f"  0%|   | 0/1 \x1b[Aerror: {given}:1: not UTF-8", False, given)
    assert "no error line" in str(after_a_bar.verdict(case))  # the error must start its line
    damaged = bad_inputs.Outcome(1, f"error: {given}: not UTF-8", False, given, ("out/earlier-run.txt",))
    assert "damaged what was there before" in str(damaged.verdict(case))
    bom = next(case for case in bad_inputs.cases() if case.kind.name == "bom")
    assert "refused a valid input" in bad_inputs.Outcome(1, "error: header", False, given).verdict(bom)

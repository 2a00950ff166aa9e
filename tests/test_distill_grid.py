"""distill.grid: combinations and their folders, skipping finished runs, refusing unknown keys and conflicting
results, dry runs, and a failed run that the next call continues. Training is a fake that records its calls."""

from __future__ import annotations

import dataclasses
import json
import logging
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml

from distill.grid import GridArguments, distill_grid, field_types, grid_runs, main


@dataclass
class StandInConfig:
    """The TrainConfig fields the grid may rely on, with their types (test_the_stand_in_matches_train_config)."""

    output_dir: str = ""
    student: Literal["bilstm", "distilbert"] = "bilstm"
    bilstm_preset: Literal["tiny", "mini", "small", "base", "large"] = "base"
    alpha: float = 0.5
    temperature: float = 1.0
    soft: Literal["kl", "mse"] = "kl"
    vocab_size: int = 8002
    learning_rate: float = 1e-3
    seed: int = 0
    student_layers: list[int] = field(default_factory=lambda: [0, 6])
    resume: bool = False
    overwrite: bool = False


FIELDS = field_types(StandInConfig)
TAKING_UP = ("resume", "overwrite")


class FakeTrain:
    """distill.train.distill_task as far as the grid sees it: takes the run's config (the grid wrote it to
    grid_run.yaml first), writes results.json with the config."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.folders: list[str] = []
        self.extra_arguments: list[list[str]] = []  # what each call set beyond the run's grid_run.yaml
        self.fail_on = fail_on

    def __call__(self, config: StandInConfig) -> dict[str, Any]:
        folder = Path(config.output_dir)
        values = yaml.safe_load((folder / "grid_run.yaml").read_text(encoding="utf-8"))
        assert {k: v for k, v in dataclasses.asdict(config).items() if k in values} == values
        self.folders.append(folder.name)
        self.extra_arguments.append([f"--{name}" for name in TAKING_UP if getattr(config, name) and name not in values])
        if folder.name == self.fail_on:
            raise ValueError("the teacher cache is missing")
        results = {"name": folder.name, "accuracy": config.alpha / 2, "params": 391170}
        results["config"] = dataclasses.asdict(config)
        (folder / "results.json").write_text(json.dumps(results), encoding="utf-8")
        return results


def write_grid(tmp_path: Path, text: str) -> str:
    path = tmp_path / "grid.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def run(argv: list[str], train: FakeTrain) -> int:
    """The command, with the stand-ins."""
    return main(argv, train=train, config_class=StandInConfig)


def grid(train: FakeTrain, **options: Any) -> list[dict]:
    """The typed function, with the stand-ins: the entries of its report."""
    return distill_grid(GridArguments(**options), train=train, config_class=StandInConfig).entries


def test_a_two_value_grid_runs_both_then_skips_them(
    tmp_path: Path, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="distill.grid")
    config = write_grid(tmp_path, "alpha: [0.5, 1.0]\nbilstm_preset: base\nlearning_rate: 1e-3\n")
    output = tmp_path / "grid"
    train = FakeTrain()
    assert run(["--grid_file", config, "--output_dir", str(output)], train) == 0
    assert train.folders == ["alpha-0.5", "alpha-1.0"]
    # YAML reads 1e-3 as a string; the run's config has the float the field holds.
    assert yaml.safe_load((output / "alpha-1.0" / "grid_run.yaml").read_text(encoding="utf-8")) == {
        "output_dir": str(output / "alpha-1.0"),
        "alpha": 1.0,
        "bilstm_preset": "base",
        "learning_rate": 0.001,
    }
    assert capsys.readouterr().out == (
        "| run | accuracy (%) | parameters |\n"
        "| --- | ---: | ---: |\n"
        "| alpha-0.5 | 25.00 | 391,170 |\n"
        "| alpha-1.0 | 50.00 | 391,170 |\n"
    )
    written = json.loads((output / "grid.json").read_text(encoding="utf-8"))
    assert [(e["name"], e["folder"], e["axes"]) for e in written] == [
        ("alpha-0.5", str(output / "alpha-0.5"), {"alpha": 0.5}),
        ("alpha-1.0", str(output / "alpha-1.0"), {"alpha": 1.0}),
    ]
    assert written[1]["results"]["accuracy"] == 0.5

    again = FakeTrain()
    assert grid(again, grid_file=config, output_dir=str(output)) == written
    assert again.folders == []
    assert "Run alpha-0.5: done" in caplog.text and "Run alpha-1.0: done" in caplog.text


def test_axes_combine_in_the_file_order(tmp_path: Path) -> None:
    config = write_grid(tmp_path, "output_dir: OUT\nseed: [1, 2]\nsoft: kl\nbilstm_preset: [small, base]\n")
    train = FakeTrain()
    grid(train, grid_file=config, output_dir=str(tmp_path / "out"))
    assert train.folders == [
        "seed-1_bilstm_preset-small",
        "seed-1_bilstm_preset-base",
        "seed-2_bilstm_preset-small",
        "seed-2_bilstm_preset-base",
    ]


def test_an_unknown_key_is_an_error_before_any_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    train = FakeTrain()
    config = write_grid(tmp_path, f"output_dir: {tmp_path / 'out'}\nalpha: [0.5, 1.0]\ntemprature: 2.0\n")
    with pytest.raises(SystemExit, match=r"grid\.yaml: unknown config key temprature; did you mean temperature\?"):
        run(["--grid_file", config], train)
    argv = ["--grid_file", write_grid(tmp_path, "alpha: [0.5, 1.0]\n"), "--output_dir", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as refused:
        run([*argv, "--sed", "1"], train)
    assert refused.value.code == 2
    assert "command line: unknown config key --sed; did you mean --seed?" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"command line: unknown config key --sed; did you mean --seed\?"):
        distill_grid(GridArguments(grid_file=argv[1]), {"sed": [1]}, train=train, config_class=StandInConfig)
    assert train.folders == [] and not (tmp_path / "out").exists()


def test_a_list_typed_field_takes_a_list_of_lists_as_its_axis() -> None:
    [one] = grid_runs({"student_layers": [0, 6], "alpha": 0.5}, FIELDS, "grid.yaml")
    assert (one.name, one.axes, one.values) == ("run", {}, {"student_layers": [0, 6], "alpha": 0.5})
    runs = grid_runs({"student_layers": [[0, 6], [0, 4, 8]]}, FIELDS, "grid.yaml")
    assert [(r.name, r.values) for r in runs] == [
        ("student_layers-0-6", {"student_layers": [0, 6]}),
        ("student_layers-0-4-8", {"student_layers": [0, 4, 8]}),
    ]


def test_command_line_values_replace_the_file_and_several_make_an_axis(tmp_path: Path) -> None:
    config = write_grid(tmp_path, "alpha: [0.5, 1.0]\nstudent_layers: [0]\n")
    output = tmp_path / "out"
    train = FakeTrain()
    argv = ["--grid_file", config, "--output_dir", str(output), "--alpha", "0.25", "--seed", "1", "2"]
    run([*argv, "--student_layers", "0", "4"], train)
    assert train.folders == ["seed-1", "seed-2"]
    assert yaml.safe_load((output / "seed-2" / "grid_run.yaml").read_text(encoding="utf-8")) == {
        "output_dir": str(output / "seed-2"),
        "alpha": 0.25,
        "student_layers": [0, 4],
        "seed": 2,
    }


def test_the_typed_function_takes_the_same_values_as_a_mapping(tmp_path: Path) -> None:
    config = write_grid(tmp_path, "alpha: [0.5, 1.0]\nstudent_layers: [0]\n")
    output = tmp_path / "out"
    train = FakeTrain()
    overrides = {"alpha": 0.25, "seed": [1, 2], "student_layers": [0, 4]}
    distill_grid(GridArguments(grid_file=config, output_dir=str(output)), overrides, train, StandInConfig)
    assert train.folders == ["seed-1", "seed-2"]
    assert yaml.safe_load((output / "seed-2" / "grid_run.yaml").read_text(encoding="utf-8")) == {
        "output_dir": str(output / "seed-2"),
        "alpha": 0.25,
        "student_layers": [0, 4],
        "seed": 2,
    }


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"seed": 1.5}, "grid.yaml: seed: expected int, got 1.5"),
        ({"alpha": [0.5, "high"]}, "grid.yaml: alpha[1]: expected float, got 'high'"),
        ({"alpha": True}, "grid.yaml: alpha: expected float, got True"),
        ({"student_layers": [[0], ["x"]]}, "grid.yaml: student_layers[1][0]: expected int, got 'x'"),
        ({"soft": None}, "grid.yaml: soft: no value; give one, or leave the key out for its default"),
        ({"alpha": []}, "grid.yaml: alpha is an empty list, which makes no runs"),
        ({"output_dir": ["a", "b"]}, "grid.yaml: output_dir is the grid's folder, one value"),
        ({"soft": ["kl", "kl"]}, "grid.yaml: several runs would share the folder 'soft-kl'"),
        ({"student": ["a/b", "a-b"]}, "grid.yaml: several runs would share the folder 'student-a-b'"),
    ],
)
def test_bad_values_are_errors_naming_the_key(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as raised:
        grid_runs(values, FIELDS, "grid.yaml")
    assert str(raised.value).startswith(message)


def test_a_finished_run_with_another_config_is_an_error(tmp_path: Path) -> None:
    output = tmp_path / "out"
    grid(FakeTrain(), grid_file=write_grid(tmp_path, "alpha: [0.5, 1.0]\ntemperature: 2.0\n"), output_dir=str(output))
    train = FakeTrain()
    changed = write_grid(tmp_path, "alpha: [0.5, 1.0]\ntemperature: 3.0\n")
    with pytest.raises(SystemExit) as stopped:
        run(["--grid_file", changed, "--output_dir", str(output)], train)
    message = str(stopped.value)
    assert f"{output / 'alpha-0.5' / 'results.json'}: finished with another config than the grid's run" in message
    assert "temperature (recorded 2.0, grid 3.0)" in message and "another output_dir" in message
    assert train.folders == []  # checked before any run, so none trains


def test_a_failed_run_stops_the_grid_and_the_next_call_continues(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config = write_grid(tmp_path, "alpha: [0.0, 0.5, 1.0]\n")
    output = tmp_path / "out"
    failing = FakeTrain(fail_on="alpha-0.5")
    with pytest.raises(SystemExit, match=r"^error: run alpha-0.5 failed: the teacher cache is missing\. The runs"):
        run(["--grid_file", config, "--output_dir", str(output)], failing)
    assert failing.folders == ["alpha-0.0", "alpha-0.5"] and not (output / "grid.json").exists()
    capsys.readouterr()

    dry = FakeTrain()
    run(["--grid_file", config, "--output_dir", str(output), "--dry_run"], dry)
    entries = grid(dry, grid_file=config, output_dir=str(output), dry_run=True)
    assert dry.folders == [] and not (output / "grid.json").exists()
    assert [entry["results"] is None for entry in entries] == [False, True, True]
    assert capsys.readouterr().out == (
        "| run | state | folder |\n"
        "| --- | --- | --- |\n"
        f"| alpha-0.0 | done | {output / 'alpha-0.0'} |\n"
        f"| alpha-0.5 | to run | {output / 'alpha-0.5'} |\n"
        f"| alpha-1.0 | to run | {output / 'alpha-1.0'} |\n"
    )

    resumed = FakeTrain()
    run(["--grid_file", config, "--output_dir", str(output)], resumed)
    assert resumed.folders == ["alpha-0.5", "alpha-1.0"]
    assert len(json.loads((output / "grid.json").read_text(encoding="utf-8"))) == 3


def test_a_run_that_stopped_part_way_is_taken_up(tmp_path: Path) -> None:
    config = write_grid(tmp_path, "alpha: [0.0, 0.5, 1.0]\n")
    output = tmp_path / "out"
    for name, alpha in (("alpha-0.0", 0.0), ("alpha-0.5", 0.5)):  # as the grid left them, then training stopped
        (output / name).mkdir(parents=True)
        (output / name / "grid_run.yaml").write_text(f"output_dir: {output / name}\nalpha: {alpha}\n")
        (output / name / "metrics.jsonl").write_text('{"step": 2, "epoch": 0, "loss": 0.5}\n')
    (output / "alpha-0.0" / "checkpoint-4").mkdir()  # a complete checkpoint: its trainer_state.json is written last
    (output / "alpha-0.0" / "checkpoint-4" / "trainer_state.json").write_text("{}")
    (output / "alpha-0.5" / ".checkpoint-4.tmp").mkdir()  # a checkpoint cut short while saving
    train = FakeTrain()
    grid(train, grid_file=config, output_dir=str(output))
    assert train.folders == ["alpha-0.0", "alpha-0.5", "alpha-1.0"]
    assert train.extra_arguments == [["--resume"], ["--overwrite"], []]


def test_a_started_run_with_another_config_is_an_error(tmp_path: Path) -> None:
    output = tmp_path / "out"
    (output / "alpha-0.5").mkdir(parents=True)
    (output / "alpha-0.5" / "grid_run.yaml").write_text(f"output_dir: {output / 'alpha-0.5'}\nalpha: 0.5\nseed: 1\n")
    (output / "alpha-0.5" / "metrics.jsonl").write_text("")
    train = FakeTrain()
    with pytest.raises(SystemExit) as stopped:
        run(["--grid_file", write_grid(tmp_path, "alpha: [0.5, 1.0]\nseed: 2\n"), "--output_dir", str(output)], train)
    assert "grid_run.yaml: started with another config than the grid's run alpha-0.5: seed (recorded 1, grid 2)" in str(
        stopped.value
    )
    assert train.folders == []


def test_output_dir_is_required(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="no output_dir; set output_dir in the file or pass --output_dir"):
        run(["--grid_file", write_grid(tmp_path, "alpha: [0.5, 1.0]\n")], FakeTrain())


def test_an_abbreviated_option_is_refused_before_the_file_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # argparse is told not to take --output for --output_dir; the grid's own check says what it might mean.
    for abbreviation, meant in (("--output", "--output_dir"), ("--dry", "--dry_run")):
        with pytest.raises(SystemExit):
            run(["--grid_file", str(tmp_path / "missing.yaml"), abbreviation, "out"], FakeTrain())
        said = capsys.readouterr().err
        assert f"unknown config key {abbreviation}; did you mean {meant}?" in said and "missing.yaml" not in said


def test_a_missing_or_misplaced_grid_file_is_one_line_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for argv, says in (
        (["--grid_file", str(tmp_path / "missing.yaml")], f"--grid_file: no such file: {tmp_path / 'missing.yaml'}"),
        (["--grid_file", str(tmp_path)], f"--grid_file {str(tmp_path)!r}: a folder, not a YAML file"),
        ([str(tmp_path / "grid.yaml")], f"'{tmp_path / 'grid.yaml'}': a value before any --key (the grid file is"),
    ):
        with pytest.raises(SystemExit) as refused:
            run(argv, FakeTrain())
        said = capsys.readouterr().err
        assert refused.value.code == 2 and says in said and said.count("\n") == 1, said


def test_help(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--help"])
    assert stopped.value.code == 0
    shown = capsys.readouterr().out
    assert shown.startswith("usage: python -m distill.grid ") and "--dry_run" in shown and "--KEY VALUE" in shown


def test_the_stand_in_matches_train_config() -> None:
    # The grid relies on these fields and types of the real config; the stand-in above must not drift from it.
    config = pytest.importorskip("distill.train_config")
    real = typing.get_type_hints(config.TrainConfig)
    assert {name: real.get(name) for name in FIELDS} == FIELDS

"""distill.grid: combinations and their folders, skipping finished runs, refusing unknown keys and conflicting
results, dry runs, and a failed run that the next call continues. Training is a fake that records its calls."""

from __future__ import annotations

import dataclasses
import json
import logging
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from distill.grid import field_types, grid_runs, main


@dataclass
class StandInConfig:
    """The TrainConfig fields the grid may rely on, with their types (test_the_stand_in_matches_train_config)."""

    output_dir: str = ""
    student: str = "bilstm"
    bilstm_preset: str = "base"
    alpha: float = 0.5
    temperature: float = 1.0
    soft: str = "kl"
    vocab_size: int = 8002
    learning_rate: float = 1e-3
    seed: int = 0
    student_layers: list[int] = field(default_factory=lambda: [0, 6])


FIELDS = field_types(StandInConfig)


class FakeTrain:
    """distill.train.main as far as the grid sees it: reads --config, writes results.json with the resolved config."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.folders: list[str] = []
        self.extra_arguments: list[list[str]] = []  # what each call passed after --config FILE
        self.fail_on = fail_on

    def __call__(self, argv: list[str]) -> dict[str, Any]:
        assert argv[0] == "--config"
        values = yaml.safe_load(Path(argv[1]).read_text(encoding="utf-8"))
        folder = Path(values["output_dir"])
        self.folders.append(folder.name)
        self.extra_arguments.append(argv[2:])
        if folder.name == self.fail_on:
            raise SystemExit("error: the teacher cache is missing")
        config = {**dataclasses.asdict(StandInConfig()), **values}
        results = {"name": folder.name, "accuracy": config["alpha"] / 2, "params": 391170, "config": config}
        (folder / "results.json").write_text(json.dumps(results), encoding="utf-8")
        return results


def write_grid(tmp_path: Path, text: str) -> str:
    path = tmp_path / "grid.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def run(argv: list[str], train: FakeTrain) -> list[dict]:
    return main(argv, train=train, config_class=StandInConfig)


def test_a_two_value_grid_runs_both_then_skips_them(
    tmp_path: Path, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="distill.grid")
    config = write_grid(tmp_path, "alpha: [0.5, 1.0]\nbilstm_preset: base\nlearning_rate: 1e-3\n")
    output = tmp_path / "grid"
    train = FakeTrain()
    entries = run([config, "--output_dir", str(output)], train)
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
    assert written[1]["results"]["accuracy"] == 0.5 and written == entries

    again = FakeTrain()
    assert run([config, "--output_dir", str(output)], again) == entries
    assert again.folders == []
    assert "Run alpha-0.5: done" in caplog.text and "Run alpha-1.0: done" in caplog.text


def test_axes_combine_in_the_file_order(tmp_path: Path) -> None:
    config = write_grid(tmp_path, "output_dir: OUT\nseed: [1, 2]\nsoft: kl\nbilstm_preset: [small, base]\n")
    train = FakeTrain()
    run([config, "--output_dir", str(tmp_path / "out")], train)
    assert train.folders == [
        "seed-1_bilstm_preset-small",
        "seed-1_bilstm_preset-base",
        "seed-2_bilstm_preset-small",
        "seed-2_bilstm_preset-base",
    ]


def test_an_unknown_key_is_an_error_before_any_run(tmp_path: Path) -> None:
    train = FakeTrain()
    config = write_grid(tmp_path, f"output_dir: {tmp_path / 'out'}\nalpha: [0.5, 1.0]\ntemprature: 2.0\n")
    with pytest.raises(SystemExit, match=r"grid\.yaml: unknown config key temprature; did you mean temperature\?"):
        run([config], train)
    with pytest.raises(SystemExit, match=r"command line: unknown config key --sed; did you mean --seed\?"):
        run([write_grid(tmp_path, "alpha: [0.5, 1.0]\n"), "--output_dir", str(tmp_path / "out"), "--sed", "1"], train)
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
    argv = [config, "--output_dir", str(output), "--alpha", "0.25", "--seed", "1", "2", "--student_layers", "0", "4"]
    run(argv, train)
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
    run([write_grid(tmp_path, "alpha: [0.5, 1.0]\ntemperature: 2.0\n"), "--output_dir", str(output)], FakeTrain())
    train = FakeTrain()
    changed = write_grid(tmp_path, "alpha: [0.5, 1.0]\ntemperature: 3.0\n")
    with pytest.raises(SystemExit) as stopped:
        run([changed, "--output_dir", str(output)], train)
    message = str(stopped.value)
    assert f"{output / 'alpha-0.5' / 'results.json'}: finished with another config than the grid's run" in message
    assert "temperature (recorded 2.0, grid 3.0)" in message and "another output_dir" in message
    assert train.folders == []  # checked before any run, so none trains


def test_a_failed_run_stops_the_grid_and_the_next_call_continues(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config = write_grid(tmp_path, "alpha: [0.0, 0.5, 1.0]\n")
    output = tmp_path / "out"
    failing = FakeTrain(fail_on="alpha-0.5")
    with pytest.raises(SystemExit, match=r"^error: run alpha-0.5 failed: the teacher cache is missing\. The runs"):
        run([config, "--output_dir", str(output)], failing)
    assert failing.folders == ["alpha-0.0", "alpha-0.5"] and not (output / "grid.json").exists()
    capsys.readouterr()

    dry = FakeTrain()
    entries = run([config, "--output_dir", str(output), "--dry-run"], dry)
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
    run([config, "--output_dir", str(output)], resumed)
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
    run([config, "--output_dir", str(output)], train)
    assert train.folders == ["alpha-0.0", "alpha-0.5", "alpha-1.0"]
    assert train.extra_arguments == [["--resume", "true"], ["--overwrite", "true"], []]


def test_a_started_run_with_another_config_is_an_error(tmp_path: Path) -> None:
    output = tmp_path / "out"
    (output / "alpha-0.5").mkdir(parents=True)
    (output / "alpha-0.5" / "grid_run.yaml").write_text(f"output_dir: {output / 'alpha-0.5'}\nalpha: 0.5\nseed: 1\n")
    (output / "alpha-0.5" / "metrics.jsonl").write_text("")
    train = FakeTrain()
    with pytest.raises(SystemExit) as stopped:
        run([write_grid(tmp_path, "alpha: [0.5, 1.0]\nseed: 2\n"), "--output_dir", str(output)], train)
    assert "grid_run.yaml: started with another config than the grid's run alpha-0.5: seed (recorded 1, grid 2)" in str(
        stopped.value
    )
    assert train.folders == []


def test_output_dir_is_required(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="no output_dir; set output_dir in the file or pass --output_dir"):
        run([write_grid(tmp_path, "alpha: [0.5, 1.0]\n")], FakeTrain())


def test_an_abbreviated_option_is_refused_before_the_file_is_read(tmp_path: Path) -> None:
    # argparse is told not to take --output for --output_dir; the grid's own check says what it might mean.
    with pytest.raises(SystemExit, match=r"unknown config key --output; did you mean --output_dir\?"):
        run([str(tmp_path / "missing.yaml"), "--output", "out"], FakeTrain())


def test_help(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--help"])
    assert stopped.value.code == 0
    shown = capsys.readouterr().out
    assert shown.startswith("usage: python -m distill.grid ") and "--dry-run" in shown and "--KEY VALUE" in shown


def test_the_stand_in_matches_train_config() -> None:
    # The grid relies on these fields and types of the real config; the stand-in above must not drift from it.
    config = pytest.importorskip("distill.config")
    real = typing.get_type_hints(config.TrainConfig)
    assert {name: real.get(name) for name in FIELDS} == FIELDS

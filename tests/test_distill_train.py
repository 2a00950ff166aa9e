"""python -m distill.train: a BiLSTM (or DistilBERT) student trained on cached teacher logits, the teacher never
called; the no-teacher baseline from the labelled files alone; the seeded validation split holds out labelled
examples with their augmented copies; a cache of another teacher or other data is refused; a run killed with SIGKILL
resumes to the same model and metrics; the best model loads through the Auto classes in a fresh process; bad
inputs stop before training with one error line."""

from __future__ import annotations

import gzip
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import ROOT, TWO_CPU_PROCESSES
from safetensors.torch import load_file
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForMaskedLM,
    BertForSequenceClassification,
)

from distill.cache_logits import main as cache_logits
from distill.examples import IGNORE_INDEX, CachedExamples, CacheWriter, Example, read_examples
from distill.task_losses import SOFT_LOSSES
from distill.train import distill_task, main
from distill.train_config import BILSTM_POOLINGS, BILSTM_PRESETS, SOFT_LOSS_NAMES, config_from_dict, load_config
from distill.trainer import held_out, select_rows
from modeling.bilstm import POOLINGS, PRESETS, KoBiLstmForSequenceClassification, bilstm_config
from tokenization_kobert import KoBertTokenizerFast

KOBERT_DIR = ROOT / "data" / "kobert"
TRAIN_LINES, TEST_LINES, UNLABELLED_LINES = 240, 80, 120
STUDENT = ["--bilstm_preset", "tiny", "--vocab_size", "400", "--max_seq_length", "32", "--report_to", "none"]
SCHEDULE = ["--per_device_train_batch_size", "16", "--num_train_epochs", "2", "--logging_steps", "5"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def head(source: Path, target: Path, lines: int) -> Path:
    with gzip.open(source, "rt", encoding="utf-8") as f:
        target.write_text("".join(itertools.islice(f, lines)), encoding="utf-8")
    return target


def tiny_bert_config(tokenizer: KoBertTokenizerFast, layers: int, **extra: Any) -> BertConfig:
    """A BERT of hidden size 32 on the real KoBERT vocabulary."""
    return BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id,
        **extra,
    )


def random_teacher(folder: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    tokenizer = KoBertTokenizerFast.from_pretrained(KOBERT_DIR)
    BertForSequenceClassification(tiny_bert_config(tokenizer, 2, num_labels=2)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def task(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Labelled, unlabelled and test files of real reviews, a random teacher, and its cache over both files."""
    root = tmp_path_factory.mktemp("distill")
    files = {
        "train": head(ROOT / "data" / "nsmc_train.txt.gz", root / "train.tsv", TRAIN_LINES + 1),
        "test": head(ROOT / "data" / "nsmc_test.txt.gz", root / "test.tsv", TEST_LINES + 1),
        "unlabelled": head(ROOT / "data" / "reviews.txt.gz", root / "reviews.txt", UNLABELLED_LINES),
        "teacher": random_teacher(root / "teacher", seed=0),
        "cache": root / "cache",
    }
    cache_logits(
        [
            "--teacher_name_or_path",
            str(files["teacher"]),
            "--data_files",
            str(files["train"]),
            str(files["unlabelled"]),
            "--output_dir",
            str(files["cache"]),
            "--max_seq_length",
            "32",
            "--mask_per_example",
            "1",
        ]
    )
    return files


def train(argv: list[str]) -> dict[str, Any]:
    """The typed function on the config a command line gives (as the command reads it): the results."""
    return distill_task(load_config(None, argv))


def train_args(task: dict[str, Path], output: Path, *extra: str) -> list[str]:
    return [
        "--cache_dir",
        str(task["cache"]),
        "--test_file",
        str(task["test"]),
        "--output_dir",
        str(output),
        *STUDENT,
        *SCHEDULE,
        *extra,
    ]


# DistilKoBiLSTM's table at a 3,000-token vocabulary and 2 labels (modeling/bilstm.py counts them by hand).
SHIPPED = {"tiny": 27_394, "mini": 52_418, "small": 146_434, "base": 391_170, "large": 1_175_554}


@pytest.mark.parametrize("preset", [*SHIPPED, "teacher"])
def test_every_shipped_config_loads_and_builds_its_student(preset: str) -> None:
    train, test = str(ROOT / "data" / "nsmc_train.txt.gz"), str(ROOT / "data" / "nsmc_test.txt.gz")
    required = ["--cache_dir", "cache", "--train_files", train, "--test_file", test, "--output_dir", "out"]
    config = load_config(ROOT / "distill" / "configs" / f"bilstm_{preset}.yaml", required)
    model = KoBiLstmForSequenceClassification(bilstm_config(config.bilstm_preset, config.vocab_size, 0, num_labels=2))
    params = sum(p.numel() for p in torch.nn.Module.parameters(model))
    if preset == "teacher":  # the large preset at 8,000 tokens: 5,000 more rows of 128 embedding weights
        assert (config.bilstm_preset, config.alpha, params) == ("large", 1.0, SHIPPED["large"] + 5000 * 128)
    else:
        assert (config.bilstm_preset, config.vocab_size, params) == (preset, 3000, SHIPPED[preset])


def test_a_distilled_run_reads_the_cache_and_never_runs_the_teacher(
    task: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the teacher ran during training")

    monkeypatch.setattr(BertForSequenceClassification, "forward", refuse)
    monkeypatch.setattr(BertForSequenceClassification, "from_pretrained", refuse)
    output = tmp_path / "distilled"
    results = train(train_args(task, output))

    cache = CachedExamples(task["cache"], with_logits=False)
    held = sum(
        held_out(e.key, 0.1, 42) for e in cache if e.key == e.origin and e.label != IGNORE_INDEX
    )  # the split by its definition: a seeded hash of each labelled key
    assert results["examples"]["validation"] == held
    assert results["examples"]["labelled"] == TRAIN_LINES - held
    assert results["examples"]["unlabelled"] == UNLABELLED_LINES
    assert results["examples"]["augmented"] > 0 and results["examples"]["test"] == TEST_LINES
    assert results["distilled"] and results["params"] == sum(
        p.numel() for p in torch.nn.Module.parameters(load_bilstm(output / "best"))
    )
    assert 0 <= results["accuracy"] <= 1 and results["teacher"]["models"] == [str(task["teacher"])]
    written = json.loads((output / "results.json").read_text())
    assert written["accuracy"] == results["accuracy"] and "git_commit" in written
    metrics = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    validations = [m for m in metrics if "validation_accuracy" in m]
    assert [m["epoch"] for m in validations] == [1, 2]  # after each epoch
    assert results["best_validation_accuracy"] == max(m["validation_accuracy"] for m in validations)


def test_the_teachers_test_accuracy_comes_from_their_cache_of_the_test_file(
    task: dict[str, Path], tmp_path: Path
) -> None:
    # An ensemble has no results.json of its own: its test accuracy is that of its logits on the test file.

    def test_cache(teacher: Path, output: Path) -> Path:
        cache_logits(
            [
                *["--teacher_name_or_path", str(teacher), "--data_files", str(task["test"])],
                *["--output_dir", str(output), "--max_seq_length", "32"],
            ]
        )
        return output

    own = test_cache(task["teacher"], tmp_path / "test-cache")  # the training cache's teacher
    steps = ["--max_steps", "2"]
    results = train(train_args(task, tmp_path / "run", *steps, "--teacher_test_cache", str(own)))
    teacher = AutoModelForSequenceClassification.from_pretrained(task["teacher"]).eval()
    tokenizer = KoBertTokenizerFast.from_pretrained(task["teacher"])
    examples = list(read_examples(str(task["test"])))
    with torch.no_grad():
        logits = teacher(
            **tokenizer([e.text for e in examples], padding=True, truncation=True, max_length=32, return_tensors="pt")
        ).logits
    right = sum(int(p) == e.label for p, e in zip(logits.argmax(-1).tolist(), examples, strict=True))
    assert results["teacher"]["accuracy"] == pytest.approx(right / len(examples))

    other_teacher = test_cache(random_teacher(tmp_path / "other", seed=1), tmp_path / "other-cache")
    for cache, says in [(other_teacher, "other teachers"), (task["cache"], "holds no labelled test_file")]:
        with pytest.raises(SystemExit, match=says):
            main(
                train_args(
                    task, tmp_path / "refused", *steps, "--teacher_test_cache", str(cache), "--overwrite", "true"
                )
            )


def load_bilstm(folder: Path) -> torch.nn.Module:
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True)


def test_the_best_model_loads_with_the_auto_classes_in_a_fresh_process(task: dict[str, Path], tmp_path: Path) -> None:
    output = tmp_path / "run"
    assert main(train_args(task, output, "--num_train_epochs", "1")) == 0
    texts = ["정말 재미있는 영화", "시간 낭비였다 최악"]

    tokenizer = AutoTokenizer.from_pretrained(output / "best", trust_remote_code=True)
    model = load_bilstm(output / "best").eval()
    with torch.no_grad():
        expected = model(**tokenizer(texts, padding=True, return_tensors="pt")).logits.tolist()
    script = (
        "import json, sys, torch\n"
        "from transformers import AutoModelForSequenceClassification, AutoTokenizer\n"
        "folder, texts = sys.argv[1], json.loads(sys.argv[2])\n"
        "tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)\n"
        "model = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True).eval()\n"
        "with torch.no_grad():\n"
        "    print(json.dumps(model(**tokenizer(texts, padding=True, return_tensors='pt')).logits.tolist()))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(output / "best"), json.dumps(texts)],
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    )
    got = json.loads(result.stdout)
    assert len(got) == len(expected) and all(
        g == pytest.approx(e, abs=1e-6) for g, e in zip(got, expected, strict=True)
    )


def test_the_baseline_trains_on_the_labelled_files_alone(task: dict[str, Path], tmp_path: Path) -> None:
    output = tmp_path / "baseline"
    args = [
        "--alpha",
        "1",
        "--train_files",
        str(task["train"]),
        "--test_file",
        str(task["test"]),
        "--output_dir",
        str(output),
        *STUDENT,
        *SCHEDULE,
        "--num_train_epochs",
        "1",
    ]
    results = train(args)
    assert not results["distilled"] and results["teacher"] is None
    assert results["examples"]["unlabelled"] == 0 and results["examples"]["augmented"] == 0
    assert results["examples"]["labelled"] + results["examples"]["validation"] == TRAIN_LINES


def test_bf16_computes_the_student_in_bf16_on_the_shared_trainer(task: dict[str, Path], tmp_path: Path) -> None:
    # Mixed precision is Trainer's (common.training): bf16 autocast on a CPU when no GPU computes it. The logits reach
    # the loss in float32 (accelerate converts a model's outputs), so the dtype is read inside: the linear layers'.
    dtypes = set()

    def record(module: torch.nn.Module, inputs: Any, output: Any) -> None:
        if isinstance(module, torch.nn.Linear) and module.training:
            dtypes.add(output.dtype)

    hook = torch.nn.modules.module.register_module_forward_hook(record)
    try:
        results = train(train_args(task, tmp_path / "bf16", "--num_train_epochs", "1", "--mixed_precision", "bf16"))
    finally:
        hook.remove()
    assert dtypes == {torch.bfloat16} and 0 <= results["accuracy"] <= 1


def handmade_cache(folder: Path) -> Path:
    """Labelled examples a0..a39 with one copy each, unlabelled u0..u9 with one copy each."""
    with CacheWriter(folder) as writer:
        for i in range(40):
            writer.add(Example(f"a{i}", f"text {i}", i % 2, f"a{i}"))
            writer.add(Example(f"a{i}#aug1", f"copy {i}", IGNORE_INDEX, f"a{i}"))
        for i in range(10):
            writer.add(Example(f"u{i}", f"review {i}", IGNORE_INDEX, f"u{i}"))
            writer.add(Example(f"u{i}#aug1", f"review copy {i}", IGNORE_INDEX, f"u{i}"))
    return folder


def test_the_validation_split_holds_out_examples_with_their_copies(tmp_path: Path) -> None:
    cache = CachedExamples(handmade_cache(tmp_path / "cache"), with_logits=False)
    values = {"cache_dir": str(tmp_path), "test_file": "t", "output_dir": "o", "validation_split": 0.3, "seed": 3}
    rows, lengths, validation, counts = select_rows(cache, config_from_dict(values))
    keys = [cache.example(int(row)).key for row in rows]
    assert lengths.tolist() == [len(cache.example(int(row)).text) for row in rows]  # for batching by length
    held = {e.key for e in validation}
    assert held == {f"a{i}" for i in range(40) if held_out(f"a{i}", 0.3, 3)} and 0 < len(held) < 40
    expected = [f"a{i}{copy}" for i in range(40) if f"a{i}" not in held for copy in ("", "#aug1")]
    expected += [f"u{i}{copy}" for i in range(10) for copy in ("", "#aug1")]
    assert sorted(keys) == sorted(expected)
    assert counts == {
        "labelled": 40 - len(held),
        "unlabelled": 10,
        "augmented": 50 - len(held),
        "validation": len(held),
        "in_validation": 0,
        "available": 100 - 2 * len(held),
    }
    # --max_train_examples: the counts are those of the rows kept (they were the whole set's), the split the same.
    first, _, same_validation, taken = select_rows(cache, config_from_dict({**values, "max_train_examples": 7}))
    kept_kinds = [
        "augmented" if "#" in key else "labelled" if key.startswith("a") else "unlabelled"
        for key in (cache.example(int(row)).key for row in first)
    ]
    assert len(first) == 7 and {e.key for e in same_validation} == held
    assert {kind: taken[kind] for kind in ("labelled", "unlabelled", "augmented")} == {
        kind: kept_kinds.count(kind) for kind in ("labelled", "unlabelled", "augmented")
    }
    assert taken["available"] == counts["available"]
    # Without a teacher, only the labelled examples are trained on; another seed holds out others.
    baseline_rows, _, _, _ = select_rows(cache, config_from_dict({**values, "alpha": 1.0}))
    assert sorted(cache.example(int(r)).key for r in baseline_rows) == sorted(
        k for k in expected if k.startswith("a") and "#" not in k
    )
    _, _, other, _ = select_rows(cache, config_from_dict({**values, "seed": 4}))
    assert {e.key for e in other} != held


def test_unlabelled_copies_of_validation_reviews_are_not_trained_on(tmp_path: Path) -> None:
    # The review corpus holds the labelled reviews too: an unlabelled row with a validation example's text (and its
    # augmented copies) would train the student on what picks its best model; one with a training text stays.
    with CacheWriter(tmp_path / "cache") as writer:
        for i in range(20):
            writer.add(Example(f"u{i}", f"text {i}", IGNORE_INDEX, f"u{i}"))  # unlabelled first: the order is free
            writer.add(Example(f"u{i}#aug1", f"copy {i}", IGNORE_INDEX, f"u{i}"))
        for i in range(20):
            writer.add(Example(f"a{i}", f"text {i}", i % 2, f"a{i}"))
    cache = CachedExamples(tmp_path / "cache", with_logits=False)
    values = {"cache_dir": str(tmp_path), "test_file": "t", "output_dir": "o", "validation_split": 0.3, "seed": 3}
    rows, _, validation, counts = select_rows(cache, config_from_dict(values))
    held = {int(e.key[1:]) for e in validation}
    assert 0 < len(held) < 20
    keys = sorted(cache.example(int(row)).key for row in rows)
    assert keys == sorted(
        [f"a{i}" for i in range(20) if i not in held]
        + [f"u{i}{c}" for i in range(20) if i not in held for c in ("", "#aug1")]
    )
    assert counts["in_validation"] == len(held) and counts["unlabelled"] == 20 - len(held)


def test_a_distilbert_student_starts_from_the_copied_layers(task: dict[str, Path], tmp_path: Path) -> None:
    torch.manual_seed(1)
    tokenizer = KoBertTokenizerFast.from_pretrained(KOBERT_DIR)
    bert = BertForMaskedLM(tiny_bert_config(tokenizer, 3))
    bert.save_pretrained(tmp_path / "bert")
    tokenizer.save_pretrained(tmp_path / "bert")
    from distill.trainer import distilbert_student

    config = config_from_dict(
        {
            "student": "distilbert",
            "student_name_or_path": str(tmp_path / "bert"),
            "student_layers": [0, 2],
            "cache_dir": "c",
            "test_file": "t",
            "output_dir": "o",
        }
    )
    student = distilbert_student(config, 2, None)
    assert student.config.n_layers == 2 and student.config.num_labels == 2
    for j, i in enumerate([0, 2]):
        teacher_q = bert.bert.encoder.layer[i].attention.self.query.weight
        assert torch.equal(student.distilbert.transformer.layer[j].attention.q_lin.weight, teacher_q)
    results = train(
        train_args(
            task,
            tmp_path / "run",
            "--student",
            "distilbert",
            "--student_name_or_path",
            str(tmp_path / "bert"),
            "--student_layers",
            "0",
            "2",
            "--max_steps",
            "4",
            "--learning_rate",
            "1e-4",
        )
    )
    assert results["student"] == "distilbert" and results["steps"] == 4


def command(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "distill.train", *args]


# One thread in every run, so that the killed, resumed and uninterrupted runs compute alike.
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}


def without_timing(path: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "examples_per_s"} for row in rows]


def test_two_processes_follow_the_same_schedule_and_score_every_test_example_once(
    task: dict[str, Path], tmp_path: Path
) -> None:
    # As in test_pretrain_run: torchrun through --multi_gpu with ACCELERATE_USE_CPU starts two gloo processes. Half
    # the batch per process: the same examples per update, so as many updates as one process takes.
    epoch = ["--num_train_epochs", "1", "--per_device_train_batch_size"]
    one = train(train_args(task, tmp_path / "one", *epoch, "16"))
    output = tmp_path / "two"
    result = subprocess.run(
        [*TWO_CPU_PROCESSES, "-m", "distill.train", *train_args(task, output, *epoch, "8")],
        env={**ONE_THREAD, "ACCELERATE_USE_CPU": "true"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    two = json.loads((output / "results.json").read_text())
    assert two["steps"] == one["steps"] and two["examples"] == one["examples"]
    # The same learning-rate schedule, logged at the same updates, ending at 0.
    schedules = [
        {
            m["step"]: m["learning_rate"]
            for m in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
            if "learning_rate" in m
        }
        for run in (tmp_path / "one", output)
    ]
    assert len(schedules[0]) > 2 and schedules[0] == pytest.approx(schedules[1])
    assert schedules[0][one["steps"]] == 0.0
    assert result.stdout.count("test accuracy ") == 1  # said, and written, by the main process alone
    # The test accuracy is gathered over every test review, each counted once: the best model on the whole file.
    tokenizer = AutoTokenizer.from_pretrained(output / "best")
    model = load_bilstm(output / "best").eval()
    examples = list(read_examples(str(task["test"])))
    with torch.no_grad():
        inputs = tokenizer(
            [e.text for e in examples], padding=True, truncation=True, max_length=32, return_tensors="pt"
        )
        predicted = model(**inputs).logits.argmax(-1).tolist()
    right = sum(p == e.label for p, e in zip(predicted, examples, strict=True))
    assert two["accuracy"] == pytest.approx(right / len(examples))


def test_a_killed_run_resumes_to_the_same_model(task: dict[str, Path], tmp_path: Path) -> None:
    # Logged every 7 steps, saved every 5: a resume starts inside a logging interval, whose line must still be the
    # uninterrupted run's (it was the sum since the resume divided by 7).
    steps = ["--num_train_epochs", "3", "--save_steps", "5", "--save_total_limit", "20", "--logging_steps", "7"]
    reference = tmp_path / "uninterrupted"
    subprocess.run(
        command(train_args(task, reference, *steps)), cwd=ROOT, env=ONE_THREAD, check=True, capture_output=True
    )

    interrupted = tmp_path / "interrupted"
    process = subprocess.Popen(
        command(train_args(task, interrupted, *steps)),
        cwd=ROOT,
        env=ONE_THREAD,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while not (interrupted / "checkpoint-10").exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = max(int(p.name.split("-")[1]) for p in interrupted.glob("checkpoint-*"))
    total = json.loads((reference / "results.json").read_text())["steps"]
    assert killed_at < total, "the run finished before it could be killed"

    resumed = subprocess.run(
        command(train_args(task, interrupted, *steps, "--resume", "true")),
        cwd=ROOT,
        env=ONE_THREAD,
        check=True,
        capture_output=True,
        text=True,
    )
    assert f"Resuming from {interrupted / f'checkpoint-{killed_at}'}" in resumed.stderr
    assert without_timing(interrupted / "metrics.jsonl") == without_timing(reference / "metrics.jsonl")
    expected, got = (
        load_file(reference / "best" / "model.safetensors"),
        load_file(interrupted / "best" / "model.safetensors"),
    )
    assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected)
    accuracies = [json.loads((run / "results.json").read_text())["accuracy"] for run in (reference, interrupted)]
    assert accuracies[0] == accuracies[1]


def error_of(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one line the command ends with: its exit message, or (an option refused while parsing) its stderr."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    code = exit_info.value.code
    return code if isinstance(code, str) else capsys.readouterr().err


def test_bad_inputs_stop_before_training(
    task: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other_teacher = random_teacher(tmp_path / "other-teacher", seed=5)
    message = error_of(train_args(task, tmp_path / "a", "--teacher_name_or_path", str(other_teacher)), capsys)
    assert (
        message.startswith("error: ") and "was not made with the teacher" in message and str(other_teacher) in message
    )

    edited = tmp_path / "train.tsv"
    edited.write_text(task["train"].read_text().replace("\t1\n", "\t0\n", 1), encoding="utf-8")
    message = error_of(train_args(task, tmp_path / "b", "--train_files", str(edited)), capsys)
    assert "was not made from" in message and str(edited) in message

    three_labels = tmp_path / "test.tsv"
    three_labels.write_text("id\tdocument\tlabel\n1\t좋다\t1\n2\t별로\t2\n", encoding="utf-8")
    message = error_of(train_args(task, tmp_path / "c", "--test_file", str(three_labels)), capsys)
    assert f"{three_labels}:3: label 2" in message and "2 labels" in message

    malformed = tmp_path / "malformed.tsv"
    malformed.write_text("id\tdocument\tlabel\n1\t좋다\t1\n2\t별로 0\n", encoding="utf-8")
    args = [
        "--alpha",
        "1",
        "--train_files",
        str(malformed),
        "--test_file",
        str(task["test"]),
        "--output_dir",
        str(tmp_path / "d"),
        *STUDENT,
    ]
    assert f"{malformed}:3: expected 3 tab-separated columns" in error_of(args, capsys)

    message = error_of(train_args(task, tmp_path / "e", "--alpah", "0.5"), capsys)
    assert "did you mean --alpha?" in message

    # Killed before its first checkpoint: one piece of advice, with --resume and without (it was "drop --resume"
    # with it and "pass --resume" without).
    killed_early = tmp_path / "f"
    (killed_early / "tokenizer").mkdir(parents=True)
    (killed_early / "metrics.jsonl").write_text("")
    for resume in ([], ["--resume", "true"]):
        message = error_of(train_args(task, killed_early, *resume), capsys)
        assert (
            "holds an earlier run (metrics.jsonl, tokenizer) with no complete checkpoint to resume from: pass "
            "--overwrite to delete it and start afresh" in message
        )
    for folder in "abce":
        assert not (tmp_path / folder / "best").exists()


def test_a_two_value_grid_trains_both_runs_and_skips_them_when_finished(
    task: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml

    from distill import grid

    grid_file = tmp_path / "grid.yaml"
    values = {
        "alpha": 1.0,
        "train_files": [str(task["train"])],
        "test_file": str(task["test"]),
        "output_dir": str(tmp_path / "grid"),
        "bilstm_preset": ["tiny", "mini"],
        "vocab_size": 400,
        "max_steps": 3,
        "report_to": "none",
    }
    grid_file.write_text(yaml.safe_dump(values), encoding="utf-8")
    entries = grid.distill_grid(grid.GridArguments(grid_file=str(grid_file))).entries
    params = {Path(e["folder"]).name: e["results"]["params"] for e in entries}
    assert (
        sorted(params) == ["bilstm_preset-mini", "bilstm_preset-tiny"]
        and params["bilstm_preset-tiny"] < params["bilstm_preset-mini"]
    )
    monkeypatch.setattr("distill.train.distill_task", lambda c: pytest.fail(f"a finished run was trained again: {c}"))
    assert grid.main(["--grid_file", str(grid_file)]) == 0
    again = json.loads((tmp_path / "grid" / "grid.json").read_text())
    assert [e["results"]["accuracy"] for e in again] == [e["results"]["accuracy"] for e in entries]


def test_the_config_knows_the_names_of_what_the_student_and_the_losses_implement() -> None:
    assert BILSTM_PRESETS == tuple(PRESETS) and BILSTM_POOLINGS == POOLINGS and SOFT_LOSS_NAMES == tuple(SOFT_LOSSES)

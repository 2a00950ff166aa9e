"""The fine-tuning schedule counted on the prepared loader: the learning rate decays to 0 by the last update on one
process, with gradient accumulation, and on two (DDP over gloo), which make as many updates as one process with twice
the batch; results.json is written once, with test metrics over every test example. A run killed inside an epoch
resumes to the uninterrupted run's model and metrics, and an earlier run's output is refused unless --resume or
--overwrite says what to do with it. Loading a masked LM as the task
model says in one plain line which heads are new and dropped, and warns about any other weight."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import ROOT, TWO_CPU_PROCESSES
from finetuning import fine_tuned
from safetensors.torch import load_file, save_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from common.readers import read_nsmc
from finetune.trainer import load_task_model

TRAIN, TEST = ROOT / "data" / "nsmc_train.txt.gz", ROOT / "data" / "nsmc_test.txt.gz"
# 54 training reviews in batches of 8: 7 updates per epoch, the last batch short.
TRAIN_SAMPLES, EVAL_SAMPLES, EPOCHS, BATCH = 54, 41, 2, 8
UPDATES = 7 * EPOCHS


def nsmc(argv: list[str]) -> dict:
    return fine_tuned("nsmc", argv)


def nsmc_args(model: Path, output: Path, batch_size: int, *extra: str) -> list[str]:
    return [
        *[
            "--model_name_or_path",
            str(model),
            "--train_file",
            str(TRAIN),
            "--test_file",
            str(TEST),
            "--output_dir",
            str(output),
        ],
        *["--max_train_samples", str(TRAIN_SAMPLES), "--max_eval_samples", str(EVAL_SAMPLES)],
        *[
            "--num_train_epochs",
            str(EPOCHS),
            "--per_device_train_batch_size",
            str(batch_size),
            "--per_device_eval_batch_size",
            "8",
        ],
        *["--max_seq_length", "32", "--learning_rate", "1e-3", *extra],
    ]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def one_process(models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An in-process run with batch 8: the reference of the runs below."""
    output = tmp_path_factory.mktemp("one_process") / "nsmc"
    nsmc(nsmc_args(models["bert"], output, BATCH))
    return json.loads((output / "results.json").read_text())


def test_the_learning_rate_decays_to_zero_by_the_last_update(one_process: dict[str, Any]) -> None:
    rates = [entry["learning_rate"] for entry in one_process["validation"]]
    # Linear decay from 1e-3 without warm-up: half way after the first of two epochs, 0 after the last update.
    assert rates == [pytest.approx(5e-4), 0.0]
    assert one_process["optimizer_steps"] == UPDATES and one_process["processes"] == 1


def test_gradient_accumulation_counts_updates_not_batches(models: dict[str, Path], tmp_path: Path) -> None:
    # Batches of 4 accumulated by 2: 14 batches, 7 updates per epoch, as with batches of 8.
    nsmc(nsmc_args(models["bert"], tmp_path, BATCH // 2, "--gradient_accumulation_steps", "2"))
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["validation"][-1]["learning_rate"] == 0.0
    assert results["optimizer_steps"] == UPDATES


def accuracy_on_every_test_example(model_dir: str) -> float:
    """Accuracy of a saved classifier on all EVAL_SAMPLES test reviews, computed here in one batch."""
    records = read_nsmc(str(TEST))[:EVAL_SAMPLES]
    tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=True)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    inputs = tokenizer([r["document"] for r in records], truncation=True, max_length=32, padding=True)
    with torch.no_grad():
        predicted = model(**inputs.convert_to_tensors("pt")).logits.argmax(-1)
    return (predicted == torch.tensor([r["label"] for r in records])).float().mean().item()


def test_two_processes_follow_the_same_schedule_and_write_results_once(
    one_process: dict[str, Any], models: dict[str, Path], tmp_path: Path
) -> None:
    # As in test_pretrain_run: torchrun through --multi_gpu with ACCELERATE_USE_CPU starts two gloo processes.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    output = tmp_path / "nsmc"
    # Half the batch per device: the same 8 reviews per update, so the same 7 updates per epoch.
    command = [*TWO_CPU_PROCESSES, "-m", "finetune.nsmc", *nsmc_args(models["bert"], output, BATCH // 2)]
    result = subprocess.run(
        command, env={**env, "ACCELERATE_USE_CPU": "true"}, cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]

    results = json.loads((output / "results.json").read_text())
    assert results["processes"] == 2
    assert results["optimizer_steps"] == one_process["optimizer_steps"] == UPDATES
    assert [e["learning_rate"] for e in results["validation"]] == [pytest.approx(5e-4), 0.0]
    # Only the main process prints the test metrics and writes the results; nothing is left beside them.
    assert result.stdout.count("test accuracy ") == 1 and result.stdout.count("; results in ") == 1
    assert sorted(p.name for p in output.iterdir()) == ["best", "results.json"]
    # The test metrics are gathered from both processes over every test review, each counted once.
    assert results["examples"]["test"] == EVAL_SAMPLES
    assert results["metrics"]["accuracy"] == pytest.approx(accuracy_on_every_test_example(results["model_dir"]))


# One thread in every run, so that the killed, resumed and uninterrupted runs compute alike.
ONE_THREAD = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


def fine_tuning(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "finetune.nsmc", *args]


def newest_checkpoint(output: Path) -> int:
    return max((int(p.name.split("-")[1]) for p in output.glob("checkpoint-*")), default=0)


def test_a_killed_run_resumes_to_the_same_model_and_metrics(models: dict[str, Path], tmp_path: Path) -> None:
    # Checkpoints every 3 updates and at each epoch's end (7 updates an epoch): killed after update 9, in epoch 2.
    args = lambda output, *extra: nsmc_args(models["bert"], output, BATCH, "--save_steps", "3", *extra)  # noqa: E731
    reference = tmp_path / "uninterrupted"
    subprocess.run(fine_tuning(args(reference)), cwd=ROOT, env=ONE_THREAD, check=True, capture_output=True)
    assert sorted(p.name for p in reference.iterdir()) == ["best", "results.json"]  # checkpoints go when it is done

    interrupted = tmp_path / "interrupted"
    process = subprocess.Popen(
        fine_tuning(args(interrupted)), cwd=ROOT, env=ONE_THREAD, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 300
    while newest_checkpoint(interrupted) < 9 and time.time() < deadline and process.poll() is None:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = newest_checkpoint(interrupted)
    assert 9 <= killed_at < UPDATES and not (interrupted / "results.json").exists()

    # Rerun as it was: refused in one line, before any import of torch, saying how to go on.
    refused = subprocess.run(fine_tuning(args(interrupted)), cwd=ROOT, env=ONE_THREAD, capture_output=True, text=True)
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1
    assert f"pass --resume to continue it (from checkpoint-{killed_at}), --overwrite to delete it" in refused.stderr

    resumed = subprocess.run(
        fine_tuning(args(interrupted, "--resume")), cwd=ROOT, env=ONE_THREAD, check=True, capture_output=True, text=True
    )
    assert f"Resuming from {interrupted / f'checkpoint-{killed_at}'} (epoch 2, update {killed_at})" in resumed.stderr
    expected, got = (json.loads((run / "results.json").read_text()) for run in (reference, interrupted))
    for key in ("metrics", "best_epoch", "validation", "optimizer_steps"):
        assert got[key] == expected[key], key
    weights = [load_file(run / "best" / "model.safetensors") for run in (reference, interrupted)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])

    # A finished run has nothing to resume: --overwrite starts it again (and deletes its outputs first).
    again = subprocess.run(fine_tuning(args(interrupted, "--resume")), cwd=ROOT, env=ONE_THREAD, capture_output=True)
    assert again.returncode == 1 and b"with no complete checkpoint to resume from: pass --overwrite" in again.stderr


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog at INFO, with transformers' records too (its loggers do not propagate to the root logger)."""
    library = logging.getLogger("transformers")
    library.addHandler(caplog.handler)
    with caplog.at_level(logging.INFO):
        yield caplog
    library.removeHandler(caplog.handler)


def load_classifier(model_dir: Path, **model_kwargs: Any) -> torch.nn.Module:
    args = argparse.Namespace(model_name_or_path=str(model_dir), seed=0, max_seq_length=32)
    return load_task_model(args, AutoModelForSequenceClassification, num_labels=2, **model_kwargs)[1]


@pytest.mark.parametrize(
    ("name", "line"),
    [
        (
            "distilbert",
            "initialised a new DistilBertForSequenceClassification head (classifier.bias, classifier.weight, "
            "pre_classifier.bias, pre_classifier.weight); dropped the DistilBertForMaskedLM head "
            "(vocab_layer_norm.bias, vocab_layer_norm.weight, vocab_projector.bias, vocab_transform.bias, "
            "vocab_transform.weight)",
        ),
        (
            # A masked LM has no pooler: a BERT classifier's is new.
            "bert",
            "initialised a new BertForSequenceClassification head (bert.pooler.dense.bias, bert.pooler.dense.weight, "
            "classifier.bias, classifier.weight); dropped the BertForMaskedLM head (cls.*)",
        ),
    ],
)
def test_a_masked_lm_loads_as_a_classifier_with_one_plain_line(
    name: str, line: str, models: dict[str, Path], all_logs: pytest.LogCaptureFixture
) -> None:
    load_classifier(models[name])
    # transformers would log a LOAD REPORT table, with terminal colour codes even in a file, as a warning.
    assert [(r.levelname, r.getMessage()) for r in all_logs.records] == [("INFO", f"{models[name]}: {line}")]


FFN_WEIGHT = "distilbert.transformer.layer.1.ffn.lin1.weight"


def with_changed_weights(source: Path, folder: Path, change: Callable[[dict[str, torch.Tensor]], object]) -> Path:
    """A copy of the model folder ``source`` whose weights ``change`` has edited in place."""
    shutil.copytree(source, folder)
    weights = load_file(folder / "model.safetensors")
    change(weights)
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    return folder


def test_a_weight_missing_beyond_the_head_is_a_warning_that_names_it(
    models: dict[str, Path], tmp_path: Path, all_logs: pytest.LogCaptureFixture
) -> None:
    broken = with_changed_weights(models["distilbert"], tmp_path / "broken", lambda w: w.pop(FFN_WEIGHT))
    load_classifier(broken)
    assert [r.getMessage() for r in all_logs.records if r.levelno >= logging.WARNING] == [
        f"{broken} does not fit DistilBertForSequenceClassification: weights missing from the checkpoint (initialised "
        f"at random): {FFN_WEIGHT}"
    ]


def test_a_failed_load_keeps_the_report_it_points_to(
    models: dict[str, Path], tmp_path: Path, all_logs: pytest.LogCaptureFixture
) -> None:
    # A weight of another shape: transformers raises and refers to "the above report", which must be there.
    broken = with_changed_weights(
        models["distilbert"], tmp_path / "broken", lambda w: w.update({FFN_WEIGHT: torch.zeros(3, 3)})
    )
    with pytest.raises(RuntimeError, match="above report"):
        load_classifier(broken)
    assert any("LOAD REPORT" in r.getMessage() and "MISMATCH" in r.getMessage() for r in all_logs.records)

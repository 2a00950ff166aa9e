"""pretrain/run.py end to end on CPU: a tiny teacher, prepared review blocks, one and two processes, kill and resume."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import BUNDLED_REVIEWS, ROOT, TWO_CPU_PROCESSES, read_lines
from safetensors.torch import load_file
from transformers import AutoModelForMaskedLM, AutoTokenizer, BertConfig, BertForMaskedLM

from pretrain.prepare import main as prepare
from pretrain.run import main as run
from tokenization_kobert import KoBertTokenizerFast

TINY = str(ROOT / "pretrain" / "configs" / "tiny.yaml")
RUN = str(ROOT / "pretrain" / "run.py")


@pytest.fixture(scope="module")
def teacher_dir(tokenizer_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=8002,
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        pad_token_id=1,
    )
    folder = tmp_path_factory.mktemp("teacher") / "bert"
    BertForMaskedLM(config).save_pretrained(folder)
    KoBertTokenizerFast.from_pretrained(tokenizer_dir).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def data_dir(teacher_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    corpus = root / "corpus.txt"
    corpus.write_text("\n".join(read_lines(BUNDLED_REVIEWS, 3000)) + "\n", encoding="utf-8")
    output = root / "blocks"
    prepare(
        [
            "--corpus",
            str(corpus),
            "--tokenizer_name_or_path",
            str(teacher_dir),
            "--output_dir",
            str(output),
            "--max_seq_length",
            "64",
            "--num_proc",
            "1",
            "--validation_ratio",
            "0.05",
        ]
    )
    return output


def run_args(teacher_dir: Path, data_dir: Path, output: Path, *extra: str) -> list[str]:
    return [
        "--config",
        TINY,
        "--teacher",
        str(teacher_dir),
        "--data_dir",
        str(data_dir),
        "--output_dir",
        str(output),
        *extra,
    ]


def subprocess_env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


def train(
    args: list[str], launcher: list[str] | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    command = [*(launcher or [sys.executable]), RUN, *args]
    environment = {**subprocess_env(), **(env or {})}
    result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def read_metrics(output: Path) -> list[dict]:
    return [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]


def without_timing(metrics: list[dict]) -> list[dict]:
    return [{k: v for k, v in m.items() if k != "tokens_per_s"} for m in metrics]


@pytest.fixture(scope="module")
def one_process_run(
    teacher_dir: Path, data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, subprocess.CompletedProcess]:
    """tiny.yaml's 20 steps in one process (checkpoints at 10 and 20): its output folder and what it printed."""
    output = tmp_path_factory.mktemp("one_process") / "run"
    return output, train(run_args(teacher_dir, data_dir, output, "--max_steps", "20"))


def test_one_process_trains_logs_checkpoints_and_exports(
    one_process_run: tuple[Path, subprocess.CompletedProcess],
) -> None:
    output, result = one_process_run
    assert "Running training" in result.stderr
    metrics = read_metrics(output)
    train_rows = [m for m in metrics if "loss" in m]
    assert [m["step"] for m in train_rows] == [5, 10, 15, 20]
    for row in train_rows:
        # alpha_mse is 0 in tiny.yaml: that term is neither computed nor logged.
        assert {"loss", "loss_ce", "loss_mlm", "loss_cos", "learning_rate", "tokens_per_s"} <= set(row)
        assert "loss_mse" not in row
        assert row["loss"] == pytest.approx(5 * row["loss_ce"] + 2 * row["loss_mlm"] + row["loss_cos"], rel=1e-5)
    eval_rows = [m for m in metrics if "eval_mlm_loss" in m]
    assert [m["step"] for m in eval_rows] == [10, 20]
    assert all(0 <= m["eval_top1_agreement"] <= 1 and m["eval_perplexity"] > 1 for m in eval_rows)
    # save_total_limit 2 keeps checkpoints 10 and 20; each, and final/, loads through the Auto classes.
    assert sorted(p.name for p in output.glob("checkpoint-*")) == ["checkpoint-10", "checkpoint-20"]
    assert not list(output.glob(".*.tmp"))  # final/ and the checkpoints were published, their staging gone
    for folder in (output / "checkpoint-20", output / "final"):
        model = AutoModelForMaskedLM.from_pretrained(folder)
        assert type(model).__name__ == "DistilBertForMaskedLM" and model.config.n_layers == 2
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
        assert (
            model(**tokenizer("학습된 학생", return_tensors="pt", return_token_type_ids=False)).logits.shape[-1] == 8002
        )
    assert list((output / "runs" if (output / "runs").exists() else output).rglob("events.out.tfevents.*"))
    distillation = json.loads((output / "final" / "distillation.json").read_text())
    assert distillation["student_layers_from_teacher"] == [0, 2]


def test_each_checkpoint_is_one_line_without_warnings(
    one_process_run: tuple[Path, subprocess.CompletedProcess],
) -> None:
    # Left to itself, accelerate logs seven INFO lines per checkpoint, and warns that it removed the student's output
    # projection (tied to its word embeddings) from the saved state; transformers draws a progress bar for each save.
    output, result = one_process_run
    assert "Removed shared tensor" not in result.stderr
    # Nor does transformers' progress bar of each save (and load) of a model's files take a line.
    assert "Writing model shards" not in result.stderr and "Loading weights" not in result.stderr
    mentions = [line for line in result.stderr.splitlines() if "checkpoint" in line.lower()]
    assert [line.split(" common.resume: ", 1)[-1] for line in mentions] == [
        f"Checkpoint saved: {output / 'checkpoint-10'}",
        f"Checkpoint saved: {output / 'checkpoint-20'}",
    ]


def test_killed_run_resumes_to_the_same_losses(teacher_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    # Logged every 7 steps, saved every 10: the first line after a resume covers steps before it too.
    steps = ["--max_steps", "60", "--save_steps", "10", "--save_total_limit", "10", "--eval_steps", "30"]
    steps += ["--logging_steps", "7"]
    reference = tmp_path / "uninterrupted"
    train(run_args(teacher_dir, data_dir, reference, *steps))

    interrupted = tmp_path / "interrupted"
    process = subprocess.Popen(
        [sys.executable, RUN, *run_args(teacher_dir, data_dir, interrupted, *steps)],
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while not (interrupted / "checkpoint-10").exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = max(int(p.name.split("-")[1]) for p in interrupted.glob("checkpoint-*"))
    assert killed_at < 60, "the run finished before it could be killed"

    result = train(run_args(teacher_dir, data_dir, interrupted, *steps, "--resume", "true"))
    assert f"Resuming from {interrupted / f'checkpoint-{killed_at}'}" in result.stderr
    assert without_timing(read_metrics(interrupted)) == without_timing(read_metrics(reference))
    final_a = load_file(reference / "final" / "model.safetensors")
    final_b = load_file(interrupted / "final" / "model.safetensors")
    assert final_a.keys() == final_b.keys()
    assert all(torch.equal(final_a[k], final_b[k]) for k in final_a)


def test_two_processes_with_accelerate_launch(teacher_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    output = tmp_path / "ddp"
    result = train(
        run_args(teacher_dir, data_dir, output, "--max_steps", "6", "--logging_steps", "3"),
        TWO_CPU_PROCESSES,
        {"ACCELERATE_USE_CPU": "true"},
    )
    assert "Processes = 2" in result.stderr
    assert [m["step"] for m in read_metrics(output) if "loss" in m] == [3, 6]
    assert AutoModelForMaskedLM.from_pretrained(output / "final").config.n_layers == 2


def test_masked_lm_alone_pretrains_a_bert_from_a_folder(teacher_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    # No teacher: how the recipe pretrains its teacher (and baseline) from a random model folder.
    output = tmp_path / "mlm"
    args = ["--teacher", "", "--student", str(teacher_dir), "--alpha_ce", "0", "--alpha_cos", "0", "--alpha_mlm", "1"]
    args += ["--freeze_position_embeddings", "false", "--max_steps", "40", "--eval_steps", "20", "--mlm_smoothing", "0"]
    args += ["--learning_rate", "1e-2", "--per_device_train_batch_size", "16"]
    result = train(run_args(teacher_dir, data_dir, output, *args))
    assert "student parameters" in result.stderr and "none (masked LM alone)" in result.stderr
    metrics = read_metrics(output)
    train_rows = [m for m in metrics if "loss" in m]
    assert all(set(m) & {"loss_ce", "loss_cos", "loss_mse"} == set() for m in train_rows)
    assert all(m["loss"] == pytest.approx(m["loss_mlm"]) for m in train_rows)
    eval_rows = [m for m in metrics if "eval_mlm_loss" in m]
    assert all("eval_top1_agreement" not in m and 0 <= m["eval_top1_accuracy"] <= 1 for m in eval_rows)
    # From random weights (loss ln(8002) = 9.0) the masked-LM loss must fall, and every weight must move.
    assert train_rows[-1]["loss_mlm"] < train_rows[0]["loss_mlm"] - 0.5
    assert eval_rows[-1]["eval_mlm_loss"] < eval_rows[0]["eval_mlm_loss"] < 8.5
    trained = AutoModelForMaskedLM.from_pretrained(output / "final")
    assert type(trained).__name__ == "BertForMaskedLM"
    start = BertForMaskedLM.from_pretrained(teacher_dir).state_dict()
    moved = {k for k, v in trained.state_dict().items() if not torch.equal(v, start[k])}
    assert "bert.embeddings.position_embeddings.weight" in moved and "cls.predictions.bias" in moved
    distillation = json.loads((output / "final" / "distillation.json").read_text())
    assert distillation["teacher"] is None and distillation["student_layers_from_teacher"] is None


def test_overwrite_replaces_an_earlier_run_and_keeps_other_files(
    teacher_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    output = tmp_path / "run"
    steps = ["--max_steps", "10", "--save_steps", "5", "--eval_steps", "0", "--report_to", "none"]
    run(run_args(teacher_dir, data_dir, output, *steps))
    first = read_metrics(output)
    (output / "init").mkdir()  # not the run's: the recipe keeps the student's initial weights beside its outputs
    (output / "checkpoint-99").mkdir()  # an earlier run's checkpoint that this one would never overwrite

    run(run_args(teacher_dir, data_dir, output, *steps, "--overwrite"))
    # One run's metrics, not a second copy of every step appended to the first.
    assert [m["step"] for m in read_metrics(output)] == [m["step"] for m in first] == [5, 10]
    assert sorted(p.name for p in output.glob("checkpoint-*")) == ["checkpoint-10", "checkpoint-5"]
    assert (output / "init").is_dir() and (output / "final" / "model.safetensors").is_file()


def test_a_resume_whose_random_states_are_not_restored_stops(teacher_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    # accelerate's load_state reports such a failure at INFO only ("Could not load random states"), and we hide its
    # INFO lines: without a check of ours the run would go on, with other dropout masks than the uninterrupted one.
    output = tmp_path / "run"
    steps = ["--save_steps", "2", "--logging_steps", "2", "--eval_steps", "0", "--report_to", "none"]
    run(run_args(teacher_dir, data_dir, output, *steps, "--max_steps", "4"))
    metrics = (output / "metrics.jsonl").read_text()
    (output / "checkpoint-4" / "training_state" / "random_states_0.pkl").write_bytes(b"damaged")
    message = (
        rf"^error: cannot resume from {re.escape(str(output / 'checkpoint-4'))} exactly: random_states_0.pkl could "
        r"not be read \(UnpicklingError: .*\)\. Delete .*checkpoint-4 to resume from the checkpoint before it, or "
        r"pass --overwrite to start afresh$"
    )
    with pytest.raises(SystemExit, match=message):
        run(run_args(teacher_dir, data_dir, output, *steps, "--max_steps", "6", "--resume"))
    assert (output / "metrics.jsonl").read_text() == metrics
    # The checkpoint before it resumes.
    shutil.rmtree(output / "checkpoint-4")
    run(run_args(teacher_dir, data_dir, output, *steps, "--max_steps", "6", "--resume"))
    assert [m["step"] for m in read_metrics(output)] == [2, 4, 6]


def refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one error a setting that cannot work ends the command with, before any model loads (exit 2)."""
    with pytest.raises(SystemExit) as stopped:
        run(argv)
    assert stopped.value.code == 2
    return capsys.readouterr().err


class TestStartupErrors:
    def test_earlier_run_without_resume_or_overwrite(
        self, teacher_dir: Path, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        output = tmp_path / "o"
        (output / "final").mkdir(parents=True)
        (output / "metrics.jsonl").write_text('{"step": 5, "loss": 1.0}\n')
        never = lambda name: pytest.fail("refused only after loading")  # noqa: E731
        monkeypatch.setattr("pretrain.trainer.load_bert_teacher", never)
        message = r"holds an earlier run \(final, metrics.jsonl\) with no complete checkpoint to resume from: pass "
        with pytest.raises(SystemExit, match=message + "--overwrite to delete it"):
            run(run_args(teacher_dir, data_dir, output))
        # The same advice with --resume (it said "drop --resume", and without it "pass --resume").
        with pytest.raises(SystemExit, match=message + "--overwrite to delete it"):
            run(run_args(teacher_dir, data_dir, output, "--resume"))
        assert (output / "metrics.jsonl").read_text() == '{"step": 5, "loss": 1.0}\n'
        (output / "checkpoint-4" / "trainer_state.json").parent.mkdir()
        (output / "checkpoint-4" / "trainer_state.json").write_text("{}")
        message = r"holds an earlier run \(checkpoint-4, final, metrics.jsonl\): pass --resume to continue it \(from "
        with pytest.raises(SystemExit, match=message + r"checkpoint-4\), --overwrite"):
            run(run_args(teacher_dir, data_dir, output))

    def test_resume_and_overwrite_together(self, teacher_dir: Path, data_dir: Path, tmp_path: Path, capsys) -> None:
        assert "choose one" in refused(
            run_args(teacher_dir, data_dir, tmp_path / "o", "--resume", "--overwrite"), capsys
        )

    def test_teacher_losses_without_teacher(self, teacher_dir: Path, data_dir: Path, tmp_path: Path, capsys) -> None:
        argv = run_args(teacher_dir, data_dir, tmp_path / "o", "--teacher", "", "--student", str(teacher_dir))
        assert "alpha_ce, alpha_cos, alpha_mse and alpha_hidden_mse need a teacher" in refused(argv, capsys)

    def test_neither_teacher_nor_student(self, teacher_dir: Path, data_dir: Path, tmp_path: Path, capsys) -> None:
        assert "teacher is required" in refused(
            run_args(teacher_dir, data_dir, tmp_path / "o", "--teacher", ""), capsys
        )

    def test_unknown_key(self, teacher_dir: Path, data_dir: Path, tmp_path: Path, capsys) -> None:
        shown = refused(run_args(teacher_dir, data_dir, tmp_path / "o", "--alpha_kd", "1"), capsys)
        assert "unrecognized arguments: --alpha_kd 1; did you mean --alpha_ce?" in shown

    def test_missing_data(self, teacher_dir: Path, tmp_path: Path) -> None:
        with pytest.raises(SystemExit, match="nowhere"):
            run(run_args(teacher_dir, tmp_path / "nowhere", tmp_path / "o"))
        # The typed function the recipe calls says it as a ValueError, before any model loads.
        from pretrain.distillation_config import load_config
        from pretrain.run import pretrain

        config = load_config(TINY, run_args(teacher_dir, tmp_path / "nowhere", tmp_path / "o")[2:])
        with pytest.raises(ValueError, match=r"nowhere: no meta\.json, so not a prepared corpus"):
            pretrain(config)
        assert not (tmp_path / "o").exists()

    def test_resume_without_checkpoint(self, teacher_dir: Path, data_dir: Path, tmp_path: Path) -> None:
        with pytest.raises(SystemExit, match=r"nothing to resume in .* drop --resume to start afresh"):
            run(run_args(teacher_dir, data_dir, tmp_path / "o", "--resume", "true"))

    def test_data_from_another_vocabulary(self, teacher_dir: Path, data_dir: Path, tmp_path: Path) -> None:
        other = tmp_path / "other-teacher"
        model = BertForMaskedLM.from_pretrained(teacher_dir)
        model.save_pretrained(other)
        tokenizer = KoBertTokenizerFast.from_pretrained(teacher_dir)
        tokenizer.save_pretrained(other)
        vocab = (other / "vocab.txt").read_text(encoding="utf-8").splitlines()
        vocab[10], vocab[11] = vocab[11], vocab[10]  # same size, different vocabulary
        (other / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
        (other / "tokenizer.json").unlink()
        with pytest.raises(SystemExit, match="another vocabulary"):
            run(run_args(other, data_dir, tmp_path / "o"))


@pytest.fixture(scope="module")
def encoder_teacher_dir(teacher_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny teacher's encoder alone (a BertModel, as multilingual-e5-small is): no masked-LM head."""
    folder = tmp_path_factory.mktemp("encoder") / "bert-model"
    BertForMaskedLM.from_pretrained(teacher_dir).bert.save_pretrained(folder)
    AutoTokenizer.from_pretrained(teacher_dir, trust_remote_code=True).save_pretrained(folder)
    return folder


def test_a_teacher_without_a_head_is_distilled_through_hidden_states(
    encoder_teacher_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    output = tmp_path / "run"
    hidden = ["--alpha_ce", "0", "--alpha_cos", "1", "--alpha_hidden_mse", "1", "--alpha_mlm", "1", "--max_steps", "10"]
    result = train(run_args(encoder_teacher_dir, data_dir, output, *hidden))
    assert "Loss terms = loss_mlm, loss_cos, loss_hidden_mse" in result.stderr
    metrics = read_metrics(output)
    losses = [m for m in metrics if "loss_hidden_mse" in m]
    assert losses and all(m["loss_hidden_mse"] > 0 and m["loss_cos"] > 0 for m in losses)
    eval_rows = [m for m in metrics if "eval_hidden_cosine" in m]
    assert eval_rows and all(-1 <= m["eval_hidden_cosine"] <= 1 and "eval_top1_agreement" not in m for m in eval_rows)
    info = json.loads((output / "final" / "distillation.json").read_text(encoding="utf-8"))
    assert info["teacher_mlm_head"] is False
    assert info["config"]["hidden_layer_map"] == [2, 4]  # 2 student layers of 4: evenly spaced, the last on the last
    assert AutoModelForMaskedLM.from_pretrained(output / "final").config.n_layers == 2


def test_a_teacher_without_a_head_refuses_the_logit_terms(
    encoder_teacher_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(SystemExit, match=r"has no masked-LM head .* set --alpha_ce 0 --alpha_mse 0"):
        run(run_args(encoder_teacher_dir, data_dir, tmp_path / "run"))
    with pytest.raises(SystemExit, match=r"hidden_layer_map \[1, 2, 3\] has 3 entries; the student has 2 layers"):
        run(
            run_args(
                encoder_teacher_dir,
                data_dir,
                tmp_path / "run",
                "--alpha_ce",
                "0",
                "--alpha_hidden_mse",
                "1",
                "--hidden_layer_map",
                "1",
                "2",
                "3",
            )
        )
    assert not (tmp_path / "run").exists()

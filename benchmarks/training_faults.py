"""Every training command killed at random moments and while saving, then continued until done: does it end with
the uninterrupted run's weights? And is a second run on the same output refused, naming the first?

    python -m benchmarks.training_faults                   # 4 commands, 5 random kills and 1 during a save each
    python -m benchmarks.training_faults --kills 9 --only finetune.nsmc

On tiny models and the bundled data (a random 4-layer BERT with the KoBERT tokenizer), one thread per run so that
runs compute alike. For each command: an uninterrupted reference run; then the same run SIGKILLed once the moment a
checkpoint or best model starts being written and ``--kills`` times at a random moment (seeded), each time started
again as a user would after a kill (``--resume`` when the output holds a checkpoint, ``--overwrite`` when it holds
only the remains of a run killed before its first), until it finishes; its saved model is compared tensor by tensor
with the reference's. Then two runs are started on one output at once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.checkpoints import continue_flags
from common.config import key, run_command
from common.io import write_json
from distill.train_config import RUN_OUTPUTS as DISTILL_OUTPUTS
from finetune.arguments import RUN_OUTPUTS as FINETUNE_OUTPUTS
from pretrain.distillation_config import RUN_OUTPUTS as PRETRAIN_OUTPUTS

ROOT = Path(__file__).resolve().parent.parent
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
DATA = ROOT / "data"


@dataclass(frozen=True)
class Trained:
    """A training command as the probes run it: its arguments for an output folder, the flags that continue an
    interrupted run, the file holding its model, and where it stages a save."""

    name: str
    argv: Callable[[Path, Path], list[str]]  # (workspace, output) -> the command line
    again: Callable[[Path], list[str]]  # output -> what a user adds after a kill
    model_file: str
    saving: Callable[[Path], bool]  # output -> whether a save is being written


def sentence_again(output: Path) -> list[str]:
    if (output / "checkpoints").is_dir():
        return ["--resume"]
    return ["--overwrite"] if output.exists() and any(output.iterdir()) else []


def staging(patterns: tuple[str, ...]) -> Callable[[Path], bool]:
    return lambda output: output.is_dir() and any(any(output.glob(p)) for p in patterns)


COMMANDS = [
    Trained(
        "finetune.nsmc",
        lambda w, o: [
            "-m", "finetune.nsmc", "--model_name_or_path", str(w / "bert"),
            "--train_file", str(DATA / "nsmc_train.txt.gz"), "--test_file", str(DATA / "nsmc_test.txt.gz"),
            "--output_dir", str(o), "--max_train_samples", "720", "--max_eval_samples", "100",
            "--num_train_epochs", "3", "--per_device_train_batch_size", "8", "--max_seq_length", "32",
            "--learning_rate", "1e-3", "--save_steps", "4",
        ],
        lambda output: continue_flags(output, FINETUNE_OUTPUTS),
        "best/model.safetensors",
        staging((".checkpoint-*", ".best*")),
    ),
    Trained(
        "distill.train",
        lambda w, o: [
            "-m", "distill.train", "--config", str(ROOT / "distill" / "configs" / "bilstm_base.yaml"), "--alpha", "1",
            "--train_files", str(DATA / "nsmc_train.txt.gz"), "--test_file", str(DATA / "nsmc_test.txt.gz"),
            "--output_dir", str(o), "--bilstm_preset", "tiny", "--max_train_examples", "1500", "--num_train_epochs",
            "3", "--save_steps", "7", "--logging_steps", "5", "--report_to", "none",
        ],
        lambda output: continue_flags(output, DISTILL_OUTPUTS),
        "best/model.safetensors",
        staging((".checkpoint-*", ".best*")),
    ),
    Trained(
        "sentence.sts",
        lambda w, o: [
            "-m", "sentence.sts", "--model_name_or_path", str(w / "bert"),
            "--train_file", str(DATA / "korsts_train.tsv"), "--test_file", str(DATA / "korsts_dev.tsv"),
            "--output_dir", str(o), "--num_train_epochs", "2", "--per_device_train_batch_size", "16",
            "--eval_steps", "6", "--max_seq_length", "32",
        ],
        sentence_again,
        "best/model.safetensors",
        staging(("checkpoints/tmp-*", ".best*", "checkpoints/*/.tmp*")),
    ),
    Trained(
        "pretrain/run.py",
        lambda w, o: [
            str(ROOT / "pretrain" / "run.py"), "--config", str(ROOT / "pretrain" / "configs" / "tiny.yaml"),
            "--teacher", str(w / "bert"), "--data_dir", str(w / "prepared"), "--output_dir", str(o),
            "--max_steps", "60", "--save_steps", "5", "--report_to", "none",
        ],
        lambda output: continue_flags(output, PRETRAIN_OUTPUTS),
        "final/model.safetensors",
        staging((".checkpoint-*", ".final*")),
    ),
]  # fmt: skip


def run(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, *argv], cwd=ROOT, env=ONE_THREAD, stdout=out, stderr=out)


def prepare(workspace: Path) -> None:
    """The tiny teacher every command starts from, and the prepared corpus of pretrain/run.py."""
    from modeling.random_teacher import RandomTeacherArguments, save_random_teacher
    from pretrain.prepare import PrepareArguments, prepare_corpus

    tokenizer = str(DATA / "kobert")
    save_random_teacher(
        RandomTeacherArguments(shape="tiny", tokenizer_name_or_path=tokenizer, output_dir=str(workspace / "bert"))
    )
    corpus = [str(DATA / "reviews.txt.gz")]
    prepare_corpus(
        PrepareArguments(
            corpus=corpus, tokenizer_name_or_path=tokenizer, output_dir=str(workspace / "prepared"), max_seq_length=32
        )
    )


def same_weights(a: Path, b: Path) -> bool:
    import torch
    from safetensors.torch import load_file

    first, second = load_file(a), load_file(b)
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def killed_until_done(
    command: Trained, workspace: Path, output: Path, moments: list[float], during_save: int
) -> dict[str, Any]:
    """The run killed at each of ``moments`` (seconds after it starts) and ``during_save`` times as it saves, then
    continued to the end; how many kills landed and how many starts it took."""
    log = output.with_suffix(".log")
    kills, starts, plan = 0, 0, [*(("save", 0.0) for _ in range(during_save)), *(("time", m) for m in moments)]
    while True:
        process = run(command.argv(workspace, output) + command.again(output), log)
        starts += 1
        kind, moment = plan.pop(0) if plan else ("none", 0.0)
        started = time.monotonic()
        while process.poll() is None:
            if (kind == "time" and time.monotonic() - started >= moment) or (kind == "save" and command.saving(output)):
                process.send_signal(signal.SIGKILL)
                process.wait()
                kills += 1
                break
            time.sleep(0.005)
        if process.returncode == 0:
            return {"kills": kills, "planned": len(moments) + during_save, "starts": starts}
        if process.returncode != -signal.SIGKILL:
            raise RuntimeError(f"{command.name} failed ({process.returncode}); see {log}")
        if starts > 40:
            raise RuntimeError(f"{command.name} did not finish in 40 starts; see {log}")


def two_runs_on_one_output(command: Trained, workspace: Path, output: Path) -> dict[str, Any]:
    """Two runs started on one output: the second should be refused at once, naming the first's process."""
    log = output.with_suffix(".log")
    first = run(command.argv(workspace, output), log)
    deadline = time.monotonic() + 60
    while not any(output.parent.glob(f".{output.name}*.lock")) and time.monotonic() < deadline:
        time.sleep(0.01)
    second = subprocess.run(
        [sys.executable, *command.argv(workspace, output)], cwd=ROOT, env=ONE_THREAD, capture_output=True, text=True
    )
    first.wait()
    said = second.stderr.strip().splitlines()[-1] if second.stderr.strip() else ""
    return {"second_exit": second.returncode, "names_first": str(first.pid) in said, "said": said,
            "first_exit": first.returncode}  # fmt: skip


@dataclass(kw_only=True)
class TrainingFaultOptions:
    """What ``python -m benchmarks.training_faults`` reads."""

    kills: int = key(5, "Random kills per command (one more the moment a save begins).")
    only: str = key("", "One command, e.g. finetune.nsmc; empty: all four.")
    seed: int = key(0, "Seeds the kill moments.")
    output_file: str = key(str(ROOT / "benchmarks" / "results" / "training_faults.json"), "The figures, as JSON.")

    def validate(self) -> None:
        if self.kills < 0:
            raise ValueError(f"--kills must not be negative, got {self.kills}")
        if self.only and self.only not in {c.name for c in COMMANDS}:
            raise ValueError(f"--only {self.only!r}: one of {', '.join(c.name for c in COMMANDS)}")


def probe_training(options: TrainingFaultOptions) -> list[dict[str, Any]]:
    """Each chosen command killed and continued, then raced on one output; a row each, printed as measured and
    written to ``options.output_file``. RuntimeError, naming its log, for a run that fails otherwise."""
    options.validate()
    chosen = [c for c in COMMANDS if options.only in ("", c.name)]
    draw = random.Random(options.seed)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        workspace = Path(folder)
        prepare(workspace)
        for command in chosen:
            name = command.name.replace("/", "_")
            reference, faulty = workspace / f"{name}-reference", workspace / f"{name}-killed"
            start = time.monotonic()
            subprocess.run([sys.executable, *command.argv(workspace, reference)], cwd=ROOT, env=ONE_THREAD, check=True,
                           capture_output=True)  # fmt: skip
            seconds = time.monotonic() - start
            # A restarted run has less left to do: moments early enough that most kills land.
            moments = [draw.uniform(0.2, 0.6) * seconds for _ in range(options.kills)]
            outcome = killed_until_done(command, workspace, faulty, moments, during_save=1)
            same = same_weights(reference / command.model_file, faulty / command.model_file)
            race = two_runs_on_one_output(command, workspace, workspace / f"{name}-race")
            row = {"command": command.name, "reference_seconds": round(seconds, 1), **outcome, "same_weights": same,
                   "two_runs": race}  # fmt: skip
            rows.append(row)
            print(
                f"{command.name}: {outcome['kills']} of {outcome['planned']} kills landed -> "
                f"{'the same weights' if same else 'OTHER WEIGHTS'} as the uninterrupted run ({seconds:.0f} s); "
                f"a second run on one output: exit {race['second_exit']}, "
                f"{'names' if race['names_first'] else 'does NOT name'} the first ({race['said']})"
            )
    write_json(options.output_file, {"kills": options.kills, "seed": options.seed, "rows": rows})
    return rows


def main(argv: list[str] | None = None) -> int:
    try:
        run_command(probe_training, TrainingFaultOptions, argv, "python -m benchmarks.training_faults", __doc__)
    except RuntimeError as err:  # a run that failed (not killed): its log says why
        raise SystemExit(f"error: {err}") from err
    return 0


if __name__ == "__main__":
    sys.exit(main())

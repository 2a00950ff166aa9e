"""Should fine-tuning move to ``transformers.Trainer``? Its resume against ours, on the same tiny run, side by side.

    python -m benchmarks.trainer_resume

One tiny random BERT (``modeling.random_teacher --shape tiny``) with the KoBERT tokenizer is fine-tuned on the first
``--train_examples`` bundled NSMC reviews, one thread, by each machinery twice: once without a stop, checkpointing
every ``--save_steps`` updates; then again from the uninterrupted run's checkpoint of update ``--resume_step`` (in
the middle of an epoch), copied into a fresh output folder: what a run killed after that checkpoint resumes from.
For ``transformers.Trainer``: ``Trainer.train(resume_from_checkpoint=...)`` on the same arguments; for ours:
``finetune.tasks.fine_tune`` with ``--resume``. Each pair's final weights are compared tensor by tensor (largest
absolute difference). The seconds of the uninterrupted runs are recorded but are not like for like: ours also
validates after each epoch, keeps the best epoch and tests it. Writes ``benchmarks/results/trainer_resume.json``.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.config import key, run_command
from common.io import write_json

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"


@dataclass(kw_only=True)
class TrainerResumeOptions:
    train_examples: int = key(720, "Bundled NSMC training reviews used (the first ones).")
    num_train_epochs: int = key(3, "Epochs of each run.")
    per_device_train_batch_size: int = key(8, "Examples per update.")
    save_steps: int = key(4, "Updates between checkpoints.")
    resume_step: int = key(20, "The checkpoint the resumed runs start from (an update in the middle of an epoch).")
    output_file: str = key(str(ROOT / "benchmarks" / "results" / "trainer_resume.json"), "The figures, as JSON.")

    def validate(self) -> None:
        updates_per_epoch = -(-self.train_examples // self.per_device_train_batch_size)
        if self.resume_step % self.save_steps or not 0 < self.resume_step < updates_per_epoch * self.num_train_epochs:
            raise ValueError("--resume_step must be a multiple of --save_steps within the run")


def largest_difference(first: Path, second: Path) -> float:
    """The largest absolute difference between the tensors of two safetensors files (the same names)."""
    from safetensors.torch import load_file

    a, b = load_file(str(first)), load_file(str(second))
    assert a.keys() == b.keys(), f"{first} and {second} hold other tensors"
    return max(float((a[name].float() - b[name].float()).abs().max()) for name in a)


def hf_trainer_runs(options: TrainerResumeOptions, model: Path, work: Path) -> dict[str, Any]:
    """transformers.Trainer: uninterrupted, then resumed from the uninterrupted run's checkpoint."""
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    from common.readers import read_nsmc

    tokenizer = AutoTokenizer.from_pretrained(model, trust_remote_code=True)
    records = read_nsmc(str(DATA / "nsmc_train.txt.gz"), "train")[: options.train_examples]
    encoded = tokenizer([r["document"] for r in records], truncation=True, max_length=32)
    features = [{"input_ids": ids, "labels": r["label"]} for ids, r in zip(encoded["input_ids"], records, strict=True)]

    def train(output: Path, resume: Path | None) -> float:
        arguments = TrainingArguments(
            output_dir=str(output),
            per_device_train_batch_size=options.per_device_train_batch_size,
            num_train_epochs=options.num_train_epochs,
            learning_rate=1e-3,
            save_strategy="steps",
            save_steps=options.save_steps,
            save_total_limit=None,
            seed=42,
            report_to="none",
            use_cpu=True,
            disable_tqdm=True,
            logging_strategy="no",
        )
        classifier = AutoModelForSequenceClassification.from_pretrained(model, num_labels=2)
        trainer = Trainer(
            model=classifier,
            args=arguments,
            train_dataset=features,
            data_collator=DataCollatorWithPadding(tokenizer),
        )
        start = time.perf_counter()
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)
        seconds = time.perf_counter() - start
        trainer.save_model(str(output / "final"))
        return seconds

    whole, resumed = work / "hf-whole", work / "hf-resumed"
    seconds = train(whole, None)
    checkpoint = resumed / f"checkpoint-{options.resume_step}"
    shutil.copytree(whole / f"checkpoint-{options.resume_step}", checkpoint)
    train(resumed, checkpoint)
    difference = largest_difference(whole / "final" / "model.safetensors", resumed / "final" / "model.safetensors")
    return {"seconds_uninterrupted": round(seconds, 2), "largest_difference_after_resume": difference}


def our_runs(options: TrainerResumeOptions, model: Path, work: Path) -> dict[str, Any]:
    """finetune.tasks.fine_tune: uninterrupted, then resumed with --resume from the same checkpoint."""
    from finetune.nsmc import NsmcArguments
    from finetune.tasks import fine_tune

    def arguments(output: Path, resume: bool) -> NsmcArguments:
        return NsmcArguments(
            model_name_or_path=str(model),
            train_file=str(DATA / "nsmc_train.txt.gz"),
            test_file=str(DATA / "nsmc_test.txt.gz"),
            output_dir=str(output),
            max_train_samples=options.train_examples,
            max_eval_samples=100,
            validation_split=0.1,
            num_train_epochs=options.num_train_epochs,
            per_device_train_batch_size=options.per_device_train_batch_size,
            max_seq_length=32,
            learning_rate=1e-3,
            save_steps=options.save_steps,
            resume=resume,
        )

    whole, resumed = work / "ours-whole", work / "ours-resumed"
    keep = whole.with_name("ours-checkpoint")
    start = time.perf_counter()
    # The uninterrupted run deletes its checkpoints when it finishes: the one to resume from comes from the same run
    # stopped right after writing it.
    results = fine_tune("nsmc", arguments(whole, False))
    seconds = time.perf_counter() - start
    checkpoint = stop_after(arguments(keep, False), options.resume_step)
    resumed.mkdir(parents=True)
    shutil.copytree(checkpoint, resumed / checkpoint.name)
    again = fine_tune("nsmc", arguments(resumed, True))
    difference = largest_difference(whole / "best" / "model.safetensors", resumed / "best" / "model.safetensors")
    same_metric = again["metrics"] == results["metrics"]
    return {
        "seconds_uninterrupted": round(seconds, 2),
        "largest_difference_after_resume": difference,
        "same_test_metrics": same_metric,
    }


def stop_after(arguments: Any, step: int) -> Path:
    """Run ``arguments`` until its checkpoint of update ``step`` is written, then stop it as a kill would (the
    exception a checkpoint hook raises ends the run where a SIGKILL after that save would); the checkpoint."""
    from common.training import StagedTrainer
    from finetune.tasks import fine_tune

    class Stopped(Exception):
        pass

    original = StagedTrainer._save_checkpoint

    def save_then_stop(self: StagedTrainer, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if self.state.global_step == step:
            raise Stopped

    StagedTrainer._save_checkpoint = save_then_stop
    try:
        fine_tune("nsmc", arguments)
    except Stopped:
        pass
    finally:
        StagedTrainer._save_checkpoint = original
    return Path(arguments.output_dir) / f"checkpoint-{step}"


def measure_trainer_resume(options: TrainerResumeOptions) -> dict[str, Any]:
    options.validate()
    import torch

    from modeling.random_teacher import RandomTeacherArguments, save_random_teacher

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        model = work / "bert"
        save_random_teacher(
            RandomTeacherArguments(shape="tiny", tokenizer_name_or_path=str(DATA / "kobert"), output_dir=str(model))
        )
        report = {
            "options": dataclasses.asdict(options),
            "transformers.Trainer": hf_trainer_runs(options, model, work),
            "finetune (ours)": our_runs(options, model, work),
        }
    write_json(options.output_file, report)
    return report


def main(argv: list[str] | None = None) -> int:
    report = run_command(
        measure_trainer_resume, TrainerResumeOptions, argv, "python -m benchmarks.trainer_resume", __doc__
    )
    step = report["options"]["resume_step"]
    for name in ("transformers.Trainer", "finetune (ours)"):
        row = report[name]
        print(
            f"{name}: uninterrupted {row['seconds_uninterrupted']} s; resumed from update {step}: largest weight "
            f"difference {row['largest_difference_after_resume']:.3g}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The training of ``distill.train`` (its function checks the config and the output folder, then calls ``train``): a
student trained on cached teacher logits and gold labels on ``transformers.Trainer`` (``common.training``'s
``StagedTrainer``, as fine-tuning: checkpoints that resume exactly, several processes, mixed precision), with the
distillation loss as its ``compute_loss``, validated on a held-out share, the best model published to
``OUTPUT_DIR/best`` and tested once.
"""

from __future__ import annotations

import array
import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator, PartialState
from accelerate.utils import set_seed
from torch import nn
from torch.utils.data import Dataset
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    BertForMaskedLM,
    DistilBertForSequenceClassification,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)

from common.checkpoints import delete_earlier_outputs
from common.config import save_config
from common.io import not_written, setup_logging
from common.readers import write_results
from common.resume import RunningLosses, due, trim_metrics
from common.training import (
    StagedTrainer,
    best_model,
    pad_inputs,
    predict,
    resumed_run_state,
    save_best,
    takes_token_type_ids,
    train_quietly,
    training_arguments,
)
from distill.examples import (
    IGNORE_INDEX,
    CachedExamples,
    CacheWriter,
    Example,
    complete_cache_info,
    no_examples,
    read_examples,
)
from distill.task_losses import distillation_loss
from distill.train_config import (
    BEST_DIR,
    CONFIG_FILE,
    EXAMPLES_DIR,
    METRICS_FILE,
    RESULTS_FILE,
    RUN_OUTPUTS,
    TOKENIZER_DIR,
    TrainConfig,
)
from modeling.bilstm import KoBiLstmForSequenceClassification, bilstm_config
from modeling.load import hub_or_local, load_tokenizer, load_with_new_head
from modeling.student import build_student, parameter_count

logger = logging.getLogger("distill")
TRAINING_KINDS = ("labelled", "unlabelled", "augmented")  # the kinds of training example select_rows counts


@dataclass(frozen=True)
class TransferSet:
    """The examples a run trains on: a cache folder (with the teacher's logits) or the labelled files alone."""

    examples: CachedExamples
    num_labels: int
    id2label: dict[int, str] | None
    info: dict[str, Any]  # cache.json, or a description of the labelled files


# ----------------------------------------------------------------------------------------------------- start-up


def check_cache_sources(config: TrainConfig, info: dict[str, Any]) -> None:
    """The cache must come from the config's teachers and training files, when the config names them: a cache of
    another teacher or other data is refused, never silently used."""
    from modeling.fingerprint import file_fingerprint, model_fingerprint

    cached_teachers = {teacher["fingerprint"] for teacher in info["teachers"]}
    for teacher in config.teacher_name_or_path:
        if model_fingerprint(teacher) not in cached_teachers:
            names = ", ".join(t["path"] for t in info["teachers"])
            raise ValueError(
                f"the cache {config.cache_dir} was not made with the teacher {teacher} (it was made with {names}): "
                "write a cache for this teacher with python -m distill.cache_logits"
            )
    cached_data = {source["fingerprint"] for source in info["data"]}
    for path in config.train_files:
        if file_fingerprint(path) not in cached_data:
            raise ValueError(
                f"the cache {config.cache_dir} was not made from {path} (its data: "
                f"{', '.join(source['path'] for source in info['data'])}; or the file has changed since): write the "
                "cache again with python -m distill.cache_logits"
            )


def labelled_files_as_examples(paths: list[str], folder: Path) -> None:
    """The labelled training files as a transfer set without logits, for a run without a teacher."""
    with CacheWriter(folder) as writer:
        for path in paths:
            before = writer.rows
            for example in read_examples(path):
                if example.label == IGNORE_INDEX:
                    raise ValueError(
                        f"{path}: not a labelled file (header id<TAB>document<TAB>label): alpha 1 needs labels"
                    )
                writer.add(example)
            if writer.rows == before:
                raise no_examples(path, "--train_files")


def teacher_test_accuracy(config: TrainConfig, info: dict[str, Any]) -> float:
    """The teachers' accuracy on test_file, from ``teacher_test_cache``: checked (by fingerprint) to be the training
    cache's teachers on that very file, so that the results never pair a student with another teacher's score."""
    from modeling.fingerprint import file_fingerprint

    test_info = complete_cache_info(config.teacher_test_cache)
    teachers = sorted(t["fingerprint"] for t in info["teachers"])
    if sorted(t["fingerprint"] for t in test_info["teachers"]) != teachers:
        raise ValueError(
            f"--teacher_test_cache {config.teacher_test_cache} was made with other teachers than the cache "
            f"{config.cache_dir}: write it with the same --teacher_name_or_path"
        )
    wanted = file_fingerprint(config.test_file)
    names = [d["name"] for d in test_info["data"] if d["fingerprint"] == wanted]
    if not names or names[0] not in test_info.get("teacher_accuracy", {}):
        raise ValueError(
            f"--teacher_test_cache {config.teacher_test_cache} holds no labelled test_file {config.test_file} (or "
            "the file has changed since): write it with python -m distill.cache_logits --data_files TEST_FILE"
        )
    return test_info["teacher_accuracy"][names[0]]


def open_transfer_set(config: TrainConfig, process: PartialState) -> TransferSet:
    if config.cache_dir:
        info = complete_cache_info(config.cache_dir)
        check_cache_sources(config, info)
        if config.teacher_test_cache:
            info = {**info, "teacher_test_accuracy": teacher_test_accuracy(config, info)}
        id2label = {int(k): v for k, v in info["id2label"].items()} if info.get("id2label") else None
        examples = CachedExamples(config.cache_dir, with_logits=config.alpha < 1)
        return TransferSet(examples, info["num_labels"], id2label, info)
    folder = Path(config.output_dir) / EXAMPLES_DIR
    if process.is_main_process:
        labelled_files_as_examples(config.train_files, folder)
    process.wait_for_everyone()
    examples = CachedExamples(folder, with_logits=False)
    num_labels = 1 + max(example.label for example in examples)
    return TransferSet(examples, max(num_labels, 2), None, {"data": [{"path": p} for p in config.train_files]})


# ------------------------------------------------------------------------------------------------ the examples


def held_out(origin: str, share: float, seed: int) -> bool:
    """Whether the labelled example ``origin`` (and its augmented copies) is in the validation split: a seeded hash
    of its key, so the split needs no pass over the whole set in memory and is the same on every process."""
    digest = hashlib.sha256(f"{seed}:{origin}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def text_digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode(), digest_size=8).digest()


def validation_text_digests(examples: CachedExamples, config: TrainConfig) -> set[bytes]:
    """Digests of the texts of the labelled examples in the validation split (one pass over the transfer set)."""
    return {
        text_digest(example.text)
        for example in examples
        if example.key == example.origin
        and example.label != IGNORE_INDEX
        and held_out(example.key, config.validation_split, config.seed)
    }


def select_rows(
    examples: CachedExamples, config: TrainConfig
) -> tuple[np.ndarray, np.ndarray, list[Example], dict[str, int]]:
    """Row numbers of the training examples and their text lengths (characters), the validation examples, and how
    many of each kind were taken.

    Training takes the labelled examples outside the validation split, and (unless the config leaves them out, and
    always for alpha 1, which has no teacher) the unlabelled ones and the augmented copies of examples outside it.
    An unlabelled example with the text of a validation example is left out, with its copies: an unlabelled corpus
    often holds the labelled reviews too (../shared's holds 161,256 lines of NSMC's training reviews), and the
    student would otherwise train on the validation reviews that pick its best model (``in_validation`` counts them).
    The row number and the length are all that is kept per training example (12 bytes).
    """
    validation: list[Example] = []
    held_out_labelled: set[str] = set()  # labelled keys in the validation split: their copies are left out too
    counts = {"validation": 0, "in_validation": 0}
    with_teacher = config.alpha < 1
    take_unlabelled = with_teacher and config.use_unlabelled
    validation_texts = validation_text_digests(examples, config) if take_unlabelled else set()
    left_out: set[str] = set()  # unlabelled keys left out for their validation text, whose copies are left out too

    def training_rows() -> Iterator[int]:
        for row, example in enumerate(examples):
            original = example.key == example.origin
            if original and example.label != IGNORE_INDEX:
                if held_out(example.key, config.validation_split, config.seed):
                    held_out_labelled.add(example.key)
                    validation.append(example)
                    counts["validation"] += 1
                    continue
                kind = "labelled"
            elif original:
                if take_unlabelled and text_digest(example.text) in validation_texts:
                    left_out.add(example.key)
                    counts["in_validation"] += 1
                    continue
                kind = "unlabelled" if take_unlabelled else None
            elif example.origin in held_out_labelled or example.origin in left_out:
                kind = None
            else:
                kind = "augmented" if with_teacher and config.use_augmented else None
            if kind is None:
                continue
            kinds.append(TRAINING_KINDS.index(kind))
            lengths.append(len(example.text))
            yield row

    lengths, kinds = array.array("i"), array.array("b")
    rows = np.fromiter(training_rows(), dtype=np.int64)
    text_lengths = np.frombuffer(lengths, dtype=np.int32)
    counts["available"] = len(rows)
    if config.max_train_examples > 0:
        rows, text_lengths = rows[: config.max_train_examples], text_lengths[: config.max_train_examples]
    # The kinds of the rows kept (it logged "1800 ({'labelled': 18109, ...})" under --max_train_examples).
    taken = np.bincount(np.frombuffer(kinds, dtype=np.int8)[: len(rows)], minlength=len(TRAINING_KINDS))
    counts.update(zip(TRAINING_KINDS, map(int, taken), strict=True))
    if len(rows) == 0 or not validation:
        raise ValueError(
            f"{len(rows)} training and {len(validation)} validation examples: the transfer set needs labelled "
            "examples (a file with the header id<TAB>document<TAB>label)"
        )
    return rows, text_lengths, validation, counts


def texts_of_rows(examples: CachedExamples, rows: np.ndarray) -> Iterator[str]:
    """The texts of the given rows (ascending), in one sequential read of the transfer set."""
    wanted = np.zeros(len(examples), dtype=bool)
    wanted[rows] = True
    for row, example in enumerate(examples):
        if wanted[row]:
            yield example.text


class TrainingRows(Dataset):
    """The selected rows of a transfer set: (text, gold label or -100, teacher logits or None)."""

    def __init__(self, examples: CachedExamples, rows: np.ndarray) -> None:
        self.examples, self.rows = examples, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> tuple[str, int, np.ndarray | None]:
        example, logits = self.examples[int(self.rows[index])]
        return example.text, example.label, logits


def collate_rows(
    items: list[tuple[str, int, np.ndarray | None]], tokenizer: Any, max_length: int, with_token_types: bool
) -> dict[str, torch.Tensor]:
    texts, labels, logits = zip(*items, strict=True)
    batch = tokenizer(list(texts), truncation=True, max_length=max_length, padding=True, return_tensors="pt")
    if not with_token_types:
        batch.pop("token_type_ids", None)
    batch = dict(batch)
    batch["labels"] = torch.tensor(labels, dtype=torch.long)
    if logits[0] is not None:
        batch["teacher_logits"] = torch.from_numpy(np.stack(logits))
    return batch


def read_test_examples(path: str, num_labels: int) -> list[Example]:
    examples = []
    for example in read_examples(path):
        if example.label == IGNORE_INDEX:
            raise ValueError(f"{path}: the test data must be labelled (header id<TAB>document<TAB>label)")
        if example.label >= num_labels:
            raise ValueError(
                f"{example.key.replace(Path(path).name, path, 1)}: label {example.label}, but the teacher and the "
                f"transfer set have {num_labels} labels (0 to {num_labels - 1})"
            )
        examples.append(example)
    return examples


def encode(tokenizer: Any, examples: list[Example], max_length: int) -> list[dict[str, Any]]:
    encoded = tokenizer([e.text for e in examples], truncation=True, max_length=max_length)
    return [{**{k: encoded[k][i] for k in encoded}, "labels": e.label} for i, e in enumerate(examples)]


# ------------------------------------------------------------------------------------------ tokenizer and model


def student_tokenizer(config: TrainConfig, examples: CachedExamples, rows: np.ndarray, process: PartialState) -> Any:
    """The DistilBERT student's own tokenizer; the BiLSTM's given one, or one trained on the training texts (by the
    main process, saved in OUTPUT_DIR/tokenizer, which a resumed run reuses)."""
    if config.student == "distilbert":
        return load_tokenizer(config.student_name_or_path)
    if config.tokenizer_name_or_path:
        tokenizer = load_tokenizer(config.tokenizer_name_or_path)
    else:
        folder = Path(config.output_dir) / TOKENIZER_DIR
        if process.is_main_process and not (folder / "tokenizer.json").is_file():
            from distill.tokenizer import train_student_tokenizer

            texts = partial(texts_of_rows, examples, rows)
            source = f"the training texts ({config.cache_dir or ', '.join(config.train_files)})"
            tokenizer = train_student_tokenizer(texts, config.vocab_size, config.tokenizer_kind, source=source)
            tokenizer.save_pretrained(folder)
        process.wait_for_everyone()
        tokenizer = load_tokenizer(str(folder))
    tokenizer.padding_side = "right"  # the BiLSTM packs right-padded sequences
    return tokenizer


def distilbert_student(config: TrainConfig, num_labels: int, id2label: dict[int, str] | None) -> nn.Module:
    """A DistilBERT classifier from a DistilBERT folder, or from the ``student_layers`` of a BERT-shaped one."""
    labels = {"num_labels": num_labels, **({"id2label": id2label} if id2label else {})}
    source_type = hub_or_local(AutoConfig.from_pretrained, config.student_name_or_path, "student").model_type
    if source_type == "distilbert":
        return load_with_new_head(AutoModelForSequenceClassification, config.student_name_or_path, **labels)
    if source_type != "bert":
        raise ValueError(
            f"--student_name_or_path {config.student_name_or_path!r} is a {source_type} model: give a BERT or "
            "DistilBERT"
        )
    teacher = load_with_new_head(BertForMaskedLM, config.student_name_or_path)
    copied = build_student(teacher, config.student_layers)
    student = DistilBertForSequenceClassification(copied.config.__class__(**{**copied.config.to_dict(), **labels}))
    student.distilbert.load_state_dict(copied.distilbert.state_dict())
    return student


def student_model(config: TrainConfig, tokenizer: Any, transfer: TransferSet) -> nn.Module:
    if config.student == "distilbert":
        return distilbert_student(config, transfer.num_labels, transfer.id2label)
    model_config = bilstm_config(
        config.bilstm_preset,
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        num_labels=transfer.num_labels,
        pooling=config.pooling,
        dropout=config.dropout,
        **({"id2label": transfer.id2label} if transfer.id2label else {}),
    )
    return KoBiLstmForSequenceClassification(model_config)


# ----------------------------------------------------------------------------------------- training and scoring


def accuracy(
    accelerator: Accelerator, model: nn.Module, features: list[dict[str, Any]], collate: Any, batch: int
) -> float:
    predicted = predict(accelerator, model, features, collate, batch, lambda out: {"label": out.logits.argmax(-1)})
    labels = torch.tensor([f["labels"] for f in features])
    return (predicted["label"] == labels).float().mean().item()


@dataclass
class DistillRunState:
    """What a run adds to Trainer's state, carried by every checkpoint: the best validation accuracy and its step,
    the training seconds so far, and the loss sums of the logging interval the checkpoint falls in (the first line
    logged after a resume is then the uninterrupted run's)."""

    best_accuracy: float = -1.0
    best_step: int = 0
    train_seconds: float = 0.0
    running_losses: dict[str, Any] | None = None


class DistillationTrainer(StagedTrainer):
    """``StagedTrainer`` whose loss is the distillation loss of the student's logits against the cached teacher
    logits and the gold labels (``distill.task_losses``); it sums the loss of each logging interval
    (``RunningLosses``) and puts the run's config in every checkpoint."""

    def __init__(self, *args: Any, config: TrainConfig, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config = config
        self.losses = RunningLosses([], self.accelerator.device)
        self.losses.restore(self.run_state.running_losses)
        self.examples_seen = 0  # since the last log line, on every process

    def compute_loss(
        self, model: nn.Module, inputs: dict[str, torch.Tensor], return_outputs: bool = False, **kwargs: Any
    ) -> Any:
        teacher_logits = inputs.pop("teacher_logits", None)
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        config = self.config
        loss = distillation_loss(outputs.logits, teacher_logits, labels, config.alpha, config.temperature, config.soft)
        self.losses.add({"loss": loss})
        self.examples_seen += len(labels) * self.accelerator.num_processes
        return (loss, outputs) if return_outputs else loss

    def before_checkpoint(self) -> None:
        self.run_state.running_losses = self.losses.carried(self.accelerator)

    def checkpoint_files(self, folder: Path) -> None:
        save_config(self.config, folder / CONFIG_FILE)


class StepValidation(TrainerCallback):
    """After each update: the training metrics every ``logging_steps``; the validation accuracy after each epoch,
    every ``eval_steps`` and at the end, the student published to ``OUTPUT_DIR/best`` when it is the best so far
    (before the checkpoint of that update). Lines go to metrics.jsonl and Trainer's ``report_to`` integrations."""

    def __init__(
        self,
        trainer: DistillationTrainer,
        config: TrainConfig,
        validation: list[dict[str, Any]],
        collate: Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]],
        tokenizer: Any,
    ) -> None:
        self.trainer, self.config, self.validation = trainer, config, validation
        self.collate, self.tokenizer = collate, tokenizer
        self.metrics_path = Path(config.output_dir) / METRICS_FILE

    def on_step_end(self, args: Any, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        trainer, config, run_state, step = self.trainer, self.config, self.trainer.run_state, state.global_step
        epoch = round(float(state.epoch), 4)
        if due(step, config.logging_steps, state.max_steps):
            means, _, seconds = trainer.losses.pop(trainer.accelerator)
            learning_rate = kwargs["lr_scheduler"].get_last_lr()[0]
            rate = trainer.examples_seen / seconds
            self.record({"epoch": epoch, **means, "learning_rate": learning_rate, "examples_per_s": rate}, step)
            trainer.examples_seen = 0
        if (
            float(state.epoch).is_integer()
            or step == state.max_steps
            or (config.eval_steps and step % config.eval_steps == 0)
        ):
            model = kwargs["model"]
            score = accuracy(
                trainer.accelerator, model, self.validation, self.collate, config.per_device_eval_batch_size
            )
            self.record({"epoch": epoch, "validation_accuracy": score}, step)
            if score > run_state.best_accuracy:
                run_state.best_accuracy, run_state.best_step = score, step
                save_best(trainer.accelerator, model, self.tokenizer, Path(config.output_dir) / BEST_DIR)

    def record(self, metrics: dict[str, float], step: int) -> None:
        """One line of metrics.jsonl (main process), and the same to Trainer's integrations (TensorBoard)."""
        if self.trainer.accelerator.is_main_process:
            with self.metrics_path.open("a", encoding="utf-8") as f:
                f.write(json.dumps({"step": step, **metrics}) + "\n")
        self.trainer.log(dict(metrics))


def teacher_summary(info: dict[str, Any]) -> dict[str, Any] | None:
    """The teachers of a cache, with the test accuracy, parameters and size its training recorded beside it
    (``finetune.nsmc`` and ``distill.train`` write results.json next to best/) when there is one teacher; the
    accuracy from ``teacher_test_cache`` when the config names one."""
    teachers = info.get("teachers")
    if not teachers:
        return None
    summary: dict[str, Any] = {
        "models": [t["path"] for t in teachers],
        "accuracy": None,
        "params": None,
        "size_mb": None,
    }
    results_file = Path(teachers[0]["path"]).parent / RESULTS_FILE
    if len(teachers) == 1 and results_file.is_file():
        recorded = json.loads(results_file.read_text(encoding="utf-8"))
        summary.update(
            # finetune.nsmc keeps the test accuracy under "metrics", distill.train (a BiLSTM teacher) at the top
            accuracy=recorded.get("metrics", {}).get("accuracy", recorded.get("accuracy")),
            params=recorded.get("params"),
            size_mb=recorded.get("size_mb"),
        )
    if "teacher_test_accuracy" in info:
        summary["accuracy"] = info["teacher_test_accuracy"]
    return summary


def model_file_mb(folder: Path) -> float:
    """The weights' size on disk (safetensors), in MB of 2**20 bytes."""
    return sum(p.stat().st_size for p in folder.glob("*.safetensors")) / 2**20


def distill_arguments(config: TrainConfig) -> TrainingArguments:
    """Trainer's options from the run's config (checkpoints every ``save_steps`` updates and at the end)."""
    return training_arguments(
        config,
        max_steps=config.max_steps,
        save_strategy="steps",
        save_steps=config.save_steps,
        report_to=config.report_to,
        dataloader_num_workers=config.dataloader_num_workers,
    )


def train(config: TrainConfig, resume_from: Path | None) -> dict[str, Any]:
    """Train the student into ``output_dir`` (checkpoints, best/, results), continuing ``resume_from`` if given;
    returns the results."""
    output_dir = Path(config.output_dir)
    training_args = distill_arguments(config)  # starts the process group of a launch
    process = PartialState()
    setup_logging(process.is_main_process)
    if process.is_main_process:
        if config.overwrite:
            delete_earlier_outputs(output_dir, RUN_OUTPUTS)
        output_dir.mkdir(parents=True, exist_ok=True)
    process.wait_for_everyone()
    set_seed(config.seed)

    try:
        transfer = open_transfer_set(config, process)
        rows, text_lengths, validation_examples, counts = select_rows(transfer.examples, config)
        test_examples = read_test_examples(config.test_file, transfer.num_labels)
        tokenizer = student_tokenizer(config, transfer.examples, rows, process)
        set_seed(config.seed)
        model = student_model(config, tokenizer, transfer)
    except (ValueError, OSError) as err:  # a full disk too: the examples and the tokenizer go to output_dir
        if failure := not_written(output_dir, "--output_dir", err):
            raise failure from err
        raise
    validation = encode(tokenizer, validation_examples, config.max_seq_length)
    test = encode(tokenizer, test_examples, config.max_seq_length)
    with_token_types = takes_token_type_ids(model)
    eval_collate = partial(pad_inputs, tokenizer=tokenizer, with_token_types=with_token_types)

    if resume_from is not None:
        run_state, trainer_state = resumed_run_state(resume_from, DistillRunState)
        step = trainer_state["global_step"]
        if process.is_main_process:
            trim_metrics(output_dir / METRICS_FILE, step)  # what the killed run logged after its checkpoint
        logger.info("Resuming from %s (step %d)", resume_from, step)
    else:
        run_state = DistillRunState()
    trainer = DistillationTrainer(
        model=model,
        args=training_args,
        train_dataset=TrainingRows(transfer.examples, rows),
        data_collator=partial(
            collate_rows, tokenizer=tokenizer, max_length=config.max_seq_length, with_token_types=with_token_types
        ),
        processing_class=tokenizer,
        run_state=run_state,
        lengths=text_lengths.tolist() if config.group_by_length else None,
        keep_checkpoints=config.save_total_limit,
        config=config,
    )
    trainer.add_callback(StepValidation(trainer, config, validation, eval_collate, tokenizer))
    accelerator = trainer.accelerator
    if accelerator.is_main_process:
        save_config(config, output_dir / CONFIG_FILE)
    logger.info("***** Task-specific distillation: %s student *****", config.student)
    logger.info(
        "  Training examples = %s of %s (labelled %s, unlabelled %s, augmented %s), validation = %s, test = %s",
        *(f"{n:,}" for n in (len(rows), counts["available"], *(counts[k] for k in TRAINING_KINDS))),
        f"{len(validation):,}",
        f"{len(test):,}",
    )
    logger.info(
        "  Student parameters = %s, alpha = %s, soft = %s, processes = %d",
        f"{parameter_count(model):,}",
        config.alpha,
        config.soft,
        accelerator.num_processes,
    )
    train_quietly(trainer, resume_from)

    best = best_model(trainer, output_dir / BEST_DIR)
    test_accuracy = accuracy(accelerator, best, test, eval_collate, config.per_device_eval_batch_size)
    steps = trainer.state.global_step
    results = {
        "name": output_dir.name,
        "student": config.student,
        "preset": config.bilstm_preset if config.student == "bilstm" else None,
        "distilled": config.alpha < 1,
        "alpha": config.alpha,
        "soft": config.soft,
        "temperature": config.temperature,
        "params": parameter_count(best),
        "size_mb": round(model_file_mb(output_dir / BEST_DIR), 4),
        "vocab_size": len(tokenizer),
        "accuracy": test_accuracy,
        "best_validation_accuracy": run_state.best_accuracy,
        "best_step": run_state.best_step,
        "steps": steps,
        "train_seconds": round(run_state.train_seconds, 1),
        "examples_per_s": round(
            steps * config.per_device_train_batch_size * accelerator.num_processes / max(run_state.train_seconds, 1e-9),
            1,
        ),
        "examples": {**counts, "train": len(rows), "test": len(test)},
        "model_dir": str(output_dir / BEST_DIR),
        "teacher": teacher_summary(transfer.info) if config.alpha < 1 else None,
        "cache_dir": config.cache_dir or None,
        "config": dataclasses.asdict(config),
    }
    if accelerator.is_main_process:
        write_results(output_dir / RESULTS_FILE, results)
        accelerator.print(
            f"test accuracy {test_accuracy:.4f} (best validation {run_state.best_accuracy:.4f} at step "
            f"{run_state.best_step}); {results['params']:,} parameters; results in {output_dir / RESULTS_FILE}"
        )
    return results

"""The pretraining loop of ``pretrain/run.py`` (its command checks the arguments, then calls ``train``): an accelerate
loop that distils a teacher into a student, with checkpoints that resume exactly (``common.resume``), metrics in
metrics.jsonl and TensorBoard, and the student exported to ``OUTPUT_DIR/final``.

The stages come in the order of transformers' accelerate examples: Accelerator, logging on the main process, seed,
data, models, ``prepare``, a "Running training" summary, the loop.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import AutoModelForMaskedLM, PreTrainedModel, get_linear_schedule_with_warmup

from common.checkpoints import delete_earlier_outputs
from common.io import publish_folder, setup_logging
from common.resume import (
    EpochSampler,
    RunningLosses,
    due,
    empty_staging,
    log_metrics,
    quiet_accelerate_checkpoint_logs,
    resume_logged_run,
    save_checkpoint,
)
from modeling.extract import EXTRACTION_FILE
from modeling.load import hub_or_local, load_bert_teacher, load_tokenizer
from modeling.student import build_student, parameter_count
from pretrain.blocks import PackedBlocks, check_compatible, load_token_counts, vocab_sha256
from pretrain.distillation_config import (
    CONFIG_FILE,
    DISTILLATION_FILE,
    FINAL_DIR,
    FINAL_STAGING,
    METRICS_FILE,
    RUN_OUTPUTS,
    TRACKER_PROJECT,
    DistillationConfig,
    save_config,
)
from pretrain.masking import token_weights
from pretrain.step import (
    DistillationStudent,
    active_terms,
    build_optimizer,
    check_layer_map,
    default_layer_map,
    distillation_step,
    evaluate,
    mask_seed,
    uses_teacher_logits,
    without_tied_copies,
)

logger = logging.getLogger("pretrain")


def build_loaders(
    config: DistillationConfig, meta: dict[str, Any]
) -> tuple[PackedBlocks, DataLoader, DataLoader | None]:
    """The training blocks, their loader (order fixed by seed and epoch) and the validation loader, if any."""
    train_set = PackedBlocks(config.data_dir, "train")
    train_loader = DataLoader(
        train_set,
        batch_size=config.per_device_train_batch_size,
        sampler=EpochSampler(train_set, config.seed),
        drop_last=True,
        num_workers=config.dataloader_num_workers,
        # Its own generator: a DataLoader without one draws from the global RNG at every new iterator, so a resumed
        # run's dropout would drift from the uninterrupted run's.
        generator=torch.Generator().manual_seed(config.seed),
    )
    if meta["splits"].get("validation", {}).get("blocks", 0) == 0 or config.eval_steps <= 0:
        return train_set, train_loader, None
    validation = PackedBlocks(config.data_dir, "validation")
    return train_set, train_loader, DataLoader(validation, batch_size=config.per_device_eval_batch_size)


def prepare_models(config: DistillationConfig, student: PreTrainedModel, teacher: nn.Module | None) -> nn.Module:
    """Attention implementation and frozen parts set; returns the student wrapped for training."""
    student.config._attn_implementation = config.attn_implementation
    if config.freeze_position_embeddings:
        student.base_model.embeddings.position_embeddings.weight.requires_grad_(False)
    if teacher is not None:
        teacher.config._attn_implementation = config.attn_implementation
        teacher.requires_grad_(False).eval().to(getattr(torch, config.teacher_dtype))
    return DistillationStudent(student, with_layers=config.alpha_hidden_mse > 0).train()


def read_data_stats(data_dir: str) -> dict[str, Any] | None:
    """The corpus statistics pretrain.prepare recorded, for the exported student's records (and model card)."""
    path = Path(data_dir) / "stats.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def check_vocabularies(model: nn.Module, name: str, tokenizer: Any, meta: dict[str, Any], data_dir: str) -> None:
    """A model's embeddings (the teacher's, or the student's), its tokenizer and the prepared data must share one
    vocabulary."""
    if len(tokenizer) != model.config.vocab_size:
        raise ValueError(
            f"{name!r} has {model.config.vocab_size} embeddings but its tokenizer has {len(tokenizer)} tokens; use "
            "the tokenizer the model was trained with"
        )
    check_compatible(meta, model.config.vocab_size, model.config.max_position_embeddings, data_dir)
    if meta["tokenizer"]["vocab_sha256"] != vocab_sha256(tokenizer):
        raise ValueError(
            f"{data_dir} was prepared with another vocabulary ({meta['tokenizer']['path']}) than the tokenizer of "
            f"{name!r}; prepare the data again with --tokenizer_name_or_path {name}"
        )


def load_student(config: DistillationConfig, teacher: nn.Module | None) -> PreTrainedModel:
    """The student: a masked-LM folder when ``student`` is set, else the teacher's ``student_layers`` copied."""
    if config.student:
        student = hub_or_local(AutoModelForMaskedLM.from_pretrained, config.student, "student")
        if teacher is not None and student.config.vocab_size != teacher.config.vocab_size:
            raise ValueError(
                f"the student {config.student!r} has {student.config.vocab_size} embeddings, the teacher "
                f"{teacher.config.vocab_size}; extract the student from this teacher (python -m modeling.extract)"
            )
        return student
    return build_student(teacher, config.student_layers, fold_token_type=config.fold_token_type)


def check_teacher_fits(
    config: DistillationConfig, teacher: PreTrainedModel, has_head: bool, student: PreTrainedModel
) -> None:
    """The loss terms must be ones this teacher can give (logits need a trained head; hidden states an equal width)
    and ``hidden_layer_map`` must pair every student layer with a teacher hidden state; an empty map is filled in
    with the evenly spaced default, so the saved config says what was used."""
    if not has_head and uses_teacher_logits(config):
        raise ValueError(
            f"the teacher {config.teacher!r} has no masked-LM head (an encoder such as multilingual-e5), so no "
            "logits to learn from: set --alpha_ce 0 --alpha_mse 0 and distil through its hidden states "
            "(--alpha_cos, --alpha_hidden_mse)"
        )
    if student.config.hidden_size != teacher.config.hidden_size and config.alpha_cos + config.alpha_hidden_mse > 0:
        raise ValueError(
            f"the student's hidden size {student.config.hidden_size} differs from the teacher's "
            f"{teacher.config.hidden_size}: the hidden-state terms compare them directly; set alpha_cos and "
            "alpha_hidden_mse to 0, or build the student from this teacher"
        )
    if config.alpha_hidden_mse > 0:
        student_layers, teacher_layers = student.config.num_hidden_layers, teacher.config.num_hidden_layers
        config.hidden_layer_map = config.hidden_layer_map or default_layer_map(student_layers, teacher_layers)
        check_layer_map(config.hidden_layer_map, student_layers, teacher_layers)


def layers_from_teacher(config: DistillationConfig) -> list[int] | None:
    """Which teacher layers the student started from: the config's, or the extraction record of ``student``."""
    if not config.student:
        return config.student_layers
    record = Path(config.student) / EXTRACTION_FILE
    return json.loads(record.read_text())["student_layers_from_teacher"] if record.is_file() else None


def export_student(accelerator: Accelerator, module: nn.Module, tokenizer: Any, folder: Path, info: dict) -> None:
    """``save_pretrained`` the student with its tokenizer and what made it (main process writes)."""
    student = accelerator.unwrap_model(module).student
    student.save_pretrained(folder, is_main_process=accelerator.is_main_process, save_function=accelerator.save)
    if accelerator.is_main_process:
        tokenizer.save_pretrained(folder)
        (folder / DISTILLATION_FILE).write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n")


def checkpoint_files(
    accelerator: Accelerator, module: nn.Module, tokenizer: Any, info: dict[str, Any], config: DistillationConfig
) -> Callable[[Path], None]:
    """What a checkpoint holds besides the training state: the student to load, its tokenizer, the config."""

    def write(folder: Path) -> None:
        export_student(accelerator, module, tokenizer, folder, info)
        save_config(config, folder / CONFIG_FILE)

    return write


def train(config: DistillationConfig, meta: dict[str, Any], resume_from: Path | None) -> None:
    """Distil the student into ``output_dir`` (checkpoints, metrics, final/), continuing ``resume_from`` if given."""
    accelerator = Accelerator(
        mixed_precision=config.mixed_precision,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        log_with=None if config.report_to == "none" else config.report_to,
        project_dir=config.output_dir,
    )
    setup_logging(accelerator.is_main_process)
    quiet_accelerate_checkpoint_logs()
    accelerator.register_save_state_pre_hook(without_tied_copies)
    set_seed(config.seed)

    # ValueError or OSError for models that cannot work together, before any training.
    teacher, teacher_has_head = load_bert_teacher(config.teacher) if config.teacher else (None, False)
    student = load_student(config, teacher)
    tokenizer = load_tokenizer(config.teacher or config.student)
    check_vocabularies(teacher or student, config.teacher or config.student, tokenizer, meta, config.data_dir)
    if teacher is not None:
        check_teacher_fits(config, teacher, teacher_has_head, student)
    loss_terms = active_terms(config, has_teacher=teacher is not None)
    special = {"mask": tokenizer.mask_token_id, "pad": tokenizer.pad_token_id}

    train_set, train_loader, eval_loader = build_loaders(config, meta)
    module: nn.Module = prepare_models(config, student, teacher)
    optimizer = build_optimizer(student, config)
    if config.torch_compile:
        module = torch.compile(module)
        teacher = torch.compile(teacher) if teacher is not None else None
    module, optimizer, train_loader = accelerator.prepare(module, optimizer, train_loader)
    if eval_loader is not None:
        eval_loader = accelerator.prepare(eval_loader)
    if teacher is not None:
        teacher.to(accelerator.device)
    # Counted on the prepared loader, which holds this process's share of the batches.
    updates_per_epoch = len(train_loader) // config.gradient_accumulation_steps
    total_steps = config.max_steps if config.max_steps > 0 else config.num_train_epochs * max(updates_per_epoch, 1)
    # accelerate steps a prepared scheduler once per process at each update, hence the factor.
    scheduler = accelerator.prepare(
        get_linear_schedule_with_warmup(
            optimizer,
            num_warmup_steps=math.ceil(config.warmup_ratio * total_steps) * accelerator.num_processes,
            num_training_steps=total_steps * accelerator.num_processes,
        )
    )
    # Kept on the CPU: masks are drawn there (pretrain.step.masked_batch).
    weights = token_weights(load_token_counts(config.data_dir), config.mlm_smoothing, tokenizer.all_special_ids)

    output_dir, state = Path(config.output_dir), {"step": 0, "epoch": 0, "batch_in_epoch": 0}
    metrics_path = output_dir / METRICS_FILE
    if resume_from is not None:
        state = resume_logged_run(accelerator, resume_from, metrics_path)
    if accelerator.is_main_process:
        if config.overwrite:  # only now: a run that fails to start leaves the earlier one whole
            delete_earlier_outputs(output_dir, RUN_OUTPUTS)
        output_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, output_dir / CONFIG_FILE)
    accelerator.init_trackers(TRACKER_PROJECT, config={k: str(v) for k, v in dataclasses.asdict(config).items()})
    info = {
        "teacher": config.teacher or None,
        "teacher_mlm_head": teacher_has_head if teacher is not None else None,
        "student_layers_from_teacher": layers_from_teacher(config),
        "config": dataclasses.asdict(config),
        "data": {"dir": config.data_dir, "stats": read_data_stats(config.data_dir)},
    }

    tokens_per_update = (
        config.per_device_train_batch_size * meta["max_seq_length"] * config.gradient_accumulation_steps
    ) * accelerator.num_processes
    logger.info("***** Running training *****")
    logger.info("  Training blocks = %d of %d tokens", len(train_set), meta["max_seq_length"])
    logger.info(
        "  Teacher parameters = %s, student parameters = %s",
        f"{parameter_count(teacher):,}" if teacher is not None else "none (masked LM alone)",
        f"{parameter_count(student):,}",
    )
    logger.info(
        "  Processes = %d, batch per device = %d, gradient accumulation = %d, tokens per update = %d",
        accelerator.num_processes,
        config.per_device_train_batch_size,
        config.gradient_accumulation_steps,
        tokens_per_update,
    )
    logger.info("  Optimizer steps = %d (%d per epoch)", total_steps, updates_per_epoch)
    logger.info("  Loss terms = %s", ", ".join(loss_terms))

    with tqdm(total=total_steps, initial=state["step"], disable=not accelerator.is_main_process) as progress:
        losses = RunningLosses(loss_terms, accelerator.device)
        losses.restore(state.pop("running_losses", None))
        while state["step"] < total_steps:
            train_loader.set_epoch(state["epoch"])
            skip = state["batch_in_epoch"]
            loader = accelerator.skip_first_batches(train_loader, skip) if skip else train_loader
            for blocks in loader:
                seed = mask_seed(config.seed, state["epoch"], state["batch_in_epoch"], accelerator.process_index)
                with accelerator.accumulate(module):
                    terms = distillation_step(accelerator, module, teacher, blocks, weights, seed, config, special)
                    accelerator.backward(terms["loss"])
                    if accelerator.sync_gradients and config.max_grad_norm > 0:
                        accelerator.clip_grad_norm_(module.parameters(), config.max_grad_norm)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad()
                losses.add(terms)
                state["batch_in_epoch"] += 1
                if not accelerator.sync_gradients:
                    continue

                state["step"] += 1
                progress.update(1)
                if due(state["step"], config.logging_steps, total_steps):
                    means, micro_batches, seconds = losses.pop(accelerator)
                    metrics = {"epoch": state["epoch"], **means, "learning_rate": scheduler.get_last_lr()[0]}
                    metrics["tokens_per_s"] = (
                        micro_batches / config.gradient_accumulation_steps * tokens_per_update / seconds
                    )
                    log_metrics(accelerator, metrics_path, metrics, state["step"])
                    progress.set_postfix(loss=f"{means['loss']:.4f}")
                if eval_loader is not None and due(state["step"], config.eval_steps, total_steps):
                    scores = evaluate(accelerator, module, teacher, eval_loader, weights, config, special)
                    log_metrics(accelerator, metrics_path, scores, state["step"])
                if due(state["step"], config.save_steps, total_steps):
                    state["running_losses"] = losses.carried(accelerator)
                    files = checkpoint_files(accelerator, module, tokenizer, info, config)
                    save_checkpoint(accelerator, config.output_dir, state, config.save_total_limit, files)
                    del state["running_losses"]
                if state["step"] >= total_steps:
                    break
            else:
                state["epoch"] += 1
                state["batch_in_epoch"] = 0

    final, staging = output_dir / FINAL_DIR, output_dir / FINAL_STAGING
    empty_staging(accelerator, staging)
    export_student(accelerator, module, tokenizer, staging, info)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        publish_folder(staging, final)  # final/ is whole or not there: a reader never loads half a student
    logger.info("Student saved to %s", final)
    accelerator.end_training()

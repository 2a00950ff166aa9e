"""Distillation configuration: a YAML preset loaded into a typed dataclass, with ``--key value`` overrides.

    config = load_config("pretrain/configs/distilkobert_3layer.yaml", ["--max_steps", "100", "--seed", "1"])

Unknown keys, in the file or on the command line, are errors; the resolved config is saved with every checkpoint.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class DistillationConfig:
    """Everything a distillation run reads. The training loss is

        loss = alpha_ce  * T^2 * KL(softmax(teacher_logits / T) || softmax(student_logits / T))   on masked tokens
             + alpha_mlm * cross_entropy(student_logits, original_tokens)                        on masked tokens
             + alpha_cos * (1 - cos(student_hidden, teacher_hidden))                            on non-padding tokens
             + alpha_mse * sum((student_logits - teacher_logits)^2) / masked_tokens              on masked tokens

    with T = ``temperature``; the defaults are DistilBERT's (Sanh et al., 2019). Without a teacher, only the
    masked-LM term is left: that pretrains a teacher, or a baseline student, from a ``student`` folder.
    """

    # Models
    teacher: str = ""  # BertForMaskedLM folder or Hub id (e.g. monologg/kobert-lm); empty: masked LM alone
    student: str | None = None  # masked-LM folder to start from (DistilBERT, or BERT); if empty, built from teacher
    student_layers: list[int] = field(default_factory=lambda: [0, 4, 8])  # teacher layers the student starts from
    fold_token_type: bool = True  # add the teacher's segment-0 embedding into the student's positions
    freeze_position_embeddings: bool = True  # keep the student's (copied) position embeddings fixed
    # Data and output
    data_dir: str = ""  # folder written by `python -m pretrain.prepare`
    output_dir: str = ""  # checkpoints, metrics.jsonl, TensorBoard logs and the final student
    # Schedule
    num_train_epochs: int = 3  # passes over the training blocks, unless max_steps > 0
    max_steps: int = -1  # optimizer steps; > 0 overrides num_train_epochs
    per_device_train_batch_size: int = 8  # blocks per device per forward pass
    gradient_accumulation_steps: int = 1  # forward passes per optimizer step
    learning_rate: float = 5e-4  # peak learning rate of AdamW
    weight_decay: float = 0.0  # AdamW weight decay (not on biases and LayerNorms)
    adam_epsilon: float = 1e-6  # AdamW epsilon
    warmup_ratio: float = 0.05  # share of the steps with linear warm-up, then linear decay to 0
    max_grad_norm: float = 5.0  # gradient clipping; 0 disables it
    seed: int = 56  # one seed for model building, data order and masking
    # Loss
    alpha_ce: float = 5.0  # weight of the soft-target KL term
    alpha_mlm: float = 2.0  # weight of the masked-LM cross-entropy
    alpha_cos: float = 1.0  # weight of the hidden-state cosine term
    alpha_mse: float = 0.0  # weight of the logit MSE term
    temperature: float = 2.0  # softmax temperature of the KL term
    # Masking
    mlm_probability: float = 0.15  # share of non-special tokens chosen for prediction
    mask_probability: float = 0.8  # of those: replaced by [MASK]
    random_probability: float = 0.1  # of those: replaced by a random token (the rest are kept)
    mlm_smoothing: float = 0.7  # choose tokens with probability ~ count^-mlm_smoothing (XLM); 0 = uniform
    # Evaluation, logging, checkpoints
    eval_steps: int = 500  # evaluate every N optimizer steps (and at the end); 0 disables
    eval_max_batches: int = 50  # validation batches per evaluation
    per_device_eval_batch_size: int = 16  # blocks per device in evaluation
    logging_steps: int = 10  # write metrics every N optimizer steps
    save_steps: int = 1000  # checkpoint every N optimizer steps (and at the end)
    save_total_limit: int = 3  # keep the newest N checkpoints
    resume: bool = False  # continue from the newest complete checkpoint in output_dir
    report_to: str = "tensorboard"  # accelerate tracker, or "none"
    # Performance
    mixed_precision: str = "no"  # "no", "fp16" or "bf16" (teacher and student alike)
    torch_compile: bool = False  # torch.compile the student and the teacher
    attn_implementation: str = "sdpa"  # PyTorch scaled-dot-product attention
    dataloader_num_workers: int = 0  # DataLoader worker processes

    def validate(self) -> None:
        """Raise ValueError for values that cannot work, saying how to fix them."""
        problems = []
        if not self.teacher and not self.student:
            problems.append("teacher is required (a BertForMaskedLM folder or Hub id), or student alone for MLM")
        if not self.teacher and self.alpha_ce + self.alpha_cos + self.alpha_mse > 0:
            problems.append(
                "alpha_ce, alpha_cos and alpha_mse need a teacher; set them to 0 to train the student on the "
                "masked-LM loss alone"
            )
        if not self.data_dir:
            problems.append("data_dir is required (run `python -m pretrain.prepare` first)")
        if not self.output_dir:
            problems.append("output_dir is required")
        if self.temperature <= 0:
            problems.append(f"temperature must be > 0, got {self.temperature}")
        if min(self.alpha_ce, self.alpha_mlm, self.alpha_cos, self.alpha_mse) < 0:
            problems.append("the alpha_* loss weights must be >= 0")
        if self.alpha_ce + self.alpha_mlm + self.alpha_cos + self.alpha_mse == 0:
            problems.append("at least one alpha_* loss weight must be > 0")
        if not 0 < self.mlm_probability < 1:
            problems.append(f"mlm_probability must be in (0, 1), got {self.mlm_probability}")
        if (
            self.mask_probability < 0
            or self.random_probability < 0
            or self.mask_probability + self.random_probability > 1
        ):
            problems.append("mask_probability and random_probability must be >= 0 and sum to at most 1")
        if self.mlm_smoothing < 0:
            problems.append(f"mlm_smoothing must be >= 0, got {self.mlm_smoothing}")
        if self.max_steps <= 0 and self.num_train_epochs <= 0:
            problems.append("set max_steps > 0 or num_train_epochs > 0")
        for name in ("per_device_train_batch_size", "gradient_accumulation_steps", "save_steps", "logging_steps"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            problems.append(f"mixed_precision must be no, fp16 or bf16, got {self.mixed_precision!r}")
        if problems:
            raise ValueError("invalid configuration:\n  - " + "\n  - ".join(problems))


def describe_keys() -> str:
    """One line per config key: name, default and the comment beside it in the source (for ``--help``)."""
    lines = []
    for match in re.finditer(r"^    (\w+): [^=]+= (.+?)  # (.+)$", inspect.getsource(DistillationConfig), re.MULTILINE):
        name, default, comment = match.groups()
        default = default.replace("field(default_factory=lambda: ", "").removesuffix(")")
        lines.append(f"  {name} (default {default}): {comment}")
    return "\n".join(lines)


def field_types() -> dict[str, Any]:
    hints = typing.get_type_hints(DistillationConfig)
    return {f.name: hints[f.name] for f in dataclasses.fields(DistillationConfig)}


def coerce(name: str, value: Any, expected: Any) -> Any:
    """Check (and, for command-line strings, convert) one value against its field type."""
    origin, args = typing.get_origin(expected), typing.get_args(expected)
    if value is None and (expected is type(None) or type(None) in args):
        return None
    if origin in (typing.Union, types.UnionType):
        expected = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(expected), typing.get_args(expected)
    if origin is list:
        if isinstance(value, str):
            value = [part for part in value.strip("[]").split(",") if part.strip()]
        if isinstance(value, int):
            value = [value]
        if not isinstance(value, list):
            raise ValueError(f"{name}: expected a list, got {value!r}")
        return [coerce(name, item, args[0]) for item in value]
    if expected is bool:
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        if isinstance(value, bool):
            return value
        raise ValueError(f"{name}: expected true or false, got {value!r}")
    if expected is float and isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"{name}: expected a number, got {value!r}") from None
    if expected is int and not isinstance(value, bool):
        if isinstance(value, int) or (isinstance(value, str) and value.lstrip("-").isdigit()):
            return int(value)
        raise ValueError(f"{name}: expected an integer, got {value!r}")
    if expected is str:
        return str(value)
    raise ValueError(f"{name}: cannot use {value!r} as {expected}")


def parse_overrides(argv: list[str]) -> dict[str, str]:
    """``["--max_steps", "10", "--resume", "true"]`` -> ``{"max_steps": "10", "resume": "true"}``.

    Dashes and underscores are both accepted (``--max-steps``); ``--flag`` alone means true.
    """
    overrides: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--"):
            raise ValueError(f"expected --key value, got {arg!r}")
        key, _, inline = arg[2:].partition("=")
        key = key.replace("-", "_")
        if inline:
            overrides[key], i = inline, i + 1
        elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            overrides[key], i = argv[i + 1], i + 2
        else:
            overrides[key], i = "true", i + 1
    return overrides


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> DistillationConfig:
    """Read a YAML preset, apply command-line overrides, check every key and value."""
    values: dict[str, Any] = {}
    if path is not None:
        with open(path, encoding="utf-8") as f:
            values = yaml.safe_load(f) or {}
        if not isinstance(values, dict):
            raise ValueError(f"{path}: expected a mapping of config keys to values")
    values.update(parse_overrides(overrides or []))
    return config_from_dict(values, where=f"in {path} or on the command line")


def config_from_dict(values: dict[str, Any], where: str = "") -> DistillationConfig:
    """A checked ``DistillationConfig`` from plain values (YAML types, or command-line strings)."""
    types_by_name = field_types()
    unknown = sorted(set(values) - set(types_by_name))
    if unknown:
        raise ValueError(f"unknown config keys {unknown} {where}; known keys: {', '.join(types_by_name)}")
    config = DistillationConfig(**{k: coerce(k, v, types_by_name[k]) for k, v in values.items()})
    config.validate()
    return config


def save_config(config: DistillationConfig, path: str | Path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(dataclasses.asdict(config), f, sort_keys=False, allow_unicode=True)

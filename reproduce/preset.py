"""Presets of the recipe: YAML files in ``reproduce/presets/``, read into a ``Preset``, with ``--set`` overrides.

    preset = load_preset("mini", ["teacher.train.max_steps=2000", "finetune.num_train_epochs=3"])

Each section holds the options of the command that runs the stage, under the names its ``--help`` shows (dashes or
underscores), so a preset reads like the commands it stands for. Unknown keys are errors, found before any work.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from common.cli import closest
from common.config import read_preset

PRESETS_DIR = Path(__file__).resolve().parent / "presets"
PRESET_MAPPING = "a mapping of preset keys to values"  # what a preset file must hold, as its errors say
# Keys of the distilled student's training that fix how many tokens it sees; the baseline must see as many.
TOKEN_BUDGET_KEYS = ("max_steps", "num_train_epochs", "per_device_train_batch_size", "gradient_accumulation_steps")


@dataclass
class Preset:
    """One configuration of the whole recipe; see ``reproduce/presets/mini.yaml`` for a commented example."""

    name: str = ""  # shown in results.md
    corpus: list[str] = field(default_factory=list)  # pretraining text: files or globs, plain or .gz, a line each
    nsmc_train: str = ""  # NSMC-format training file (or Hub dataset name:split)
    nsmc_test: str = ""  # NSMC-format test file (or Hub dataset name:split)
    # pretrain.build_tokenizer options, or from_pretrained (a folder or Hub id) and optionally model_max_length
    tokenizer: dict[str, Any] = field(default_factory=dict)
    prepare: dict[str, Any] = field(default_factory=dict)  # pretrain.prepare options
    # from_pretrained, or model (BertConfig) + train (masked LM from random weights); model alone: random weights
    teacher: dict[str, Any] = field(default_factory=dict)
    student: dict[str, Any] = field(default_factory=dict)  # layers (teacher layers, 0-based) + train (distillation)
    baseline: dict[str, Any] = field(default_factory=dict)  # train: the student's schedule with these changes
    finetune: dict[str, Any] = field(default_factory=dict)  # finetune.nsmc options
    # Task-specific distillation of the fine-tuned teacher into a BiLSTM (optional): transfer (unlabelled files beside
    # nsmc_train) and transfer_examples (their first N lines only), cache (distill.cache_logits options), train
    # (distill.train keys of both BiLSTMs) and distilled (keys of the distilled one alone, e.g. alpha); the baseline
    # is the same BiLSTM with alpha 1 on nsmc_train.
    bilstm: dict[str, Any] = field(default_factory=dict)
    latency: dict[str, Any] = field(default_factory=dict)  # seq_length, batch_sizes, repeats, threads
    # serve.export options of the distilled classifier's ONNX int8 graph (its accuracy on nsmc_test and latency are
    # a row of the table), e.g. max_metric_drop
    onnx: dict[str, Any] = field(default_factory=dict)
    release: dict[str, Any] = field(default_factory=dict)  # repo_id (and other hub_upload options)
    launcher: str = ""  # e.g. "accelerate launch --config_file cfg.yaml": pretraining runs through it, else in-process
    seed: int = 56  # random initialisation of the teacher and the baseline

    def check(self) -> None:
        """Raise ValueError for what cannot work, before any stage runs."""
        problems = []
        for name in ("corpus", "nsmc_train", "nsmc_test"):
            if not getattr(self, name):
                problems.append(f"{name} is required")
        loaded_tokenizer_extras = set(self.tokenizer) - {"from_pretrained", "model_max_length"}
        if "from_pretrained" in self.tokenizer and loaded_tokenizer_extras:
            problems.append(
                f"tokenizer: with from_pretrained only model_max_length may be given, not "
                f"{sorted(loaded_tokenizer_extras)} (pretrain.build_tokenizer options apply to a tokenizer built from "
                "the corpus)"
            )
        teacher_keys = set(self.teacher)
        if "from_pretrained" in teacher_keys and teacher_keys & {"model", "train"}:
            problems.append("teacher: give from_pretrained, or model and train, not both")
        if "from_pretrained" not in teacher_keys and "model" not in teacher_keys:
            problems.append(
                "teacher: give model (BertConfig keys) and train (pretrain/run.py keys; without it the teacher keeps "
                "its random weights), or from_pretrained"
            )
        if unknown := teacher_keys - {"from_pretrained", "model", "train"}:
            problems.append(f"teacher: unknown keys {sorted(unknown)}")
        if unknown := set(self.student) - {"layers", "train"}:
            problems.append(f"student: unknown keys {sorted(unknown)}")
        if not self.student.get("layers"):
            problems.append("student.layers is required, e.g. [0, 2, 4]")
        if unknown := set(self.baseline) - {"train"}:
            problems.append(f"baseline: unknown keys {sorted(unknown)}")
        if fixed := set(self.baseline.get("train", {})) & set(TOKEN_BUDGET_KEYS):
            problems.append(
                f"baseline.train cannot change {sorted(fixed)}: the baseline sees as many tokens as the distilled "
                "student, so set them in student.train"
            )
        if unknown := set(self.bilstm) - {"transfer", "transfer_examples", "cache", "train", "distilled"}:
            problems.append(f"bilstm: unknown keys {sorted(unknown)}")
        if unknown := set(self.latency) - {"seq_length", "batch_sizes", "repeats", "threads"}:
            problems.append(f"latency: unknown keys {sorted(unknown)}")
        if not {1, 32} <= set(self.latency.get("batch_sizes", [1, 32])):
            problems.append("latency.batch_sizes must include 1 and 32 (the results table reports both)")
        if "repo_id" not in self.release:
            problems.append("release.repo_id is required (the name the model card uses, e.g. you/distilkobert-mini)")
        if problems:
            raise ValueError("invalid preset:\n  - " + "\n  - ".join(problems))


def preset_path(name_or_path: str) -> Path:
    """A preset name (``mini``) from reproduce/presets, or a path to a YAML file."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ValueError(f"--preset {name_or_path}: no such file")
        return path
    path = PRESETS_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PRESETS_DIR.glob("*.yaml")))
        raise ValueError(f"--preset {name_or_path}: unknown preset; known presets: {known} (or a path to a .yaml)")
    return path


def apply_override(values: dict[str, Any], assignment: str, preset_class: type = Preset) -> None:
    """``"teacher.train.max_steps=2000"`` sets ``values["teacher"]["train"]["max_steps"] = 2000`` (YAML value).

    An unknown preset key is named here, as the ``--set`` that gave it, not as a key of the preset file."""
    key, sep, text = assignment.partition("=")
    if not sep or not key:
        raise ValueError(f"--set {assignment}: expected KEY=VALUE, e.g. teacher.train.max_steps=2000")
    *parents, leaf = key.split(".")
    known = [f.name for f in dataclasses.fields(preset_class)]
    top = key.split(".")[0]
    if top not in known:
        guess = closest(top, known)
        hint = f"did you mean {guess!r}?" if guess else f"known keys: {', '.join(sorted(known))}"
        raise ValueError(f"--set {assignment}: unknown {'section' if parents else 'key'} {top!r}; {hint}")
    target = values
    for part in parents:
        target = target.setdefault(part, {})
        if not isinstance(target, dict):
            raise ValueError(f"--set {assignment}: {part!r} is not a section")
    target[leaf] = yaml.safe_load(text)


def load_preset(name_or_path: str, overrides: list[str] | None = None) -> Preset:
    """Read a preset, apply ``--set`` overrides, check it."""
    path = preset_path(name_or_path)
    values = read_preset(path, PRESET_MAPPING)
    for assignment in overrides or []:
        apply_override(values, assignment)
    known = {f.name for f in dataclasses.fields(Preset)}
    if unknown := sorted(set(values) - known):
        raise ValueError(f"{path}: unknown preset keys {unknown}; known keys: {', '.join(sorted(known))}")
    values.setdefault("name", path.stem)
    if isinstance(values.get("corpus"), str):
        values["corpus"] = [values["corpus"]]
    preset = Preset(**values)
    preset.check()
    return preset

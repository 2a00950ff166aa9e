"""Distillation configuration: a YAML preset loaded into ``DistillationConfig``, with ``--key value`` overrides.

    config = load_config("pretrain/configs/distilkobert_3layer.yaml", ["--max_steps", "100", "--seed", "1"])

The parsing is ``common.config``'s (unknown keys are errors); the resolved config is saved with every checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.config import ConfigCommand, key, save_config

TEACHER_DTYPES = ("float32", "bfloat16", "float16")  # torch dtypes by name: the config reads without torch

__all__ = ["DistillationConfig", "config_from_dict", "load_config", "save_config"]


@dataclass
class DistillationConfig:
    """Everything a distillation run reads. The training loss is

        loss = alpha_ce  * T^2 * KL(softmax(teacher_logits / T) || softmax(student_logits / T))   on masked tokens
             + alpha_mlm * cross_entropy(student_logits, original_tokens)                        on masked tokens
             + alpha_cos * (1 - cos(student_hidden, teacher_hidden))                            on non-padding tokens
             + alpha_mse * sum((student_logits - teacher_logits)^2) / masked_tokens              on masked tokens
             + alpha_hidden_mse * mean_i MSE(student_layer_i, teacher_layer_map[i])             on non-padding tokens

    with T = ``temperature`` and map = ``hidden_layer_map``; the defaults are DistilBERT's (Sanh et al., 2019).
    Without a teacher, only the masked-LM term is left: that pretrains a teacher, or a baseline student, from a
    ``student`` folder. A teacher
    without a masked-LM head (a BertModel such as multilingual-e5-small) has no logits: distil it with alpha_cos and
    alpha_hidden_mse (alpha_ce and alpha_mse 0); alpha_mlm then trains the student's new head on the labels.
    """

    # Models
    teacher: str = key("", "BERT folder or Hub id, a masked LM (monologg/kobert-lm) or an encoder; empty: MLM alone.")
    student: str | None = key(None, "Masked-LM folder to start from (DistilBERT or BERT); empty: from teacher.")
    student_layers: list[int] = key([0, 4, 8], "Teacher layers the student starts from.")
    fold_token_type: bool = key(True, "Add the teacher's segment-0 embedding into the student's positions.")
    freeze_position_embeddings: bool = key(True, "Keep the student's (copied) position embeddings fixed.")
    # Data and output
    data_dir: str = key("", "Folder written by `python -m pretrain.prepare`.")
    output_dir: str = key("", "Checkpoints, metrics.jsonl, TensorBoard logs and the final student.")
    # Schedule
    num_train_epochs: int = key(3, "Passes over the training blocks, unless max_steps > 0.")
    max_steps: int = key(-1, "Optimizer steps; > 0 overrides num_train_epochs.")
    per_device_train_batch_size: int = key(8, "Blocks per device per forward pass.")
    gradient_accumulation_steps: int = key(1, "Forward passes per optimizer step.")
    learning_rate: float = key(5e-4, "Peak learning rate of AdamW.")
    weight_decay: float = key(0.0, "AdamW weight decay (not on biases and LayerNorms).")
    adam_epsilon: float = key(1e-6, "AdamW epsilon.")
    warmup_ratio: float = key(0.05, "Share of the steps with linear warm-up, then linear decay to 0.")
    max_grad_norm: float = key(5.0, "Gradient clipping; 0 disables it.")
    seed: int = key(56, "One seed for model building, data order and masking.")
    # Loss
    alpha_ce: float = key(5.0, "Weight of the soft-target KL term.")
    alpha_mlm: float = key(2.0, "Weight of the masked-LM cross-entropy.")
    alpha_cos: float = key(1.0, "Weight of the hidden-state cosine term.")
    alpha_mse: float = key(0.0, "Weight of the logit MSE term.")
    alpha_hidden_mse: float = key(0.0, "Weight of the per-layer hidden-state MSE (TinyBERT), through hidden_layer_map.")
    hidden_layer_map: list[int] = key(
        [],
        "Teacher hidden states (0 embeddings, k after layer k) the student's layers 1.. learn; empty: evenly spaced.",
    )
    temperature: float = key(2.0, "Softmax temperature of the KL term.")
    # Masking
    mlm_probability: float = key(0.15, "Share of non-special tokens chosen for prediction.")
    mask_probability: float = key(0.8, "Of those: replaced by [MASK].")
    random_probability: float = key(0.1, "Of those: replaced by a random token (the rest are kept).")
    mlm_smoothing: float = key(0.7, "Choose tokens with probability ~ count^-mlm_smoothing (XLM); 0 = uniform.")
    # Evaluation, logging, checkpoints
    eval_steps: int = key(500, "Evaluate every N optimizer steps (and at the end); 0 disables.")
    eval_max_batches: int = key(50, "Validation batches per evaluation.")
    per_device_eval_batch_size: int = key(16, "Blocks per device in evaluation.")
    logging_steps: int = key(10, "Write metrics every N optimizer steps.")
    save_steps: int = key(1000, "Checkpoint every N optimizer steps (and at the end).")
    save_total_limit: int = key(3, "Keep the newest N checkpoints.")
    resume: bool = key(False, "Continue from the newest complete checkpoint in output_dir.")
    overwrite: bool = key(False, "Delete an earlier run's outputs in output_dir and start afresh.")
    report_to: str = key("tensorboard", "Accelerate tracker, or 'none'.")
    # Performance
    mixed_precision: str = key("no", "'no', 'fp16' or 'bf16' (teacher and student alike).")
    teacher_dtype: str = key(
        "float32",
        "The frozen teacher's weights and compute: 'float32', 'bfloat16' or 'float16'; its outputs are cast back to "
        "float32 for the losses. bfloat16 halves the teacher's memory; on a CPU with AMX it made distillation 1.5x "
        "as fast (benchmarks/RESULTS.md: speed and the soft targets' change).",
    )
    torch_compile: bool = key(False, "torch.compile the student and the teacher.")
    attn_implementation: str = key("sdpa", "PyTorch scaled-dot-product attention.")
    dataloader_num_workers: int = key(0, "DataLoader worker processes.")

    def validate(self) -> None:
        """Raise ValueError for values that cannot work, saying how to fix them."""
        problems = []
        if not self.teacher and not self.student:
            problems.append("teacher is required (a BertForMaskedLM folder or Hub id), or student alone for MLM")
        if not self.teacher and self.alpha_ce + self.alpha_cos + self.alpha_mse + self.alpha_hidden_mse > 0:
            problems.append(
                "alpha_ce, alpha_cos, alpha_mse and alpha_hidden_mse need a teacher; set them to 0 to train the "
                "student on the masked-LM loss alone"
            )
        if not self.data_dir:
            problems.append("data_dir is required (run `python -m pretrain.prepare` first)")
        if not self.output_dir:
            problems.append("output_dir is required")
        if self.temperature <= 0:
            problems.append(f"temperature must be > 0, got {self.temperature}")
        weights = (self.alpha_ce, self.alpha_mlm, self.alpha_cos, self.alpha_mse, self.alpha_hidden_mse)
        if min(weights) < 0:
            problems.append("the alpha_* loss weights must be >= 0")
        if sum(weights) == 0:
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
        if self.resume and self.overwrite:
            problems.append("resume continues the run in output_dir and overwrite deletes it: choose one")
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            problems.append(f"mixed_precision must be no, fp16 or bf16, got {self.mixed_precision!r}")
        if self.teacher_dtype not in TEACHER_DTYPES:
            problems.append(f"teacher_dtype must be one of {', '.join(TEACHER_DTYPES)}, got {self.teacher_dtype!r}")
        if problems:
            raise ValueError("invalid configuration:\n  - " + "\n  - ".join(problems))


# The config's YAML preset and plain-values readers (common.config); the command line is pretrain/run.py's.
COMMAND = ConfigCommand(DistillationConfig, "pretrain/configs/distilkobert_3layer.yaml")
load_config = COMMAND.load
config_from_dict = COMMAND.from_dict

# What a run writes in output_dir (beside checkpoint-STEP folders): an earlier run's are refused or replaced.
METRICS_FILE = "metrics.jsonl"
DISTILLATION_FILE = "distillation.json"
CONFIG_FILE = "distillation_config.yaml"
FINAL_DIR = "final"
FINAL_STAGING = f".{FINAL_DIR}.tmp"
TRACKER_PROJECT = "distillation"  # accelerate's trackers log under OUTPUT_DIR/distillation
RUN_OUTPUTS = (METRICS_FILE, CONFIG_FILE, FINAL_DIR, FINAL_STAGING, TRACKER_PROJECT)

"""The configuration of ``distill.train``: a YAML preset (``distill/configs/*.yaml``) with ``--key value`` overrides.

    config = load_config("distill/configs/bilstm_base.yaml", ["--alpha", "1", "--output_dir", "runs/baseline"])
    results = distill_task(config)    # distill.train's typed function

Parsing is ``common.config``'s: unknown keys are errors naming the closest one, and the resolved config is saved with
the run and every checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from common.config import ConfigCommand, key
from common.io import require_data_files

Student = Literal["bilstm", "distilbert"]
TokenizerKind = Literal["wordpiece", "unigram"]
# The names of what modeling.bilstm and distill.task_losses implement, here so that a config is checked without
# importing torch (tests/test_distill_train.py holds them equal).
BilstmPreset = Literal["tiny", "mini", "small", "base", "large"]
BilstmPooling = Literal["max", "mean", "last"]
SoftLoss = Literal["kl", "mse"]
MixedPrecision = Literal["no", "fp16", "bf16"]
STUDENTS = get_args(Student)
TOKENIZER_KINDS = get_args(TokenizerKind)
BILSTM_PRESETS = get_args(BilstmPreset)
BILSTM_POOLINGS = get_args(BilstmPooling)
SOFT_LOSS_NAMES = get_args(SoftLoss)


@dataclass
class TrainConfig:
    """Everything a task-specific distillation run reads. The loss of a batch of N examples is

        loss = (1 / N) * sum_i [ alpha * CE(student_i, gold_i) * has_gold_i + (1 - alpha) * soft(student_i, teacher_i) ]

    with ``soft`` T^2 * KL at temperature T, or the squared distance of the logits (``mse``, Tang et al. 2019). The
    teacher's logits come from a cache (``python -m distill.cache_logits``); ``alpha = 1`` is the same student
    trained on the gold labels alone, without a teacher.
    """

    # Student
    student: Student = key("bilstm", "bilstm (modeling/bilstm.py) or distilbert.")
    bilstm_preset: BilstmPreset = key("base", "BiLSTM sizes: tiny, mini, small, base or large (modeling/bilstm.py).")
    pooling: BilstmPooling = key("max", "BiLSTM pooling over tokens: max, mean or last.")
    dropout: float = key(0.2, "BiLSTM dropout (embeddings and classifier).")
    student_name_or_path: str = key(
        "", "distilbert: the student's start, a DistilBERT folder or a BERT-shaped one whose layers are copied."
    )
    student_layers: list[int] = key([0, 4, 8], "distilbert from a BERT: the teacher layers the student starts from.")
    # Student tokenizer (bilstm)
    tokenizer_name_or_path: str = key("", "bilstm: a tokenizer folder; empty: train one on the training texts.")
    tokenizer_kind: TokenizerKind = key("wordpiece", "Trained tokenizer: wordpiece or unigram.")
    vocab_size: int = key(3000, "Trained tokenizer's vocabulary size (it sets most of a tiny BiLSTM's size).")
    # Data
    cache_dir: str = key("", "Transfer set with the teacher's logits (python -m distill.cache_logits).")
    train_files: list[str] = key([], "Labelled training files; with a cache, checked to be the cache's.")
    test_file: str = key("", "Labelled test file, evaluated once with the best model.")
    teacher_name_or_path: list[str] = key([], "Teacher folders the cache must come from (checked by fingerprint).")
    teacher_test_cache: str = key(
        "",
        "A cache of test_file by the same teachers (distill.cache_logits --data_files TEST): their test accuracy for "
        "results.json, which an ensemble has nowhere else.",
    )
    use_unlabelled: bool = key(True, "Train on the cache's examples without a gold label (soft term alone).")
    use_augmented: bool = key(True, "Train on the cache's augmented examples (soft term alone).")
    validation_split: float = key(0.1, "Share of the labelled examples held out (seeded) to pick the best model.")
    max_seq_length: int = key(64, "Student tokens per example.")
    max_train_examples: int = key(0, "Train on the first N selected examples; 0: all.")
    group_by_length: bool = key(
        True, "Batch examples of similar length (less padding: a BiLSTM on short reviews trains ~2x faster)."
    )
    output_dir: str = key("", "Best model, checkpoints, metrics.jsonl, TensorBoard logs and results.json.")
    # Loss
    alpha: float = key(0.0, "Weight of the gold-label cross-entropy; 1 - alpha weighs the soft term.")
    soft: SoftLoss = key("mse", "Soft term: mse (logits, Tang et al.) or kl (T^2 * KL at temperature T).")
    temperature: float = key(1.0, "Softmax temperature of the kl soft term.")
    # Schedule
    num_train_epochs: int = key(3, "Passes over the training examples, unless max_steps > 0.")
    max_steps: int = key(-1, "Optimizer steps; > 0 overrides num_train_epochs.")
    per_device_train_batch_size: int = key(64, "Examples per device per step.")
    per_device_eval_batch_size: int = key(256, "Examples per device in evaluation.")
    learning_rate: float = key(2e-3, "Peak learning rate of AdamW.")
    weight_decay: float = key(0.0, "AdamW weight decay.")
    warmup_ratio: float = key(0.0, "Share of the steps with linear warm-up, then linear decay to 0.")
    max_grad_norm: float = key(1.0, "Gradient clipping; 0 disables it.")
    seed: int = key(42, "One seed for the model, the validation split, the data order and dropout.")
    # Evaluation, logging, checkpoints
    eval_steps: int = key(0, "Validate every N steps as well as after each epoch; 0: after each epoch only.")
    logging_steps: int = key(50, "Write training metrics every N steps.")
    save_steps: int = key(500, "Checkpoint every N steps (and at the end).")
    save_total_limit: int = key(2, "Keep the newest N checkpoints.")
    resume: bool = key(False, "Continue from the newest complete checkpoint in output_dir.")
    overwrite: bool = key(False, "Delete an earlier run's outputs in output_dir and start afresh.")
    report_to: str = key("tensorboard", "Trainer's report_to (TensorBoard logs in output_dir/runs), or 'none'.")
    mixed_precision: MixedPrecision = key("no", "Compute in bf16 or fp16 (GPUs), or in float32 (no).")
    dataloader_num_workers: int = key(0, "DataLoader worker processes.")

    def validate(self) -> None:
        """Raise ValueError for values that cannot work, naming each option and how to fix it (on one line), then for
        the first data file that is not there."""
        problems = []
        choices = {
            "student": STUDENTS,
            "bilstm_preset": BILSTM_PRESETS,
            "pooling": BILSTM_POOLINGS,
            "tokenizer_kind": TOKENIZER_KINDS,
            "soft": SOFT_LOSS_NAMES,
            "mixed_precision": get_args(MixedPrecision),
        }
        for name, allowed in choices.items():  # the command line checks them; a config built in Python is not parsed
            if getattr(self, name) not in allowed:
                problems.append(f"--{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if self.student == "distilbert" and not self.student_name_or_path:
            problems.append(
                "--student distilbert needs --student_name_or_path (a DistilBERT folder or a BERT-shaped one)"
            )
        if not 0 <= self.alpha <= 1:
            problems.append(f"--alpha must be in [0, 1] (1: no teacher), got {self.alpha}")
        if self.alpha < 1 and not self.cache_dir:
            problems.append(
                f"--alpha {self.alpha} < 1 learns from the teacher: give --cache_dir (python -m distill.cache_logits), "
                "or --alpha 1 to train on the labels alone"
            )
        if not self.cache_dir and not self.train_files:
            problems.append("give --cache_dir, or --train_files (labelled files) for --alpha 1")
        if not self.test_file:
            problems.append("--test_file is required (a labelled file, evaluated once with the best model)")
        if not self.output_dir:
            problems.append("--output_dir is required")
        if self.temperature <= 0:
            problems.append(f"--temperature must be > 0, got {self.temperature}")
        if not 0 < self.validation_split < 1:
            problems.append(f"--validation_split must be in (0, 1), got {self.validation_split}")
        if self.max_steps <= 0 and self.num_train_epochs <= 0:
            problems.append("set --max_steps > 0 or --num_train_epochs > 0")
        minimums = {"vocab_size": 10, "max_seq_length": 2}
        for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "save_steps", "logging_steps"):
            minimums[name] = 1
        for name, minimum in minimums.items():
            if getattr(self, name) < minimum:
                problems.append(f"--{name} must be >= {minimum}, got {getattr(self, name)}")
        if self.resume and self.overwrite:
            problems.append("--resume continues the run in --output_dir and --overwrite deletes it: choose one")
        if problems:
            raise ValueError("invalid configuration: " + "; ".join(problems))
        require_data_files(self, ("train_files", "test_file"))


# The config's YAML preset, plain-values and command-line readers (common.config).
COMMAND = ConfigCommand(TrainConfig, "distill/configs/bilstm_base.yaml")
load_config = COMMAND.load
config_from_dict = COMMAND.from_dict

# What a run writes in output_dir (beside checkpoint-STEP folders): an earlier run's are refused or replaced.
BEST_DIR = "best"
TOKENIZER_DIR = "tokenizer"
EXAMPLES_DIR = "examples"  # the labelled training files as a transfer set without logits (alpha 1, no cache)
METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "train_config.yaml"
RESULTS_FILE = "results.json"
TENSORBOARD_DIR = "runs"  # Trainer's TensorBoard logs
RUN_OUTPUTS = (BEST_DIR, TOKENIZER_DIR, EXAMPLES_DIR, METRICS_FILE, CONFIG_FILE, RESULTS_FILE, TENSORBOARD_DIR)

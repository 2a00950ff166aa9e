"""Train a small student on a fine-tuned teacher's cached logits: task-specific distillation (Tang et al., 2019).

    # the teacher's logits first (python -m distill.cache_logits), then the student, then the same without a teacher
    python -m distill.train --config distill/configs/bilstm_base.yaml --cache_dir runs/distill/cache \
        --test_file data/nsmc_test.txt.gz --output_dir runs/distill/bilstm_base
    python -m distill.train --config distill/configs/bilstm_base.yaml --alpha 1 --train_files data/nsmc_train.txt.gz \
        --test_file data/nsmc_test.txt.gz --output_dir runs/distill/bilstm_base_no_teacher
    accelerate launch -m distill.train --config ...    # several processes or GPUs, each its share of the batches

    results = distill_task(load_config("distill/configs/bilstm_base.yaml", ["--cache_dir", ...]))   # in Python

The student is a BiLSTM (``modeling/bilstm.py``, with a tokenizer trained on the training texts unless
``tokenizer_name_or_path`` is given) or a DistilBERT (``student_name_or_path``: a DistilBERT folder, or a BERT-shaped
one whose ``student_layers`` are copied; it keeps that folder's tokenizer). The teacher never runs: its logits are
read from the cache. Examples of the cache without a gold label (the unlabelled transfer set, the augmented copies)
get the soft term alone.

A seeded share of the labelled examples, with their augmented copies, is held out to pick the best model, which
is tested once on ``test_file``. Writes ``OUTPUT_DIR/best`` (loads with ``AutoModelForSequenceClassification`` and
``AutoTokenizer``, ``trust_remote_code=True`` for the BiLSTM), ``checkpoint-STEP/`` (``--resume true`` continues
from the newest), ``metrics.jsonl``, TensorBoard logs and ``results.json``.
It trains on ``transformers.Trainer`` (``distill.trainer.train``; ``common.training``, which fine-tuning shares).
"""

from __future__ import annotations

import sys
from typing import Any

from common.checkpoints import resume_point
from common.config import run_command
from common.io import output_written, require_output_place
from distill.train_config import COMMAND, RUN_OUTPUTS, TrainConfig


def distill_task(config: TrainConfig) -> dict[str, Any]:
    """Train the student ``config`` describes into ``config.output_dir`` (continuing its newest checkpoint with
    ``resume``) and return the results (also its results.json). ValueError or OSError names the option or input that
    cannot work, before any training; under ``accelerate launch`` every process raises it."""
    config.validate()
    require_output_place(config.output_dir, "--output_dir")
    # The output is checked under its lock: a run that started first cannot fill it between check and work.
    with output_written(config.output_dir, "--output_dir"):
        resume_from = resume_point(config.output_dir, RUN_OUTPUTS, config.resume, config.overwrite, "--output_dir")
        from distill.trainer import train  # torch and accelerate once the options are checked: refusals are quick

        return train(config, resume_from)


def main(argv: list[str] | None = None) -> int:
    run_command(distill_task, TrainConfig, argv, "python -m distill.train", __doc__, COMMAND.example)
    return 0  # the trainer's main process printed the test accuracy and where the results are


if __name__ == "__main__":
    sys.exit(main())

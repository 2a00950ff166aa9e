"""Save a BERT masked LM with random weights, of KoBERT's shape or a tiny one, beside a tokenizer: a stand-in teacher
for trials, tests and benchmarks where the real KoBERT cannot be downloaded.

    python -m modeling.random_teacher --shape tiny --tokenizer_name_or_path runs/mini/tokenizer \
        --output_dir runs/tiny-teacher
    python -m modeling.random_teacher --shape kobert --tokenizer_name_or_path runs/mini/tokenizer \
        --output_dir runs/kobert-shaped

The folder loads with ``AutoModelForMaskedLM`` and ``AutoTokenizer(..., trust_remote_code=True)`` and can be a
teacher anywhere (``modeling.extract --teacher_name_or_path``, ``pretrain/run.py --teacher``). Its vocabulary size is
the tokenizer's. From Python: ``save_random_teacher(RandomTeacherArguments(shape="tiny", ...))``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from common.config import key, required, run_command
from common.io import new_folder, output_written, quiet_file_progress_bars, require_output_folder

if TYPE_CHECKING:  # imported where a model is made, after the arguments are checked
    import torch
    from transformers import BertConfig, PretrainedConfig

# KoBERT's (SKTBrain/KoBERT, bert-base with its 8,002-token vocabulary); tiny: 0.7M parameters, trains on a CPU.
SHAPES: dict[str, dict[str, int]] = {
    "kobert": {
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "max_position_embeddings": 512,
    },
    "tiny": {
        "hidden_size": 64,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "intermediate_size": 128,
        "max_position_embeddings": 512,
    },
}


@dataclass(kw_only=True)
class RandomTeacherArguments:
    """What ``python -m modeling.random_teacher`` reads."""

    shape: Literal["kobert", "tiny"] = required("Layers and widths: KoBERT's (bert-base) or a tiny one (SHAPES).")
    tokenizer_name_or_path: str = required("Tokenizer folder (python -m pretrain.build_tokenizer) or Hub id.")
    output_dir: str = required("Folder to write; refused if it exists and is not empty.")
    overwrite: bool = key(False, "Replace an existing non-empty --output_dir.")
    seed: int = key(0, "Seed of the random weights.")

    def validate(self) -> None:
        """ValueError naming the option whose value cannot work."""
        require_output_folder(self.output_dir, self.overwrite, "--output_dir")


@dataclass
class RandomTeacherReport:
    output_dir: str
    shape: str
    num_hidden_layers: int
    hidden_size: int
    vocab_size: int
    parameters: int
    size_mb: float
    seed: int


def bert_config(shape: str, tokenizer: Any) -> BertConfig:
    """The config of ``shape`` with ``tokenizer``'s vocabulary size and padding id."""
    from transformers import BertConfig

    return BertConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, **SHAPES[shape])


def save_random_model(config: PretrainedConfig, tokenizer: Any, folder: str | Path, seed: int) -> torch.nn.Module:
    """A masked LM of ``config`` with fresh weights from ``seed``, saved with ``tokenizer`` (published whole)."""
    import torch
    from transformers import AutoModelForMaskedLM

    torch.manual_seed(seed)
    model = AutoModelForMaskedLM.from_config(config)
    with new_folder(folder, "random-model") as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
    return model


def save_random_teacher(args: RandomTeacherArguments) -> RandomTeacherReport:
    """Write a masked LM of ``args.shape`` with random weights (``args.seed``) and the tokenizer's vocabulary to
    ``args.output_dir``. ValueError or OSError names an option or a tokenizer that cannot work."""
    args.validate()
    from modeling.load import load_tokenizer  # after the checks: a refusal never waits for torch
    from modeling.student import parameter_count, size_mb

    quiet_file_progress_bars()
    tokenizer = load_tokenizer(args.tokenizer_name_or_path)
    with output_written(args.output_dir, "--output_dir"):
        model = save_random_model(bert_config(args.shape, tokenizer), tokenizer, args.output_dir, args.seed)
    config = model.config
    return RandomTeacherReport(
        output_dir=args.output_dir,
        shape=args.shape,
        num_hidden_layers=config.num_hidden_layers,
        hidden_size=config.hidden_size,
        vocab_size=config.vocab_size,
        parameters=parameter_count(model),
        size_mb=size_mb(model),
        seed=args.seed,
    )


def main(argv: list[str] | None = None) -> int:
    report = run_command(
        save_random_teacher, RandomTeacherArguments, argv, "python -m modeling.random_teacher", __doc__
    )
    print(
        f"wrote {report.output_dir}: BertForMaskedLM ({report.shape}), {report.num_hidden_layers} layers, hidden "
        f"{report.hidden_size}, {report.vocab_size:,} tokens: {report.parameters:,} parameters, "
        f"{report.size_mb:.1f} MB, random weights (seed {report.seed})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

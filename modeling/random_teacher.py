"""Save a BERT masked LM with random weights, of KoBERT's shape or a tiny one, beside a tokenizer: a stand-in teacher
for trials, tests and benchmarks where the real KoBERT cannot be downloaded.

    python -m modeling.random_teacher --shape tiny --tokenizer runs/mini/tokenizer --output runs/tiny-teacher
    python -m modeling.random_teacher --shape kobert --tokenizer runs/mini/tokenizer --output runs/kobert-shaped

The folder loads with ``AutoModelForMaskedLM`` and ``AutoTokenizer(..., trust_remote_code=True)`` and can be a
``--teacher`` anywhere (``modeling.extract``, ``pretrain/run.py``). Its vocabulary size is the tokenizer's.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.cli import command_parser
from common.io import check_output_folder, new_folder, output_written, quiet_file_progress_bars

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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = command_parser("python -m modeling.random_teacher", __doc__)
    parser.add_argument("--shape", choices=sorted(SHAPES), required=True, help="Layers and widths (see SHAPES).")
    parser.add_argument("--tokenizer", required=True, help="Tokenizer folder (python -m pretrain.build_tokenizer).")
    parser.add_argument("--output", required=True, help="Folder to write; refused if it exists and is not empty.")
    parser.add_argument("--overwrite", action="store_true", help="Replace an existing non-empty --output folder.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the random weights.")
    args = parser.parse_args(argv)
    check_output_folder(parser, args.output, args.overwrite)
    return args


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


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from modeling.load import load_tokenizer  # after the arguments: --help and a refusal never wait for torch
    from modeling.student import parameter_count, size_mb

    quiet_file_progress_bars()
    try:
        tokenizer = load_tokenizer(args.tokenizer)
    except (ValueError, OSError) as err:
        raise SystemExit(f"error: {err}") from err
    with output_written(args.output):
        model = save_random_model(bert_config(args.shape, tokenizer), tokenizer, args.output, args.seed)
    config = model.config
    print(
        f"wrote {args.output}: BertForMaskedLM ({args.shape}), {config.num_hidden_layers} layers, hidden "
        f"{config.hidden_size}, {config.vocab_size:,} tokens: {parameter_count(model):,} parameters, "
        f"{size_mb(model):.1f} MB, random weights (seed {args.seed})"
    )


if __name__ == "__main__":
    main()

"""Fine-tune and evaluate on NSMC (Naver movie-review sentiment): binary classification, accuracy.

    # the bundled sample (data/), on a CPU; the whole NSMC from the Hub, on several GPUs
    python -m finetune.nsmc --model runs/distil-tiny/final --train data/nsmc_train.txt.gz \
        --test data/nsmc_test.txt.gz --output runs/nsmc/distil-tiny
    accelerate launch -m finetune.nsmc --model monologg/kobert --train e9t/nsmc:train --test e9t/nsmc:test --output ...

Files are ``id<TAB>document<TAB>label`` with a header; a Hub dataset name (``name`` or ``name:split``) works too.
Defaults are those of the original KoBERT-nsmc: 50 tokens, batch 32, learning rate 5e-5, 5 epochs.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from common.cli import command_parser
from common.readers import NSMC_LABELS, read_nsmc
from finetune.arguments import add_common_args, check_common_args
from finetune.tasks import Split, Task, TaskData, label_options

if TYPE_CHECKING:  # torch and accelerate are imported where a batch is made, after the arguments are checked
    import torch
    from accelerate import Accelerator
    from torch import nn


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = command_parser("python -m finetune.nsmc", __doc__)
    parser.add_argument("--train", required=True, help="Training file or Hub dataset (name or name:split).")
    parser.add_argument("--test", required=True, help="Test file or Hub dataset (name or name:split).")
    add_common_args(parser, max_seq_length=50, batch_size=32, learning_rate=5e-5, epochs=5)
    args = parser.parse_args(argv)
    check_common_args(parser, args)
    return args


def read(args: argparse.Namespace) -> TaskData:
    return TaskData(read_nsmc(args.train, "train"), read_nsmc(args.test, "test"), label_options(NSMC_LABELS))


def encode(tokenizer: Any, records: list[dict[str, Any]], max_length: int) -> list[dict[str, Any]]:
    encoded = tokenizer([r["document"] for r in records], truncation=True, max_length=max_length)
    return [
        {**{key: encoded[key][i] for key in encoded}, "labels": record["label"]} for i, record in enumerate(records)
    ]


def encode_split(
    tokenizer: Any, records: list[dict[str, Any]], args: argparse.Namespace, config: Any, training: bool
) -> list[dict[str, Any]]:
    return encode(tokenizer, records, args.max_seq_length)


def collate(features: list[dict[str, Any]], tokenizer: Any, with_token_types: bool) -> dict[str, torch.Tensor]:
    import torch

    from finetune.trainer import pad_inputs

    batch = pad_inputs(features, tokenizer, with_token_types)
    batch["labels"] = torch.tensor([f["labels"] for f in features])
    return batch


def evaluate(
    accelerator: Accelerator, model: nn.Module, split: Split, args: argparse.Namespace, collate_fn: Any
) -> dict[str, float]:
    """Accuracy of the model's predicted labels."""
    import torch

    from finetune.trainer import predicted_labels

    predictions = predicted_labels(accelerator, model, split, args, collate_fn)
    labels = torch.tensor([f["labels"] for f in split.features])
    return {"accuracy": (predictions == labels).float().mean().item()}


TASK = Task(
    name="nsmc",
    column="NSMC (acc)",
    table_metrics=("accuracy",),
    primary_metric="accuracy",
    model_class="AutoModelForSequenceClassification",
    hub_task=("text-classification", "Sentiment classification"),
    dataset=("NSMC", "e9t/nsmc"),
    parse_args=parse_args,
    read=read,
    encode=encode_split,
    collate=collate,
    evaluate=evaluate,
)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return TASK.main(argv)


if __name__ == "__main__":
    main()

"""Fine-tune and evaluate on NSMC (Naver movie-review sentiment): binary classification, accuracy.

    # the bundled sample (data/), on a CPU; the whole NSMC from the Hub, on several GPUs
    python -m finetune.nsmc --model_name_or_path runs/distil-tiny/final --train_file data/nsmc_train.txt.gz \
        --test_file data/nsmc_test.txt.gz --output_dir runs/nsmc/distil-tiny
    accelerate launch -m finetune.nsmc --model_name_or_path monologg/kobert --train_file e9t/nsmc:train \
        --test_file e9t/nsmc:test --output_dir ...

Files are ``id<TAB>document<TAB>label`` with a header; a Hub dataset name (``name`` or ``name:split``) works too.
Defaults are those of the original KoBERT-nsmc: 50 tokens, batch 32, learning rate 5e-5, 5 epochs.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from common.config import key
from common.readers import NSMC_LABELS, read_nsmc
from finetune.arguments import FinetuneArguments
from finetune.tasks import Split, Task, TaskData, label_options

if TYPE_CHECKING:  # torch and accelerate are imported where a batch is made, after the arguments are checked
    import torch
    from accelerate import Accelerator
    from torch import nn


@dataclass(kw_only=True)
class NsmcArguments(FinetuneArguments):
    max_seq_length: int = key(50, "Tokens per input, special tokens included.")
    num_train_epochs: int = key(5, "Training epochs.")


def read(args: NsmcArguments) -> TaskData:
    return TaskData(read_nsmc(args.train_file, "train"), read_nsmc(args.test_file, "test"), label_options(NSMC_LABELS))


def encode(tokenizer: Any, records: list[dict[str, Any]], max_length: int) -> list[dict[str, Any]]:
    encoded = tokenizer([r["document"] for r in records], truncation=True, max_length=max_length)
    return [
        {**{key: encoded[key][i] for key in encoded}, "labels": record["label"]} for i, record in enumerate(records)
    ]


def encode_split(
    tokenizer: Any, records: list[dict[str, Any]], args: NsmcArguments, config: Any, training: bool
) -> list[dict[str, Any]]:
    return encode(tokenizer, records, args.max_seq_length)


def collate(features: list[dict[str, Any]], tokenizer: Any, with_token_types: bool) -> dict[str, torch.Tensor]:
    import torch

    from common.training import pad_inputs

    batch = pad_inputs(features, tokenizer, with_token_types)
    batch["labels"] = torch.tensor([f["labels"] for f in features])
    return batch


def evaluate(
    accelerator: Accelerator, model: nn.Module, split: Split, args: NsmcArguments, collate_fn: Any
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
    arguments=NsmcArguments,
    read=read,
    encode=encode_split,
    collate=collate,
    evaluate=evaluate,
)


def main(argv: list[str] | None = None) -> int:
    return TASK.main(argv)


if __name__ == "__main__":
    sys.exit(main())

"""Fine-tune and evaluate on NSMC (Naver movie-review sentiment): binary classification, accuracy.

    python -m finetune.nsmc --model runs/distilkobert --train ../shared/data/nsmc/ratings_train.txt \
        --test ../shared/data/nsmc/ratings_test.txt --output runs/nsmc/distilkobert
    accelerate launch -m finetune.nsmc --model monologg/kobert --train e9t/nsmc:train --test e9t/nsmc:test --output ...

Files are ``id<TAB>document<TAB>label`` with a header; a Hub dataset name (``name`` or ``name:split``) works too.
Defaults are those of the original KoBERT-nsmc: 50 tokens, batch 32, learning rate 5e-5, 5 epochs.
"""

from __future__ import annotations

import argparse
from functools import partial
from typing import Any

import torch
from accelerate import Accelerator
from torch import nn
from transformers import AutoModelForSequenceClassification

from common.io import setup_logging
from finetune.data_io import read_nsmc
from finetune.trainer import (
    add_common_args,
    check_common_args,
    fine_tune,
    first,
    load_task_model,
    pad_inputs,
    predict,
    split_train_validation,
    takes_token_type_ids,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", required=True, help="Training file or Hub dataset (name or name:split).")
    parser.add_argument("--test", required=True, help="Test file or Hub dataset (name or name:split).")
    add_common_args(parser, max_seq_length=50, batch_size=32, learning_rate=5e-5, epochs=5)
    args = parser.parse_args(argv)
    check_common_args(parser, args)
    return args


def encode(tokenizer: Any, records: list[dict[str, Any]], max_length: int) -> list[dict[str, Any]]:
    encoded = tokenizer([r["document"] for r in records], truncation=True, max_length=max_length)
    return [
        {**{key: encoded[key][i] for key in encoded}, "labels": record["label"]} for i, record in enumerate(records)
    ]


def collate(features: list[dict[str, Any]], tokenizer: Any, with_token_types: bool) -> dict[str, torch.Tensor]:
    batch = pad_inputs(features, tokenizer, with_token_types)
    batch["labels"] = torch.tensor([f["labels"] for f in features])
    return batch


def accuracy(
    accelerator: Accelerator, model: nn.Module, features: list[dict[str, Any]], collate_fn: Any, batch_size: int
) -> dict[str, float]:
    predictions = predict(
        accelerator, model, features, collate_fn, batch_size, lambda out: {"label": out.logits.argmax(-1)}
    )
    labels = torch.tensor([f["labels"] for f in features])
    return {"accuracy": (predictions["label"] == labels).float().mean().item()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    setup_logging()
    try:
        train_records, validation_records = split_train_validation(
            read_nsmc(args.train, "train"), args.validation_split, args.seed
        )
        test_records = first(read_nsmc(args.test, "test"), args.max_eval_samples)
        tokenizer, model = load_task_model(args, AutoModelForSequenceClassification, num_labels=2)
    except (ValueError, OSError) as err:
        raise SystemExit(f"error: {err}") from err
    train_records = first(train_records, args.max_train_samples)
    validation_records = first(validation_records, args.max_eval_samples)

    collate_fn = partial(collate, tokenizer=tokenizer, with_token_types=takes_token_type_ids(model))
    train, validation, test = (
        encode(tokenizer, r, args.max_seq_length) for r in (train_records, validation_records, test_records)
    )
    return fine_tune(
        args,
        "nsmc",
        model,
        tokenizer,
        train,
        collate_fn,
        lambda acc, m: accuracy(acc, m, validation, collate_fn, args.eval_batch_size),
        lambda acc, m: accuracy(acc, m, test, collate_fn, args.eval_batch_size),
        test_size=len(test),
        primary_metric="accuracy",
        extra_results={"examples": {"train": len(train), "validation": len(validation), "test": len(test)}},
    )


if __name__ == "__main__":
    main()

"""Fine-tune a sentence encoder on STS: the cosine similarity of each pair regressed on its gold score (0-5) / 5.

    python -m sentence.sts --model runs/sentence/simcse/best --train ../shared/data/korsts/sts-train.tsv \
        --dev ../shared/data/korsts/sts-dev.tsv --output runs/sentence/sts

The best checkpoint by Spearman on a seeded hold-out of --train becomes OUTPUT/best (a sentence-transformers
folder); --dev is scored once, at the end, and is what results.json reports. --silver adds pairs a cross-encoder
labelled (``sentence.silver``) to the training part. Files are KorSTS TSV or KLUE-STS JSON.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from common.cli import command_parser
from common.readers import STS_MAX_SCORE, first, read_sts, split_train_validation
from sentence.arguments import MODEL_HELP, Selection, add_training_args, check_training_args, setup_command_logging
from sentence.data import MIN_CORRELATION_PAIRS, read_scored_pairs

if TYPE_CHECKING:
    from datasets import Dataset

SELECTION = Selection("eval_validation_spearman_cosine", greater_is_better=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = command_parser("python -m sentence.sts", __doc__)
    parser.add_argument("--model", required=True, help=MODEL_HELP)
    parser.add_argument(
        "--train",
        required=True,
        help="STS training pairs (KorSTS TSV, KLUE-STS JSON, or a Hub dataset NAME[:CONFIG]:SPLIT).",
    )
    parser.add_argument("--dev", required=True, help="STS pairs scored once at the end (not used for selection).")
    parser.add_argument(
        "--silver", nargs="+", default=[], help="More training pairs (sentence.silver's), never in the hold-out."
    )
    # Reimers and Gurevych (2019): batch 16, 4 epochs, learning rate 2e-5, 10% warm-up.
    add_training_args(parser, epochs=4, batch_size=16, learning_rate=2e-5)
    args = parser.parse_args(argv)
    check_training_args(parser, args)
    return args


def pair_dataset(records: list[dict[str, Any]]) -> Dataset:
    """Columns sentence1, sentence2 and label (the score / 5, the cosine the loss aims at)."""
    from datasets import Dataset

    return Dataset.from_dict(
        {
            "sentence1": [r["sentence1"] for r in records],
            "sentence2": [r["sentence2"] for r in records],
            "label": [r["score"] / STS_MAX_SCORE for r in records],
        }
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    from sentence.evaluate import (  # torch and sentence-transformers: after the arguments
        sts_correlations,
        sts_evaluator,
    )
    from sentence.losses import sts_loss
    from sentence.model import load_encoder
    from sentence.training import announce, fit, write_results

    setup_command_logging()
    try:
        records, dev = read_sts(args.train), read_scored_pairs(args.dev)
        # The hold-out picks the best checkpoint by a correlation: it needs two pairs at least.
        train, validation = split_train_validation(
            records, args.validation_split, args.seed, MIN_CORRELATION_PAIRS, args.train
        )
        silver = [record for path in args.silver for record in read_sts(path)]
        encoder = load_encoder(args.model, args.pooling, args.max_seq_length)
    except (ValueError, OSError) as err:
        raise SystemExit(f"error: {err}") from err
    train = first(train, args.max_train_samples) + silver
    training = fit(
        encoder,
        sts_loss(encoder),
        pair_dataset(train),
        pair_dataset(validation),
        args,
        SELECTION,
        evaluator=sts_evaluator(validation, "validation"),
    )
    scores = sts_correlations(encoder, dev, "dev")
    examples = {"train": len(train), "silver": len(silver), "validation": len(validation), "dev": len(dev)}
    write_results(args, "sentence.sts", encoder, examples=examples, dev=scores, **training)
    announce(f"dev Spearman {scores['spearman']:.2f}, Pearson {scores['pearson']:.2f}; the encoder: {args.output}/best")
    return scores


if __name__ == "__main__":
    main()

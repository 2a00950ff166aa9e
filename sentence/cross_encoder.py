"""Train a cross-encoder on STS: both sentences in one input and a head scoring the pair (the gold score / 5), as
the teacher whose scores of new pairs (``sentence.silver``) a smaller encoder then learns (Thakur et al. 2021).

    python -m sentence.cross_encoder --model runs/mini/teacher/final --train ../shared/data/korsts/sts-train.tsv \
        --dev ../shared/data/korsts/sts-dev.tsv --output runs/sentence/cross-encoder

sentence-transformers' CrossEncoder, binary cross-entropy on the score / 5. The best checkpoint by Spearman on a
seeded hold-out of --train becomes OUTPUT/best; --dev is scored once, at the end (Spearman and Pearson x 100 of the
predicted against the gold scores). Defaults are Thakur et al.'s: batch 16, learning rate 2e-5, 4 epochs.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from common.cli import command_parser
from common.readers import STS_MAX_SCORE, first, read_sts, split_train_validation
from sentence.arguments import Selection, add_training_args, check_training_args, setup_command_logging
from sentence.data import MIN_CORRELATION_PAIRS, read_scored_pairs

if TYPE_CHECKING:  # sentence-transformers is imported where it works, after the arguments
    from sentence_transformers import CrossEncoder
    from sentence_transformers.cross_encoder.evaluation import CrossEncoderCorrelationEvaluator

SELECTION = Selection("eval_validation_spearman", greater_is_better=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = command_parser("python -m sentence.cross_encoder", __doc__)
    parser.add_argument("--model", required=True, help="Model folder or Hub id (a new head), or a cross-encoder.")
    parser.add_argument(
        "--train",
        required=True,
        help="STS training pairs (KorSTS TSV, KLUE-STS JSON, or a Hub dataset NAME[:CONFIG]:SPLIT).",
    )
    parser.add_argument("--dev", required=True, help="STS pairs scored once at the end (not used for selection).")
    add_training_args(parser, epochs=4, batch_size=16, learning_rate=2e-5, pooling=False)
    args = parser.parse_args(argv)
    check_training_args(parser, args)
    return args


def correlation_evaluator(records: list[dict[str, Any]], name: str) -> CrossEncoderCorrelationEvaluator:
    """Spearman and Pearson of the predicted scores against the gold ones: ``{name}_spearman``, ``{name}_pearson``."""
    from sentence_transformers.cross_encoder.evaluation import CrossEncoderCorrelationEvaluator

    pairs = [[r["sentence1"], r["sentence2"]] for r in records]
    return CrossEncoderCorrelationEvaluator(pairs, [r["score"] for r in records], name=name, write_csv=False)


def cross_encoder_correlations(model: CrossEncoder, records: list[dict[str, Any]]) -> dict[str, float]:
    metrics = correlation_evaluator(records, "dev")(model)
    return {kind: round(100 * metrics[f"dev_{kind}"], 2) for kind in ("spearman", "pearson")}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss  # after the arguments

    from sentence.model import load_cross_encoder
    from sentence.sts import pair_dataset
    from sentence.training import announce, fit, write_results

    setup_command_logging()
    try:
        records, dev = read_sts(args.train), read_scored_pairs(args.dev)
        # The hold-out picks the best checkpoint by a correlation: it needs two pairs at least.
        train, validation = split_train_validation(
            records, args.validation_split, args.seed, MIN_CORRELATION_PAIRS, args.train
        )
        model = load_cross_encoder(args.model, args.max_seq_length)
    except (ValueError, OSError) as err:
        raise SystemExit(f"error: {err}") from err
    train = first(train, args.max_train_samples)
    training = fit(
        model,
        BinaryCrossEntropyLoss(model),
        pair_dataset(train),
        pair_dataset(validation),
        args,
        SELECTION,
        evaluator=correlation_evaluator(validation, "validation"),
    )
    scores = cross_encoder_correlations(model, dev)
    examples = {"train": len(train), "validation": len(validation), "dev": len(dev)}
    write_results(
        args, "sentence.cross_encoder", model, examples=examples, dev=scores, max_score=STS_MAX_SCORE, **training
    )
    announce(
        f"dev Spearman {scores['spearman']:.2f}, Pearson {scores['pearson']:.2f}; the cross-encoder: {args.output}/best"
    )
    return scores


if __name__ == "__main__":
    main()

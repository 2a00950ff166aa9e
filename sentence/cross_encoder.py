"""Train a cross-encoder on STS: both sentences in one input and a head scoring the pair (the gold score / 5), as
the teacher whose scores of new pairs (``sentence.silver``) a smaller encoder then learns (Thakur et al. 2021).

    python -m sentence.cross_encoder --model_name_or_path runs/mini/teacher/final \
        --train_file ../shared/data/korsts/sts-train.tsv --test_file ../shared/data/korsts/sts-dev.tsv \
        --output_dir runs/sentence/cross-encoder
    accelerate launch -m sentence.cross_encoder ...   # the same on several processes

sentence-transformers' CrossEncoder, binary cross-entropy on the score / 5. The best checkpoint by Spearman on a
seeded hold-out of --train_file becomes OUTPUT_DIR/best; --test_file is scored once, at the end (Spearman and
Pearson x 100 of the predicted against the gold scores). Defaults are Thakur et al.'s: batch 16, learning rate 2e-5,
4 epochs.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from common.config import required, run_command
from common.readers import STS_MAX_SCORE, first, read_sts, split_train_validation
from sentence.arguments import (
    TEST_FILE_HELP,
    TRAIN_FILE_HELP,
    Selection,
    SentenceTrainingArguments,
    setup_command_logging,
)
from sentence.pairs import MIN_CORRELATION_PAIRS, read_scored_pairs

if TYPE_CHECKING:  # sentence-transformers is imported where it works, after the arguments
    from sentence_transformers import CrossEncoder
    from sentence_transformers.cross_encoder.evaluation import CrossEncoderCorrelationEvaluator

SELECTION = Selection("eval_validation_spearman", greater_is_better=True)


@dataclass(kw_only=True)
class CrossEncoderArguments(SentenceTrainingArguments):
    model_name_or_path: str = required("Model folder or Hub id (a new head), or a cross-encoder.")
    train_file: str = required(TRAIN_FILE_HELP)
    test_file: str = required(TEST_FILE_HELP)

    def data_options(self) -> tuple[str, ...]:
        return ("train_file", "test_file")


def correlation_evaluator(records: list[dict[str, Any]], name: str) -> CrossEncoderCorrelationEvaluator:
    """Spearman and Pearson of the predicted scores against the gold ones: ``{name}_spearman``, ``{name}_pearson``."""
    from sentence_transformers.cross_encoder.evaluation import CrossEncoderCorrelationEvaluator

    pairs = [[r["sentence1"], r["sentence2"]] for r in records]
    return CrossEncoderCorrelationEvaluator(pairs, [r["score"] for r in records], name=name, write_csv=False)


def cross_encoder_correlations(model: CrossEncoder, records: list[dict[str, Any]]) -> dict[str, float]:
    metrics = correlation_evaluator(records, "dev")(model)
    return {kind: round(100 * metrics[f"dev_{kind}"], 2) for kind in ("spearman", "pearson")}


def train_cross_encoder(args: CrossEncoderArguments) -> dict[str, Any]:
    """Train a cross-encoder from ``args.model_name_or_path`` on ``args.train_file``, keep the best checkpoint as
    ``OUTPUT_DIR/best``, score ``args.test_file``; returns what ``OUTPUT_DIR/results.json`` says. ValueError or
    OSError names an option or input that cannot work, before any training."""
    args.validate()
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss  # after the arguments

    from sentence.model import load_cross_encoder
    from sentence.sts import pair_dataset
    from sentence.training import fit, write_results

    setup_command_logging()
    records, test = read_sts(args.train_file), read_scored_pairs(args.test_file)
    # The hold-out picks the best checkpoint by a correlation: it needs two pairs at least.
    train, validation = split_train_validation(
        records, args.validation_split, args.seed, MIN_CORRELATION_PAIRS, args.train_file
    )
    model = load_cross_encoder(args.model_name_or_path, args.max_seq_length)
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
    scores = cross_encoder_correlations(model, test)
    examples = {"train": len(train), "validation": len(validation), "dev": len(test)}
    return write_results(
        args, "sentence.cross_encoder", model, examples=examples, dev=scores, max_score=STS_MAX_SCORE, **training
    )


def main(argv: list[str] | None = None) -> int:
    results = run_command(train_cross_encoder, CrossEncoderArguments, argv, "python -m sentence.cross_encoder", __doc__)
    from sentence.training import announce  # loaded by the training already

    scores = results["dev"]
    announce(
        f"dev Spearman {scores['spearman']:.2f}, Pearson {scores['pearson']:.2f}; the cross-encoder: "
        f"{results['model_dir']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

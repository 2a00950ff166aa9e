"""Fine-tune a sentence encoder on STS: the cosine similarity of each pair regressed on its gold score (0-5) / 5.

    python -m sentence.sts --model_name_or_path runs/sentence/simcse/best \
        --train_file ../shared/data/korsts/sts-train.tsv --test_file ../shared/data/korsts/sts-dev.tsv \
        --output_dir runs/sentence/sts
    accelerate launch -m sentence.sts ...   # the same on several processes

The best checkpoint by Spearman on a seeded hold-out of --train_file becomes OUTPUT_DIR/best (a sentence-transformers
folder); --test_file is scored once, at the end, and is what results.json reports. --silver adds pairs a
cross-encoder labelled (``sentence.silver``) to the training part. Files are KorSTS TSV or KLUE-STS JSON.
Defaults are Reimers and Gurevych (2019)'s: batch 16, 4 epochs, learning rate 2e-5, 10% warm-up.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from common.config import key, required, run_command
from common.readers import STS_MAX_SCORE, first, read_sts, split_train_validation
from sentence.arguments import (
    MODEL_HELP,
    TEST_FILE_HELP,
    TRAIN_FILE_HELP,
    EncoderTrainingArguments,
    Selection,
    setup_command_logging,
)
from sentence.pairs import MIN_CORRELATION_PAIRS, read_scored_pairs

if TYPE_CHECKING:
    from datasets import Dataset

SELECTION = Selection("eval_validation_spearman_cosine", greater_is_better=True)


@dataclass(kw_only=True)
class StsArguments(EncoderTrainingArguments):
    model_name_or_path: str = required(MODEL_HELP)
    train_file: str = required(TRAIN_FILE_HELP)
    test_file: str = required(TEST_FILE_HELP)
    silver: list[str] = key([], "More training pairs (sentence.silver's), never in the hold-out.")

    def data_options(self) -> tuple[str, ...]:
        return ("train_file", "test_file", "silver")


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


def train_sts(args: StsArguments) -> dict[str, Any]:
    """Fine-tune ``args.model_name_or_path`` on ``args.train_file`` (and ``args.silver``), keep the best checkpoint
    as ``OUTPUT_DIR/best``, score ``args.test_file``; returns what ``OUTPUT_DIR/results.json`` says. ValueError or
    OSError names an option or input that cannot work, before any training."""
    args.validate()
    from sentence.embedding_losses import sts_loss
    from sentence.evaluate import (  # torch and sentence-transformers: after the arguments
        sts_correlations,
        sts_evaluator,
    )
    from sentence.model import load_encoder
    from sentence.training import fit, write_results

    setup_command_logging()
    records, test = read_sts(args.train_file), read_scored_pairs(args.test_file)
    # The hold-out picks the best checkpoint by a correlation: it needs two pairs at least.
    train, validation = split_train_validation(
        records, args.validation_split, args.seed, MIN_CORRELATION_PAIRS, args.train_file
    )
    silver = [record for path in args.silver for record in read_sts(path)]
    encoder = load_encoder(args.model_name_or_path, args.pooling, args.max_seq_length)
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
    scores = sts_correlations(encoder, test, "dev")
    examples = {"train": len(train), "silver": len(silver), "validation": len(validation), "dev": len(test)}
    return write_results(args, "sentence.sts", encoder, examples=examples, dev=scores, **training)


def main(argv: list[str] | None = None) -> int:
    results = run_command(train_sts, StsArguments, argv, "python -m sentence.sts", __doc__)
    from sentence.training import announce  # loaded by the training already

    scores = results["dev"]
    announce(
        f"dev Spearman {scores['spearman']:.2f}, Pearson {scores['pearson']:.2f}; the encoder: {results['model_dir']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Train a sentence encoder with supervised SimCSE on NLI: premise and entailed hypothesis as a positive pair, the
contradicted hypothesis as a hard negative, every other sentence of the batch as a negative.

    python -m sentence.simcse --model runs/mini/teacher/final --nli ../shared/data/kornli/xnli.dev.ko.tsv \
        ../shared/data/klue/klue-nli-v1.1_dev.json --dev ../shared/data/korsts/sts-dev.tsv --output runs/simcse

Each entailed hypothesis is paired with a contradiction of the same premise (cycling when there are fewer); a
premise with no contradiction then has no row. When no premise has one, the entailment pairs alone are the data
(in-batch negatives only), with a warning. The best checkpoint by the loss on a seeded hold-out of the rows becomes
OUTPUT/best; --dev (STS) is scored once at the end. Defaults are Gao et al. (2021)'s: temperature 0.05, learning
rate 5e-5, batch 64 (they used 512 on GPUs: more in-batch negatives help), 3 epochs.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections import defaultdict
from itertools import cycle
from typing import Any

from common.cli import command_parser
from common.readers import first, read_nli, read_sts, split_train_validation
from sentence.arguments import MODEL_HELP, Selection, add_training_args, check_training_args, setup_command_logging

logger = logging.getLogger(__name__)
SELECTION = Selection("eval_loss", greater_is_better=False)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = command_parser("python -m sentence.simcse", __doc__)
    parser.add_argument("--model", required=True, help=MODEL_HELP)
    parser.add_argument(
        "--nli",
        nargs="+",
        required=True,
        help="NLI data: KorNLI TSV, KLUE-NLI JSON, or Hub datasets NAME[:CONFIG]:SPLIT.",
    )
    parser.add_argument(
        "--dev",
        default=None,
        help="STS pairs scored once at the end (KorSTS TSV, KLUE-STS JSON, or a Hub dataset NAME[:CONFIG]:SPLIT).",
    )
    parser.add_argument("--temperature", type=float, default=0.05, help="Cosine similarities are divided by it.")
    add_training_args(parser, epochs=3, batch_size=64, learning_rate=5e-5)
    args = parser.parse_args(argv)
    check_training_args(parser, args)
    if args.temperature <= 0:
        parser.error("--temperature must be positive")
    return args


def simcse_rows(records: list[dict[str, Any]]) -> list[dict[str, str]]:
    """(anchor, positive, negative) rows from NLI records, a premise's entailments each with one of its
    contradictions; (anchor, positive) rows of every entailment when no premise has both."""
    by_premise: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        by_premise[record["premise"]][record["label"]].append(record["hypothesis"])
    triplets = [
        {"anchor": premise, "positive": positive, "negative": negative}
        for premise, labels in by_premise.items()
        if labels["contradiction"]
        for positive, negative in zip(labels["entailment"], cycle(labels["contradiction"]))
    ]
    if triplets:
        return triplets
    return [
        {"anchor": premise, "positive": positive}
        for premise, labels in by_premise.items()
        for positive in labels["entailment"]
    ]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    from datasets import Dataset  # torch and sentence-transformers: after the arguments

    from sentence.evaluate import sts_correlations
    from sentence.losses import simcse_loss
    from sentence.model import load_encoder
    from sentence.training import announce, fit, write_results

    setup_command_logging()
    nli = ", ".join(args.nli)
    try:
        records = [record for path in args.nli for record in read_nli(path)]
        dev = read_sts(args.dev) if args.dev else None
        encoder = load_encoder(args.model, args.pooling, args.max_seq_length)
        rows = simcse_rows(records)
        if not rows:
            raise ValueError(f"{nli}: no premise has an entailed hypothesis")
        train, validation = split_train_validation(rows, args.validation_split, args.seed, source=nli)
    except (ValueError, OSError) as err:
        raise SystemExit(f"error: {err}") from err
    if "negative" not in rows[0]:
        logger.warning(
            "no premise in %s has both an entailment and a contradiction: training on entailment pairs, in-batch "
            "negatives only",
            nli,
        )
    train = first(train, args.max_train_samples)
    # Set by accelerate launch and torchrun; the process group itself starts later, inside the Trainer.
    several_processes = int(os.environ.get("WORLD_SIZE", "1")) > 1
    loss = simcse_loss(encoder, args.temperature, gather_across_devices=several_processes)
    training = fit(
        encoder, loss, Dataset.from_list(train), Dataset.from_list(validation), args, SELECTION, in_batch_negatives=True
    )
    scores = sts_correlations(encoder, dev, "dev") if dev else None
    examples = {
        "nli_records": len(records),
        "train": len(train),
        "validation": len(validation),
        "hard_negatives": "negative" in rows[0],
        "negatives_across_processes": several_processes,
    }
    write_results(args, "sentence.simcse", encoder, examples=examples, dev=scores, **training)
    summary = f"dev Spearman {scores['spearman']:.2f}; " if scores else ""
    announce(f"{summary}the encoder: {args.output}/best")
    return {"dev": scores, **training}


if __name__ == "__main__":
    main()

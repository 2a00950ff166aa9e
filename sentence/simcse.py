"""Train a sentence encoder with supervised SimCSE on NLI: premise and entailed hypothesis as a positive pair, the
contradicted hypothesis as a hard negative, every other sentence of the batch as a negative.

    python -m sentence.simcse --model_name_or_path runs/mini/teacher/final \
        --nli ../shared/data/kornli/xnli.dev.ko.tsv ../shared/data/klue/klue-nli-v1.1_dev.json \
        --test_file ../shared/data/korsts/sts-dev.tsv --output_dir runs/simcse
    accelerate launch -m sentence.simcse ...   # several processes: the negatives are gathered from all of them

Each entailed hypothesis is paired with a contradiction of the same premise (cycling when there are fewer); a
premise with no contradiction then has no row. When no premise has one, the entailment pairs alone are the data
(in-batch negatives only), with a warning. The best checkpoint by the loss on a seeded hold-out of the rows becomes
OUTPUT_DIR/best; --test_file (STS) is scored once at the end. Defaults are Gao et al. (2021)'s: temperature 0.05,
learning rate 5e-5, batch 64 (they used 512 on GPUs: more in-batch negatives help), 3 epochs.
"""

from __future__ import annotations

import logging
import os
import sys
from collections import defaultdict
from dataclasses import dataclass
from itertools import cycle
from typing import Any

from common.config import key, required, run_command
from common.readers import first, read_nli, read_sts, split_train_validation
from sentence.arguments import (
    MODEL_HELP,
    TEST_FILE_HELP,
    EncoderTrainingArguments,
    Selection,
    setup_command_logging,
)

logger = logging.getLogger(__name__)
SELECTION = Selection("eval_loss", greater_is_better=False)


@dataclass(kw_only=True)
class SimcseArguments(EncoderTrainingArguments):
    model_name_or_path: str = required(MODEL_HELP)
    nli: list[str] = required("NLI data: KorNLI TSV, KLUE-NLI JSON, or Hub datasets NAME[:CONFIG]:SPLIT.")
    test_file: str | None = key(None, TEST_FILE_HELP)
    temperature: float = key(0.05, "Cosine similarities are divided by it.")
    per_device_train_batch_size: int = key(64, "Examples per step, per process (the validation batches too).")
    learning_rate: float = key(5e-5, "Peak learning rate of AdamW.")
    num_train_epochs: float = key(3.0, "Passes over the training data.")

    def data_options(self) -> tuple[str, ...]:
        return ("nli", "test_file")

    def validate(self) -> None:
        super().validate()
        if self.temperature <= 0:
            raise ValueError("--temperature must be positive")


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


def train_simcse(args: SimcseArguments) -> dict[str, Any]:
    """Train ``args.model_name_or_path`` with SimCSE on ``args.nli``, keep the best checkpoint as
    ``OUTPUT_DIR/best``, score ``args.test_file``; returns what ``OUTPUT_DIR/results.json`` says. ValueError or
    OSError names an option or input that cannot work, before any training."""
    args.validate()
    from datasets import Dataset  # torch and sentence-transformers: after the arguments

    from sentence.embedding_losses import simcse_loss
    from sentence.evaluate import sts_correlations
    from sentence.model import load_encoder
    from sentence.training import fit, write_results

    setup_command_logging()
    nli = ", ".join(args.nli)
    records = [record for path in args.nli for record in read_nli(path)]
    test = read_sts(args.test_file) if args.test_file else None
    encoder = load_encoder(args.model_name_or_path, args.pooling, args.max_seq_length)
    rows = simcse_rows(records)
    if not rows:
        raise ValueError(f"{nli}: no premise has an entailed hypothesis")
    train, validation = split_train_validation(rows, args.validation_split, args.seed, source=nli)
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
    scores = sts_correlations(encoder, test, "dev") if test else None
    examples = {
        "nli_records": len(records),
        "train": len(train),
        "validation": len(validation),
        "hard_negatives": "negative" in rows[0],
        "negatives_across_processes": several_processes,
    }
    return write_results(args, "sentence.simcse", encoder, examples=examples, dev=scores, **training)


def main(argv: list[str] | None = None) -> int:
    results = run_command(train_simcse, SimcseArguments, argv, "python -m sentence.simcse", __doc__)
    from sentence.training import announce  # loaded by the training already

    summary = f"dev Spearman {results['dev']['spearman']:.2f}; " if results["dev"] else ""
    announce(f"{summary}the encoder: {results['model_dir']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

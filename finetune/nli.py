"""Fine-tune and evaluate on Korean NLI (KorNLI, KLUE-NLI): sentence-pair classification into entailment, neutral and
contradiction, accuracy.

    # the shared data folder beside the repository: trained on KLUE-NLI's dev set, tested on KorNLI's XNLI dev set
    python -m finetune.nli --model runs/distil-tiny/final --train ../shared/data/klue/klue-nli-v1.1_dev.json \
        --test ../shared/data/kornli/xnli.dev.ko.tsv --output runs/nli/distil-tiny
    # KorNLI (kakaobrain/KorNLUDatasets; DATA: where you keep it), on several GPUs
    accelerate launch -m finetune.nli --model monologg/kobert --train DATA/KorNLI/multinli.train.ko.tsv \
        --test DATA/KorNLI/xnli.test.ko.tsv --output runs/nli/kobert

Files are KorNLI TSV (``sentence1<TAB>sentence2<TAB>gold_label`` with a header) or KLUE-NLI JSON; a Hub dataset
(``name`` or ``name:split``) with ``premise``, ``hypothesis`` and ``label`` (an id) columns works too
(``common.readers.read_nli``). Premise and hypothesis are one pair input, ``[CLS] premise [SEP] hypothesis [SEP]``:
BERT tells them apart by token type as well, DistilBERT by the separator alone. Defaults are the usual ones for
KorNLI: 128 tokens, batch 32, learning rate 5e-5, 3 epochs.
"""

from __future__ import annotations

import argparse
from typing import Any

from common.cli import command_parser
from common.readers import NLI_LABELS, read_nli
from finetune.arguments import add_common_args, check_common_args

# A sentence pair's label is batched and scored as a review's: NSMC's collate (inputs and one label each) and
# evaluate (accuracy).
from finetune.nsmc import collate, evaluate
from finetune.tasks import Task, TaskData, label_options


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = command_parser("python -m finetune.nli", __doc__)
    parser.add_argument(
        "--train", required=True, help="Training file (KorNLI TSV, KLUE-NLI JSON) or Hub dataset (name or name:split)."
    )
    parser.add_argument(
        "--test", required=True, help="Test file (KorNLI TSV, KLUE-NLI JSON) or Hub dataset (name or name:split)."
    )
    add_common_args(parser, max_seq_length=128, batch_size=32, learning_rate=5e-5, epochs=3)
    args = parser.parse_args(argv)
    check_common_args(parser, args)
    return args


def read(args: argparse.Namespace) -> TaskData:
    """Both splits, and the label names for the model's config (so that a saved model names its predictions)."""
    return TaskData(read_nli(args.train, "train"), read_nli(args.test, "test"), label_options(NLI_LABELS))


def encode(
    tokenizer: Any, records: list[dict[str, Any]], label2id: dict[str, int], max_length: int
) -> list[dict[str, Any]]:
    """Model inputs of each premise and hypothesis as one pair (the hypothesis of token type 1), and the label id.

    A pair longer than ``max_length`` loses tokens from its longer sentence first (the tokenizer's default).
    """
    encoded = tokenizer(
        [r["premise"] for r in records], [r["hypothesis"] for r in records], truncation=True, max_length=max_length
    )
    return [
        {**{key: encoded[key][i] for key in encoded}, "labels": label2id[record["label"]]}
        for i, record in enumerate(records)
    ]


def encode_split(
    tokenizer: Any, records: list[dict[str, Any]], args: argparse.Namespace, config: Any, training: bool
) -> list[dict[str, Any]]:
    return encode(tokenizer, records, config.label2id, args.max_seq_length)


TASK = Task(
    name="nli",
    column="NLI (acc)",
    table_metrics=("accuracy",),
    primary_metric="accuracy",
    model_class="AutoModelForSequenceClassification",
    hub_task=("text-classification", "Natural language inference"),
    # The card names a local file beside this name, so it covers both formats; klue/klue is the Hub's copy.
    dataset=("KorNLI / KLUE-NLI", "klue/klue"),
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

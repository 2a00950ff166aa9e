"""Fine-tune and evaluate on Korean NLI (KorNLI, KLUE-NLI): sentence-pair classification into entailment, neutral and
contradiction, accuracy.

    # the shared data folder beside the repository: trained on KLUE-NLI's dev set, tested on KorNLI's XNLI dev set
    python -m finetune.nli --model_name_or_path runs/distil-tiny/final \
        --train_file ../shared/data/klue/klue-nli-v1.1_dev.json --test_file ../shared/data/kornli/xnli.dev.ko.tsv \
        --output_dir runs/nli/distil-tiny
    # KorNLI (kakaobrain/KorNLUDatasets; DATA: where you keep it), on several GPUs
    accelerate launch -m finetune.nli --model_name_or_path monologg/kobert \
        --train_file DATA/KorNLI/multinli.train.ko.tsv --test_file DATA/KorNLI/xnli.test.ko.tsv \
        --output_dir runs/nli/kobert

Files are KorNLI TSV (``sentence1<TAB>sentence2<TAB>gold_label`` with a header) or KLUE-NLI JSON; a Hub dataset
(``name`` or ``name:split``) with ``premise``, ``hypothesis`` and ``label`` (an id) columns works too
(``common.readers.read_nli``). Premise and hypothesis are one pair input, ``[CLS] premise [SEP] hypothesis [SEP]``:
BERT tells them apart by token type as well, DistilBERT by the separator alone. Defaults are the usual ones for
KorNLI: 128 tokens, batch 32, learning rate 5e-5, 3 epochs.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from common.config import required
from common.readers import NLI_LABELS, read_nli
from finetune.arguments import FinetuneArguments

# A sentence pair's label is batched and scored as a review's: NSMC's collate (inputs and one label each) and
# evaluate (accuracy).
from finetune.nsmc import collate, evaluate
from finetune.tasks import Task, TaskData, label_options


@dataclass(kw_only=True)
class NliArguments(FinetuneArguments):
    train_file: str = required("Training file (KorNLI TSV, KLUE-NLI JSON) or Hub dataset (name or name:split).")
    test_file: str = required("Test file (KorNLI TSV, KLUE-NLI JSON) or Hub dataset (name or name:split).")


def read(args: NliArguments) -> TaskData:
    """Both splits, and the label names for the model's config (so that a saved model names its predictions)."""
    return TaskData(read_nli(args.train_file, "train"), read_nli(args.test_file, "test"), label_options(NLI_LABELS))


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
    tokenizer: Any, records: list[dict[str, Any]], args: NliArguments, config: Any, training: bool
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
    arguments=NliArguments,
    read=read,
    encode=encode_split,
    collate=collate,
    evaluate=evaluate,
)


def main(argv: list[str] | None = None) -> int:
    return TASK.main(argv)


if __name__ == "__main__":
    sys.exit(main())

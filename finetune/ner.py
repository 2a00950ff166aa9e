"""Fine-tune and evaluate on Naver NER: token classification, entity-level F1 (seqeval).

    # DATA: where you keep the Naver NLP Challenge 2018 files (not redistributable, so not bundled)
    python -m finetune.ner --model_name_or_path runs/distil-tiny/final --train_file DATA/naver_ner/train.tsv \
        --test_file DATA/naver_ner/test.tsv --labels_file DATA/naver_ner/label.txt --output_dir runs/ner/distil-tiny
    accelerate launch -m finetune.ner --model_name_or_path monologg/kobert --train_file DATA/naver_ner/train.tsv \
        --test_file DATA/naver_ner/test.tsv --labels_file DATA/naver_ner/label.txt --output_dir runs/ner/kobert

Files are ``sentence<TAB>labels``, one label per space-separated word; ``label.txt`` lists the labels in id order
(``UNK``, ``O``, ``PER-B``, ``PER-I``, ...: the B/I tag follows the type). A Hub dataset (``name`` or ``name:split``)
needs ``words`` and ``labels`` columns.

Each word's label goes to its first sub-token (which may be a lone "▁" piece); the other sub-tokens and the special
tokens are ignored by the loss, and a word's prediction is that of its first sub-token. Words cut off by
--max-seq-length are predicted "O" (so they count against recall) and their number is in results.json.
Defaults are those of the original KoBERT-NER: 50 tokens, batch 32, learning rate 5e-5, 20 epochs.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from common.config import key, required
from common.ner_tags import IGNORED, align_labels, to_seqeval, word_starts, word_tags
from common.readers import read_labels, read_ner
from finetune.arguments import FinetuneArguments
from finetune.tasks import Split, Task, TaskData, label_options

if TYPE_CHECKING:  # torch, accelerate and seqeval are imported where they work, after the arguments are checked
    import torch
    from accelerate import Accelerator
    from torch import nn

logger = logging.getLogger(__name__)


@dataclass(kw_only=True)
class NerArguments(FinetuneArguments):
    labels_file: str = required("label.txt: one label per line, in id order.")
    max_seq_length: int = key(50, "Tokens per input, special tokens included.")
    num_train_epochs: int = key(20, "Training epochs.")

    def data_options(self) -> tuple[str, ...]:
        return (*super().data_options(), "labels_file")


def entity_scores(gold: list[list[str]], predicted: list[list[str]]) -> tuple[dict[str, float], dict[str, float]]:
    """Entity-level micro F1, precision and recall, and the F1 of each entity type, on seqeval tags (``B-PER``).

    An entity counts as found only if both its type and its span match.
    """
    from seqeval.metrics import classification_report

    report = classification_report(gold, predicted, output_dict=True, zero_division=0)
    micro = report.pop("micro avg")
    per_type = {name: float(scores["f1-score"]) for name, scores in report.items() if not name.endswith(" avg")}
    metrics = {"f1": float(micro["f1-score"]), "precision": float(micro["precision"]), "recall": float(micro["recall"])}
    return metrics, per_type


def encode(
    tokenizer: Any, records: list[dict[str, Any]], label2id: dict[str, int], max_length: int
) -> list[dict[str, Any]]:
    """Model inputs with aligned token labels, plus what scoring needs: word starts and every word's gold tag."""
    encoded = tokenizer([r["words"] for r in records], is_split_into_words=True, truncation=True, max_length=max_length)
    features = []
    for i, record in enumerate(records):
        starts = word_starts(encoded.word_ids(i), len(record["words"]))
        word_labels = [label2id[label] for label in record["labels"]]
        features.append(
            {
                **{key: encoded[key][i] for key in encoded},
                "labels": align_labels(starts, word_labels, len(encoded["input_ids"][i])),
                "word_starts": starts,
                "gold": [to_seqeval(label) for label in record["labels"]],
            }
        )
    return features


def truncated_words(features: list[dict[str, Any]]) -> int:
    """How many words have no token, hence are predicted ``O``."""
    return sum(start is None for f in features for start in f["word_starts"])


def collate(features: list[dict[str, Any]], tokenizer: Any, with_token_types: bool) -> dict[str, torch.Tensor]:
    import torch

    from common.training import pad_inputs

    batch = pad_inputs(features, tokenizer, with_token_types)
    width = batch["input_ids"].shape[1]
    batch["labels"] = torch.tensor([f["labels"] + [IGNORED] * (width - len(f["labels"])) for f in features])
    return batch


def encode_split(
    tokenizer: Any, records: list[dict[str, Any]], args: NerArguments, config: Any, training: bool
) -> list[dict[str, Any]]:
    return encode(tokenizer, records, config.label2id, args.max_seq_length)


def read(args: NerArguments) -> TaskData:
    """The label file first: the model's labels, and a format check before any work."""
    labels = read_labels(args.labels_file)
    for label in labels:
        to_seqeval(label)
    return TaskData(
        read_ner(args.train_file, labels, "train"), read_ner(args.test_file, labels, "test"), label_options(labels)
    )


def evaluate(
    accelerator: Accelerator, model: nn.Module, split: Split, args: NerArguments, collate_fn: Any
) -> dict[str, Any]:
    """``entity_scores`` of the model's predictions, per-type F1 under ``f1_per_type``."""
    from finetune.trainer import predicted_labels

    id2label = accelerator.unwrap_model(model).config.id2label
    tags = [to_seqeval(id2label[i]) for i in range(len(id2label))]
    predictions = predicted_labels(accelerator, model, split, args, collate_fn)
    predicted = [
        word_tags(row.tolist(), f["word_starts"], tags) for row, f in zip(predictions, split.features, strict=True)
    ]
    metrics, per_type = entity_scores([f["gold"] for f in split.features], predicted)
    return {**metrics, "f1_per_type": per_type}


def truncation_report(splits: dict[str, Split]) -> dict[str, Any]:
    """Words cut off by --max_seq_length, predicted O: logged for every split, the test's count kept."""
    cut = {name: truncated_words(split.features) for name, split in splits.items()}
    logger.info("Words cut off by --max_seq_length (predicted O): %s", cut)
    return {"truncated_words": cut["test"]}


TASK = Task(
    name="ner",
    column="Naver NER (F1)",
    table_metrics=("f1",),
    primary_metric="f1",
    model_class="AutoModelForTokenClassification",
    hub_task=("token-classification", "Named entity recognition"),
    dataset=("Naver NER (NLP Challenge 2018)", "naver-ner"),
    arguments=NerArguments,
    read=read,
    encode=encode_split,
    collate=collate,
    evaluate=evaluate,
    extra_results=truncation_report,
)


def main(argv: list[str] | None = None) -> int:
    return TASK.main(argv)


if __name__ == "__main__":
    sys.exit(main())

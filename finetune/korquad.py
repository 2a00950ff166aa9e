"""Fine-tune and evaluate on KorQuAD 1.0 (extractive question answering): exact match and character F1 on dev.

    # DATA: where you keep the KorQuAD 1.0 files (CC BY-ND, so not bundled); or the Hub dataset, below
    python -m finetune.korquad --model_name_or_path runs/distil-tiny/final \
        --train_file DATA/korquad/KorQuAD_v1.0_train.json --test_file DATA/korquad/KorQuAD_v1.0_dev.json \
        --output_dir runs/korquad/distil-tiny
    accelerate launch -m finetune.korquad --model_name_or_path monologg/kobert --train_file KorQuAD/squad_kor_v1:train \
        --test_file KorQuAD/squad_kor_v1:validation --output_dir runs/korquad/kobert

Files are SQuAD v1 JSON; a Hub dataset name (``name`` or ``name:split``) with SQuAD's columns works too. The dev set
is the test set: the best epoch is picked on a share of the training questions. ``predictions.json`` (``{question
id: answer text}``, the official format) is written for the dev set, so the official script can score it as well.

Defaults follow the common KorQuAD 1.0 BERT baselines (Google's run_squad.py, KoBERT-KorQuAD): 384 tokens per window,
windows overlapping by 128 tokens (``--doc-stride`` as transformers' run_qa.py reads it), questions cut at 64 tokens,
answers of at most 30 tokens chosen among the 20 best starts and ends, batch 16, learning rate 5e-5, 2 epochs.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common import korquad_metric
from common.config import key, required
from common.io import write_json
from common.qa_spans import Span, best_span, context_spans
from common.readers import read_squad
from finetune.arguments import FinetuneArguments
from finetune.tasks import Split, Task, TaskData

if TYPE_CHECKING:  # torch and accelerate are imported where a batch is made, after the arguments are checked
    import torch
    from accelerate import Accelerator
    from torch import nn

logger = logging.getLogger("finetune.korquad")
SPECIAL_TOKENS_IN_PAIR = 3  # [CLS] question [SEP] context [SEP]


@dataclass(kw_only=True)
class KorquadArguments(FinetuneArguments):
    train_file: str = required("SQuAD v1 JSON file or Hub dataset (name or name:split).")
    test_file: str = required("The test set (KorQuAD's dev set): SQuAD v1 JSON file or Hub dataset.")
    doc_stride: int = key(128, "Tokens shared by consecutive context windows.")
    max_query_length: int = key(64, "Questions are cut after this many tokens.")
    max_answer_length: int = key(30, "Longest answer predicted, in tokens.")
    n_best_size: int = key(20, "Best start and end tokens paired per window.")
    max_seq_length: int = key(384, "Tokens per input, special tokens included.")
    per_device_train_batch_size: int = key(16, "Training examples per device per step.")
    num_train_epochs: int = key(2, "Training epochs.")

    def validate(self) -> None:
        super().validate()
        if min(self.max_query_length, self.max_answer_length, self.n_best_size) < 1 or self.doc_stride < 0:
            raise ValueError(
                "--max_query_length, --max_answer_length and --n_best_size must be >= 1, --doc_stride >= 0"
            )
        room = self.max_seq_length - self.max_query_length - SPECIAL_TOKENS_IN_PAIR
        if self.doc_stride >= room:
            raise ValueError(
                f"--doc_stride {self.doc_stride} must be smaller than the {room} context tokens a window is sure to "
                "hold (--max_seq_length minus --max_query_length minus 3): lower it or raise --max_seq_length"
            )


def read(args: KorquadArguments) -> TaskData:
    """The training questions and the dev set (the test set); answers not at their ``answer_start`` are skipped."""
    train, train_skipped = read_squad(args.train_file, "train")
    test, test_skipped = read_squad(args.test_file, "validation")
    if train_skipped or test_skipped:
        logger.warning(
            "skipped %d answers whose answer_start does not point at their text (train %d, dev %d)",
            train_skipped + test_skipped,
            train_skipped,
            test_skipped,
        )
    return TaskData(train, test, extra_results={"skipped_answers": train_skipped + test_skipped})


def check_fast_tokenizer(args: KorquadArguments, tokenizer: Any) -> None:
    """Answers are mapped through offsets, which only fast tokenizers give."""
    if not tokenizer.is_fast:
        raise ValueError(
            f"{args.model_name_or_path}: KorQuAD needs a fast tokenizer for offsets, got {type(tokenizer).__name__}"
        )


def truncate_questions(tokenizer: Any, questions: list[str], max_tokens: int) -> list[str]:
    """Each question cut after its ``max_tokens``-th token, at that token's offset (the text stays the original's)."""
    offsets = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    return [q if len(o) <= max_tokens else q[: o[max_tokens - 1][1]] for q, o in zip(questions, offsets, strict=True)]


def answer_chars(answer: dict[str, Any]) -> Span:
    """The answer's characters in the context, surrounding whitespace left out (a few KorQuAD answers end in one)."""
    text, start = answer["text"], answer["answer_start"]
    return start + len(text) - len(text.lstrip()), start + len(text.rstrip())


def answer_tokens(spans: Sequence[Span | None], start_char: int, end_char: int) -> Span:
    """Positions of the first and last token of the answer ``[start_char, end_char)`` in a window, or ``(0, 0)``
    (the CLS token) when the window does not hold all of it."""
    inside = [i for i, span in enumerate(spans) if span is not None]
    if not inside or spans[inside[0]][0] > start_char or spans[inside[-1]][1] < end_char or start_char >= end_char:
        return 0, 0
    start = next(i for i in inside if spans[i][1] > start_char)
    end = next(i for i in reversed(inside) if spans[i][0] < end_char)
    return start, end


def encode(
    tokenizer: Any,
    examples: list[dict[str, Any]],
    max_seq_length: int,
    doc_stride: int,
    max_query_length: int,
    with_labels: bool = False,
) -> list[dict[str, Any]]:
    """One feature per window ``[CLS] question [SEP] context part [SEP]`` of each example.

    A feature holds the model inputs, ``example_index``, ``spans`` (``context_spans``) and, ``with_labels``,
    ``start_positions``/``end_positions`` of the first answer (CLS in windows that do not hold it whole).
    """
    encoded = tokenizer(
        truncate_questions(tokenizer, [e["question"] for e in examples], max_query_length),
        [e["context"] for e in examples],
        truncation="only_second",
        max_length=max_seq_length,
        stride=doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    inputs = [key for key in encoded if key not in ("offset_mapping", "overflow_to_sample_mapping")]
    features = []
    for i, example_index in enumerate(encoded["overflow_to_sample_mapping"]):
        example = examples[example_index]
        spans = context_spans(encoded["offset_mapping"][i], encoded.sequence_ids(i), example["context"])
        feature = {**{key: encoded[key][i] for key in inputs}, "example_index": example_index, "spans": spans}
        if with_labels:
            labels = answer_tokens(spans, *answer_chars(example["answers"][0])) if example["answers"] else (0, 0)
            feature["start_positions"], feature["end_positions"] = labels
        features.append(feature)
    return features


def encode_split(
    tokenizer: Any, examples: list[dict[str, Any]], args: KorquadArguments, config: Any, training: bool
) -> list[dict[str, Any]]:
    """The windows of ``examples``; labelled (answer positions) for training only."""
    check_fast_tokenizer(args, tokenizer)
    return encode(
        tokenizer,
        examples,
        args.max_seq_length,
        args.doc_stride,
        args.max_query_length,
        with_labels=training,
    )


def collate(features: list[dict[str, Any]], tokenizer: Any, with_token_types: bool) -> dict[str, torch.Tensor]:
    import torch

    from common.training import pad_inputs

    batch = pad_inputs(features, tokenizer, with_token_types)
    if "start_positions" in features[0]:
        batch["start_positions"] = torch.tensor([f["start_positions"] for f in features])
        batch["end_positions"] = torch.tensor([f["end_positions"] for f in features])
    return batch


def best_answers(
    examples: list[dict[str, Any]],
    features: list[dict[str, Any]],
    start_logits: Sequence[Sequence[float]],
    end_logits: Sequence[Sequence[float]],
    n_best: int,
    max_answer_length: int,
) -> dict[str, str]:
    """``{question id: answer}``: the best span over all of a question's windows, cut from the original context
    (not rebuilt from SentencePiece pieces, which lost exact matches in the original KoBERT code); empty if none."""
    best: dict[int, tuple[float, Span]] = {}
    for feature, starts, ends in zip(features, start_logits, end_logits, strict=True):
        found = best_span(starts, ends, feature["spans"], n_best, max_answer_length)
        index = feature["example_index"]
        if found is not None and (index not in best or found[0] > best[index][0]):
            best[index] = found
    return {e["id"]: e["context"][slice(*best[i][1])] if i in best else "" for i, e in enumerate(examples)}


def evaluate(
    accelerator: Accelerator, model: nn.Module, split: Split, args: KorquadArguments, collate_fn: Any
) -> dict[str, float]:
    """EM and F1 (fractions) of the model's answers; the test answers are also written to ``predictions.json``."""
    from common.training import predict

    logits = predict(
        accelerator,
        model,
        split.features,
        collate_fn,
        args.per_device_eval_batch_size,
        lambda out: {"start": out.start_logits, "end": out.end_logits},
    )
    predictions = best_answers(
        split.records,
        split.features,
        logits["start"].tolist(),
        logits["end"].tolist(),
        args.n_best_size,
        args.max_answer_length,
    )
    if split.name == "test" and accelerator.is_main_process:
        write_json(Path(args.output_dir) / "predictions.json", predictions)
    return korquad_metric.evaluate(split.records, predictions)


def window_counts(splits: dict[str, Split]) -> dict[str, Any]:
    """Windows per split (a long context gives several)."""
    windows = {name: len(split.features) for name, split in splits.items()}
    logger.info("questions %s, windows %s", {name: len(split.records) for name, split in splits.items()}, windows)
    return {"features": windows}


TASK = Task(
    name="korquad",
    column="KorQuAD (Dev) (EM/F1)",
    table_metrics=("exact_match", "f1"),
    primary_metric="f1",
    model_class="AutoModelForQuestionAnswering",
    hub_task=("question-answering", "Extractive question answering"),
    dataset=("KorQuAD 1.0", "KorQuAD/squad_kor_v1"),
    arguments=KorquadArguments,
    read=read,
    encode=encode_split,
    collate=collate,
    evaluate=evaluate,
    extra_results=window_counts,
)


def main(argv: list[str] | None = None) -> int:
    return TASK.main(argv)


if __name__ == "__main__":
    sys.exit(main())

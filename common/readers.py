"""Reading the task files (NSMC, Naver NER, KorQuAD / SQuAD v1, KorNLI / KLUE-NLI, KorSTS / KLUE-STS) or Hub
datasets, and writing results.json: the one home of every data format, used by every package (the service reads no
training code for them).

Every reader gives plain dicts and names the file and line (or JSON item, question id, Hub row) of anything malformed.
"""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common.io import header_again, is_missing_file, open_text, run_metadata, write_json


def is_local(path_or_name: str) -> bool:
    """A file to read ourselves; anything else is a Hub dataset name or a local dataset folder for `datasets`."""
    return os.path.isfile(path_or_name)


def data_source(source: str) -> dict[str, str | None]:
    """What results.json and the model card say about a ``--train`` or ``--test``: the argument as given, and the
    Hub dataset it names (``e9t/nsmc:test`` -> ``e9t/nsmc``), None for a local file or folder."""
    name = source.split(":", 1)[0]
    local = os.path.exists(source) or os.path.exists(name)
    return {"source": source, "hub_id": None if local else name}


def hub_spec(name: str, split: str) -> tuple[str, str | None, str]:
    """``NAME``, ``NAME:SPLIT`` or ``NAME:CONFIG:SPLIT`` as (name, config or None, split); ``split`` when none is given.

    >>> hub_spec("kakaobrain/kor_nlu:sts:validation", "train")
    ('kakaobrain/kor_nlu', 'sts', 'validation')
    """
    parts = name.split(":")
    if len(parts) > 3 or not all(parts):
        raise ValueError(f"{name}: expected a Hub dataset as NAME, NAME:SPLIT or NAME:CONFIG:SPLIT")
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    return parts[0], None, parts[1] if len(parts) == 2 else split


def load_hub_split(name: str, split: str) -> list[dict[str, Any]]:
    """A Hub dataset (``NAME``, ``NAME:SPLIT`` or ``NAME:CONFIG:SPLIT``, e.g. ``klue/klue:nli:train``) through the
    datasets library, as a list of dicts; a local dataset folder it was saved to works the same way."""
    import datasets

    if is_missing_file(name):  # a mistyped file is never looked up on the Hub (retries, then a misleading error)
        raise FileNotFoundError(f"no such file: {name}")
    dataset, config, split = hub_spec(name, split)
    return [dict(row) for row in datasets.load_dataset(dataset, config, split=split)]


def tsv_rows(path: str, header: list[str]) -> Iterator[tuple[str, list[str]]]:
    """The rows of a tab-separated file whose first line is ``header``, each with ``FILE:LINE`` for its errors.

    Fields are split on tabs alone, with no csv quoting: KorNLI's training files have sentences with a stray quote.
    """
    with open_text(path) as f:
        found = f.readline().rstrip("\n").split("\t")
        if found != header:
            raise ValueError(f"{path}:1: expected the header {'<TAB>'.join(header)!r}, got {found}")
        for line_no, line in enumerate(f, start=2):
            fields = line.rstrip("\n").split("\t")
            if fields == header:
                raise header_again(f"{path}:{line_no}")
            if len(fields) != len(header):
                raise ValueError(f"{path}:{line_no}: expected {len(header)} tab-separated columns, got {len(fields)}")
            yield f"{path}:{line_no}", fields


NSMC_LABELS = ("negative", "positive")  # label 0, label 1


def read_nsmc(path_or_name: str, split: str = "train") -> list[dict[str, Any]]:
    """``id<TAB>document<TAB>label`` with a header line; labels 0 or 1. A Hub dataset must have those columns."""
    if not is_local(path_or_name):
        rows = load_hub_split(path_or_name, split)
        return [{"id": str(r["id"]), "document": r["document"] or "", "label": int(r["label"])} for r in rows]
    records = []
    for where, (review_id, document, label) in tsv_rows(path_or_name, ["id", "document", "label"]):
        if label not in ("0", "1"):
            raise ValueError(f"{where}: label must be 0 or 1, got {label!r}")
        records.append({"id": review_id, "document": document, "label": int(label)})
    return records


def read_labels(path: str) -> list[str]:
    """One label per line (``label.txt``), in id order."""
    with open_text(path) as f:
        labels = [line.strip() for line in f if line.strip()]
    if len(set(labels)) != len(labels):
        raise ValueError(f"{path}: duplicate labels")
    return labels


def read_ner(path_or_name: str, labels: list[str], split: str = "train") -> list[dict[str, Any]]:
    """``sentence<TAB>labels``: one label per space-separated word. A Hub dataset needs ``words`` and ``labels``."""
    known = set(labels)
    if not is_local(path_or_name):
        rows = load_hub_split(path_or_name, split)
        return [{"words": list(r["words"]), "labels": list(r["labels"])} for r in rows]
    records = []
    with open_text(path_or_name) as f:
        for line_no, line in enumerate(f, start=1):
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 2:
                raise ValueError(f"{path_or_name}:{line_no}: expected 2 tab-separated columns, got {len(fields)}")
            words, tags = fields[0].split(" "), fields[1].split(" ")
            if len(words) != len(tags):
                raise ValueError(f"{path_or_name}:{line_no}: {len(words)} words but {len(tags)} labels")
            unknown = sorted(set(tags) - known)
            if unknown:
                raise ValueError(f"{path_or_name}:{line_no}: labels {unknown} are not in the label file")
            records.append({"words": words, "labels": tags})
    return records


def read_squad(path_or_name: str, split: str = "train") -> tuple[list[dict[str, Any]], int]:
    """SQuAD v1 JSON (KorQuAD 1.0): one dict per question; returns ``(examples, skipped)``.

    An answer whose ``answer_start`` does not point at its text is reported and skipped (the question too, if it
    is left with no answer); the count of skipped answers is returned.
    """
    if not is_local(path_or_name):
        rows = load_hub_split(path_or_name, split)
        examples = [
            {
                "id": r["id"],
                "question": r["question"],
                "context": r["context"],
                "answers": [
                    {"text": t, "answer_start": s}
                    for t, s in zip(r["answers"]["text"], r["answers"]["answer_start"], strict=True)
                ],
            }
            for r in rows
        ]
        return keep_valid_answers(examples, path_or_name)
    with open_text(path_or_name) as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path_or_name}: not valid JSON: {err}") from err
    if not isinstance(data, dict) or "data" not in data:
        raise ValueError(f"{path_or_name}: not SQuAD v1 JSON (no 'data' key)")
    return keep_valid_answers(squad_examples(data, path_or_name), path_or_name)


def squad_examples(data: dict[str, Any], path: str) -> list[dict[str, Any]]:
    """One dict per question of SQuAD v1 JSON; a missing key or a value of the wrong kind is a ValueError naming
    the question it follows (SQuAD files run to megabytes on one line, so a line number would not help)."""
    examples: list[dict[str, Any]] = []
    try:
        for article in data["data"]:
            for paragraph in article["paragraphs"]:
                for qa in paragraph["qas"]:
                    examples.append(
                        {
                            "id": qa["id"],
                            "question": qa["question"],
                            "context": paragraph["context"],
                            "answers": qa["answers"],
                        }
                    )
    except (KeyError, TypeError) as err:
        problem = f"no {err} key" if isinstance(err, KeyError) else str(err)
        after = f" after question {examples[-1]['id']!r}" if examples else ""
        raise ValueError(f"{path}: not SQuAD v1 JSON ({problem}{after})") from None
    return examples


def keep_valid_answers(examples: list[dict[str, Any]], source: str) -> tuple[list[dict[str, Any]], int]:
    import logging

    logger = logging.getLogger(__name__)
    kept, skipped = [], 0
    for example in examples:
        context = example["context"]
        answers = []
        for answer in example["answers"]:
            start = answer["answer_start"]
            if not isinstance(start, int):
                raise ValueError(f"{source}: question {example['id']!r}: answer_start must be a number, got {start!r}")
            if context[start : start + len(answer["text"])] == answer["text"]:
                answers.append(answer)
            else:
                skipped += 1
                if skipped <= 5:
                    logger.warning(
                        "%s: question %s: answer %r does not start at %d; skipped",
                        source,
                        example["id"],
                        answer["text"],
                        start,
                    )
        if answers or not example["answers"]:
            kept.append({**example, "answers": answers})
    return kept, skipped


# The NLI label ids, in this order: klue's and kor_nlu's Hub datasets number their labels so.
NLI_LABELS = ("entailment", "neutral", "contradiction")
KORNLI_HEADER = ["sentence1", "sentence2", "gold_label"]
KORSTS_HEADER = ["genre", "filename", "year", "id", "score", "sentence1", "sentence2"]
STS_MAX_SCORE = 5.0  # KorSTS and KLUE-STS score pairs from 0 to 5


def is_json(path: str) -> bool:
    """A KLUE JSON list rather than a KorNLUDatasets TSV: by its extension, or else by its first character."""
    if path.removesuffix(".gz").endswith(".json"):
        return True
    with open_text(path) as f:
        return f.read(64).lstrip().startswith("[")


def json_items(path: str) -> list[Any]:
    """The items of a file holding one JSON list (KLUE's format)."""
    with open_text(path) as f:
        try:
            items = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON: {err}") from err
    if not isinstance(items, list):
        raise ValueError(f"{path}: expected a JSON list of objects, got a {type(items).__name__}")
    return items


def value_at(item: Any, key: str, where: str) -> Any:
    """``item[key]``, a dotted key going into nested objects (``labels.label``); ValueError naming a missing key."""
    value = item
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise ValueError(f"{where}: missing key {key!r}")
        value = value[part]
    return value


def sentence(text: Any, name: str, where: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{where}: {name} must be a non-empty sentence, got {text!r}")
    return text


def nli_record(premise: Any, hypothesis: Any, label: Any, where: str) -> dict[str, Any]:
    """A checked NLI record: two non-empty sentences and a label name of ``NLI_LABELS``."""
    if label not in NLI_LABELS:
        raise ValueError(f"{where}: unknown label {label!r}; expected one of {', '.join(NLI_LABELS)}")
    return {
        "premise": sentence(premise, "premise", where),
        "hypothesis": sentence(hypothesis, "hypothesis", where),
        "label": label,
    }


def nli_item(item: Any, where: str, hub_row: bool) -> dict[str, Any]:
    """The NLI record of a KLUE JSON item (``gold_label``, a name) or of a Hub row (``label``, an id)."""
    if hub_row:
        label_id = value_at(item, "label", where)
        # -1 is the datasets' "no gold label" (SNLI's "-"): not a label to train or score on.
        if isinstance(label_id, bool) or not isinstance(label_id, int) or not 0 <= label_id < len(NLI_LABELS):
            raise ValueError(f"{where}: label must be an id from 0 to {len(NLI_LABELS) - 1}, got {label_id!r}")
        label = NLI_LABELS[label_id]
    else:
        label = value_at(item, "gold_label", where)
    return nli_record(value_at(item, "premise", where), value_at(item, "hypothesis", where), label, where)


def read_nli(path_or_name: str, split: str = "train") -> list[dict[str, Any]]:
    """Sentence pairs with their NLI label: ``{"premise", "hypothesis", "label"}``, the label one of ``NLI_LABELS``.

    Files are KorNLI TSV (kakaobrain/KorNLUDatasets: ``sentence1<TAB>sentence2<TAB>gold_label`` with that header) or
    KLUE-NLI JSON (a list of objects with ``premise``, ``hypothesis`` and ``gold_label``), told apart by extension or
    content; gzip-compressed ones too. A Hub dataset (``name`` or ``name:split``) needs ``premise``, ``hypothesis``
    and ``label`` columns, the label an id into ``NLI_LABELS``, as klue's ``nli`` and kor_nlu's ``nli`` have. An
    error names the file and line, the JSON item (counted from 0) or the Hub row.
    """
    if not is_local(path_or_name):
        rows = load_hub_split(path_or_name, split)
        return [nli_item(row, f"{path_or_name}: row {i}", hub_row=True) for i, row in enumerate(rows)]
    if is_json(path_or_name):
        items = json_items(path_or_name)
        return [nli_item(item, f"{path_or_name}: item {i}", hub_row=False) for i, item in enumerate(items)]
    return [nli_record(*fields, where) for where, fields in tsv_rows(path_or_name, KORNLI_HEADER)]


def sts_record(sentence1: Any, sentence2: Any, score: Any, where: str) -> dict[str, Any]:
    """A checked STS record: two non-empty sentences and a similarity score from 0 to 5."""
    try:
        value = float(score)
    except (TypeError, ValueError):
        value = math.nan  # fails the range check below, which also catches nan and inf in the data
    if isinstance(score, bool) or not 0 <= value <= 5:
        raise ValueError(f"{where}: score must be a number from 0 to 5, got {score!r}")
    return {
        "sentence1": sentence(sentence1, "sentence1", where),
        "sentence2": sentence(sentence2, "sentence2", where),
        "score": value,
    }


def sts_item(item: Any, where: str) -> dict[str, Any]:
    """The STS record of a KLUE JSON item or a Hub row: the score under ``score`` (kor_nlu) or ``labels.label``."""
    score_key = "score" if isinstance(item, dict) and "score" in item else "labels.label"
    return sts_record(
        value_at(item, "sentence1", where), value_at(item, "sentence2", where), value_at(item, score_key, where), where
    )


def read_sts(path_or_name: str, split: str = "train") -> list[dict[str, Any]]:
    """Sentence pairs with their similarity: ``{"sentence1", "sentence2", "score"}``, the score a float from 0 to 5.

    Files are KorSTS TSV (kakaobrain/KorNLUDatasets: ``genre<TAB>filename<TAB>year<TAB>id<TAB>score<TAB>sentence1<TAB>
    sentence2`` with that header) or KLUE-STS JSON (a list of objects with ``sentence1``, ``sentence2`` and
    ``labels: {"label": score, ...}``), told apart by extension or content; gzip-compressed ones too. A Hub dataset
    (``name`` or ``name:split``) needs ``sentence1``, ``sentence2`` and ``score`` or ``labels.label`` columns. An
    error names the file and line, the JSON item (counted from 0) or the Hub row.
    """
    if not is_local(path_or_name):
        rows = load_hub_split(path_or_name, split)
        return [sts_item(row, f"{path_or_name}: row {i}") for i, row in enumerate(rows)]
    if is_json(path_or_name):
        return [sts_item(item, f"{path_or_name}: item {i}") for i, item in enumerate(json_items(path_or_name))]
    return [
        sts_record(sentence1, sentence2, score, where)
        for where, (*_, score, sentence1, sentence2) in tsv_rows(path_or_name, KORSTS_HEADER)
    ]


def split_train_validation(
    records: list[Any], share: float, seed: int, min_validation: int = 1, source: str = "the training data"
) -> tuple[list[Any], list[Any]]:
    """A seeded random hold-out of ``share`` of the records, at least ``min_validation`` of them (the original
    repositories picked epochs on test); ValueError when that leaves nothing to train on."""
    n_validation = max(min_validation, round(share * len(records)))
    if n_validation >= len(records):
        raise ValueError(
            f"{source}: {len(records)} training examples cannot give a hold-out of {n_validation} and keep some to "
            "train on: give more examples"
        )
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    held_out = set(order[:n_validation])
    train = [r for i, r in enumerate(records) if i not in held_out]
    return train, [records[i] for i in sorted(held_out)]


def first(records: list[Any], limit: int | None) -> list[Any]:
    return records if limit is None else records[:limit]


def write_results(path: str | Path, results: dict[str, Any]) -> None:
    """``results.json`` with the library versions and commit added."""
    write_json(path, {**results, **run_metadata()})

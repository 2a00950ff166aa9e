"""Reading the task files (NSMC, Naver NER, KorQuAD / SQuAD v1) or Hub datasets, and writing results.json.

Every reader gives plain dicts and names the file and line (or question id) of anything malformed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from common.io import open_text, run_metadata, write_json


def is_local(path_or_name: str) -> bool:
    """A file to read ourselves; anything else is a Hub dataset name or a local dataset folder for `datasets`."""
    return os.path.isfile(path_or_name)


def data_source(source: str) -> dict[str, str | None]:
    """What results.json and the model card say about a ``--train`` or ``--test``: the argument as given, and the
    Hub dataset it names (``e9t/nsmc:test`` -> ``e9t/nsmc``), None for a local file or folder."""
    name = source.split(":", 1)[0]
    local = os.path.exists(source) or os.path.exists(name)
    return {"source": source, "hub_id": None if local else name}


def load_hub_split(name: str, split: str) -> list[dict[str, Any]]:
    """A Hub dataset (``name`` or ``name:split``) through the datasets library, as a list of dicts."""
    import datasets

    if ":" in name:
        name, split = name.split(":", 1)
    return [dict(row) for row in datasets.load_dataset(name, split=split)]


def read_nsmc(path_or_name: str, split: str = "train") -> list[dict[str, Any]]:
    """``id<TAB>document<TAB>label`` with a header line; labels 0 or 1. A Hub dataset must have those columns."""
    if not is_local(path_or_name):
        rows = load_hub_split(path_or_name, split)
        return [{"id": str(r["id"]), "document": r["document"] or "", "label": int(r["label"])} for r in rows]
    records = []
    with open_text(path_or_name) as f:
        header = f.readline().rstrip("\n").split("\t")
        if header != ["id", "document", "label"]:
            raise ValueError(f"{path_or_name}:1: expected the header 'id<TAB>document<TAB>label', got {header}")
        for line_no, line in enumerate(f, start=2):
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 3:
                raise ValueError(f"{path_or_name}:{line_no}: expected 3 tab-separated columns, got {len(fields)}")
            if fields[2] not in ("0", "1"):
                raise ValueError(f"{path_or_name}:{line_no}: label must be 0 or 1, got {fields[2]!r}")
            records.append({"id": fields[0], "document": fields[1], "label": int(fields[2])})
    return records


def read_labels(path: str) -> list[str]:
    """One label per line (``label.txt``), in id order."""
    with open(path, encoding="utf-8") as f:
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
    with open(path_or_name, encoding="utf-8") as f:
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
    with open(path_or_name, encoding="utf-8") as f:
        data = json.load(f)
    if "data" not in data:
        raise ValueError(f"{path_or_name}: not SQuAD v1 JSON (no 'data' key)")
    examples = [
        {"id": qa["id"], "question": qa["question"], "context": paragraph["context"], "answers": qa["answers"]}
        for article in data["data"]
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    ]
    return keep_valid_answers(examples, path_or_name)


def keep_valid_answers(examples: list[dict[str, Any]], source: str) -> tuple[list[dict[str, Any]], int]:
    import logging

    logger = logging.getLogger(__name__)
    kept, skipped = [], 0
    for example in examples:
        context = example["context"]
        answers = []
        for answer in example["answers"]:
            start = answer["answer_start"]
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


def write_results(path: str | Path, results: dict[str, Any]) -> None:
    """``results.json`` with the library versions and commit added."""
    write_json(path, {**results, **run_metadata()})

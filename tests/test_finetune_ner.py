"""Naver NER fine-tuning: label alignment on sub-tokens, mapping predictions back to words, entity-level scores, end
to end with tiny random models, and malformed input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SHARED_DATA
from finetuning import fine_tuned
from transformers import (
    AutoModelForTokenClassification,
)

from common.ner_tags import align_labels, to_seqeval, word_starts, word_tags
from common.training import takes_token_type_ids
from finetune.ner import collate, encode, entity_scores, truncated_words
from tokenization_kobert import KoBertTokenizerFast

LABELS = ["UNK", "O", "PER-B", "PER-I", "LOC-B", "LOC-I", "NUM-B", "NUM-I"]
LABEL2ID = {label: i for i, label in enumerate(LABELS)}
NAVER_NER = SHARED_DATA / "naver_ner"
# Used when ../shared/data/naver_ner is not there: a few patterns the end-to-end runs train on.
HAND_WRITTEN = [
    "김철수 씨는 서울에서 세 번 공연했다 .\tPER-B O LOC-B NUM-B NUM-I O O",
    "이영희 선수가 부산 대회에서 두 골을 넣었다 .\tPER-B O LOC-B O NUM-B NUM-I O O",
    "박민수 감독은 대구로 떠났다 .\tPER-B O LOC-B O O",
    "오늘 광주 시내에 다섯 명이 모였다 .\tO LOC-B O NUM-B NUM-I O O",
]

# A word whose first piece is a lone "▁", words of several pieces, and the special tokens around them.
TIROL = (["티롤주의", "한", "경춘선에서", "살아"], ["LOC-B", "NUM-B", "LOC-B", "O"])
TIROL_TOKENS = ["[CLS]", "▁", "티", "롤", "주의", "▁한", "▁경", "춘", "선", "에서", "▁살아", "[SEP]"]
TEACHER = (["왕년에", "제", "할팽", "스승님께서는"], ["O", "O", "PER-B", "PER-I"])
TEACHER_TOKENS = ["[CLS]", "▁왕", "년에", "▁제", "▁할", "팽", "▁스", "승", "님", "께", "서", "는", "[SEP]"]


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir: Path) -> KoBertTokenizerFast:
    return KoBertTokenizerFast.from_pretrained(tokenizer_dir)


def ner(argv: list[str]) -> dict:
    return fine_tuned("ner", argv)


def record(sentence: tuple[list[str], list[str]]) -> dict[str, list[str]]:
    return {"words": sentence[0], "labels": sentence[1]}


class TestAlignment:
    def test_the_pieces_the_expected_ids_are_computed_from(self, tokenizer: KoBertTokenizerFast) -> None:
        for (words, _), tokens, word_ids in [
            (TIROL, TIROL_TOKENS, [None, 0, 0, 0, 0, 1, 2, 2, 2, 2, 3, None]),
            (TEACHER, TEACHER_TOKENS, [None, 0, 0, 1, 2, 2, 3, 3, 3, 3, 3, 3, None]),
        ]:
            encoding = tokenizer(words, is_split_into_words=True)
            assert tokenizer.convert_ids_to_tokens(encoding["input_ids"]) == tokens
            assert encoding.word_ids() == word_ids

    def test_each_word_labels_its_first_sub_token(self, tokenizer: KoBertTokenizerFast) -> None:
        tirol, teacher = encode(tokenizer, [record(TIROL), record(TEACHER)], LABEL2ID, max_length=50)
        # LOC-B on the lone "▁", NUM-B on "▁한", LOC-B on "▁경", O on "▁살아".
        assert tirol["labels"] == [-100, 4, -100, -100, -100, 6, 4, -100, -100, -100, 1, -100]
        assert tirol["word_starts"] == [1, 5, 6, 10]
        assert tirol["gold"] == ["B-LOC", "B-NUM", "B-LOC", "O"]
        assert teacher["labels"] == [-100, 1, -100, 1, 2, -100, 3, -100, -100, -100, -100, -100, -100]
        assert teacher["word_starts"] == [1, 3, 4, 6]
        assert truncated_words([tirol, teacher]) == 0

    def test_truncation_leaves_cut_words_without_a_start(self, tokenizer: KoBertTokenizerFast) -> None:
        (tirol,) = encode(tokenizer, [record(TIROL)], LABEL2ID, max_length=8)
        assert tokenizer.convert_ids_to_tokens(tirol["input_ids"]) == [*TIROL_TOKENS[:7], "[SEP]"]
        assert tirol["labels"] == [-100, 4, -100, -100, -100, 6, 4, -100]
        assert tirol["word_starts"] == [1, 5, 6, None]
        assert tirol["gold"] == ["B-LOC", "B-NUM", "B-LOC", "O"], "gold keeps every word"
        assert truncated_words([tirol]) == 1

    def test_pure_helpers(self) -> None:
        assert word_starts([None, 0, 0, 2, None], 4) == [1, None, 3, None]
        assert align_labels([1, None, 3, None], [4, 5, 6, 7], 5) == [-100, 4, -100, 6, -100]

    def test_collate_pads_labels_with_ignored(self, tokenizer: KoBertTokenizerFast) -> None:
        features = encode(tokenizer, [record(TIROL), record(TEACHER)], LABEL2ID, max_length=50)
        batch = collate(features, tokenizer, with_token_types=False)
        assert set(batch) == {"input_ids", "attention_mask", "labels"}
        assert batch["labels"].shape == batch["input_ids"].shape == (2, 13)
        assert batch["labels"][0].tolist() == [*features[0]["labels"], -100]
        assert "token_type_ids" in collate(features, tokenizer, with_token_types=True)


def test_word_tags_take_the_first_sub_token_and_o_for_cut_words() -> None:
    tags = [to_seqeval(label) for label in LABELS]
    token_predictions = [1, 4, 5, 6, 1, 0, -100]
    assert word_tags(token_predictions, [1, 3, 5, None], tags) == ["B-LOC", "B-NUM", "O", "O"]


def test_label_format_conversion() -> None:
    assert [to_seqeval(label) for label in ["PER-B", "PER-I", "NUM-B", "O", "UNK"]] == [
        "B-PER",
        "I-PER",
        "B-NUM",
        "O",
        "O",
    ]
    for wrong in ["B-PER", "PER", "PER-X", "-B"]:
        with pytest.raises(ValueError, match="not TYPE-B, TYPE-I, O or UNK"):
            to_seqeval(wrong)


class TestEntityScores:
    def test_a_span_too_short_is_wrong(self) -> None:
        gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-NUM", "O"]]
        predicted = [["B-PER", "O", "O", "B-LOC"], ["B-NUM", "O"]]
        # 3 gold entities, 3 predicted, 2 right (LOC and NUM): PER covers one word of two.
        metrics, per_type = entity_scores(gold, predicted)
        assert metrics == pytest.approx({"f1": 2 / 3, "precision": 2 / 3, "recall": 2 / 3})
        assert per_type == pytest.approx({"PER": 0.0, "LOC": 1.0, "NUM": 1.0})

    def test_a_wrong_type_is_wrong(self) -> None:
        metrics, per_type = entity_scores([["B-PER", "O"]], [["B-LOC", "O"]])
        assert metrics == {"f1": 0.0, "precision": 0.0, "recall": 0.0}
        assert per_type == {"PER": 0.0, "LOC": 0.0}

    def test_missed_entities_lower_recall_only(self) -> None:
        # 1 predicted and right, 2 gold: precision 1, recall 1/2, F1 2/3.
        metrics, per_type = entity_scores([["B-PER", "O", "B-LOC", "I-LOC"]], [["B-PER", "O", "O", "O"]])
        assert metrics == pytest.approx({"f1": 2 / 3, "precision": 1.0, "recall": 0.5})
        assert per_type == {"PER": 1.0, "LOC": 0.0}


def ner_files(folder: Path) -> tuple[Path, Path, Path]:
    """Train, test and label files: the first lines of Naver NER where it is there, else hand-written lines."""
    if NAVER_NER.is_dir():
        lines = (NAVER_NER / "train.tsv").read_text(encoding="utf-8").splitlines()
        train_lines, test_lines = lines[:40], (NAVER_NER / "test.tsv").read_text(encoding="utf-8").splitlines()[:20]
        labels = (NAVER_NER / "label.txt").read_text(encoding="utf-8").split()
    else:
        train_lines, test_lines, labels = HAND_WRITTEN * 10, HAND_WRITTEN * 5, LABELS
    paths = folder / "train.tsv", folder / "test.tsv", folder / "label.txt"
    for path, lines in zip(paths, (train_lines, test_lines, labels), strict=True):
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths


def args(model: Path, train: Path, test: Path, labels: Path, output: Path, *extra: str) -> list[str]:
    return [
        *[
            "--model_name_or_path",
            str(model),
            "--train_file",
            str(train),
            "--test_file",
            str(test),
            "--labels_file",
            str(labels),
        ],
        *["--output_dir", str(output), "--num_train_epochs", "1", *extra],
    ]


def words_without_a_token(tokenizer: KoBertTokenizerFast, path: Path, max_length: int) -> int:
    sentences = [line.split("\t")[0].split(" ") for line in path.read_text(encoding="utf-8").splitlines()]
    encoded = tokenizer(sentences, is_split_into_words=True, truncation=True, max_length=max_length)
    return sum(len(words) - len(set(encoded.word_ids(i)) - {None}) for i, words in enumerate(sentences))


@pytest.mark.parametrize(("kind", "max_seq_length"), [("bert", 50), ("distilbert", 16)])
def test_ner_end_to_end(
    kind: str, max_seq_length: int, models: dict[str, Path], tokenizer: KoBertTokenizerFast, tmp_path: Path
) -> None:
    train, test, label_file = ner_files(tmp_path)
    output = tmp_path / "out"
    results = ner(args(models[kind], train, test, label_file, output, "--max_seq_length", str(max_seq_length)))

    saved = json.loads((output / "results.json").read_text())
    assert saved["metrics"] == results["metrics"]
    assert set(saved["metrics"]) == {"f1", "precision", "recall"}
    assert all(0 <= value <= 1 for value in saved["metrics"].values())
    assert saved["task"] == "ner" and saved["best_epoch"] == 1
    assert set(saved["validation"][0]) == {"epoch", "f1", "precision", "recall", "learning_rate"}
    assert all(0 <= value <= 1 for value in saved["f1_per_type"].values())
    assert saved["examples"] == {"train": 36, "validation": 4, "test": 20}
    assert saved["truncated_words"] == words_without_a_token(tokenizer, test, max_seq_length)
    assert max_seq_length > 16 or saved["truncated_words"] > 0, "16 tokens must cut some sentences"

    labels = label_file.read_text(encoding="utf-8").split()
    best = AutoModelForTokenClassification.from_pretrained(saved["model_dir"])
    assert best.config.id2label == dict(enumerate(labels))
    assert best.config.label2id == {label: i for i, label in enumerate(labels)}
    assert best.num_labels == len(labels)
    assert takes_token_type_ids(best) == (kind == "bert")


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["가 나\tO O", "다 라\tO XYZ-B"], r"train\.tsv:2: labels \['XYZ-B'\] are not in the label file"),
        (["가 나\tO O", "가\tO", "다 라 마\tO O"], r"train\.tsv:3: 3 words but 2 labels"),
        (["가 나 O O"], r"train\.tsv:1: expected 2 tab-separated columns, got 1"),
    ],
)
def test_malformed_ner_lines_name_file_and_line(
    lines: list[str], message: str, models: dict[str, Path], tmp_path: Path
) -> None:
    train, test, label_file = ner_files(tmp_path)
    train.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        ner(args(models["bert"], train, test, label_file, tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_label_file_in_another_format_is_refused(models: dict[str, Path], tmp_path: Path) -> None:
    train, test, label_file = ner_files(tmp_path)
    label_file.write_text("O\nB-PER\nI-PER\n", encoding="utf-8")
    with pytest.raises(ValueError, match="label 'B-PER' is not TYPE-B, TYPE-I, O or UNK"):
        ner(args(models["bert"], train, test, label_file, tmp_path / "out"))

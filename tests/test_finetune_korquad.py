"""KorQuAD 1.0: the official metric, context windows and their labels, answer post-processing, and the command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import pytest
from finetuning import fine_tuned
from transformers import (
    AutoModelForQuestionAnswering,
)

from common.korquad_metric import best_over_answers, evaluate, exact_match, f1, normalize_answer
from common.qa_spans import best_span
from common.readers import read_squad
from common.training import takes_token_type_ids
from finetune.korquad import best_answers, encode, truncate_questions
from finetune.korquad import main as korquad_command
from tokenization_kobert import KoBertTokenizerFast

WORDS = (
    "영화 배우 연기 최고 정말 진짜 너무 감동 스토리 음악 장면 결말 시간 생각 사람 마지막 처음 다시 완전 기대".split()
)

PARAGRAPHS = [
    (
        "1989년 2월 15일 여의도 농민 폭력 시위를 주도한 혐의로 지명수배되었다. 1989년 3월 12일 서울지방검찰청 "
        "공안부는 임종석의 사전구속영장을 발부받았다. 같은 해 6월 30일 평양축전에 임수경을 대표로 파견하여 "
        "국가보안법위반 혐의가 추가되었다. 경찰은 12월 18일 서울 경희대학교에서 임종석을 검거하였다.",
        [
            ("임종석이 지명수배된 날은?", "1989년 2월 15일"),
            ("평양축전에 대표로 파견된 인물은?", "임수경"),
            ("임종석을 검거한 곳은?", "서울 경희대학교"),
        ],
    ),
    (
        "《토지》는 박경리가 1969년부터 1994년까지 집필한 대하소설이다. 경상남도 하동군 평사리를 무대로 "
        "최참판댁의 몰락과 서희의 삶을 그렸다. 작품은 모두 5부 16권으로 이루어져 있으며, 여러 차례 "
        "드라마로 만들어졌다.",
        [
            ("토지를 쓴 작가는?", "박경리"),
            ("토지의 무대가 된 마을은?", "평사리"),
            ("토지는 모두 몇 부로 이루어져 있는가?", "5부"),
        ],
    ),
    (
        "한글은 1443년 세종이 창제하고 1446년 훈민정음이라는 이름으로 반포하였다. 창제 당시에는 자음 17자와 "
        "모음 11자로 모두 28자였으나, 지금은 그 가운데 24자만 쓴다. 한글날은 10월 9일이다.",
        [
            ("훈민정음을 반포한 해는?", "1446년"),
            ("창제 당시 한글의 글자 수는?", "28자"),
            ("한글날은 언제인가?", "10월 9일"),
        ],
    ),
]


def korquad(argv: list[str]) -> dict:
    return fine_tuned("korquad", argv)


def squad_json(paragraphs: list[tuple[str, list[tuple[str, str]]]], prefix: str) -> dict:
    return {
        "version": "test",
        "data": [
            {
                "title": f"{prefix}{p}",
                "paragraphs": [
                    {
                        "context": context,
                        "qas": [
                            {
                                "id": f"{prefix}-{p}-{q}",
                                "question": question,
                                "answers": [{"text": answer, "answer_start": context.index(answer)}],
                            }
                            for q, (question, answer) in enumerate(qas)
                        ],
                    }
                ],
            }
            for p, (context, qas) in enumerate(paragraphs)
        ],
    }


def write_json(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir: Path) -> KoBertTokenizerFast:
    return KoBertTokenizerFast.from_pretrained(tokenizer_dir)


class TestMetric:
    def test_f1_counts_characters_not_words(self) -> None:
        # Characters without spaces: 1 9 8 9 년 2 월 (7) against 1 9 8 9 년 2 월 1 5 일 (10), 7 shared.
        precision, recall = 7 / 7, 7 / 10
        assert f1("1989년 2월", "1989년 2월 15일") == pytest.approx(2 * precision * recall / (precision + recall))
        # SQuAD's word F1 would give 2 * 1 * (2/3) / (1 + 2/3) = 0.8 here.
        assert f1("1989년 2월", "1989년 2월 15일") == pytest.approx(14 / 17)
        # A particle left on: no shared word at all, but 3 of 4 characters (P = 3/4, R = 1).
        assert f1("임종석이", "임종석") == pytest.approx(6 / 7)
        assert not exact_match("임종석이", "임종석")

    def test_spaces_do_not_count_for_f1_but_do_for_exact_match(self) -> None:
        assert f1("서울 경희대학교", "서울경희대학교") == 1.0
        assert not exact_match("서울 경희대학교", "서울경희대학교")

    def test_normalisation(self) -> None:
        assert normalize_answer("《토지》") == "토지"
        assert normalize_answer("〈님의 침묵〉") == "님의 침묵"
        assert normalize_answer("‘아리랑’") == "아리랑"
        assert normalize_answer("  The   Best!  ") == "the best"
        assert normalize_answer("5.18 (광주)") == "518 광주"
        # Quotes and brackets of step 1 become spaces, so they split words...
        assert normalize_answer("'한국'어") == "한국 어"
        assert not exact_match("'한국'어", "한국어") and f1("'한국'어", "한국어") == 1.0
        # ...while the rest of ASCII punctuation is deleted outright, and other marks are kept.
        assert normalize_answer("e-mail") == "email"
        assert normalize_answer("「토지」 “토지” 『토지』") == "「토지」 “토지” 『토지』"

    def test_best_reference_counts(self) -> None:
        assert best_over_answers("토지", ["박경리의 토지", "토지"]) == (1.0, 1.0)
        # Against '토지 1부': P = 2/2, R = 2/4, F1 = 2/3; nothing shared with '박경리'.
        assert best_over_answers("토지", ["박경리", "토지 1부"]) == (0.0, pytest.approx(2 / 3))
        assert best_over_answers("", ["토지"]) == (0.0, 0.0)

    def test_dataset_scores_are_fractions(self) -> None:
        examples = [
            {"id": "a", "answers": [{"text": "임수경"}]},
            {"id": "b", "answers": [{"text": "1989년 2월 15일"}]},
            {"id": "c", "answers": [{"text": "평사리"}]},
        ]
        scores = evaluate(examples, {"a": "《임수경》", "b": "1989년 2월"})  # c unanswered: scores 0
        assert scores == {"exact_match": pytest.approx(1 / 3), "f1": pytest.approx((1 + 14 / 17 + 0) / 3)}


class TestWindows:
    def test_an_answer_across_a_window_boundary(self, tokenizer: KoBertTokenizerFast) -> None:
        context = " ".join(WORDS)
        assert tokenizer.tokenize(context) == [f"▁{w}" for w in WORDS], "each word must be one piece"
        assert tokenizer.tokenize("질문") == ["▁질문"]
        answer = " ".join(WORDS[6:10])  # context tokens 6..9
        example = {"id": "q", "question": "질문", "context": context, "answers": [{"text": answer}]}
        example["answers"][0]["answer_start"] = context.index(answer)
        # [CLS] 질문 [SEP] + 8 context tokens + [SEP]; windows overlap by 4: tokens 0-7, 4-11, 8-15, 12-19.
        features = encode(tokenizer, [example], max_seq_length=12, doc_stride=4, max_query_length=64, with_labels=True)
        assert [tokenizer.convert_ids_to_tokens(f["input_ids"])[3] for f in features] == [
            "▁영화",
            "▁정말",
            "▁스토리",
            "▁시간",
        ]
        # Only the second window holds tokens 6..9 whole (at positions 3 + 2 .. 3 + 5); the first and third
        # hold half of it each and point at CLS, as does the fourth.
        labels = [(f["start_positions"], f["end_positions"]) for f in features]
        assert labels == [(0, 0), (5, 8), (0, 0), (0, 0)]
        spans = features[1]["spans"]
        assert context[spans[5][0] : spans[8][1]] == answer, "offsets of '▁너무' include the space before it"
        assert [f["example_index"] for f in features] == [0, 0, 0, 0]

    @pytest.mark.parametrize(
        ("answer", "first_piece"),
        [("1989년", "198"), ("2월", "▁2"), ("《토지》", "[UNK]"), ("책은", "▁책")],
    )
    def test_answer_text_comes_back_exactly(self, answer: str, first_piece: str, tokenizer) -> None:
        # The context starts with a lone '▁' whose offsets (0, 1) overlap '198'; '《' follows another lone '▁' and is
        # [UNK] in this vocabulary, which the offsets still map back to the original character.
        context = "1989년 2월 15일 그 책은 《토지》 이다"
        example = {"id": "q", "question": "질문", "context": context}
        example["answers"] = [{"text": answer, "answer_start": context.index(answer)}]
        (feature,) = encode(
            tokenizer, [example], max_seq_length=64, doc_stride=8, max_query_length=64, with_labels=True
        )
        start, end = feature["start_positions"], feature["end_positions"]
        assert tokenizer.convert_ids_to_tokens(feature["input_ids"])[start] == first_piece
        assert context[feature["spans"][start][0] : feature["spans"][end][1]] == answer
        assert all(span is None for span in feature["spans"][:4]), "CLS, the question, SEP and the lone '▁'"

    def test_an_answer_with_a_trailing_space_labels_its_text(self, tokenizer) -> None:
        context = "그 책은 토지 이다"
        example = {"id": "q", "question": "질문", "context": context, "answers": [{"text": "토지 ", "answer_start": 5}]}
        (feature,) = encode(
            tokenizer, [example], max_seq_length=64, doc_stride=8, max_query_length=64, with_labels=True
        )
        spans = feature["spans"]
        assert context[spans[feature["start_positions"]][0] : spans[feature["end_positions"]][1]] == "토지"

    def test_questions_are_cut_after_max_query_length_tokens(self, tokenizer) -> None:
        assert tokenizer.tokenize("누가 주인공인가?") == ["▁누가", "▁주인공", "인가", "?"]
        assert truncate_questions(tokenizer, ["누가 주인공인가?", "질문"], 2) == ["누가 주인공", "질문"]


class TestPostProcessing:
    # [CLS] question [SEP] 가나 다라 마바 [SEP] over the context "가나 다라 마바"
    CONTEXT = "가나 다라 마바"
    SPANS: ClassVar[list[tuple[int, int] | None]] = [None, None, None, (0, 2), (3, 5), (6, 8), None]

    def test_best_valid_span_inside_the_context(self) -> None:
        start = [0, 9, 0, 1, 3, 0, 9]  # the question token and the final SEP score high but bound nothing
        end = [0, 9, 0, 0, 1, 2, 9]
        assert best_span(start, end, self.SPANS, n_best=20, max_answer_length=30) == (5, (3, 8))

    def test_end_before_start_is_not_an_answer(self) -> None:
        start = [0, 0, 0, 0, 0, 5, 0]
        end = [0, 0, 0, 5, 0, 1, 0]  # best end (token 3) lies before the best start (token 5)
        assert best_span(start, end, self.SPANS, n_best=20, max_answer_length=30) == (6, (6, 8))
        assert best_span(start, end, self.SPANS, n_best=1, max_answer_length=30) is None

    def test_max_answer_length(self) -> None:
        start = [0, 0, 0, 4, 0, 0, 0]
        end = [0, 0, 0, 1, 0, 4, 0]
        assert best_span(start, end, self.SPANS, n_best=20, max_answer_length=3) == (8, (0, 8))
        assert best_span(start, end, self.SPANS, n_best=20, max_answer_length=2) == (5, (0, 2))

    def test_best_window_wins_and_text_is_the_original(self) -> None:
        examples = [{"id": "a", "context": self.CONTEXT}, {"id": "b", "context": "없음"}]
        features = [
            {"example_index": 0, "spans": self.SPANS},
            {"example_index": 0, "spans": [None, (3, 5), (6, 8)]},
            {"example_index": 1, "spans": [None, None]},  # no context token: empty answer
        ]
        start = [[0, 0, 0, 2, 1, 0, 0], [0, 5, 0], [9, 9]]
        end = [[0, 0, 0, 0, 0, 2, 0], [0, 0, 4, 0, 0, 0, 0], [9, 9]]  # padding past a window's tokens is ignored
        assert best_answers(examples, features, start, end, 20, 30) == {"a": "다라 마바", "b": ""}


@pytest.mark.parametrize("kind", ["bert", "distilbert"])
def test_korquad_end_to_end(kind: str, models: dict[str, Path], tmp_path: Path) -> None:
    train_data = squad_json(PARAGRAPHS * 2, "train")
    train_data["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] += 1  # skipped and counted
    train = write_json(tmp_path / "train.json", train_data)
    dev = write_json(tmp_path / "dev.json", squad_json(PARAGRAPHS, "dev"))
    output = tmp_path / "out"
    flags = ["--max_seq_length", "64", "--max_query_length", "16", "--doc_stride", "16", "--num_train_epochs", "1"]
    results = korquad(
        [
            "--model_name_or_path",
            str(models[kind]),
            "--train_file",
            str(train),
            "--test_file",
            str(dev),
            "--output_dir",
            str(output),
            *flags,
        ]
    )

    saved = json.loads((output / "results.json").read_text())
    assert saved["metrics"] == results["metrics"] and set(saved["metrics"]) == {"exact_match", "f1"}
    assert all(0 <= value <= 1 for value in saved["metrics"].values())
    assert saved["skipped_answers"] == 1
    assert saved["examples"]["train"] + saved["examples"]["validation"] == 17 and saved["examples"]["test"] == 9
    assert saved["data"]["test"] == {"source": str(dev), "hub_id": None}  # --dev is KorQuAD's test data
    assert all(saved["features"][split] > saved["examples"][split] for split in ("train", "test")), "long contexts"
    predictions = json.loads((output / "predictions.json").read_text())
    dev_examples, _ = read_squad(str(dev))
    assert set(predictions) == {e["id"] for e in dev_examples}
    for example in dev_examples:
        answer = predictions[example["id"]]
        assert answer in example["context"] and answer == answer.strip()
    assert evaluate(dev_examples, predictions) == saved["metrics"], "predictions.json scores as reported"
    best = AutoModelForQuestionAnswering.from_pretrained(saved["model_dir"])
    assert takes_token_type_ids(best) == (kind == "bert")


def test_bad_input_fails_clearly(models: dict[str, Path], tmp_path: Path, capsys) -> None:
    good = write_json(tmp_path / "dev.json", squad_json(PARAGRAPHS, "dev"))
    bad = write_json(tmp_path / "bad.json", {"paragraphs": []})
    base = [
        "--model_name_or_path",
        str(models["bert"]),
        "--output_dir",
        str(tmp_path / "out"),
        "--max_query_length",
        "16",
    ]
    base += ["--doc_stride", "16"]
    with pytest.raises(ValueError, match=r"bad\.json: not SQuAD v1 JSON"):
        korquad([*base, "--train_file", str(bad), "--test_file", str(good), "--max_seq_length", "64"])
    with pytest.raises(ValueError, match="longer than the model's 64 position embeddings"):
        korquad([*base, "--train_file", str(good), "--test_file", str(good), "--max_seq_length", "128"])
    with pytest.raises(SystemExit):
        korquad_command(
            [*base, "--train_file", str(good), "--test_file", str(good), "--max_seq_length", "64", "--doc_stride", "45"]
        )
    assert "--doc_stride 45 must be smaller than the 45 context tokens" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()

"""NLI fine-tuning end to end, sentence pairs as pair inputs, and the NLI and STS readers of every format: exact
records, malformed lines named by file and line (or JSON item, Hub row), and the real shared files when present."""

from __future__ import annotations

import collections
import gzip
import json
import re
from pathlib import Path

import pytest
import torch
import yaml
from conftest import KOBERT_FILES, SHARED_DATA
from finetuning import fine_tuned
from transformers import (
    AutoModelForSequenceClassification,
    BertConfig,
    BertForMaskedLM,
    BertForSequenceClassification,
    DistilBertConfig,
    DistilBertForSequenceClassification,
)

from common.config import load_config
from common.readers import NLI_LABELS, read_nli, read_sts
from common.training import takes_token_type_ids
from finetune.nli import NliArguments, collate, encode
from hub_upload.card import build_card
from tokenization_kobert import KoBertTokenizerFast

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"vocab_size": 8002, "max_position_embeddings": 64, "pad_token_id": 1}
TINY_BERT = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64}

KORNLI = (
    "sentence1\tsentence2\tgold_label\n"
    '그리고 그가 말했다, "엄마, 저 왔어요.\t그는 엄마에게 전화를 걸었다.\tneutral\n'  # a stray quote, as in KorNLI
    "남자가 기타를 친다.\t남자가 악기를 연주한다.\tentailment\n"
    "아이들이 공원에서 논다.\t아이들이 잠을 잔다.\tcontradiction\n"
)
KORNLI_RECORDS = [
    {
        "premise": '그리고 그가 말했다, "엄마, 저 왔어요.',
        "hypothesis": "그는 엄마에게 전화를 걸었다.",
        "label": "neutral",
    },
    {"premise": "남자가 기타를 친다.", "hypothesis": "남자가 악기를 연주한다.", "label": "entailment"},
    {"premise": "아이들이 공원에서 논다.", "hypothesis": "아이들이 잠을 잔다.", "label": "contradiction"},
]
KLUE_NLI_ITEMS = [  # KLUE's own keys beside those read
    {
        "guid": "klue-nli-v1_dev_00000",
        "premise": "방에서 흡연이 가능합니다.",
        "hypothesis": "흡연은 금지됩니다.",
        "gold_label": "contradiction",
        "author": "contradiction",
    },
    {
        "guid": "klue-nli-v1_dev_00001",
        "premise": "숙소가 깨끗했다.",
        "hypothesis": "숙소가 청결했다.",
        "gold_label": "entailment",
        "author": "entailment",
    },
]
KLUE_NLI_RECORDS = [
    {"premise": "방에서 흡연이 가능합니다.", "hypothesis": "흡연은 금지됩니다.", "label": "contradiction"},
    {"premise": "숙소가 깨끗했다.", "hypothesis": "숙소가 청결했다.", "label": "entailment"},
]
KORSTS = (
    "genre\tfilename\tyear\tid\tscore\tsentence1\tsentence2\n"
    "main-captions\tMSRvid\t2012test\t0001\t5.000\t비행기가 이륙하고 있다.\t비행기가 이륙하고 있다.\n"
    "main-news\theadlines\t2013\t0042\t0.600\t한 남자가 플루트를 분다.\t여자가 요리를 한다.\n"
)
KORSTS_RECORDS = [
    {"sentence1": "비행기가 이륙하고 있다.", "sentence2": "비행기가 이륙하고 있다.", "score": 5.0},
    {"sentence1": "한 남자가 플루트를 분다.", "sentence2": "여자가 요리를 한다.", "score": 0.6},
]
KLUE_STS_ITEMS = [
    {
        "guid": "klue-sts-v1_dev_00000",
        "sentence1": "무엇보다도 호스트분들이 친절했습니다.",
        "sentence2": "호스트가 친절했다.",
        "labels": {"label": 4.9, "real-label": 4.857142857142857, "binary-label": 1},
    },
    {
        "guid": "klue-sts-v1_dev_00001",
        "sentence1": "주요 관광지가 가깝다.",
        "sentence2": "주차가 불편하다.",
        "labels": {"label": 0.0, "real-label": 0.0, "binary-label": 0},
    },
]
KLUE_STS_RECORDS = [
    {"sentence1": "무엇보다도 호스트분들이 친절했습니다.", "sentence2": "호스트가 친절했다.", "score": 4.9},
    {"sentence1": "주요 관광지가 가깝다.", "sentence2": "주차가 불편하다.", "score": 0.0},
]


def nli(argv: list[str]) -> dict:
    return fine_tuned("nli", argv)


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_read_nli_kornli_tsv_klue_json_and_gzip(tmp_path: Path) -> None:
    assert read_nli(write(tmp_path / "xnli.dev.ko.tsv", KORNLI)) == KORNLI_RECORDS
    assert read_nli(write(tmp_path / "klue-nli.json", json.dumps(KLUE_NLI_ITEMS, ensure_ascii=False))) == (
        KLUE_NLI_RECORDS
    )
    # The format is told by content when the name does not say it.
    assert read_nli(write(tmp_path / "klue-nli.data", "\n " + json.dumps(KLUE_NLI_ITEMS))) == KLUE_NLI_RECORDS
    compressed = tmp_path / "xnli.dev.ko.tsv.gz"
    compressed.write_bytes(gzip.compress(KORNLI.encode("utf-8")))
    assert read_nli(str(compressed)) == KORNLI_RECORDS


def test_read_sts_korsts_tsv_and_klue_json(tmp_path: Path) -> None:
    assert read_sts(write(tmp_path / "sts-dev.tsv", KORSTS)) == KORSTS_RECORDS
    assert read_sts(write(tmp_path / "klue-sts.json", json.dumps(KLUE_STS_ITEMS))) == KLUE_STS_RECORDS


def test_hub_rows_label_ids_and_score_columns(tmp_path: Path) -> None:
    # A local dataset folder goes through the datasets library as a Hub name does (no network needed).
    import datasets

    nli_rows = [{"premise": r["premise"], "hypothesis": r["hypothesis"]} for r in KORNLI_RECORDS]
    for row, label in zip(nli_rows, (1, 0, 2), strict=True):
        row["label"] = label  # klue's nli and kor_nlu number the labels in NLI_LABELS' order
    for name, rows in {
        "nli": nli_rows,
        "nli_unlabelled": [*nli_rows[:1], {**nli_rows[1], "label": -1}],
        "kor_sts": [{"genre": "main-news", **r} for r in KORSTS_RECORDS],  # kor_nlu's sts: a score column
        "klue_sts": [{k: item[k] for k in ("sentence1", "sentence2", "labels")} for item in KLUE_STS_ITEMS],
    }.items():
        (tmp_path / name).mkdir()
        datasets.Dataset.from_list(rows).to_parquet(tmp_path / name / "validation.parquet")
    assert read_nli(f"{tmp_path / 'nli'}:validation") == KORNLI_RECORDS
    assert read_sts(str(tmp_path / "kor_sts"), "validation") == KORSTS_RECORDS
    assert read_sts(f"{tmp_path / 'klue_sts'}:validation") == KLUE_STS_RECORDS
    with pytest.raises(ValueError, match=r"nli_unlabelled:validation: row 1: label must be an id from 0 to 2, got -1"):
        read_nli(f"{tmp_path / 'nli_unlabelled'}:validation")


NLI_HEADER = "sentence1\tsentence2\tgold_label\n"
STS_HEADER = "genre\tfilename\tyear\tid\tscore\tsentence1\tsentence2\n"
STS_LINE = "main-news\theadlines\t2013\t0042\t{}\t남자가 뛴다.\t남자가 달린다.\n"
LABELS = "expected one of entailment, neutral, contradiction"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.tsv", "premise\thypothesis\tlabel\n", ":1: expected the header 'sentence1<TAB>sentence2<TAB>gold_label'"),
        ("bad.tsv", NLI_HEADER + "가\t나\tneutral\n가\t나\n", ":3: expected 3 tab-separated columns, got 2"),
        ("bad.tsv", NLI_HEADER + "가\t나\tneutrall\n", f":2: unknown label 'neutrall'; {LABELS}"),
        ("bad.tsv", NLI_HEADER + "가\t \tneutral\n", ":2: hypothesis must be a non-empty sentence, got ' '"),
        (
            "bad.json",
            json.dumps([{**KLUE_NLI_ITEMS[0], "gold_label": "neutrall"}]),
            f": item 0: unknown label 'neutrall'; {LABELS}",
        ),
        (
            "bad.json",
            json.dumps([KLUE_NLI_ITEMS[1], {"premise": "가", "gold_label": "neutral"}]),
            ": item 1: missing key 'hypothesis'",
        ),
        (
            "bad.json",
            json.dumps([{**KLUE_NLI_ITEMS[0], "premise": ""}]),
            ": item 0: premise must be a non-empty sentence, got ''",
        ),
        ("bad.json", json.dumps({"data": KLUE_NLI_ITEMS}), ": expected a JSON list of objects, got a dict"),
        ("bad.json", "[{", ": not valid JSON"),
    ],
)
def test_malformed_nli_data_names_file_and_line(name: str, content: str, message: str, tmp_path: Path) -> None:
    path = write(tmp_path / name, content)
    with pytest.raises(ValueError, match=re.escape(path + message)):
        read_nli(path)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.tsv", "score\tsentence1\tsentence2\n", ":1: expected the header 'genre<TAB>filename<TAB>year<TAB>id"),
        (
            "bad.tsv",
            STS_HEADER + STS_LINE.format("4.2") + "main-news\t0042\t4.2\t가\t나\n",
            ":3: expected 7 tab-separated columns, got 5",
        ),
        ("bad.tsv", STS_HEADER + STS_LINE.format("높음"), ":2: score must be a number from 0 to 5, got '높음'"),
        ("bad.tsv", STS_HEADER + STS_LINE.format("5.2"), ":2: score must be a number from 0 to 5, got '5.2'"),
        ("bad.tsv", STS_HEADER + STS_LINE.format("-0.5"), ":2: score must be a number from 0 to 5, got '-0.5'"),
        ("bad.tsv", STS_HEADER + STS_LINE.format("nan"), ":2: score must be a number from 0 to 5, got 'nan'"),
        (
            "bad.json",
            json.dumps([KLUE_STS_ITEMS[0], {"sentence1": "가", "sentence2": "나"}]),
            ": item 1: missing key 'labels.label'",
        ),
        (
            "bad.json",
            json.dumps([{**KLUE_STS_ITEMS[0], "labels": {"label": 6.0}}]),
            ": item 0: score must be a number from 0 to 5, got 6.0",
        ),
        (
            "bad.json",
            json.dumps([{**KLUE_STS_ITEMS[0], "sentence2": None}]),
            ": item 0: sentence2 must be a non-empty sentence, got None",
        ),
    ],
)
def test_malformed_sts_data_names_file_and_line(name: str, content: str, message: str, tmp_path: Path) -> None:
    path = write(tmp_path / name, content)
    with pytest.raises(ValueError, match=re.escape(path + message)):
        read_sts(path)


@pytest.fixture(scope="module")
def tokenizer() -> KoBertTokenizerFast:
    """The real KoBERT tokenizer (data/kobert): made in a moment, where conftest's is trained on the reviews first."""
    return KoBertTokenizerFast(**KOBERT_FILES)


def test_premise_and_hypothesis_are_one_pair_input(tokenizer: KoBertTokenizerFast) -> None:
    premise, hypothesis = "남자가 기타를 치고 있다.", "남자가 악기를 연주한다."
    label2id = {label: i for i, label in enumerate(NLI_LABELS)}
    [feature] = encode(tokenizer, [{"premise": premise, "hypothesis": hypothesis, "label": "neutral"}], label2id, 64)
    alone = tokenizer(premise)["input_ids"], tokenizer(hypothesis)["input_ids"]  # [CLS] ... [SEP] each
    assert feature["input_ids"] == alone[0] + alone[1][1:]  # [CLS] premise [SEP] hypothesis [SEP]
    assert feature["token_type_ids"] == [0] * len(alone[0]) + [1] * (len(alone[1]) - 1)
    assert feature["labels"] == 1
    # Cut to fit: the longer sentence loses tokens first, so the hypothesis is still there.
    [cut] = encode(tokenizer, [{"premise": premise * 5, "hypothesis": hypothesis, "label": "neutral"}], label2id, 32)
    assert len(cut["input_ids"]) == 32 and cut["input_ids"][-len(alone[1]) + 1 :] == alone[1][1:]

    # BERT takes the token types; DistilBERT does not, and the batch leaves them out.
    torch.manual_seed(0)
    bert = BertForSequenceClassification(BertConfig(num_labels=3, **TINY_BERT, **TINY))
    distilbert = DistilBertForSequenceClassification(
        DistilBertConfig(dim=32, n_layers=2, n_heads=4, hidden_dim=64, num_labels=3, **TINY)
    )
    for model, with_types in ((bert, True), (distilbert, False)):
        batch = collate([feature, cut], tokenizer, takes_token_type_ids(model))
        assert ("token_type_ids" in batch) == with_types
        if with_types:
            assert batch["token_type_ids"][0, : len(feature["input_ids"])].tolist() == feature["token_type_ids"]
        assert batch["labels"].tolist() == [1, 1] and model(**batch).loss.ndim == 0


HYPOTHESES = {
    "entailment": ["사람이 있다", "무언가 움직인다", "누군가 밖에 있다"],
    "neutral": ["아마 주말이다", "그는 피곤할지도 모른다", "날씨가 좋을 수도 있다"],
    "contradiction": ["아무도 없다", "모두 잠들었다", "아무것도 하지 않는다"],
}
PREMISES = ["남자가 공원에서 뛴다", "여자가 기타를 친다", "아이들이 축구를 한다", "개가 공을 쫓는다"]


def made_up_pairs(labels: list[str]) -> list[dict[str, str]]:
    return [
        {"premise": PREMISES[i % 4], "hypothesis": HYPOTHESES[label][i // 3 % 3], "label": label}
        for i, label in enumerate(labels)
    ]


@pytest.fixture(scope="module")
def tiny_bert(tokenizer: KoBertTokenizerFast, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BERT masked LM saved with the KoBERT tokenizer: fine-tuning gives it a new 3-label head."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("models") / "bert"
    BertForMaskedLM(BertConfig(**TINY_BERT, **TINY)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_nli_end_to_end(
    tiny_bert: Path, tokenizer: KoBertTokenizerFast, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    train = tmp_path / "train.tsv"
    lines = [f"{r['premise']}\t{r['hypothesis']}\t{r['label']}" for r in made_up_pairs([*NLI_LABELS] * 20)]
    write(train, NLI_HEADER + "\n".join(lines) + "\n")
    # The other format, KLUE-NLI's; labels unbalanced, so that labels read in another order would score otherwise.
    test = tmp_path / "test.json"
    items = [
        {"gold_label": r.pop("label"), **r}
        for r in made_up_pairs(["entailment"] * 8 + ["neutral"] * 4 + ["contradiction"] * 2)
    ]
    write(test, json.dumps(items, ensure_ascii=False))
    output = tmp_path / "out"
    data = [
        "--model_name_or_path",
        str(tiny_bert),
        "--train_file",
        str(train),
        "--test_file",
        str(test),
        "--output_dir",
        str(output),
    ]
    results = nli(
        [
            *data,
            "--num_train_epochs",
            "2",
            "--learning_rate",
            "3e-3",
            "--per_device_train_batch_size",
            "8",
            "--max_seq_length",
            "32",
        ]
    )

    saved = json.loads((output / "results.json").read_text())
    accuracy = saved["metrics"]["accuracy"]
    assert saved["task"] == "nli" and saved["metrics"] == results["metrics"] == {"accuracy": accuracy}
    assert capsys.readouterr().out.startswith(f"test accuracy {accuracy:.4f} (best epoch ")
    assert saved["examples"] == {"train": 54, "validation": 6, "test": 14} and len(saved["validation"]) == 2
    best = AutoModelForSequenceClassification.from_pretrained(saved["model_dir"]).eval()
    assert best.config.id2label == {0: "entailment", 1: "neutral", 2: "contradiction"}
    assert best.config.label2id == {"entailment": 0, "neutral": 1, "contradiction": 2}
    # The accuracy is the saved model's on the test pairs, each label read as its id in NLI_LABELS.
    pairs = tokenizer(
        [i["premise"] for i in items], [i["hypothesis"] for i in items], padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        predicted = best(**pairs).logits.argmax(-1)
    gold = torch.tensor([NLI_LABELS.index(i["gold_label"]) for i in items])
    assert accuracy == pytest.approx((predicted == gold).float().mean().item())


def test_defaults_are_korean_nli_ones(tmp_path: Path) -> None:
    train, test = write(tmp_path / "a.tsv", KORNLI), write(tmp_path / "b.tsv", KORNLI)
    args = load_config(
        NliArguments,
        None,
        [
            "--model_name_or_path",
            "m",
            "--train_file",
            str(train),
            "--test_file",
            str(test),
            "--output_dir",
            str(tmp_path / "o"),
        ],
    )
    assert (args.max_seq_length, args.per_device_train_batch_size, args.learning_rate, args.num_train_epochs) == (
        128,
        32,
        5e-5,
        3,
    )


def test_an_nli_result_in_the_model_card() -> None:
    config = {"model_type": "distilbert", "n_layers": 3, "dim": 768, "n_heads": 12, "vocab_size": 8002}
    local = {"train": {"source": "DATA/multinli.train.ko.tsv", "hub_id": None}}
    local["test"] = {"source": "DATA/xnli.test.ko.tsv", "hub_id": None}
    result = {"task": "nli", "model": "me/m", "size_mb": 108.4, "metrics": {"accuracy": 0.5}, "data": local}
    card = build_card(
        "me/m", config, 1000, 108.4, True, "apache-2.0", [{**result, "examples": {"test": 20}}], None, None
    )
    assert yaml.safe_load(card.split("---")[1])["model-index"][0]["results"] == [
        {
            "task": {"type": "text-classification", "name": "Natural language inference"},
            "dataset": {
                "name": "KorNLI / KLUE-NLI, local file xnli.test.ko.tsv (20 examples)",
                "type": "xnli.test.ko.tsv",
            },
            "metrics": [{"type": "accuracy", "name": "Accuracy", "value": 50.0}],
        }
    ]
    assert "| m | 108 | - | - | - | 50.00 |" in card


def shared(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared data folder beside the repository)")
    return path


def test_the_shared_nli_and_sts_files() -> None:
    xnli = read_nli(str(shared("kornli", "xnli.dev.ko.tsv")))
    assert len(xnli) == 2490 and collections.Counter(r["label"] for r in xnli) == dict.fromkeys(NLI_LABELS, 830)
    klue = read_nli(str(shared("klue", "klue-nli-v1.1_dev.json")))
    assert len(klue) == 3000 and collections.Counter(r["label"] for r in klue) == dict.fromkeys(NLI_LABELS, 1000)
    train, dev = (read_sts(str(shared("korsts", name))) for name in ("sts-train.tsv", "sts-dev.tsv"))
    assert (len(train), len(dev)) == (5749, 1500)
    assert all(0 <= r["score"] <= 5 for r in train + dev)
    assert {r["score"] for r in dev} >= {0.0, 5.0}  # the scale's both ends occur

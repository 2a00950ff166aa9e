"""KoBertTokenizer / KoBertTokenizerFast against kobert-transformers 0.6.0, plus the behaviour the original lacks."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
import sentencepiece as spm
import torch
from conftest import BUNDLED_REVIEWS, KOBERT_FILES, ROOT, SHARED_CORPUS, read_lines, through_the_pipeline
from sentencepiece import sentencepiece_model_pb2
from tokenizers import Tokenizer
from transformers import AddedToken, AutoTokenizer, DataCollatorForLanguageModeling, DataCollatorWithPadding

from tokenization_kobert import (
    _KEPT_AS_THEY_ARE,
    KoBertTokenizer,
    KoBertTokenizerFast,
    join_pieces,
    portable_pipeline_differences,
    preprocess_text,
)

# Every test that takes the tokenizer fixtures runs on the real KoBERT vocabulary (data/kobert) and on one built by
# pretrain.build_tokenizer from the bundled reviews (scores on the 1/64 grid, digit-comma pieces possible).
VOCABULARIES = ["kobert", "built"]
BUNDLED_NSMC = [ROOT / "data" / "nsmc_train.txt.gz", ROOT / "data" / "nsmc_test.txt.gz"]


@pytest.fixture(scope="module", params=VOCABULARIES)
def files(request, tokenizer_files) -> dict[str, str]:
    return KOBERT_FILES if request.param == "kobert" else tokenizer_files


@pytest.fixture(scope="module")
def slow_tokenizer(files):
    return KoBertTokenizer(**files)


@pytest.fixture(scope="module")
def fast_tokenizer(files):
    return KoBertTokenizerFast(**files)


@pytest.fixture(scope="module")
def reference_tokenizer(files):
    from kobert_transformers.tokenization_kobert import KoBertTokenizer as ReferenceKoBertTokenizer

    return ReferenceKoBertTokenizer(**files)


def with_backend(tokenizer, *args, **kwargs):
    """The same call through the tokenizers pipeline (offsets from the pipeline force it), without the offsets."""
    with through_the_pipeline(tokenizer):
        encoding = tokenizer(*args, return_offsets_mapping=True, **kwargs)
    return {key: value for key, value in encoding.items() if key != "offset_mapping"}


EDGE_CASES = [
    "[CLS] 한국어 모델을 공유합니다. [SEP]",
    "[CLS]한국어[SEP]모델[MASK]을[PAD]공유[UNK]",
    "  [SEP]  [SEP] [MASK][MASK] ",
    "[cls] [Sep] [UNK은 특수 토큰이 아니다",
    "1,000,000원 3,5 2019, 가격은 12,345원, 1, ,1 9,9,9,",
    "１，０００원 ＡＢＣ　ｄｅｆ！？ （주）",
    "Café Noël naïve résumé ÅÄÖ ﬁnancial Ⅻ ½",
    "😀👍🏽 최고❤️ 👨‍👩‍👧 ✌︎",
    "大韓民國 漢字 韓國語 の 日本語",
    "가\t나\n다\r\n라\x0b마\x0c바\x1c사\x85아\u2028자\u3000차",
    "``인용''은 '''세 개''' \"큰따옴표\"",
    "ㅋㅋㅋ ㅠㅠ ㄱㄴㄷ ㅏㅑ",
    "\u1112\u1161\u11ab\u1100\u116e\u11a8\u110b\u1165 NFD 한국어",
    "\u200b\ufeff가\u200d나 \x00\x07제어",
    "가\u0301 e\u0301 \u0301",
    "İstanbul ΣΊΣΥΦΟΣ ß ǅ",
    "",
    "   ",
    "\t\n",
    "영화" * 5000,
    "1" * 3000 + ",",
    "ㅋ" * 3000,
    # Real reviews where equally scored splits of the dots tie: float32 sums (SentencePiece) and float64 sums
    # (tokenizers' Unigram model) pick differently with KoBERT's vocabulary.
    "포스터가... 80년대야....",
    "대한민국 여권이..... ㅎㅎ",
    "밥말리...........",
]


def test_special_tokens_are_never_split(slow_tokenizer, fast_tokenizer) -> None:
    text = "[CLS] 한국어 모델을 공유합니다. [SEP]"
    for tokenizer in (slow_tokenizer, fast_tokenizer):
        tokens = tokenizer.tokenize(text)
        assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
        assert "[MASK]" in tokenizer.tokenize("가[MASK]나")
        ids = tokenizer("모델[MASK]을 [PAD]공유", add_special_tokens=False)["input_ids"]
        assert tokenizer.mask_token_id in ids and tokenizer.pad_token_id in ids


def test_layout_matches_the_documented_example(slow_tokenizer, fast_tokenizer) -> None:
    # The README's example in the layout of the real KoBERT vocabulary: specials whole, pieces in between.
    for tokenizer in (slow_tokenizer, fast_tokenizer):
        tokens = tokenizer.tokenize("[CLS] 한국어 모델을 공유합니다. [SEP]")
        assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]" and tokens[-2] == "."
        assert "".join(tokens[1:-1]).replace("▁", " ").strip() == "한국어 모델을 공유합니다."
        ids = tokenizer.convert_tokens_to_ids(tokens)
        assert ids[0] == 2 and ids[-1] == 3


def test_the_published_example_on_the_real_vocabulary(tmp_path: Path) -> None:
    # The DistilKoBERT README: '[CLS] 한국어 모델을 공유합니다. [SEP]' -> [2, 4958, 6855, 2046, 7088, 1050, 7843, 54, 3]
    expected = [2, 4958, 6855, 2046, 7088, 1050, 7843, 54, 3]
    KoBertTokenizerFast(**KOBERT_FILES).save_pretrained(tmp_path)
    auto = AutoTokenizer.from_pretrained(tmp_path, trust_remote_code=True)
    assert type(auto).__name__ == "KoBertTokenizerFast"
    for tokenizer in (KoBertTokenizer(**KOBERT_FILES), auto):
        assert tokenizer.convert_tokens_to_ids(tokenizer.tokenize("[CLS] 한국어 모델을 공유합니다. [SEP]")) == expected
        assert tokenizer("한국어 모델을 공유합니다.")["input_ids"] == expected
    # Apache-2.0's attribution goes wherever the files go, saved and saved again.
    auto.save_pretrained(tmp_path / "again")
    notice = (ROOT / "data" / "kobert" / "NOTICE").read_text()
    assert (tmp_path / "NOTICE").read_text() == (tmp_path / "again" / "NOTICE").read_text() == notice


def test_the_bundled_folder_loads_through_auto_tokenizer() -> None:
    """data/kobert itself, as the README and the issue's newcomer load it (it was 'Couldn't instantiate the backend
    tokenizer'): tokenizer_config.json names the classes, tokenization_kobert.py links to this repository's."""
    auto = AutoTokenizer.from_pretrained(str(ROOT / "data" / "kobert"), trust_remote_code=True)
    assert type(auto).__name__ == "KoBertTokenizerFast"
    assert auto("한국어 모델을 공유합니다.")["input_ids"] == [2, 4958, 6855, 2046, 7088, 1050, 7843, 54, 3]


def test_special_token_ids_follow_kobert(slow_tokenizer, fast_tokenizer) -> None:
    for tokenizer in (slow_tokenizer, fast_tokenizer):
        assert tokenizer.convert_tokens_to_ids(["[UNK]", "[PAD]", "[CLS]", "[SEP]", "[MASK]"]) == [0, 1, 2, 3, 4]
        assert tokenizer.vocab_size == 8002


@pytest.mark.parametrize("index", range(len(EDGE_CASES)))
def test_edge_cases_match_reference(index: int, reference_tokenizer, slow_tokenizer, fast_tokenizer) -> None:
    text = EDGE_CASES[index]
    expected = reference_tokenizer(text)["input_ids"]
    assert slow_tokenizer(text)["input_ids"] == expected
    assert fast_tokenizer(text)["input_ids"] == expected
    assert with_backend(fast_tokenizer, text)["input_ids"] == expected


def parity_lines(limit: int) -> tuple[list[str], str]:
    """``limit`` real lines from ../shared/data, or on a fresh clone every bundled review (up to ``limit``)."""
    if SHARED_CORPUS.exists():
        lines = read_lines(SHARED_CORPUS, limit * 10 // 9 + 10)
        # Every tenth line (offset 0) is in the bundled sample the built tokenizer was trained on: test on the others.
        return [line for i, line in enumerate(lines) if i % 10 != 0][:limit], str(SHARED_CORPUS)
    reviews = read_lines(BUNDLED_REVIEWS)
    nsmc = [line.split("\t")[1] for path in BUNDLED_NSMC for line in read_lines(path)[1:]]
    return (reviews + nsmc)[:limit], "the bundled reviews and NSMC samples"


def first_mismatch(expected: list[list[int]], actual: list[list[int]]) -> int | None:
    return next((i for i, (a, b) in enumerate(zip(expected, actual, strict=True)) if a != b), None)


def test_parity_on_real_korean_lines() -> None:
    # The real vocabulary on 50,000 lines for the class AutoTokenizer returns, 20,000 for the slow class and the
    # pipeline path, which share its engine. (The built vocabulary shares the engine too: the edge cases and
    # properties cover it.) 50,000 rather than 100,000: the reference's pure Python took 21 of this test's 57 s.
    from kobert_transformers.tokenization_kobert import KoBertTokenizer as ReferenceKoBertTokenizer

    reference, slow, fast = (
        cls(**KOBERT_FILES) for cls in (ReferenceKoBertTokenizer, KoBertTokenizer, KoBertTokenizerFast)
    )
    lines, source = parity_lines(50_000)
    assert len(lines) == 50_000
    expected = [reference(line)["input_ids"] for line in lines]
    checks = {
        "KoBertTokenizerFast": lambda: fast(lines)["input_ids"],
        "KoBertTokenizer": lambda: slow(lines[:20_000])["input_ids"],
        "KoBertTokenizerFast through its pipeline": lambda: with_backend(fast, lines[:20_000])["input_ids"],
    }
    for name, encode in checks.items():
        actual = encode()
        line = first_mismatch(expected[: len(actual)], actual)
        assert line is None, (
            f"{name} differs from kobert-transformers on {source} line {line}: {lines[line]!r}\n"
            f"expected {reference.convert_ids_to_tokens(expected[line])}\n"
            f"got      {fast.convert_ids_to_tokens(actual[line])}"
        )
    # The test can see the difference it guards against: tokenizers' own Unigram model (tokenizer.json) breaks ties
    # in float64 and differs on about 0.2% of these lines (20,000 of them show it).
    some = lines[:20_000]
    portable = [e.ids for e in fast.portable_backend().encode_batch(some)]
    assert 0 < sum(a != b for a, b in zip(expected, portable, strict=False)) < len(some) // 100


def test_offsets_word_ids_and_tokens_are_the_pipelines(fast_tokenizer) -> None:
    # The oracle for everything but the ids: tokenizers' own pipeline (tokenizer.json), on the lines where its
    # Unigram model happens to give the same ids, single texts and pairs.
    lines, _ = parity_lines(3_000)
    portable = fast_tokenizer.portable_backend()
    pairs = list(zip(lines[::2], lines[1::2], strict=False))
    for inputs in (lines, pairs):
        ours = fast_tokenizer._tokenizer.encode_batch(inputs)
        theirs = portable.encode_batch(inputs)
        same_ids = [(a, b) for a, b in zip(ours, theirs, strict=True) if a.ids == b.ids]
        assert len(same_ids) > 0.95 * len(inputs)
        for a, b in same_ids:
            assert (a.offsets, a.word_ids, a.tokens, a.type_ids, a.sequence_ids) == (
                b.offsets,
                b.word_ids,
                b.tokens,
                b.type_ids,
                b.sequence_ids,
            )


def aligned_rows(encoding, rows: int) -> list[tuple]:
    """What the offsets path gives for each row: ids, offsets, word ids, tokens, sequence ids, attention mask."""
    columns = ("input_ids", "offset_mapping", "attention_mask")
    return [
        (
            *(encoding[column][i] for column in columns if column in encoding),
            encoding.word_ids(i),
            encoding.tokens(i),
            encoding.sequence_ids(i),
        )
        for i in range(rows)
    ]


def test_the_fast_character_class_is_left_as_it_is(fast_tokenizer) -> None:
    # bulk_alignment skips the normaliser for texts of printable ASCII and Hangul syllables whose preprocessing only
    # collapsed spaces: every such character, alone and all of them side by side, must come out of the pipeline's
    # normaliser and KoBERT's preprocessing unchanged. (Doubled quotes do change, in both: the bulk path compares the
    # preprocessed text too.)
    characters = [chr(c) for c in [*range(0x21, 0x7F), *range(0xAC00, 0xD7A4)]]
    assert all(_KEPT_AS_THEY_ARE.fullmatch(c) for c in characters) and not _KEPT_AS_THEY_ARE.fullmatch("ㅋ")
    normalizer = fast_tokenizer.backend_tokenizer.normalizer
    together = "".join(characters)
    for text in (*characters, together):
        assert normalizer.normalize_str(text) == text and preprocess_text(text, True, False, False) == text, text
    assert normalizer.normalize_str("a``b") == preprocess_text("a``b", True, False, False) == 'a"b'


def test_texts_left_as_they_are_are_aligned_all_at_once(monkeypatch) -> None:
    # Texts the normaliser leaves as they are, with no unknown token, take alignment_from_lengths and never the text by
    # text path (the parity tests above then hold it to the pipeline); rows whose pieces do not spell their text are
    # refused, each alone, and go on to the other paths.
    import tokenization_kobert

    fast = KoBertTokenizerFast(**KOBERT_FILES)
    lines = ["좋아요 정말 최고!", "a", "1,000원 (2024) 재밌다", "가 나 다"]
    with through_the_pipeline(fast):
        expected = aligned_rows(fast(lines, return_offsets_mapping=True), len(lines))

    def refused(*args, **kwargs):
        raise AssertionError("a text aligned at once went through bulk_alignment or the pipeline")

    monkeypatch.setattr(tokenization_kobert, "bulk_alignment", refused)
    assert aligned_rows(fast(lines, return_offsets_mapping=True), len(lines)) == expected
    # So do texts normalised character by character and texts with unknown tokens, whose surfaces give the lengths;
    # the pipeline is not asked either.
    changed = ["ㅋㅋㅋ 최고♥", "똠방각하 뷁", "★★★ 재밌다ㅎ", "😀😀 좋아", "ㅋㅋ 🎬 굿"]
    with through_the_pipeline(fast):
        expected = aligned_rows(fast(changed, return_offsets_mapping=True), len(changed))
    monkeypatch.setattr(fast, "_encode_with_backend", refused)
    assert aligned_rows(fast(changed, return_offsets_mapping=True), len(changed)) == expected
    ids = [fast.segmenter.encode_batch([line])[0] for line in lines]
    assert all(row is not None for row in fast._rows_aligned_at_once(lines, ids))
    swapped = fast._rows_aligned_at_once(
        lines, [ids[1], ids[0], *ids[2:]]
    )  # the first two rows spell each other's text
    assert swapped[:2] == [None, None] and None not in swapped[2:]
    # Together they spell the texts, but the first two rows' pieces belong to the other's text: only the third stays.
    shifted = fast._rows_aligned_at_once(["a", "b", "c"], fast.segmenter.encode_batch(["a b", "", "c"]))
    assert shifted[:2] == [None, None] and shifted[2] is not None


def assert_rows_are_the_pipelines(fast, inputs: list, **options) -> None:
    """Every row of ``fast(inputs, **options)`` (in batches of 1,000) equal to the pipeline's (as before issue 34),
    the first differing input named."""
    for start in range(0, len(inputs), 1_000):
        batch = inputs[start : start + 1_000]
        ours = aligned_rows(fast(batch, **options), len(batch))
        with through_the_pipeline(fast):
            theirs = aligned_rows(fast(batch, **options), len(batch))
        differing = next((i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b), None)
        assert differing is None, f"{batch[differing]!r}:\n{ours[differing]}\n{theirs[differing]}"


OFFSETS_OPTIONS = [
    {},
    {"truncation": True, "max_length": 12},
    {"padding": True, "padding_side": "left"},
    {"add_special_tokens": False, "padding": "max_length", "max_length": 64, "truncation": True},
]


@pytest.mark.parametrize(
    "options", OFFSETS_OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "plain"
)
def test_offsets_in_bulk_are_the_pipelines_on_the_parity_lines(options: dict) -> None:
    # Issue 34: single texts asked for offsets are aligned in bulk; the pipeline (as before) is the oracle for every
    # row: ids, offsets, word_ids(), tokens(), sequence_ids(). 50,000 lines with the defaults, 5,000 with options.
    fast = KoBertTokenizerFast(**KOBERT_FILES)
    lines = [*parity_lines(50_000 if not options else 5_000)[0], *EDGE_CASES, "", "   ", "殊", "😀 좋아", "  a  b  "]
    assert_rows_are_the_pipelines(fast, lines, return_offsets_mapping=True, **options)
    single = fast(lines[5], return_offsets_mapping=True, return_tensors="pt")
    with through_the_pipeline(fast):
        assert torch.equal(
            single["offset_mapping"], fast(lines[5], return_offsets_mapping=True, return_tensors="pt")["offset_mapping"]
        )


WORDS_OPTIONS = [
    {},
    {"return_offsets_mapping": True},
    {"truncation": True, "max_length": 12},
    {"padding": True, "padding_side": "left", "return_offsets_mapping": True},
    {"add_special_tokens": False},
]
EDGE_WORDS = [" 좋다", "ﬁ", "", "  ", "a b", "[MASK]", "😀", "ㅋㅋ", "1,000,", "가\u11a8", "殊"]


@pytest.mark.parametrize("options", WORDS_OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "plain")
def test_words_as_lists_in_bulk_are_the_pipelines(options: dict) -> None:
    # Issue 34: texts given as lists of words (token classification: is_split_into_words=True) are segmented word by
    # word in bulk; the pipeline (as before) is the oracle for every row. 10,000 lines with the defaults, 2,000 with
    # options, split at spaces, and the edge cases as words.
    fast = KoBertTokenizerFast(**KOBERT_FILES)
    lines = parity_lines(10_000 if not options else 2_000)[0]
    rows = [line.split() for line in [*lines, *EDGE_CASES]] + [EDGE_WORDS, [""], ["좋다"]]
    assert_rows_are_the_pipelines(fast, rows, is_split_into_words=True, **options)
    with through_the_pipeline(fast):
        expected = dict(fast(EDGE_WORDS, is_split_into_words=True, **options))
    assert dict(fast(EDGE_WORDS, is_split_into_words=True, **options)) == expected


BULK_OPTIONS = [
    {},
    {"add_special_tokens": False},
    {"padding": True},
    {"padding": "max_length", "max_length": 48},
    {"padding": True, "pad_to_multiple_of": 8, "padding_side": "left"},
    {"truncation": True, "max_length": 12},
    {"truncation": "only_first", "max_length": 6, "add_special_tokens": False},
    {"return_special_tokens_mask": True, "return_length": True, "padding": True},
    {"return_token_type_ids": False, "return_attention_mask": False},
]


@pytest.mark.parametrize("options", BULK_OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "plain")
def test_bulk_encoding_equals_the_pipeline(options: dict, fast_tokenizer) -> None:
    lines = [*parity_lines(60)[0], "", "   ", "[CLS]가[MASK]나 [SEP]", "1,000,000원", "ㅋㅋㅋ...."]
    firsts, seconds = lines[: len(lines) // 2], lines[len(lines) // 2 : len(lines) // 2 * 2]
    assert dict(fast_tokenizer(lines, **options)) == with_backend(fast_tokenizer, lines, **options)
    assert dict(fast_tokenizer(lines[3], **options)) == with_backend(fast_tokenizer, lines[3], **options)
    if "truncation" not in options:  # pairs with truncation always take the pipeline
        assert dict(fast_tokenizer(firsts, seconds, **options)) == with_backend(
            fast_tokenizer, firsts, seconds, **options
        )
        assert dict(fast_tokenizer("첫 문장", "", **options)) == with_backend(fast_tokenizer, "첫 문장", "", **options)
    tensors = fast_tokenizer(lines, padding="longest", return_tensors="pt")
    assert torch.equal(tensors["input_ids"], torch.tensor(fast_tokenizer(lines, padding="longest")["input_ids"]))


def test_word_ids_and_tokens_of_a_plain_call(fast_tokenizer) -> None:
    lines = ["이 영화 진짜 재밌다ㅋㅋ", "1,000만 관객 [MASK]", ""]
    plain = fast_tokenizer(lines, padding=True)
    with through_the_pipeline(fast_tokenizer):
        piped = fast_tokenizer(lines, padding=True, return_offsets_mapping=True)
    assert plain.is_fast and plain.n_sequences == 1
    for i in range(len(lines)):
        assert plain.word_ids(i) == piped.word_ids(i)
        assert plain.tokens(i) == fast_tokenizer.convert_ids_to_tokens(plain["input_ids"][i])
        assert plain.char_to_token(i, 0) == piped.char_to_token(i, 0)
    single = fast_tokenizer("두 문장의", "짝")
    assert single.sequence_ids() == fast_tokenizer("두 문장의", "짝", return_offsets_mapping=True).sequence_ids()
    clone = pickle.loads(pickle.dumps(plain))
    assert clone.word_ids(1) == plain.word_ids(1) and dict(clone) == dict(plain)
    # The encodings are computed on first use, from the texts as they were at the call.
    texts = ["가나", "다라"]
    later = fast_tokenizer(texts)
    texts[0] = "완전히 다른 문장입니다"
    assert later.tokens(0) == fast_tokenizer.convert_ids_to_tokens(later["input_ids"][0])


def test_words_given_as_lists_match_the_slow_tokenizer(slow_tokenizer, fast_tokenizer) -> None:
    # finetune.ner's path: is_split_into_words, through the pipeline.
    words = ["이순신은", "1,545년", "조선", "ㅋㅋㅋ....", "[MASK]"]
    expected = slow_tokenizer(words, is_split_into_words=True)["input_ids"]
    encoding = fast_tokenizer(words, is_split_into_words=True)
    assert encoding["input_ids"] == expected
    assert {w for w in encoding.word_ids() if w is not None} == set(range(len(words)))


def test_pairs_and_token_type_ids(slow_tokenizer, fast_tokenizer) -> None:
    for tokenizer in (slow_tokenizer, fast_tokenizer):
        a = tokenizer("첫 번째 문장", add_special_tokens=False)["input_ids"]
        b = tokenizer("두 번째", add_special_tokens=False)["input_ids"]
        encoding = tokenizer("첫 번째 문장", "두 번째")
        assert encoding["input_ids"] == [2, *a, 3, *b, 3]
        assert encoding["token_type_ids"] == [0] * (len(a) + 2) + [1] * (len(b) + 1)
        padded = tokenizer(["짧다", "이건 조금 더 긴 문장이다"], ["응", "그래"], padding=True)
        short = padded["input_ids"][0]
        pad_positions = [i for i, t in enumerate(short) if t == tokenizer.pad_token_id]
        assert pad_positions, "the shorter pair must be padded"
        assert all(padded["token_type_ids"][0][i] == 0 for i in pad_positions)
        assert all(padded["attention_mask"][0][i] == 0 for i in pad_positions)
        assert max(max(row) for row in padded["token_type_ids"]) == 1


def test_slow_and_fast_agree_on_truncation_and_padding(slow_tokenizer, fast_tokenizer) -> None:
    first = "이 영화는 정말 재미있고 감동적이었다 배우들의 연기가 훌륭했다"
    second = "다시 보고 싶다 추천한다"
    for options in (
        {"truncation": True, "max_length": 10},
        {"truncation": "longest_first", "max_length": 12},
        {"truncation": "only_first", "max_length": 14},
        {"truncation": "only_second", "max_length": 24},
        {"padding": "max_length", "max_length": 40},
        {"padding": True, "pad_to_multiple_of": 8},
    ):
        slow = slow_tokenizer(first, second, **options)
        fast = fast_tokenizer(first, second, **options)
        assert dict(slow) == {k: fast[k] for k in slow}, options


def test_special_tokens_mask(slow_tokenizer, fast_tokenizer) -> None:
    for tokenizer in (slow_tokenizer, fast_tokenizer):
        encoding = tokenizer("한국어", "모델", return_special_tokens_mask=True, padding="max_length", max_length=12)
        ids = encoding["input_ids"]
        expected = [int(i in (0, 1, 2, 3, 4)) for i in ids]
        assert encoding["special_tokens_mask"] == expected
        assert tokenizer.get_special_tokens_mask(ids, already_has_special_tokens=True) == expected
        assert tokenizer.get_special_tokens_mask([10, 11], [12]) == [1, 0, 0, 1, 0, 1]


def test_data_collators(slow_tokenizer, fast_tokenizer) -> None:
    for tokenizer in (slow_tokenizer, fast_tokenizer):
        features = [tokenizer("짧다"), tokenizer("이건 조금 더 긴 문장이다")]
        batch = DataCollatorWithPadding(tokenizer)(features)
        assert set(batch) == {"input_ids", "token_type_ids", "attention_mask"}
        assert batch["input_ids"].shape == batch["token_type_ids"].shape == batch["attention_mask"].shape
        mlm = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.9, seed=0)(
            [tokenizer("이건 조금 더 긴 문장이다", return_special_tokens_mask=True)]
        )
        labels, original = mlm["labels"][0], torch.tensor(features[1]["input_ids"])
        masked = labels != -100
        assert masked.any()
        assert not masked[0] and not masked[-1], "special tokens must never be masked"
        assert torch.equal(labels[masked], original[masked])


def test_decode_keeps_special_tokens_apart(slow_tokenizer, fast_tokenizer, reference_tokenizer) -> None:
    text = "한국어 모델을 공유합니다."
    for tokenizer in (slow_tokenizer, fast_tokenizer):
        ids = tokenizer(text, "두 번째")["input_ids"]
        assert tokenizer.decode(ids) == "[CLS] 한국어 모델을 공유합니다. [SEP] 두 번째 [SEP]"
        assert tokenizer.decode(ids, skip_special_tokens=True) == "한국어 모델을 공유합니다. 두 번째"
    # The reference glues text onto them: "[CLS] 한국어 모델을 공유합니다.[SEP]"
    assert "공유합니다.[SEP]" in reference_tokenizer.decode(reference_tokenizer(text)["input_ids"])


def test_join_pieces() -> None:
    specials = {"[CLS]", "[SEP]", "[MASK]"}
    assert (
        join_pieces(["[CLS]", "▁한국", "어", "[MASK]", "▁모델", "[SEP]"], specials) == "[CLS] 한국어 [MASK] 모델 [SEP]"
    )
    assert join_pieces(["▁a", "[MASK]", "b"], specials) == "a [MASK] b"
    assert join_pieces([], specials) == ""


def test_round_trip_of_korean_text(slow_tokenizer, fast_tokenizer) -> None:
    for line in read_lines(BUNDLED_REVIEWS, 300):
        expected = preprocess_text(line, remove_space=True, keep_accents=False, do_lower_case=False)
        for tokenizer in (slow_tokenizer, fast_tokenizer):
            ids = tokenizer(line)["input_ids"]
            if tokenizer.unk_token_id in ids:
                continue
            decoded = tokenizer.decode(ids, skip_special_tokens=True)
            assert decoded == spm_normalized(tokenizer, expected), line


def spm_normalized(tokenizer, text: str) -> str:
    """The text SentencePiece sees after its own normalisation (what a round trip can give back)."""
    sp_model = getattr(tokenizer, "sp_model", None) or spm.SentencePieceProcessor(model_file=tokenizer.vocab_file)
    return sp_model.decode(sp_model.encode(text))


def test_nfkd_turns_compatibility_jamo_into_conjoining_jamo(slow_tokenizer, fast_tokenizer) -> None:
    # Parity with the original: "ㅋ" (U+314B) becomes "ᄏ" (U+110F), which KoBERT's vocabulary often lacks.
    assert preprocess_text("ㅋ", True, False, False) == "\u110f"
    assert preprocess_text("ㅋ", True, True, False) == "ㅋ"
    for tokenizer in (slow_tokenizer, fast_tokenizer):
        assert "ㅋ" not in "".join(tokenizer.tokenize("재밌다ㅋㅋ"))


def test_offsets_and_word_ids(fast_tokenizer) -> None:
    text = "이 영화 진짜 재밌다ㅋㅋ 1,000만 관객"
    encoding = fast_tokenizer(text, return_offsets_mapping=True)
    words = text.split()
    word_ids = encoding.word_ids()
    assert word_ids[0] is None and word_ids[-1] is None
    assert sorted({w for w in word_ids if w is not None}) == list(range(len(words)))
    for word_id, (start, end) in zip(word_ids, encoding["offset_mapping"], strict=True):
        if word_id is not None:
            assert text[start:end].strip() in words[word_id]
    # The spans of a word's pieces cover the word exactly.
    for word_id, word in enumerate(words):
        spans = [s for w, s in zip(word_ids, encoding["offset_mapping"], strict=True) if w == word_id]
        assert text[spans[0][0] : spans[-1][1]].strip() == word


@pytest.mark.parametrize("text", ["", " ", "   \t\n ", "\u3000"])
def test_empty_text_encodes_to_cls_sep(text: str, slow_tokenizer, fast_tokenizer) -> None:
    for tokenizer in (slow_tokenizer, fast_tokenizer):
        assert tokenizer(text)["input_ids"] == [2, 3]


@pytest.mark.parametrize("bad", [123, None, b"bytes", ["ok", 5], [["ok", 3.5]]])
def test_non_string_input_is_a_clear_error(bad, slow_tokenizer, fast_tokenizer) -> None:
    for tokenizer in (slow_tokenizer, fast_tokenizer):
        with pytest.raises((TypeError, ValueError), match="str"):
            tokenizer(bad)


def test_pickle(slow_tokenizer, fast_tokenizer) -> None:
    for tokenizer in (slow_tokenizer, fast_tokenizer):
        clone = pickle.loads(pickle.dumps(tokenizer))
        assert clone("피클 테스트 1,234원")["input_ids"] == tokenizer("피클 테스트 1,234원")["input_ids"]
    # The same pickle whatever was encoded before (datasets hashes the tokenizer of a map into its cache's name):
    # the offsets path's caches are left out.
    fresh = KoBertTokenizerFast(**KOBERT_FILES)
    before = pickle.dumps(fresh)
    fresh(["ㅋㅋ 좋아요♥", "가나다 ★★"], return_offsets_mapping=True)
    assert pickle.dumps(fresh) == before


def test_save_and_load_round_trip(tmp_path: Path, slow_tokenizer, fast_tokenizer) -> None:
    text = "[CLS] 저장하고 다시 읽어도 같다 [SEP]"
    expected = slow_tokenizer(text)["input_ids"]
    for tokenizer in (slow_tokenizer, fast_tokenizer):
        folder = tmp_path / type(tokenizer).__name__
        tokenizer.save_pretrained(folder)
        files = {p.name for p in folder.iterdir()}
        assert {"tokenizer_78b3253a26.model", "vocab.txt", "tokenizer_config.json", "tokenization_kobert.py"} <= files
        config = json.loads((folder / "tokenizer_config.json").read_text())
        assert config["auto_map"]["AutoTokenizer"] == [
            "tokenization_kobert.KoBertTokenizer",
            "tokenization_kobert.KoBertTokenizerFast",
        ]
        assert "local_files_only" not in config
        assert KoBertTokenizer.from_pretrained(folder)(text)["input_ids"] == expected
        assert KoBertTokenizerFast.from_pretrained(folder)(text)["input_ids"] == expected
        auto = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
        assert type(auto).__name__ == "KoBertTokenizerFast"
        assert auto(text)["input_ids"] == expected


def test_fast_tokenizer_converts_a_folder_without_tokenizer_json(tmp_path: Path, tokenizer_files) -> None:
    for name in tokenizer_files.values():
        shutil.copy(name, tmp_path)
    fast = KoBertTokenizerFast.from_pretrained(tmp_path)
    slow = KoBertTokenizer.from_pretrained(tmp_path)
    assert fast("폴더에서 변환 1,000") == {**slow("폴더에서 변환 1,000")}
    fast.save_pretrained(tmp_path / "saved")
    assert (tmp_path / "saved" / "tokenizer.json").is_file()


def test_auto_tokenizer_never_falls_back_to_wordpiece(tmp_path: Path, tokenizer_dir: Path) -> None:
    # A model folder says model_type "bert"; our files must still decide how text is split.
    folder = tmp_path / "model"
    shutil.copytree(tokenizer_dir, folder)
    (folder / "config.json").write_text(json.dumps({"model_type": "bert", "vocab_size": 8002}))
    text = "[CLS] 한국어 모델을 공유합니다. 1,000원 [SEP]"
    expected = KoBertTokenizer.from_pretrained(folder)(text)["input_ids"]
    loaded = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
    assert type(loaded).__name__ == "KoBertTokenizerFast"
    assert loaded(text)["input_ids"] == expected
    # Without trust_remote_code transformers 5 falls back to a generic backend over our tokenizer.json: same ids.
    generic = AutoTokenizer.from_pretrained(folder)
    assert "Bert" not in type(generic).__name__
    assert generic(text)["input_ids"] == expected


def test_added_special_tokens_are_never_split(tokenizer_files) -> None:
    for cls in (KoBertTokenizer, KoBertTokenizerFast):
        tokenizer = cls(**tokenizer_files)
        tokenizer.add_special_tokens({"additional_special_tokens": ["[ENT]"]})
        ids = tokenizer("가[ENT]나 [ENT]")["input_ids"]
        assert ids.count(tokenizer.convert_tokens_to_ids("[ENT]")) == 2
        assert tokenizer.decode(ids) == "[CLS] 가 [ENT] 나 [ENT] [SEP]"


class TestBadFiles:
    def write_vocab(self, path: Path, tokens: list[str]) -> str:
        path.write_text("".join(f"{t}\n" for t in tokens), encoding="utf-8")
        return str(path)

    def vocab_tokens(self, tokenizer_files) -> list[str]:
        return Path(tokenizer_files["vocab_txt"]).read_text(encoding="utf-8").splitlines()

    @pytest.mark.parametrize("cls", [KoBertTokenizer, KoBertTokenizerFast])
    def test_missing_special_token(self, cls, tmp_path: Path, tokenizer_files) -> None:
        tokens = [t for t in self.vocab_tokens(tokenizer_files) if t != "[MASK]"]
        vocab_txt = self.write_vocab(tmp_path / "vocab.txt", tokens)
        with pytest.raises(ValueError, match=r"\[MASK\]"):
            cls(tokenizer_files["vocab_file"], vocab_txt)

    @pytest.mark.parametrize("cls", [KoBertTokenizer, KoBertTokenizerFast])
    def test_duplicate_token(self, cls, tmp_path: Path, tokenizer_files) -> None:
        tokens = self.vocab_tokens(tokenizer_files)
        vocab_txt = self.write_vocab(tmp_path / "vocab.txt", [*tokens[:10], tokens[7], *tokens[10:]])
        with pytest.raises(ValueError, match=r"vocab.txt:11: duplicate token .* line 8"):
            cls(tokenizer_files["vocab_file"], vocab_txt)

    @pytest.mark.parametrize("cls", [KoBertTokenizer, KoBertTokenizerFast])
    def test_pieces_missing_from_vocab(self, cls, tmp_path: Path, tokenizer_files) -> None:
        tokens = self.vocab_tokens(tokenizer_files)[:-100]
        vocab_txt = self.write_vocab(tmp_path / "vocab.txt", tokens)
        with pytest.raises(ValueError, match="100 SentencePiece pieces are not in"):
            cls(tokenizer_files["vocab_file"], vocab_txt)

    @pytest.mark.parametrize("cls", [KoBertTokenizer, KoBertTokenizerFast])
    def test_missing_files(self, cls, tmp_path: Path, tokenizer_files) -> None:
        with pytest.raises(ValueError, match=r"not found: .*nowhere\.model"):
            cls(str(tmp_path / "nowhere.model"), tokenizer_files["vocab_txt"])
        with pytest.raises(ValueError, match=r"not found: .*nowhere\.txt"):
            cls(tokenizer_files["vocab_file"], str(tmp_path / "nowhere.txt"))

    def test_empty_folder(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="vocab"):
            KoBertTokenizer.from_pretrained(tmp_path)
        with pytest.raises(ValueError, match=r"tokenizer\.json"):
            KoBertTokenizerFast.from_pretrained(tmp_path)


def test_portable_pipeline_differences_name_the_risks() -> None:
    assert portable_pipeline_differences({"▁1": -3.0, "0": -2.5}) == []
    digit_comma = portable_pipeline_differences({"▁1,": -3.0})
    off_grid = portable_pipeline_differences({"가": -3.1234})
    assert len(digit_comma) == 1 and "▁1," in digit_comma[0]
    assert len(off_grid) == 1 and "1/64" in off_grid[0]


def test_unquantised_models_are_exact_and_quiet(tmp_path: Path, tokenizer_files, caplog) -> None:
    # A model like the original KoBERT: scores straight from training, not on the 1/64 grid.
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(Path(tokenizer_files["vocab_file"]).read_bytes())
    for piece in proto.pieces:
        piece.score += 0.001
    model = tmp_path / "unquantised.model"
    model.write_bytes(proto.SerializeToString())
    with caplog.at_level("WARNING"):
        fast = KoBertTokenizerFast(str(model), tokenizer_files["vocab_txt"])
    assert caplog.text == ""
    slow = KoBertTokenizer(str(model), tokenizer_files["vocab_txt"])
    text = "변환은 된다 ....... ㅋㅋㅋㅋㅋ"
    assert fast(text)["input_ids"] == slow(text)["input_ids"] == with_backend(fast, text)["input_ids"]


def test_a_folder_without_the_sentencepiece_model_is_a_clear_error(tmp_path: Path, tokenizer_dir: Path) -> None:
    shutil.copytree(tokenizer_dir, tmp_path / "tok")
    (tmp_path / "tok" / "tokenizer_78b3253a26.model").unlink()
    with pytest.raises(ValueError, match=r"SentencePiece model not found"):
        KoBertTokenizerFast.from_pretrained(tmp_path / "tok")
    # tokenizer.json alone still loads as the portable pipeline, without our classes.
    assert Tokenizer.from_file(str(tmp_path / "tok" / "tokenizer.json")).encode("가").ids


# --- defects transformers' own tokenizer tests found (issue 32) ------------------------------------------------------


def test_a_batch_of_pre_split_pairs(slow_tokenizer, fast_tokenizer) -> None:
    pairs = [(["한국어", "모델"], ["공유", "합니다"]), (["영화"], ["재밌다"])]
    expected = [slow_tokenizer(" ".join(a), " ".join(b))["input_ids"] for a, b in pairs]
    for tokenizer in (slow_tokenizer, fast_tokenizer):
        assert tokenizer(pairs, is_split_into_words=True)["input_ids"] == expected
    with pytest.raises(TypeError, match=r"text must be a str or a list of str, got int: 3"):
        fast_tokenizer([(["한국어", 3], ["공유"])], is_split_into_words=True)


@pytest.mark.parametrize("tokenizer_class", [KoBertTokenizer, KoBertTokenizerFast])
def test_saves_after_its_files_are_gone(tmp_path: Path, tokenizer_dir: Path, tokenizer_class) -> None:
    shutil.copytree(tokenizer_dir, tmp_path / "loaded")
    tokenizer = tokenizer_class.from_pretrained(tmp_path / "loaded")
    shutil.rmtree(tmp_path / "loaded")  # a Trainer deleting an old checkpoint
    tokenizer.save_pretrained(tmp_path / "saved")
    model = "tokenizer_78b3253a26.model"
    assert (tmp_path / "saved" / model).read_bytes() == (tokenizer_dir / model).read_bytes()
    assert (
        tokenizer_class.from_pretrained(tmp_path / "saved")("한국어 모델")["input_ids"]
        == tokenizer("한국어 모델")["input_ids"]
    )


def test_the_backend_serialises_and_trains_a_new_vocabulary(tmp_path: Path, fast_tokenizer) -> None:
    saved = Tokenizer.from_str(fast_tokenizer.backend_tokenizer.to_str())
    assert saved.encode("한국어 모델").ids == fast_tokenizer.portable_backend().encode("한국어 모델").ids
    texts = read_lines(BUNDLED_REVIEWS, 2000)
    new = fast_tokenizer.train_new_from_iterator(texts, vocab_size=3000)
    ids = new("영화 재밌다")["input_ids"]
    assert len(new) <= 3000 and ids[0] == new.cls_token_id and ids[-1] == new.sep_token_id
    new.save_pretrained(tmp_path / "new")
    assert AutoTokenizer.from_pretrained(tmp_path / "new")("영화 재밌다")["input_ids"] == ids
    # Encoding through the pipeline still gives the engine's ids, and leaves the backend portable.
    assert with_backend(fast_tokenizer, "1,000원 ㅋㅋㅋㅋ") == dict(fast_tokenizer("1,000원 ㅋㅋㅋㅋ"))
    fast_tokenizer.backend_tokenizer.to_str()


def test_init_kwargs_rebuild_the_tokenizer(fast_tokenizer) -> None:
    rebuilt = type(fast_tokenizer)(**fast_tokenizer.init_kwargs)
    assert rebuilt("한국어 1,000원")["input_ids"] == fast_tokenizer("한국어 1,000원")["input_ids"]


def test_each_class_names_its_own_backend(tmp_path: Path) -> None:
    """A folder the fast class saved says backend "tokenizers": the slow class loaded from it must not claim that
    (transformers then treats it as fast: sequence_ids() raised, found by transformers' own tokenizer tests)."""
    KoBertTokenizerFast(**KOBERT_FILES).save_pretrained(tmp_path / "fast")
    KoBertTokenizer(**KOBERT_FILES).save_pretrained(tmp_path / "slow")
    for folder in (tmp_path / "fast", tmp_path / "slow"):
        assert KoBertTokenizer.from_pretrained(folder).backend == "sentencepiece"
        assert KoBertTokenizerFast.from_pretrained(folder).backend == "tokenizers"


def test_lower_casing_lets_added_tokens_match_in_both_classes() -> None:
    """do_lower_case lower-cases before added tokens are matched (special tokens aside), in the slow class as in the
    fast one and as transformers 4 did for every slow tokenizer."""
    text = "[UNK] AAAAA BBBBBB low [UNK]"
    for cls in (KoBertTokenizer, KoBertTokenizerFast):
        tokenizer = cls(**KOBERT_FILES, do_lower_case=True)
        tokenizer.add_tokens([AddedToken("aaaaa bbbbbb", lstrip=True, rstrip=True)])
        ids = tokenizer.encode(text, add_special_tokens=False)
        assert ids[0] == tokenizer.unk_token_id and ids[1] == len(tokenizer) - 1 and ids[-1] == tokenizer.unk_token_id

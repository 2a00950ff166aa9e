"""distill/tokenizer.py: student tokenizers of both kinds trained on real NSMC reviews, checked against what the text
itself says (its words, its characters), and loaded by AutoTokenizer in this process and in a fresh one."""

from __future__ import annotations

import gzip
import itertools
import json
import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
import torch
from conftest import ROOT
from transformers import AutoTokenizer

from distill.tokenizer import main, train_student_tokenizer
from modeling.bilstm import KoBiLstmForSequenceClassification, bilstm_config

NSMC_TRAIN = ROOT / "data" / "nsmc_train.txt.gz"
NSMC_TEST = ROOT / "data" / "nsmc_test.txt.gz"
VOCAB_SIZE = 2000
KINDS = ("wordpiece", "unigram")
SPECIAL_IDS = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4}
SENTENCE = "이 영화 정말 재미있어요 배우들 연기가 좋았습니다"  # Hangul syllables and spaces only


def nsmc_texts(path: Path, limit: int) -> list[str]:
    """The document column of the first ``limit`` rows of an NSMC file (read here, not with distill.examples)."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        next(f)  # header
        return [line.rstrip("\n").split("\t")[1] for line in itertools.islice(f, limit)]


@pytest.fixture(scope="module")
def tokenizers_by_kind() -> dict:
    # Generators, as the command passes them: the trainer must not need a list.
    texts = nsmc_texts(NSMC_TRAIN, 3000)
    return {kind: train_student_tokenizer(lambda: (t for t in texts), VOCAB_SIZE, kind) for kind in KINDS}


@pytest.fixture(params=KINDS)
def trained(request: pytest.FixtureRequest, tokenizers_by_kind: dict):
    return tokenizers_by_kind[request.param]


@pytest.fixture(scope="module")
def held_out() -> list[str]:
    """Real reviews the tokenizers were not trained on, normalised as NFC (what the tokenizer does first)."""
    return [unicodedata.normalize("NFC", " ".join(text.split())) for text in nsmc_texts(NSMC_TEST, 300) if text.strip()]


def is_punctuation(char: str) -> bool:
    """BERT's rule (google-research/bert tokenization.py, _is_punctuation): ASCII non-alphanumerics and P*."""
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def split_punctuation(text: str) -> list[str]:
    """Whitespace split, then every punctuation character alone: the words BERT's pre-tokenizer should give."""
    words: list[str] = []
    for chunk in text.split():
        current = ""
        for char in chunk:
            if is_punctuation(char):
                words += [current] if current else []
                words.append(char)
                current = ""
            else:
                current += char
        words += [current] if current else []
    return words


def wordpiece_words(tokens: list[str]) -> list[str]:
    """Tokens joined back into words: a token without ``##`` starts a word, ``##`` tokens continue it."""
    words: list[str] = []
    for token in tokens:
        if token.startswith("##") and words:
            words[-1] += token[2:]
        else:
            words.append(token)
    return words


def kind_of(tokenizer) -> str:
    return type(tokenizer.backend_tokenizer.model).__name__.lower()


def test_the_vocabulary_has_the_size_asked_and_the_special_tokens_at_known_ids(trained) -> None:
    assert len(trained) == VOCAB_SIZE
    assert len(trained.get_vocab()) == VOCAB_SIZE
    assert sorted(trained.get_vocab().values()) == list(range(VOCAB_SIZE))
    assert {token: trained.convert_tokens_to_ids(token) for token in SPECIAL_IDS} == SPECIAL_IDS
    assert (trained.pad_token_id, trained.unk_token_id, trained.mask_token_id) == (0, 1, 4)


@pytest.mark.parametrize("text", ["영화[MASK]정말 좋다", "영화 [MASK] 정말 좋다", "[MASK][MASK]다"])
def test_mask_inside_a_text_is_one_token(trained, text: str) -> None:
    ids = trained(text, add_special_tokens=False)["input_ids"]
    assert ids.count(4) == text.count("[MASK]")
    # Nothing of "[MASK]" leaks into the other tokens: they spell the text without it (modulo marks and spaces).
    rest = "".join(trained.convert_ids_to_tokens([i for i in ids if i != 4]))
    assert rest.replace("##", "").replace("▁", "") == text.replace("[MASK]", "").replace(" ", "")


def test_bert_layout_for_single_texts_pairs_and_padding(trained) -> None:
    first = trained("영화", add_special_tokens=False)["input_ids"]
    second = trained("정말 좋다", add_special_tokens=False)["input_ids"]
    pair = trained("영화", "정말 좋다")
    assert pair["input_ids"] == [2, *first, 3, *second, 3]
    assert pair["token_type_ids"] == [0] * (len(first) + 2) + [1] * (len(second) + 1)
    batch = trained(["영화", "정말 좋다"], padding=True)
    longest = len(second) + 2
    assert batch["input_ids"][0] == [2, *first, 3] + [0] * (longest - len(first) - 2)  # padded on the right
    assert batch["attention_mask"][0] == [1] * (len(first) + 2) + [0] * (longest - len(first) - 2)


def test_real_reviews_split_into_their_own_words_and_characters(trained, held_out: list[str]) -> None:
    unknown_free = 0
    for text in held_out:
        tokens = trained.tokenize(text)
        # By id: unigram shows an unknown character as itself, with the id of [UNK].
        if trained.unk_token_id in trained.convert_tokens_to_ids(tokens):
            continue  # a word (WordPiece) or character (unigram) outside the vocabulary: checked below
        unknown_free += 1
        if kind_of(trained) == "unigram":
            # The pieces, with ▁ read as a space, are the text with its own spacing.
            assert "".join(tokens).replace("▁", " ").strip() == text
            assert trained.decode(trained(text)["input_ids"], skip_special_tokens=True) == text
        else:
            # The words BERT's pre-tokenizer should have made, each spelled by its pieces.
            assert wordpiece_words(tokens) == split_punctuation(text)
    # Most reviews are checked: at 2,000 tokens WordPiece keeps 665 characters, and a third of the reviews hold a
    # word with another one (unigram keeps nearly every character).
    assert unknown_free >= len(held_out) // 2


def test_hangul_stays_in_precomposed_syllables(trained) -> None:
    tokens = trained.tokenize(SENTENCE)
    characters = "".join(token.removeprefix("##").replace("▁", "") for token in tokens)
    assert characters == SENTENCE.replace(" ", "")
    assert all(0xAC00 <= ord(char) <= 0xD7A3 for char in characters)
    # No entry anywhere in the vocabulary holds conjoining jamo (what NFD or NFKC would have made).
    jamo = [token for token in trained.get_vocab() if any(0x1100 <= ord(char) <= 0x11FF for char in token)]
    assert jamo == []


def test_compatibility_jamo_are_kept_as_typed(trained) -> None:
    # NFKC would turn ㅋㅋㅋㅠㅠ into ᄏᄏ큐ᅲ (conjoining jamo composing into a syllable).
    text = "ㅋㅋㅋㅠㅠ"
    characters = "".join(token.removeprefix("##").replace("▁", "") for token in trained.tokenize(text))
    assert characters == text


def test_decomposed_hangul_is_composed(trained) -> None:
    decomposed = unicodedata.normalize("NFD", SENTENCE)
    assert decomposed != SENTENCE
    assert trained(decomposed)["input_ids"] == trained(SENTENCE)["input_ids"]


def test_the_student_embeds_the_tokenizer_ids(trained) -> None:
    config = bilstm_config("tiny", vocab_size=len(trained), pad_token_id=trained.pad_token_id, num_labels=2)
    model = KoBiLstmForSequenceClassification(config).eval()
    assert model.bilstm.embeddings.num_embeddings == VOCAB_SIZE
    batch = trained(["정말 재미있어요", "별로"], padding=True, return_tensors="pt")
    with torch.no_grad():
        assert model(**batch).logits.shape == (2, 2)


@pytest.mark.parametrize("kind", KINDS)
def test_too_little_text_is_an_error_with_the_numbers(kind: str) -> None:
    with pytest.raises(ValueError, match=r"reached only [\d,]+ of the 3,000 tokens") as raised:
        train_student_tokenizer(lambda: iter(nsmc_texts(NSMC_TRAIN, 100)), 3000, kind=kind)
    reached = int(re.search(r"only ([\d,]+)", str(raised.value)).group(1).replace(",", ""))
    assert 5 < reached < 3000
    assert "more text or a smaller vocabulary size" in str(raised.value)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown tokenizer kind 'bpe'"):
        train_student_tokenizer(lambda: ["가"], 100, kind="bpe")
    with pytest.raises(ValueError, match="larger than the 5 special tokens"):
        train_student_tokenizer(lambda: ["가"], 5)


def test_saved_folders_load_with_auto_tokenizer_here_and_in_a_fresh_process(
    tokenizers_by_kind: dict, tmp_path: Path, held_out: list[str]
) -> None:
    texts = [*held_out[:20], "영화[MASK]정말", SENTENCE]
    expected = {}
    for kind, tokenizer in tokenizers_by_kind.items():
        tokenizer.save_pretrained(tmp_path / kind)
        assert (tmp_path / kind / "tokenizer.json").is_file()
        expected[kind] = [VOCAB_SIZE, 0, "right", [tokenizer(text)["input_ids"] for text in texts]]
        reloaded = AutoTokenizer.from_pretrained(tmp_path / kind)
        loaded = [
            len(reloaded),
            reloaded.pad_token_id,
            reloaded.padding_side,
            [reloaded(t)["input_ids"] for t in texts],
        ]
        assert loaded == expected[kind]
    script = (
        "import json, sys; from transformers import AutoTokenizer; texts = json.loads(sys.stdin.read()); "
        "loaded = {kind: AutoTokenizer.from_pretrained(kind) for kind in sys.argv[1:]}; "
        "print(json.dumps({kind: [len(t), t.pad_token_id, t.padding_side, [t(x)['input_ids'] for x in texts]] "
        "for kind, t in loaded.items()}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, *KINDS],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        cwd=tmp_path,  # away from the repository: nothing of ours is importable or needed
        check=True,
    )
    assert json.loads(done.stdout) == expected


def write_nsmc(path: Path, texts: list[str]) -> None:
    rows = ["id\tdocument\tlabel", *(f"{i}\t{text}\t{i % 2}" for i, text in enumerate(texts))]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def test_the_command_trains_on_tsv_and_plain_text(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    texts = nsmc_texts(NSMC_TRAIN, 1000)
    write_nsmc(tmp_path / "train.tsv", texts[:500])
    with gzip.open(tmp_path / "more.txt.gz", "wt", encoding="utf-8") as f:
        f.write("\n".join(texts[500:]) + "\n")
    output = tmp_path / "tokenizer"
    main(
        [
            "--train_files",
            str(tmp_path / "train.tsv"),
            str(tmp_path / "more.txt.gz"),
            "--vocab_size",
            "800",
            "--output_dir",
            str(output),
        ]
    )
    assert capsys.readouterr().out == f"wrote {output / 'tokenizer.json'}: 800 tokens (wordpiece)\n"
    assert len(AutoTokenizer.from_pretrained(output)) == 800
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging folder left


def test_the_command_refuses_bad_input_with_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.tsv"
    write_nsmc(bad, ["좋은 영화", "별로"])
    bad.write_text(bad.read_text(encoding="utf-8") + "7\t둘째 열만\n", encoding="utf-8")
    output = tmp_path / "out"
    with pytest.raises(SystemExit, match=rf"^error: {re.escape(str(bad))}:4: "):
        main(["--train_files", str(bad), "--vocab_size", "100", "--output_dir", str(output)])
    small = tmp_path / "small.txt"
    small.write_text("좋은 영화\n별로\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"^error: the wordpiece vocabulary reached only \d+ of the 3,000 tokens"):
        main(["--train_files", str(small), "--output_dir", str(output)])
    assert not output.exists()
    output.mkdir()
    (output / "tokenizer.json").write_text("{}")
    with pytest.raises(SystemExit):
        main(["--train_files", str(small), "--output_dir", str(output)])
    assert "exists and is not empty; pass --overwrite" in capsys.readouterr().err


DETERMINISM_SCRIPT = """
import json, sys
from distill.tokenizer import train_student_tokenizer
texts = json.loads(sys.stdin.read())
tokenizer = train_student_tokenizer(lambda: iter(texts), int(sys.argv[1]), sys.argv[2])
print(json.dumps(tokenizer.get_vocab(), sort_keys=True))
"""


def test_the_same_text_gives_the_same_wordpiece_tokenizer_in_every_process() -> None:
    # Rust's hash maps are seeded per process: WordPiece's own alphabet limit kept a different one of two equally
    # frequent characters from one process to the next, numbered the ## pieces in hash order, and broke ties between
    # equally frequent merges by those numbers (one process in eight chose other merges on these 600 reviews). Four
    # processes, and this one, must agree. (Unigram's scores still differ in the 2nd decimal: see
    # train_student_tokenizer.)
    kind, lines, size = "wordpiece", 600, 400
    texts = nsmc_texts(NSMC_TRAIN, lines)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", DETERMINISM_SCRIPT, str(size), kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for _ in range(4)
    ]
    vocabularies = [json.loads(process.communicate(json.dumps(texts))[0]) for process in processes]
    assert all(process.returncode == 0 for process in processes)
    here = train_student_tokenizer(lambda: iter(texts), size, kind).get_vocab()
    assert all(vocabulary == here for vocabulary in vocabularies)

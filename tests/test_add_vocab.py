"""modeling/add_vocab.py on tiny random BERT and DistilBERT masked LMs with the real KoBERT vocabulary: old ids kept,
new tokens whole, new rows the means of their old pieces (pieces from kobert-transformers' tokenizer, rows from the
old safetensors file), and the result trained on by pretrain/run.py without a teacher."""

from __future__ import annotations

import contextlib
import gzip
import io
import itertools
import json
from pathlib import Path

import pytest
import torch
from conftest import KOBERT_FILES, ROOT
from kobert_transformers.tokenization_kobert import KoBertTokenizer as ReferenceKoBertTokenizer
from safetensors.torch import load_file
from transformers import (
    AutoModelForMaskedLM,
    AutoTokenizer,
    BertConfig,
    BertForMaskedLM,
    DistilBertConfig,
    DistilBertForMaskedLM,
)

from modeling.add_vocab import main
from modeling.vocab_growth import add_tokens_with_mean_rows, mean_rows, plan_tokens
from pretrain.prepare import PrepareArguments, prepare_corpus
from pretrain.run import main as run
from tokenization_kobert import KoBertTokenizerFast

NSMC_TEST = ROOT / "data" / "nsmc_test.txt.gz"
TINY_CONFIG = str(ROOT / "pretrain" / "configs" / "tiny.yaml")
# Slang KoBERT's vocabulary splits (잼 and 띵 are [UNK] in it), then what must be skipped: a repeat, a blank line,
# a word KoBERT has as one piece, a vocabulary entry (a continuation piece) and a special token.
NEW_TOKENS = ["갓띵작", "핵노잼", "넷플릭스", "꿀잼"]
TOKENS_FILE = "갓띵작\n핵노잼\n\n넷플릭스\n  꿀잼  \n갓띵작\n영화\n이다\n[MASK]\n"
PRESENT = ["영화", "이다", "[MASK]"]
OLD_SIZE = 8002
# Weights that hold one row (or entry) per token, by model type.
PER_TOKEN = {
    "bert": ["bert.embeddings.word_embeddings.weight", "cls.predictions.bias"],
    "distilbert": ["distilbert.embeddings.word_embeddings.weight", "vocab_projector.bias"],
}


@pytest.fixture(scope="module")
def old_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random masked LMs of both kinds, each saved with the real KoBERT tokenizer."""
    torch.manual_seed(0)
    tiny = {"vocab_size": OLD_SIZE, "max_position_embeddings": 64, "pad_token_id": 1}
    built = {
        "bert": BertForMaskedLM(
            BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, **tiny)
        ),
        "distilbert": DistilBertForMaskedLM(DistilBertConfig(dim=32, n_layers=2, n_heads=4, hidden_dim=64, **tiny)),
    }
    root = tmp_path_factory.mktemp("old")
    for name, model in built.items():
        with torch.no_grad():  # a non-zero output bias, so that its new entries are a real check
            model.get_output_embeddings().bias.normal_()
        model.save_pretrained(root / name)
        KoBertTokenizerFast(**KOBERT_FILES).save_pretrained(root / name)
    return {name: root / name for name in built}


@pytest.fixture(scope="module")
def tokens_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tokens") / "tokens.txt"
    path.write_text(TOKENS_FILE, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def grown(old_models: dict[str, Path], tokens_file: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Each model through the command: its output folder and what it printed."""
    root = tmp_path_factory.mktemp("grown")
    done = {}
    for name, folder in old_models.items():
        output = root / name
        shown = io.StringIO()
        with contextlib.redirect_stdout(shown):
            main(["--model_name_or_path", str(folder), "--tokens_file", str(tokens_file), "--output_dir", str(output)])
        done[name] = {"folder": output, "printed": shown.getvalue().splitlines()}
    return done


@pytest.fixture(scope="module")
def reviews() -> list[str]:
    """Real reviews holding none of the new tokens."""
    with gzip.open(NSMC_TEST, "rt", encoding="utf-8") as f:
        texts = [line.split("\t")[1] for line in itertools.islice(f, 1, 400)]
    return [text for text in texts if not any(token in text for token in NEW_TOKENS)]


def reference_pieces(token: str) -> list[int]:
    """The ids kobert-transformers 0.6.0 (the reference KoBERT tokenizer) gives the token alone."""
    reference = ReferenceKoBertTokenizer(**KOBERT_FILES)
    return reference.convert_tokens_to_ids(reference.tokenize(token))


@pytest.mark.parametrize("kind", ["bert", "distilbert"])
def test_the_command_reports_what_it_added_and_skipped(grown: dict, kind: str) -> None:
    printed = grown[kind]["printed"]
    assert printed[0] == f"added 4 tokens: {', '.join(NEW_TOKENS)}"
    assert printed[1] == f"skipped 3 already in the vocabulary: {', '.join(PRESENT)}"
    model_class = {"bert": "BertForMaskedLM", "distilbert": "DistilBertForMaskedLM"}[kind]
    assert printed[2] == f"wrote {grown[kind]['folder']}: {model_class}, vocabulary 8,002 -> 8,006"
    record = json.loads((grown[kind]["folder"] / "add_vocab.json").read_text(encoding="utf-8"))
    assert [(t["token"], t["line"]) for t in record["added"]] == list(zip(NEW_TOKENS, [1, 2, 4, 5], strict=True))


@pytest.mark.parametrize("kind", ["bert", "distilbert"])
def test_old_ids_are_unchanged_and_new_tokens_are_whole(grown: dict, reviews: list[str], kind: str) -> None:
    old = KoBertTokenizerFast(**KOBERT_FILES)
    new = AutoTokenizer.from_pretrained(grown[kind]["folder"], trust_remote_code=True)
    assert len(new) == OLD_SIZE + len(NEW_TOKENS)
    assert new.convert_ids_to_tokens(list(range(OLD_SIZE))) == old.convert_ids_to_tokens(list(range(OLD_SIZE)))
    assert len(reviews) > 300
    assert new(reviews)["input_ids"] == old(reviews)["input_ids"]
    for offset, token in enumerate(NEW_TOKENS):
        new_id = OLD_SIZE + offset
        assert new(token, add_special_tokens=False)["input_ids"] == [new_id]
        in_sentence = new(f"이 영화는 {token}이다 진짜 {token}")["input_ids"]
        assert in_sentence.count(new_id) == 2
        assert new.convert_ids_to_tokens(new_id) == token


@pytest.mark.parametrize("kind", ["bert", "distilbert"])
def test_new_rows_are_the_means_of_the_old_pieces_rows(old_models: dict, grown: dict, kind: str) -> None:
    before = load_file(old_models[kind] / "model.safetensors")
    after = load_file(grown[kind]["folder"] / "model.safetensors")
    pieces = [reference_pieces(token) for token in NEW_TOKENS]
    assert pieces[0] == [517, 5347, 0, 7170]  # ▁ 갓 [UNK] 작: the word-start piece and [UNK] count too
    for name in PER_TOKEN[kind]:
        assert after[name].shape[0] == OLD_SIZE + len(NEW_TOKENS)
        assert torch.equal(after[name][:OLD_SIZE], before[name])  # old rows untouched
        for offset, rows in enumerate(pieces):
            expected = sum(before[name][i].double() for i in rows) / len(rows)
            torch.testing.assert_close(after[name][OLD_SIZE + offset].double(), expected, rtol=0, atol=1e-6)
    # Everything else is the old model's, weight for weight.
    for name, weight in before.items():
        if name not in PER_TOKEN[kind]:
            assert torch.equal(after[name], weight), name


@pytest.mark.parametrize("kind", ["bert", "distilbert"])
def test_the_folder_reloads_with_tied_embeddings(grown: dict, kind: str) -> None:
    model = AutoModelForMaskedLM.from_pretrained(grown[kind]["folder"])
    assert model.config.vocab_size == OLD_SIZE + len(NEW_TOKENS)
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    assert model.get_output_embeddings().bias.shape == (OLD_SIZE + len(NEW_TOKENS),)


def test_mean_rows_by_hand() -> None:
    matrix = torch.tensor([[0.0, 2.0], [4.0, 6.0], [1.0, 1.0]])
    expected = torch.tensor([[2.0, 4.0], [1.0, 1.0], [1 / 3, 5 / 3]])
    torch.testing.assert_close(mean_rows(matrix, [[0, 1], [2], [0, 0, 2]]), expected)
    assert mean_rows(torch.tensor([1.0, 3.0]), [[0, 1]]).tolist() == [2.0]


def test_pretrain_run_continues_masked_lm_training_without_a_teacher(grown: dict, tmp_path: Path) -> None:
    folder = grown["bert"]["folder"]
    corpus = tmp_path / "new_text.txt"
    lines = [f"이 영화는 {a} 진짜 {b} 이다" for a, b in itertools.product(NEW_TOKENS, repeat=2)] * 8
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = tmp_path / "data"
    prepare_corpus(
        PrepareArguments(
            corpus=[str(corpus)], tokenizer_name_or_path=str(folder), output_dir=str(data), max_seq_length=32
        )
    )
    output = tmp_path / "more"
    args = ["--config", TINY_CONFIG, "--teacher", "", "--student", str(folder), "--data_dir", str(data)]
    args += ["--output_dir", str(output), "--alpha_ce", "0", "--alpha_cos", "0", "--alpha_mlm", "1"]
    args += ["--max_steps", "2", "--eval_steps", "0", "--save_steps", "100", "--report_to", "none"]
    run(args)
    trained = AutoModelForMaskedLM.from_pretrained(output / "final")
    assert trained.config.vocab_size == OLD_SIZE + len(NEW_TOKENS)
    rows = trained.get_input_embeddings().weight[OLD_SIZE:]
    start = AutoModelForMaskedLM.from_pretrained(folder).get_input_embeddings().weight[OLD_SIZE:]
    assert not torch.equal(rows, start)  # the new rows were trained on


def test_bad_token_files_are_refused_with_the_line(
    old_models: dict, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    tokens = tmp_path / "tokens.txt"
    argv = ["--model_name_or_path", str(old_models["bert"]), "--tokens_file", str(tokens)]
    argv += ["--output_dir", str(tmp_path / "out")]
    tokens.write_text("갓띵작\n\n\u200b\n", encoding="utf-8")  # a zero-width space: nothing left to match
    with pytest.raises(SystemExit, match=rf"error: {tokens}:3: the token '\\u200b' encodes to no pieces"):
        main(argv)
    tokens.write_text("영화\n[CLS]\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"no token to add \(2 already in the vocabulary\)"):
        main(argv)
    assert not (tmp_path / "out").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(SystemExit):
        main(
            [
                "--model_name_or_path",
                str(old_models["bert"]),
                "--tokens_file",
                str(tokens),
                "--output_dir",
                str(tmp_path / "full"),
            ]
        )
    assert "exists and is not empty; pass --overwrite" in capsys.readouterr().err


def test_a_model_without_a_masked_lm_head_is_refused(tmp_path: Path, tokens_file: Path) -> None:
    from transformers import BertModel

    encoder = tmp_path / "encoder"
    config = BertConfig(
        vocab_size=OLD_SIZE, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64
    )
    BertModel(config).save_pretrained(encoder)
    KoBertTokenizerFast(**KOBERT_FILES).save_pretrained(encoder)
    with pytest.raises(SystemExit, match="not a masked LM with a trained head"):
        main(
            [
                "--model_name_or_path",
                str(encoder),
                "--tokens_file",
                str(tokens_file),
                "--output_dir",
                str(tmp_path / "out"),
            ]
        )


def test_untied_output_embeddings_get_the_means_of_their_own_rows() -> None:
    torch.manual_seed(1)
    config = BertConfig(
        vocab_size=OLD_SIZE,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        tie_word_embeddings=False,
    )
    model = BertForMaskedLM(config)
    before = {name: weight.detach().clone() for name, weight in model.state_dict().items()}
    assert not torch.equal(before["cls.predictions.decoder.weight"], before["bert.embeddings.word_embeddings.weight"])
    tokenizer = KoBertTokenizerFast(**KOBERT_FILES)
    new, _ = plan_tokens(tokenizer, iter(enumerate(NEW_TOKENS, start=1)), "tokens.txt")
    add_tokens_with_mean_rows(model, tokenizer, new)
    after = model.state_dict()
    assert (
        after["cls.predictions.decoder.weight"].data_ptr() != after["bert.embeddings.word_embeddings.weight"].data_ptr()
    )
    for name in ["bert.embeddings.word_embeddings.weight", "cls.predictions.decoder.weight", "cls.predictions.bias"]:
        assert torch.equal(after[name][:OLD_SIZE], before[name])
        for offset, token in enumerate(NEW_TOKENS):
            rows = reference_pieces(token)
            expected = sum(before[name][i].double() for i in rows) / len(rows)
            torch.testing.assert_close(after[name][OLD_SIZE + offset].double(), expected, rtol=0, atol=1e-6)

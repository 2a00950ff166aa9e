"""serve.export and serve.predict: every model kind exported to ONNX and checked against independent references.

The references: the transformers model reloaded from the exported folder (one path), sentence-transformers' own
``encode`` for the encoders (its pooling, not ours), hand-computed metrics, and answers of single, unpadded inputs
for the length-sorted padded batches.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from serve.export import INT8_FILE, ONNX_FOLDER, REPORT_FILE, ExportArguments, ensure_exported, export, main
from serve.models import load_model
from serve.onnx_export import task_metric
from serve.predict import WORD, Predictor, entities, onnx_backend, torch_backend

pytestmark = pytest.mark.usefixtures("one_torch_thread")
REVIEWS = ["정말 재미있어요", "배우들 연기가 최고! 스토리는 좀 아쉽지만 또 보고 싶다", "별로", "ㅋㅋㅋ 이게 뭐야"]
KINDS = {
    "bert-classify": "classify",
    "distilbert-classify": "classify",
    "bilstm-classify": "classify",
    "distilbert-ner": "ner",
    "bert-qa": "qa",
    "sentence-mean": "embed",
    "sentence-cls-normalized": "embed",
}


@pytest.fixture(scope="module")
def exported(served_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every model exported once (float graphs; the classifiers also int8) into its own output folder."""
    root = tmp_path_factory.mktemp("exported")
    for name, folder in served_models.items():
        int8 = ["--int8", "--check_examples", "100", "--max_metric_drop", "100"] if "classify" in name else []
        main(["--model_name_or_path", str(folder), "--output_dir", str(root / name), "--parity_examples", "8", *int8])
    return {name: root / name for name in served_models}


def items_of(kind: str) -> list:
    if kind == "qa":
        return [{"question": q, "context": c} for q, c in zip(REVIEWS, reversed(REVIEWS), strict=True)]
    return REVIEWS


@pytest.mark.parametrize("name", list(KINDS))
def test_export_writes_a_checked_graph_beside_the_model_files(exported: dict[str, Path], name: str) -> None:
    folder = exported[name]
    report = json.loads((folder / ONNX_FOLDER / REPORT_FILE).read_text())
    assert report["kind"] == KINDS[name]
    assert report["parity"]["max_abs_difference"] <= 1e-4 and report["parity"]["inputs"] == 8
    assert (folder / "config.json").is_file() and (folder / "tokenizer_config.json").is_file()
    assert load_model(str(folder)).kind == KINDS[name]  # the folder loads with one path


@pytest.mark.parametrize("name", ["bert-classify", "distilbert-classify", "bilstm-classify"])
def test_classifier_graph_equals_the_transformers_model_reloaded_from_the_folder(
    exported: dict[str, Path], name: str
) -> None:
    from transformers import AutoModelForSequenceClassification

    from modeling.load import load_tokenizer

    folder = exported[name]
    model = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True).eval()
    batch = load_tokenizer(str(folder))(REVIEWS, padding=True, return_tensors="np")
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    (graph,) = onnx_backend(str(folder / ONNX_FOLDER / "model.onnx"))(inputs)
    with torch.no_grad():
        expected = model(**{k: torch.from_numpy(v) for k, v in inputs.items()}).logits.numpy()
    np.testing.assert_allclose(graph, expected, atol=1e-5)


@pytest.mark.parametrize("name", ["sentence-mean", "sentence-cls-normalized"])
def test_encoder_graph_equals_sentence_transformers_encode(exported: dict[str, Path], name: str) -> None:
    from sentence_transformers import SentenceTransformer

    folder = exported[name]
    expected = SentenceTransformer(str(folder)).encode(REVIEWS, convert_to_numpy=True)
    loaded = load_model(str(folder))
    vectors = Predictor(loaded, onnx_backend(str(folder / ONNX_FOLDER / "model.onnx"))).predict(REVIEWS)
    np.testing.assert_allclose(np.array(vectors), expected, atol=1e-5)
    if name == "sentence-cls-normalized":
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("name", list(KINDS))
def test_a_padded_length_sorted_batch_answers_each_item_as_alone(exported: dict[str, Path], name: str) -> None:
    loaded = load_model(str(exported[name]))
    predictor = Predictor(loaded, onnx_backend(str(exported[name] / ONNX_FOLDER / "model.onnx")), batch_size=3)
    items = items_of(KINDS[name])
    together = predictor.outputs(items)
    alone = [predictor.outputs([item])[0] for item in items]
    assert len(together) == len(alone)  # a short QA context is one window
    for batch_outputs, single_outputs in zip(together, alone, strict=True):
        for batched, single in zip(batch_outputs, single_outputs, strict=True):
            np.testing.assert_allclose(batched, single, atol=1e-5)


def test_int8_graphs_are_written_with_both_metrics(exported: dict[str, Path]) -> None:
    for name in ("bert-classify", "bilstm-classify"):
        report = json.loads((exported[name] / ONNX_FOLDER / REPORT_FILE).read_text())["int8"]
        assert report["metric"] == "accuracy" and report["examples"] == 100
        assert report["drop"] == pytest.approx(report["float"] - report["int8"], abs=0.011)
        graph = exported[name] / ONNX_FOLDER / INT8_FILE
        assert graph.stat().st_size < (exported[name] / ONNX_FOLDER / "model.onnx").stat().st_size / 2


def test_int8_that_loses_too_much_is_refused_and_nothing_is_written(
    served_models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "refused"
    argv = ["--model_name_or_path", str(served_models["bert-classify"]), "--output_dir", str(output), "--int8"]
    # A drop of at most -50 points: int8 would have to beat float by 50, so the check fails.
    with pytest.raises(SystemExit, match="points below the float graph's"):
        main([*argv, "--parity_examples", "4", "--check_examples", "50", "--max_metric_drop", "-50"])
    assert not (output / ONNX_FOLDER).exists()


def test_pytorch_and_onnx_predictors_give_the_same_answers(served_models: dict[str, Path], tmp_path: Path) -> None:
    report = export(
        ExportArguments(
            model_name_or_path=str(served_models["distilbert-ner"]), output_dir=str(tmp_path), parity_examples=4
        )
    )
    assert report.kind == "ner" and report.parity["inputs"] == 4 and report.int8 is None
    loaded = load_model(str(tmp_path))
    by_torch = Predictor(loaded, torch_backend(loaded)).predict(REVIEWS)
    by_onnx = Predictor(loaded, onnx_backend(str(tmp_path / ONNX_FOLDER / "model.onnx"))).predict(REVIEWS)
    assert by_onnx == by_torch
    assert [[w["word"] for w in answer["words"]] for answer in by_onnx] == [text.split() for text in REVIEWS]


def test_command_errors_name_the_problem(served_models: dict[str, Path], models: dict[str, Path], tmp_path: Path):
    with pytest.raises(SystemExit, match=r"error: model folder .*missing' does not exist"):
        main(["--model_name_or_path", str(tmp_path / "missing"), "--output_dir", str(tmp_path / "out")])
    with pytest.raises(SystemExit, match=r"error: .*BertForMaskedLM.*fine-tune"):
        main(["--model_name_or_path", str(models["bert"]), "--output_dir", str(tmp_path / "out")])
    (tmp_path / "taken" / ONNX_FOLDER).mkdir(parents=True)
    taken = ExportArguments(model_name_or_path=str(served_models["bert-qa"]), output_dir=str(tmp_path / "taken"))
    with pytest.raises(ValueError, match="taken/onnx exists; pass --overwrite"):
        export(taken)
    with pytest.raises(SystemExit, match="needs --check_file"):
        main(["--model_name_or_path", str(served_models["bert-qa"]), "--output_dir", str(tmp_path / "qa"), "--int8"])


def test_entities_follow_seqeval_reading_of_the_tags() -> None:
    text = "홍길동 씨는 서울 강남에 산다 김철수"
    words = list(WORD.finditer(text))
    tags = ["B-PER", "O", "B-LOC", "I-LOC", "O", "I-PER"]  # an I- tag after O starts an entity, as in seqeval
    found = entities(text, words, tags)
    assert [(e["type"], e["text"]) for e in found] == [("PER", "홍길동"), ("LOC", "서울 강남에"), ("PER", "김철수")]
    assert all(text[e["start"] : e["end"]] == e["text"] for e in found)
    from seqeval.metrics.sequence_labeling import get_entities

    assert [(t, s, e) for t, s, e in get_entities(tags)] == [("PER", 0, 0), ("LOC", 2, 3), ("PER", 5, 5)]


def test_task_metrics_against_hand_computations() -> None:
    answers = [{"label": "positive"}, {"label": "negative"}, {"label": "positive"}, {"label": "positive"}]
    assert task_metric("classify", answers, ["positive", "negative", "negative", "positive"]) == 75.0
    # Gold has two entities, the prediction finds one of them: precision 1, recall 1/2, F1 2/3.
    tagged = [{"words": [{"tag": t} for t in ["B-PER", "I-PER", "O", "O"]]}]
    assert task_metric("ner", tagged, [["B-PER", "I-PER", "O", "B-LOC"]]) == pytest.approx(200 / 3)
    # Cosine similarities 1, 0, -1 against gold 5, 3, 0: a monotone match, Spearman 1.
    vectors = [[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]
    assert task_metric("embed", vectors, [5.0, 3.0, 0.0]) == pytest.approx(100.0)
    examples = [{"id": "a", "answers": [{"text": "서울"}]}, {"id": "b", "answers": [{"text": "부산"}]}]
    assert task_metric("qa", [{"answer": "서울"}, {"answer": "대구"}], examples) == 50.0


def test_the_service_exports_into_its_cache_once_and_never_into_the_model_folder(
    served_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, cache = served_models["distilbert-classify"], tmp_path / "cache"
    before = sorted(p.name for p in folder.iterdir())
    loaded = load_model(str(folder))
    # The model the service has loaded is the one exported: loading it again is an error here.
    monkeypatch.setattr("serve.onnx_export.load_model", lambda *a: pytest.fail("the model was loaded twice"))
    graph = ensure_exported(str(folder), False, cache, loaded)
    assert graph.is_file() and cache in graph.parents
    assert sorted(p.name for p in folder.iterdir()) == before  # it once wrote DIR/onnx/ on start-up
    written = graph.stat().st_mtime_ns
    assert ensure_exported(str(folder), False, cache) == graph and graph.stat().st_mtime_ns == written  # reused
    # A folder with its own graph (serve.export --output_dir DIR) is used as it is.
    assert ensure_exported(str(graph.parent.parent), False, tmp_path / "other") == graph

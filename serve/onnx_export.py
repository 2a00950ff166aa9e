"""The work of ``serve.export.export`` (which checks the options, then calls ``export_folder``): the model traced to
ONNX, its outputs checked against PyTorch's on real texts, and the int8 copy checked on the task's metric.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import shutil
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.io import new_folder, write_json
from common.readers import read_ner, read_nsmc, read_squad, read_sts
from serve.export import BUNDLED_REVIEWS, FLOAT_FILE, INT8_FILE, ONNX_FOLDER, REPORT_FILE, ExportArguments, ExportReport
from serve.models import LoadedModel, load_model
from serve.predict import Predictor, onnx_backend, torch_backend

logger = logging.getLogger("serve.export")
OPSET = 17
METRIC_NAMES = {"classify": "accuracy", "embed": "spearman", "ner": "entity_f1", "qa": "exact_match"}


class CheckFailed(ValueError):
    """An exported graph failed its parity or metric check; the message has the figures."""


@dataclass(frozen=True)
class Sample:
    """Held-out inputs of a kind and what scores the answers to them."""

    items: list[Any]
    gold: list[Any]


def parity_items(kind: str, path: str, count: int) -> list[Any]:
    """Real texts for the parity check: reviews, and for question answering pairs of consecutive reviews."""
    texts = [record["document"] for record in read_nsmc(path, "test")[: count + 1]]
    if kind == "qa":
        return [{"question": q, "context": c} for q, c in itertools.pairwise(texts)]
    return texts[:count]


def check_sample(loaded: LoadedModel, path: str | None, count: int) -> Sample:
    """The first ``count`` labelled examples of the held-out file, read by the kind's reader."""
    kind = loaded.kind
    if path is None:
        if kind != "classify":
            raise ValueError(f"--int8 for a {kind} model needs --check_file: labelled held-out data of its task")
        path = BUNDLED_REVIEWS
    if kind == "classify":
        records = read_nsmc(path, "test")[:count]
        labels = loaded.labels
        if any(r["label"] >= len(labels) for r in records):
            raise ValueError(f"{path}: labels beyond the model's {len(labels)} ({', '.join(labels)})")
        return Sample([r["document"] for r in records], [labels[r["label"]] for r in records])
    if kind == "embed":
        records = read_sts(path, "test")[:count]
        return Sample(
            [r["sentence1"] for r in records] + [r["sentence2"] for r in records], [r["score"] for r in records]
        )
    if kind == "ner":
        from common.ner_tags import to_seqeval

        records = read_ner(path, loaded.labels, "test")[:count]
        return Sample([" ".join(r["words"]) for r in records], [[to_seqeval(t) for t in r["labels"]] for r in records])
    examples, _ = read_squad(path, "test")
    examples = examples[:count]
    return Sample([{"question": e["question"], "context": e["context"]} for e in examples], examples)


def task_metric(kind: str, answers: list[Any], gold: list[Any]) -> float:
    """The kind's metric in points: accuracy %, Spearman x 100 of cosine similarity, entity F1 %, KorQuAD EM %.
    ``gold``: label names, STS scores, word tags, KorQuAD examples."""
    if kind == "classify":
        return 100 * float(np.mean([answer["label"] == label for answer, label in zip(answers, gold, strict=True)]))
    if kind == "embed":
        from scipy.stats import spearmanr

        vectors = np.array(answers, dtype=np.float64)
        first, second = vectors[: len(gold)], vectors[len(gold) :]
        cosine = (first * second).sum(1) / (np.linalg.norm(first, axis=1) * np.linalg.norm(second, axis=1))
        return 100 * float(spearmanr(cosine, gold).statistic)
    if kind == "ner":
        from seqeval.metrics import f1_score

        predicted = [[word["tag"] for word in answer["words"]] for answer in answers]
        return 100 * float(f1_score(gold, predicted))
    from common import korquad_metric

    predictions = {example["id"]: answer["answer"] for example, answer in zip(gold, answers, strict=True)}
    return 100 * korquad_metric.evaluate(gold, predictions)["exact_match"]


@contextlib.contextmanager
def eager_attention(module: torch.nn.Module) -> Iterator[None]:
    """Every transformers model inside ``module`` on its eager attention while inside, as it was after.

    Traced with SDPA, attention becomes a graph ONNX Runtime does not fuse and its int8 copy runs slower: measured on
    a KoBERT-shaped 3-layer student at batch 32 (2 cores), int8 at 12.5x the PyTorch teacher from an SDPA trace
    against 13.3x from an eager one on reviews, 10.6x against 14.1x on 32 x 128 tokens, with the same outputs
    (benchmarks/RESULTS.md, issue 34)."""
    from transformers import PreTrainedModel

    changed = [
        (model, model.config._attn_implementation)
        for model in module.modules()
        if isinstance(model, PreTrainedModel) and model.config._attn_implementation not in (None, "eager")
    ]
    for model, _ in changed:
        model.set_attn_implementation("eager")
    try:
        yield
    finally:
        for model, implementation in changed:
            model.set_attn_implementation(implementation)


def export_float(loaded: LoadedModel, path: Path, example: list[Any], eager: bool = True) -> None:
    """The TorchScript-based ONNX export of the model on its eager attention (``eager``; else as loaded), batch and
    sequence axes dynamic."""
    predictor = Predictor(loaded, torch_backend(loaded))
    batch = predictor.tokenizer.pad(predictor.encode(example)[1], return_tensors="pt")
    inputs = tuple(batch[name].long() for name in loaded.input_names)
    axes = {name: {0: "batch", 1: "sequence"} for name in loaded.input_names}
    per_token = loaded.kind in ("ner", "qa")
    axes.update({name: {0: "batch", **({1: "sequence"} if per_token else {})} for name in loaded.output_names})
    with warnings.catch_warnings(), eager_attention(loaded.module) if eager else contextlib.nullcontext():
        # The TorchScript exporter's deprecation notice and tracer warnings on shape arithmetic (the graph is
        # checked at other shapes below).
        warnings.simplefilter("ignore")
        torch.onnx.export(
            loaded.module,
            inputs,
            str(path),
            input_names=list(loaded.input_names),
            output_names=list(loaded.output_names),
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )


def quantize_int8(float_path: Path, int8_path: Path) -> None:
    """ONNX Runtime's dynamic int8 copy of a float graph (weights int8, activations quantised per call)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser logs a line per tensor, through the root logger
    try:
        # Float where shape inference gives a tensor no type (outputs of ONNX Runtime's own fused operators).
        extra = {"DefaultTensorType": onnx.TensorProto.FLOAT}
        quantize_dynamic(str(float_path), str(int8_path), weight_type=QuantType.QInt8, extra_options=extra)
    finally:
        root.setLevel(level)


def max_difference(expected: list[list[np.ndarray]], actual: list[list[np.ndarray]]) -> float:
    return max(
        float(np.abs(e - a).max())
        for es, as_ in zip(expected, actual, strict=True)
        for e, a in zip(es, as_, strict=True)
    )


def copy_model_files(model: str, output: Path) -> None:
    """The model folder's files into ``output`` (not an onnx/ folder it may already have)."""
    if Path(model).resolve() == output.resolve():
        return
    shutil.copytree(model, output, ignore=shutil.ignore_patterns(ONNX_FOLDER), dirs_exist_ok=True)


def export_folder(args: ExportArguments, loaded: LoadedModel | None = None) -> ExportReport:
    """Write ``args.output_dir`` and return the report (also ``onnx/export.json``); CheckFailed writes nothing.
    ``loaded`` is ``args.model_name_or_path`` when the caller has it loaded already (the service: one load, not
    two)."""
    loaded = loaded or load_model(args.model_name_or_path, args.max_seq_length)
    items = parity_items(loaded.kind, args.parity_file, args.parity_examples)
    output = Path(args.output_dir)
    with new_folder(output / ONNX_FOLDER, ONNX_FOLDER) as staging:
        report = build_graphs(loaded, items, staging, args)
        copy_model_files(args.model_name_or_path, output)
        write_json(staging / REPORT_FILE, report.to_json())
    return report


def build_graphs(loaded: LoadedModel, items: list[Any], folder: Path, args: ExportArguments) -> ExportReport:
    """The float graph (and the int8 one) in ``folder``, each checked; the figures as a report."""
    start = time.perf_counter()
    export_float(loaded, folder / FLOAT_FILE, items[:2])
    torch_outputs = Predictor(loaded, torch_backend(loaded)).outputs(items)
    float_predictor = Predictor(loaded, onnx_backend(str(folder / FLOAT_FILE)))
    difference = max_difference(torch_outputs, float_predictor.outputs(items))
    report = ExportReport(
        model=args.model_name_or_path,
        kind=loaded.kind,
        exporter=f"torch.onnx.export(dynamo=False), opset {OPSET}, torch {torch.__version__}",
        inputs=list(loaded.input_names),
        outputs=list(loaded.output_names),
        max_length=loaded.max_length,
        parity={"data": args.parity_file, "inputs": len(items), "max_abs_difference": difference},
        tolerance=args.tolerance,
        float_mb=round((folder / FLOAT_FILE).stat().st_size / 1e6, 2),
    )
    logger.info("float graph: max |ONNX - PyTorch| = %.3g over %d real inputs", difference, len(items))
    if not difference <= args.tolerance:
        raise CheckFailed(
            f"the float ONNX graph differs from PyTorch by {difference:.3g} (tolerance {args.tolerance}); nothing "
            "written"
        )
    if args.int8:
        report.int8 = check_int8(loaded, float_predictor, folder, args)
    report.seconds = round(time.perf_counter() - start, 1)
    return report


def check_int8(loaded: LoadedModel, float_predictor: Predictor, folder: Path, args: ExportArguments) -> dict:
    """Quantise, then score both graphs on the held-out sample; CheckFailed when int8 loses too much."""
    quantize_int8(folder / FLOAT_FILE, folder / INT8_FILE)
    sample = check_sample(loaded, args.check_file, args.check_examples)
    int8_predictor = Predictor(loaded, onnx_backend(str(folder / INT8_FILE)))
    name = METRIC_NAMES[loaded.kind]
    scores = {
        graph: round(task_metric(loaded.kind, predictor.predict(sample.items), sample.gold), 2)
        for graph, predictor in (("float", float_predictor), ("int8", int8_predictor))
    }
    drop = round(scores["float"] - scores["int8"], 2)
    logger.info("%s on %d held-out examples: float %.2f, int8 %.2f", name, len(sample.gold), *scores.values())
    if drop > args.max_metric_drop:
        raise CheckFailed(
            f"int8 {name} {scores['int8']} is {drop} points below the float graph's {scores['float']} (allowed "
            f"{args.max_metric_drop}); nothing written. Keep the float graph (export without --int8)"
        )
    return {
        "metric": name,
        "data": args.check_file or BUNDLED_REVIEWS,
        "examples": len(sample.gold),
        **scores,
        "drop": drop,
        "max_drop": args.max_metric_drop,
        "int8_mb": round((folder / INT8_FILE).stat().st_size / 1e6, 2),
    }

"""Export a model folder to ONNX, check it against PyTorch, and quantise it to int8 with a check of its task metric.

    python -m serve.export --model runs/mini/nsmc/distilled/best --output runs/onnx/distilled --int8

The output is the model folder (config, tokenizer, weights: everything ``from_pretrained`` and the service read)
with ``onnx/model.onnx``, ``onnx/model_quantized.onnx`` (with --int8) and ``onnx/export.json``, the checks' figures;
``--output`` may be the model folder itself, which then gains its ``onnx/`` folder. Any model folder this project
writes: BERT, DistilBERT and KoBiLSTM classifiers, token classifiers, question answering, sentence encoders (pooling
and normalisation inside the graph). Batch and sequence axes are dynamic.

The checks, which the command prints, and a failed one writes nothing:
- parity: on real reviews (``--parity-data``, the bundled NSMC test file by default) the float graph's outputs equal
  PyTorch's within ``--tolerance`` (absolute);
- int8: on a held-out labelled sample (``--check-data``: NSMC-format for classifiers, the bundled test file by
  default; KorSTS for sentence encoders; Naver NER; KorQuAD), the task metric (accuracy, Spearman x 100, entity F1,
  EM) of the int8 graph is at most ``--max-metric-drop`` points below the float graph's.

Exporter: ``torch.onnx.export(..., dynamo=False)``, the TorchScript-based one. The torch.export-based exporter
(``dynamo=True``, torch's default) exports BERT and DistilBERT, but not the KoBiLSTM: its right-padding check is
data-dependent control flow, and without the check the graph it wrote failed in ONNX Runtime at a new batch size
("invalid expand shape"); the TorchScript exporter writes all our models, matching PyTorch within 3e-8 on them, in
under a second where the other took 8-13 s for a two-layer BERT. Quantisation is ONNX Runtime's dynamic int8
(weights int8, activations quantised per batch at run time: no calibration data needed).
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.cli import command_parser
from common.io import ROOT, check_output_place, new_folder, output_written, setup_logging, write_json
from finetune.data_io import read_ner, read_nsmc, read_squad, read_sts
from serve.models import LoadedModel, load_model
from serve.predict import Predictor, onnx_backend, torch_backend

logger = logging.getLogger("serve.export")
ONNX_FOLDER = "onnx"
FLOAT_FILE = "model.onnx"
INT8_FILE = "model_quantized.onnx"
REPORT_FILE = "export.json"
OPSET = 17
BUNDLED_REVIEWS = str(ROOT / "data" / "nsmc_test.txt.gz")
# Absolute difference allowed between the float graph's outputs and PyTorch's (logits, sentence vectors).
DEFAULT_TOLERANCE = 1e-4
DEFAULT_MAX_DROP = 0.5  # points of the task metric (accuracy in %, Spearman x 100, F1 in %, EM in %)
METRIC_NAMES = {"classify": "accuracy", "embed": "spearman", "ner": "entity_f1", "qa": "exact_match"}


class CheckFailed(ValueError):
    """An exported graph failed its parity or metric check; the message has the figures."""


@dataclass(frozen=True)
class Sample:
    """Held-out inputs of a kind and what scores the answers to them."""

    items: list[Any]
    gold: list[Any]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = command_parser("python -m serve.export", __doc__)
    parser.add_argument("--model", required=True, help="A model folder this project wrote (fine-tuned or sentence).")
    parser.add_argument("--output", required=True, help="Folder to write: the model's files and onnx/.")
    parser.add_argument("--int8", action="store_true", help="Also write the int8 graph, checked on --check-data.")
    parser.add_argument("--parity-data", default=BUNDLED_REVIEWS, help="NSMC-format file of texts for parity.")
    parser.add_argument("--parity-examples", type=int, default=64, help="Texts of --parity-data compared.")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE, help="Largest |ONNX - PyTorch|.")
    parser.add_argument(
        "--check-data",
        help="Labelled held-out data for the int8 check: NSMC-format (classifiers; default the bundled test file), "
        "KorSTS (sentence encoders), Naver NER, KorQuAD JSON.",
    )
    parser.add_argument("--check-examples", type=int, default=1000, help="Examples of --check-data scored.")
    parser.add_argument(
        "--max-metric-drop", type=float, default=DEFAULT_MAX_DROP, help="Largest metric drop of int8 (points)."
    )
    parser.add_argument("--max-length", type=int, help="Tokens per input (default: the model's own limit).")
    parser.add_argument("--overwrite", action="store_true", help="Replace an existing onnx/ folder in --output.")
    args = parser.parse_args(argv)
    for name in ("parity_examples", "check_examples", "max_length"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    for path in (args.parity_data, args.check_data):
        if path and not os.path.isfile(path):
            parser.error(f"{path!r} is not a file")
    check_output_place(parser, args.output)
    if os.path.isdir(os.path.join(args.output, ONNX_FOLDER)) and not args.overwrite:
        parser.error(f"{args.output}/{ONNX_FOLDER} exists; pass --overwrite to replace it")
    return args


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
            raise ValueError(f"--int8 for a {kind} model needs --check-data: labelled held-out data of its task")
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
        from finetune.ner import to_seqeval

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
    from finetune import korquad_metric

    predictions = {example["id"]: answer["answer"] for example, answer in zip(gold, answers, strict=True)}
    return 100 * korquad_metric.evaluate(gold, predictions)["exact_match"]


def export_float(loaded: LoadedModel, path: Path, example: list[Any]) -> None:
    """The TorchScript-based ONNX export (see the module docstring for why), batch and sequence axes dynamic."""
    predictor = Predictor(loaded, torch_backend(loaded))
    batch = predictor.tokenizer.pad(predictor.encode(example)[1], return_tensors="pt")
    inputs = tuple(batch[name].long() for name in loaded.input_names)
    axes = {name: {0: "batch", 1: "sequence"} for name in loaded.input_names}
    per_token = loaded.kind in ("ner", "qa")
    axes.update({name: {0: "batch", **({1: "sequence"} if per_token else {})} for name in loaded.output_names})
    with warnings.catch_warnings():
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
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser logs a line per tensor, through the root logger
    try:
        quantize_dynamic(str(float_path), str(int8_path), weight_type=QuantType.QInt8)
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


def export(args: argparse.Namespace) -> dict[str, Any]:
    """Write ``args.output`` and return the report (also ``onnx/export.json``); CheckFailed writes nothing."""
    loaded = load_model(args.model, args.max_length)
    items = parity_items(loaded.kind, args.parity_data, args.parity_examples)
    output = Path(args.output)
    with new_folder(output / ONNX_FOLDER, ONNX_FOLDER) as staging:
        report = build_graphs(loaded, items, staging, args)
        copy_model_files(args.model, output)
        write_json(staging / REPORT_FILE, report)
    return report


def build_graphs(loaded: LoadedModel, items: list[Any], folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The float graph (and the int8 one) in ``folder``, each checked; the figures as a report."""
    start = time.perf_counter()
    export_float(loaded, folder / FLOAT_FILE, items[:2])
    torch_outputs = Predictor(loaded, torch_backend(loaded)).outputs(items)
    float_predictor = Predictor(loaded, onnx_backend(str(folder / FLOAT_FILE)))
    difference = max_difference(torch_outputs, float_predictor.outputs(items))
    report: dict[str, Any] = {
        "model": args.model,
        "kind": loaded.kind,
        "exporter": f"torch.onnx.export(dynamo=False), opset {OPSET}, torch {torch.__version__}",
        "inputs": list(loaded.input_names),
        "outputs": list(loaded.output_names),
        "max_length": loaded.max_length,
        "parity": {"data": args.parity_data, "inputs": len(items), "max_abs_difference": difference},
        "tolerance": args.tolerance,
        "float_mb": round((folder / FLOAT_FILE).stat().st_size / 1e6, 2),
    }
    logger.info("float graph: max |ONNX - PyTorch| = %.3g over %d real inputs", difference, len(items))
    if not difference <= args.tolerance:
        raise CheckFailed(
            f"the float ONNX graph differs from PyTorch by {difference:.3g} (tolerance {args.tolerance}); nothing "
            "written"
        )
    if args.int8:
        report["int8"] = check_int8(loaded, float_predictor, folder, args)
    report["seconds"] = round(time.perf_counter() - start, 1)
    return report


def check_int8(loaded: LoadedModel, float_predictor: Predictor, folder: Path, args: argparse.Namespace) -> dict:
    """Quantise, then score both graphs on the held-out sample; CheckFailed when int8 loses too much."""
    quantize_int8(folder / FLOAT_FILE, folder / INT8_FILE)
    sample = check_sample(loaded, args.check_data, args.check_examples)
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
        "data": args.check_data or BUNDLED_REVIEWS,
        "examples": len(sample.gold),
        **scores,
        "drop": drop,
        "max_drop": args.max_metric_drop,
        "int8_mb": round((folder / INT8_FILE).stat().st_size / 1e6, 2),
    }


def graph_file(folder: str, int8: bool) -> Path:
    return Path(folder) / ONNX_FOLDER / (INT8_FILE if int8 else FLOAT_FILE)


def ensure_exported(folder: str, int8: bool) -> Path:
    """The folder's ONNX graph, exported into its own ``onnx/`` (and checked, with the defaults) when missing."""
    path = graph_file(folder, int8)
    if not path.is_file():
        logger.info("%s has no %s: exporting it (once; it is kept beside the model)", folder, path.name)
        argv = ["--model", folder, "--output", folder, *(["--int8"] if int8 else []), "--overwrite"]
        export(parse_args(argv))
    return path


def main(argv: list[str] | None = None) -> dict[str, Any]:
    setup_logging()
    args = parse_args(argv)
    try:
        with output_written(args.output):
            report = export(args)
    except (CheckFailed, OSError, ValueError) as err:  # a failed check, or a folder that is not a model we serve
        raise SystemExit(f"error: {err}") from err
    parity = report["parity"]
    print(f"{report['kind']} model -> {args.output}/{ONNX_FOLDER}/{FLOAT_FILE} ({report['float_mb']} MB)")
    print(f"parity: max |ONNX - PyTorch| {parity['max_abs_difference']:.2g} (tolerance {args.tolerance})")
    if "int8" in report:
        int8 = report["int8"]
        print(
            f"int8: {INT8_FILE} ({int8['int8_mb']} MB), {int8['metric']} {int8['float']} -> {int8['int8']} "
            f"on {int8['examples']} held-out examples (drop {int8['drop']}, allowed {int8['max_drop']})"
        )
    return report


if __name__ == "__main__":
    main()

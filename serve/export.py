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
(weights int8, activations quantised per batch at run time: no calibration data needed). The work is
``serve.onnx_export.export``, imported once the arguments are checked.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

from common.cli import command_parser
from common.io import ROOT, check_output_place, output_written, setup_logging

logger = logging.getLogger("serve.export")
ONNX_FOLDER = "onnx"
FLOAT_FILE = "model.onnx"
INT8_FILE = "model_quantized.onnx"
REPORT_FILE = "export.json"
BUNDLED_REVIEWS = str(ROOT / "data" / "nsmc_test.txt.gz")
# Absolute difference allowed between the float graph's outputs and PyTorch's (logits, sentence vectors).
DEFAULT_TOLERANCE = 1e-4
DEFAULT_MAX_DROP = 0.5  # points of the task metric (accuracy in %, Spearman x 100, F1 in %, EM in %)


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


def graph_file(folder: str, int8: bool) -> Path:
    return Path(folder) / ONNX_FOLDER / (INT8_FILE if int8 else FLOAT_FILE)


def default_onnx_cache() -> Path:
    """Where the service keeps the graphs it exports: ``$XDG_CACHE_HOME/distilkobert/onnx`` (``~/.cache/...``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "distilkobert" / "onnx"


def ensure_exported(folder: str, int8: bool, cache: str | Path, loaded: Any = None) -> Path:
    """The folder's ONNX graph: its own ``onnx/`` when it has one (``serve.export --output DIR`` writes it), else an
    export checked with the defaults and kept in ``cache`` under the folder's fingerprint, made once for any number of
    starts and never written into the model folder. ``loaded``: the folder's model, when the caller has loaded it."""
    own = graph_file(folder, int8)
    if own.is_file():
        return own
    from modeling.fingerprint import model_fingerprint
    from serve.onnx_export import export

    place = Path(cache) / model_fingerprint(folder)[:16]
    path = graph_file(str(place), int8)
    if not path.is_file():
        logger.info("%s has no %s: exporting it to %s (once: the next start reuses it)", folder, path.name, place)
        place.mkdir(parents=True, exist_ok=True)
        argv = ["--model", folder, "--output", str(place), *(["--int8"] if int8 else []), "--overwrite"]
        export(parse_args(argv), loaded)
    return path


def main(argv: list[str] | None = None) -> dict[str, Any]:
    setup_logging()
    args = parse_args(argv)
    from serve.onnx_export import CheckFailed, export  # torch and onnxruntime once the arguments are checked

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

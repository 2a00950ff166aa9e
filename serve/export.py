"""Export a model folder to ONNX, check it against PyTorch, and quantise it to int8 with a check of its task metric.

    python -m serve.export --model_name_or_path runs/mini/nsmc/distilled/best --output_dir runs/onnx/distilled --int8

The output is the model folder (config, tokenizer, weights: everything ``from_pretrained`` and the service read)
with ``onnx/model.onnx``, ``onnx/model_quantized.onnx`` (with --int8) and ``onnx/export.json``, the checks' figures;
``--output_dir`` may be the model folder itself, which then gains its ``onnx/`` folder. Any model folder this project
writes: BERT, DistilBERT and KoBiLSTM classifiers, token classifiers, question answering, sentence encoders (pooling
and normalisation inside the graph). Batch and sequence axes are dynamic. From Python:
``export(ExportArguments(model_name_or_path=..., output_dir=..., int8=True))`` returns the ``ExportReport``.

The checks, which the command prints, and a failed one writes nothing:
- parity: on real reviews (``--parity_file``, the bundled NSMC test file by default) the float graph's outputs equal
  PyTorch's within ``--tolerance`` (absolute);
- int8: on a held-out labelled sample (``--check_file``: NSMC-format for classifiers, the bundled test file by
  default; KorSTS for sentence encoders; Naver NER; KorQuAD), the task metric (accuracy, Spearman x 100, entity F1,
  EM) of the int8 graph is at most ``--max_metric_drop`` points below the float graph's.

Exporter: ``torch.onnx.export(..., dynamo=False)``, the TorchScript-based one. The torch.export-based exporter
(``dynamo=True``, torch's default) exports BERT and DistilBERT, but not the KoBiLSTM: its right-padding check is
data-dependent control flow, and without the check the graph it wrote failed in ONNX Runtime at a new batch size
("invalid expand shape"); the TorchScript exporter writes all our models, matching PyTorch within 3e-8 on them, in
under a second where the other took 8-13 s for a two-layer BERT. Quantisation is ONNX Runtime's dynamic int8
(weights int8, activations quantised per batch at run time: no calibration data needed). The work is
``serve.onnx_export``, imported once the options are checked.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.config import key, required, run_command
from common.io import bundled_data_dir, output_written, require_output_place

if TYPE_CHECKING:  # torch and the models are imported once the options are checked
    from serve.models import LoadedModel

logger = logging.getLogger("serve.export")
ONNX_FOLDER = "onnx"
FLOAT_FILE = "model.onnx"
INT8_FILE = "model_quantized.onnx"
REPORT_FILE = "export.json"
BUNDLED_REVIEWS = str(bundled_data_dir() / "nsmc_test.txt.gz")
# Absolute difference allowed between the float graph's outputs and PyTorch's (logits, sentence vectors).
DEFAULT_TOLERANCE = 1e-4
DEFAULT_MAX_DROP = 0.5  # points of the task metric (accuracy in %, Spearman x 100, F1 in %, EM in %)


@dataclass(kw_only=True)
class ExportArguments:
    """What ``python -m serve.export`` reads."""

    model_name_or_path: str = required("A model folder this project wrote (fine-tuned or sentence).")
    output_dir: str = required("Folder to write: the model's files and onnx/ (may be the model folder itself).")
    int8: bool = key(False, "Also write the int8 graph, checked on --check_file.")
    parity_file: str = key(BUNDLED_REVIEWS, "NSMC-format file of texts for parity.")
    parity_examples: int = key(64, "Texts of --parity_file compared.")
    tolerance: float = key(DEFAULT_TOLERANCE, "Largest |ONNX - PyTorch|.")
    check_file: str | None = key(
        None,
        "Labelled held-out data for the int8 check: NSMC-format (classifiers; default the bundled test file), "
        "KorSTS (sentence encoders), Naver NER, KorQuAD JSON.",
    )
    check_examples: int = key(1000, "Examples of --check_file scored.")
    max_metric_drop: float = key(DEFAULT_MAX_DROP, "Largest metric drop of int8 (points).")
    max_seq_length: int | None = key(None, "Tokens per input (default: the model's own limit).")
    overwrite: bool = key(False, "Replace an existing onnx/ folder in --output_dir.")

    def validate(self) -> None:
        """ValueError naming the option whose value cannot work: counts, files, the output's place."""
        for name in ("parity_examples", "check_examples", "max_seq_length"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name} must be at least 1, got {value}")
        for name in ("parity_file", "check_file"):
            path = getattr(self, name)
            if path and not os.path.isfile(path):
                problem = "a folder, not a file" if os.path.isdir(path) else "no such file"
                raise ValueError(f"--{name}: {problem}: {path}")
        require_output_place(self.output_dir, "--output_dir")
        if os.path.isdir(os.path.join(self.output_dir, ONNX_FOLDER)) and not self.overwrite:
            raise ValueError(f"--output_dir {self.output_dir}/{ONNX_FOLDER} exists; pass --overwrite to replace it")


@dataclass
class ExportReport:
    """The checks' figures (``onnx/export.json``) and where the graphs went."""

    model: str  # the model folder exported
    kind: str  # classify, ner, qa or embed
    exporter: str
    inputs: list[str]
    outputs: list[str]
    max_length: int  # tokens per input
    parity: dict[str, Any]  # data, inputs, max_abs_difference
    tolerance: float
    float_mb: float
    seconds: float = 0.0
    int8: dict[str, Any] | None = None  # metric, data, examples, float, int8, drop, max_drop, int8_mb (with --int8)
    output_dir: str = ""  # where the folder was written (not in export.json: the folder may move)

    def to_json(self) -> dict[str, Any]:
        """What ``onnx/export.json`` holds."""
        record = dataclasses.asdict(self)
        del record["output_dir"]
        if record["int8"] is None:
            del record["int8"]
        return record


def export(args: ExportArguments, loaded: LoadedModel | None = None) -> ExportReport:
    """Write ``args.output_dir`` (the model's files and its checked ``onnx/`` graphs) and return the report; a failed
    check (``serve.onnx_export.CheckFailed``, a ValueError) writes nothing. ``loaded`` is the model of
    ``args.model_name_or_path`` when the caller has it loaded already (the service: one load, not two)."""
    args.validate()
    with output_written(args.output_dir, "--output_dir"):
        from serve.onnx_export import export_folder  # torch and onnxruntime, once the options are checked

        report = export_folder(args, loaded)
    return dataclasses.replace(report, output_dir=args.output_dir)


def graph_file(folder: str, int8: bool) -> Path:
    return Path(folder) / ONNX_FOLDER / (INT8_FILE if int8 else FLOAT_FILE)


def default_onnx_cache() -> Path:
    """Where the service keeps the graphs it exports: ``$XDG_CACHE_HOME/distilkobert/onnx`` (``~/.cache/...``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "distilkobert" / "onnx"


def ensure_exported(folder: str, int8: bool, cache: str | Path, loaded: LoadedModel | None = None) -> Path:
    """The folder's ONNX graph: its own ``onnx/`` when it has one (``serve.export --output_dir DIR`` writes it), else
    an export checked with the defaults and kept in ``cache`` under the folder's fingerprint, made once for any number
    of starts and never written into the model folder. ``loaded``: the folder's model, when the caller has loaded
    it."""
    own = graph_file(folder, int8)
    if own.is_file():
        return own
    from modeling.fingerprint import model_fingerprint

    place = Path(cache) / model_fingerprint(folder)[:16]
    path = graph_file(str(place), int8)
    if not path.is_file():
        logger.info("%s has no %s: exporting it to %s (once: the next start reuses it)", folder, path.name, place)
        place.mkdir(parents=True, exist_ok=True)
        export(ExportArguments(model_name_or_path=folder, output_dir=str(place), int8=int8, overwrite=True), loaded)
    return path


def main(argv: list[str] | None = None) -> int:
    report = run_command(export, ExportArguments, argv, "python -m serve.export", __doc__)
    parity = report.parity
    print(f"{report.kind} model -> {report.output_dir}/{ONNX_FOLDER}/{FLOAT_FILE} ({report.float_mb} MB)")
    print(f"parity: max |ONNX - PyTorch| {parity['max_abs_difference']:.2g} (tolerance {report.tolerance})")
    if report.int8:
        int8 = report.int8
        print(
            f"int8: {INT8_FILE} ({int8['int8_mb']} MB), {int8['metric']} {int8['float']} -> {int8['int8']} "
            f"on {int8['examples']} held-out examples (drop {int8['drop']}, allowed {int8['max_drop']})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

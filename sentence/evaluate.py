"""Score sentence encoders on STS: Spearman and Pearson x 100 between cosine similarity and the gold scores, and
their encoding speed on CPU, in the layout of the published KorSTS tables.

    python -m sentence.evaluate \
        --model_name_or_path runs/sentence-mini/distilled/best runs/sentence-mini/teacher/best \
        --data ../shared/data/korsts/sts-dev.tsv --output_file runs/sentence-mini/evaluation.json

Data: KorSTS TSV (``genre filename year id score sentence1 sentence2``), KLUE-STS JSON, or a Hub dataset
(``NAME[:CONFIG]:SPLIT``, e.g. ``kakaobrain/kor_nlu:sts:validation``). The correlations are
sentence-transformers' ``EmbeddingSimilarityEvaluator`` (scipy's ``spearmanr`` and ``pearsonr`` of the cosines),
the evaluator the training commands select checkpoints with. Speed: ``encode`` (tokenising included) of the
data's first sentences, the models taking turns, median of ``--repeats``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.config import key, required, run_command
from common.io import (
    output_written,
    quiet_file_progress_bars,
    require_data_files,
    require_output_place,
    run_metadata,
    write_json,
)
from common.readers import STS_MAX_SCORE
from sentence.pairs import read_scored_pairs

if TYPE_CHECKING:  # sentence-transformers is imported where it works: --help and refusals never wait for it
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

SPEED_BATCH_SIZES = (1, 64)


@dataclass(kw_only=True)
class EvaluateArguments:
    model_name_or_path: list[str] = required(
        "Sentence encoder folders (or model folders, then mean-pooled).", repeatable=True
    )
    data: list[str] = required("STS data: KorSTS TSV, KLUE-STS JSON, or Hub datasets NAME[:CONFIG]:SPLIT.")
    output_file: str | None = key(None, "Write the rows as JSON here too.")
    repeats: int = key(5, "Timed encodings per model and batch size.")

    def validate(self) -> None:
        """ValueError naming the option whose value cannot work, before any model is loaded."""
        if self.repeats < 1:
            raise ValueError("--repeats must be at least 1")
        require_data_files(self, ("data",))
        if self.output_file:
            require_output_place(self.output_file, "--output_file", folder=False)


def sts_evaluator(records: list[dict[str, Any]], name: str, batch_size: int = 64) -> EmbeddingSimilarityEvaluator:
    """The cosine-similarity evaluator of STS records; its metrics are ``{name}_spearman_cosine`` and
    ``{name}_pearson_cosine`` (fractions)."""
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    return EmbeddingSimilarityEvaluator(
        [r["sentence1"] for r in records],
        [r["sentence2"] for r in records],
        [r["score"] / STS_MAX_SCORE for r in records],
        batch_size=batch_size,
        main_similarity="cosine",
        similarity_fn_names=["cosine"],
        name=name,
        write_csv=False,
    )


def sts_correlations(encoder: SentenceTransformer, records: list[dict[str, Any]], name: str) -> dict[str, float]:
    """Spearman and Pearson x 100 (rounded to 2 places) of the encoder's cosines against the gold scores."""
    metrics = sts_evaluator(records, name)(encoder)
    return {kind: round(100 * metrics[f"{name}_{kind}_cosine"], 2) for kind in ("spearman", "pearson")}


def sentences_per_second(
    encoders: dict[str, SentenceTransformer], sentences: list[str], batch_sizes: Sequence[int], repeats: int
) -> dict[str, dict[int, float]]:
    """Sentences encoded per second on CPU by each encoder at each batch size, measured side by side."""
    from modeling.latency import interleaved_medians

    speeds: dict[str, dict[int, float]] = {name: {} for name in encoders}
    for batch_size in batch_sizes:
        batch = (sentences * (batch_size // len(sentences) + 1))[:batch_size]
        calls = {
            name: partial(encoder.encode, batch, batch_size=batch_size, device="cpu", convert_to_numpy=True)
            for name, encoder in encoders.items()
        }
        for name, seconds in interleaved_medians(calls, repeats).items():
            speeds[name][batch_size] = round(batch_size / seconds, 1)
    return speeds


def encoder_rows(
    paths: list[str], data: list[str], repeats: int, batch_sizes: Sequence[int] = SPEED_BATCH_SIZES
) -> list[dict[str, Any]]:
    """One row per encoder: its size and pooling, the correlations on every data file, and its speed."""
    from sentence.model import encoder_summary, load_encoder

    records = {path: read_scored_pairs(path) for path in data}
    encoders = {path: load_encoder(path, max_seq_length=None) for path in paths}
    sentences = [r["sentence1"] for r in next(iter(records.values()))]
    speeds = sentences_per_second(encoders, sentences, batch_sizes, repeats)
    rows = []
    for path, encoder in encoders.items():
        scores = {data_name(file): sts_correlations(encoder, pairs, "sts") for file, pairs in records.items()}
        speed = {f"sentences_per_s_b{size}": speeds[path][size] for size in batch_sizes}
        rows.append({"model_dir": path, **encoder_summary(encoder), "scores": scores, **speed})
    return rows


def data_name(path: str) -> str:
    return Path(path).stem


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """model | parameters | encoding | Spearman / Pearson per data file | sentences/s at each batch size."""
    files = list(rows[0]["scores"])
    speeds = [key for key in rows[0] if key.startswith("sentences_per_s_b")]
    header = ["model", "parameters", "encoding", *(f"{name} Spearman / Pearson" for name in files)]
    header += [f"sentences/s (batch {key.removeprefix('sentences_per_s_b')})" for key in speeds]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in rows:
        scores = [f"{row['scores'][name]['spearman']:.2f} / {row['scores'][name]['pearson']:.2f}" for name in files]
        cells = [row["model_dir"], f"{row['params'] / 1e6:.1f}M", f"{row['pooling']} pooling", *scores]
        lines.append("| " + " | ".join(cells + [f"{row[key]:,.0f}" for key in speeds]) + " |")
    return "\n".join(lines)


def evaluate_encoders(args: EvaluateArguments) -> list[dict[str, Any]]:
    """One row per encoder of ``args.model_name_or_path`` (``encoder_rows``), also written to ``args.output_file``
    when given. ValueError or OSError names an option or input that cannot work."""
    args.validate()
    quiet_file_progress_bars()
    rows = encoder_rows(args.model_name_or_path, args.data, args.repeats)
    if args.output_file:
        with output_written(args.output_file, "--output_file"):
            write_json(args.output_file, {"rows": rows, **run_metadata()})
    return rows


def main(argv: list[str] | None = None) -> int:
    rows = run_command(evaluate_encoders, EvaluateArguments, argv, "python -m sentence.evaluate", __doc__)
    print(markdown_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

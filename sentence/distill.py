"""Distil a sentence encoder into a smaller one: the student learns to give every sentence the teacher's embedding.

    python -m sentence.distill --teacher runs/sentence/sts/best --student runs/mini/distilled/final \
        --sentences ../shared/data/korsts/sts-train.tsv ../shared/data/corpus/reviews.txt.gz \
        --dev ../shared/data/korsts/sts-dev.tsv --output runs/sentence/distilled

The student is --student (any model folder, wrapped with --pooling, or a sentence-transformers folder) or, with
--student-layers 0 4 8, a DistilBERT made of those layers of a BERT teacher (``modeling.build_student``) with the
teacher's pooling. Sentences: an STS or NLI file gives the sentences of its pairs, any other file one sentence per
line (.gz too); --max-sentences caps them. The teacher embeds them once, into OUTPUT/teacher-embeddings (or
--cache DIR), a memory-mapped array with the fingerprints of the teacher and the files: a later run reuses it
without loading the teacher, and refuses one made by another teacher or from other files. The loss is the MSE (or
1 - cosine) to the teacher's embedding, through a trained projection when the dimensions differ, or (``--distance
similarity``) the MSE between the student's and the teacher's in-batch cosine-similarity matrices. The best
checkpoint by that loss on a seeded hold-out of the sentences becomes OUTPUT/best; --dev (STS) is scored once at the
end.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from common.cli import command_parser
from sentence.arguments import DISTANCES, add_training_args, check_training_args


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = command_parser("python -m sentence.distill", __doc__)
    parser.add_argument("--teacher", required=True, help="The teacher: a sentence-transformers folder.")
    student = parser.add_mutually_exclusive_group(required=True)
    student.add_argument("--student", help="The student: a model folder or a sentence-transformers folder.")
    student.add_argument(
        "--student-layers",
        type=int,
        nargs="+",
        help="Build the student from these layers (0-based) of the teacher's BERT, e.g. 0 4 8.",
    )
    parser.add_argument(
        "--sentences",
        nargs="+",
        required=True,
        help="Text files (one sentence per line), STS or NLI files, or Hub STS or NLI datasets.",
    )
    parser.add_argument("--max-sentences", type=int, default=None, help="Use at most this many sentences.")
    parser.add_argument(
        "--cache", default=None, help="Teacher-embedding cache folder (default OUTPUT/teacher-embeddings)."
    )
    parser.add_argument(
        "--distance",
        choices=DISTANCES,
        default="mse",
        help="Student-to-teacher embedding distance (similarity: of the batch's cosine matrices).",
    )
    parser.add_argument(
        "--max-validation-sentences", type=int, default=2000, help="Cap on the hold-out that picks the best checkpoint."
    )
    parser.add_argument("--teacher-batch-size", type=int, default=64, help="Sentences per teacher call.")
    parser.add_argument(
        "--dev",
        default=None,
        help="STS pairs scored once at the end (KorSTS TSV, KLUE-STS JSON, or a Hub dataset NAME[:CONFIG]:SPLIT).",
    )
    # Reimers and Gurevych (2020), distilling sentence embeddings: MSE, learning rate 2e-5, batch 64.
    add_training_args(parser, epochs=3, batch_size=64, learning_rate=5e-5)
    args = parser.parse_args(argv)
    check_training_args(parser, args)
    args.cache = args.cache or os.path.join(args.output, "teacher-embeddings")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    from sentence.embedding_distillation import distil_embeddings  # the heavy libraries once the arguments are checked

    return distil_embeddings(args)


if __name__ == "__main__":
    main()

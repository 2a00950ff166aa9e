"""Distil a sentence encoder into a smaller one: the student learns to give every sentence the teacher's embedding.

    python -m sentence.distil_embeddings --teacher_name_or_path runs/sentence/sts/best \
        --student_name_or_path runs/mini/distilled/final \
        --sentences ../shared/data/korsts/sts-train.tsv ../shared/data/corpus/reviews.txt.gz \
        --test_file ../shared/data/korsts/sts-dev.tsv --output_dir runs/sentence/distilled
    accelerate launch -m sentence.distil_embeddings ...   # the teacher runs once, on the first process

The student is --student_name_or_path (any model folder, wrapped with --pooling, or a sentence-transformers folder)
or, with --student_layers 0 4 8, a DistilBERT made of those layers of a BERT teacher (``modeling.build_student``)
with the teacher's pooling. Sentences: an STS or NLI file gives the sentences of its pairs, any other file one
sentence per line (.gz too); --max_sentences caps them. The teacher embeds them once, into
OUTPUT_DIR/teacher-embeddings (or --cache_dir), a memory-mapped array with the fingerprints of the teacher and the
files: a later run reuses it without loading the teacher, and refuses one made by another teacher or from other
files. The loss is the MSE (or 1 - cosine) to the teacher's embedding, through a trained projection when the
dimensions differ, or (``--distance similarity``) the MSE between the student's and the teacher's in-batch
cosine-similarity matrices. The best checkpoint by that loss on a seeded hold-out of the sentences becomes
OUTPUT_DIR/best; --test_file (STS) is scored once at the end.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

from common.config import key, required, run_command
from sentence.arguments import TEST_FILE_HELP, Distance, EncoderTrainingArguments

TEACHER_EMBEDDINGS = "teacher-embeddings"  # the cache's folder in --output_dir when --cache_dir is not given


@dataclass(kw_only=True)
class EmbeddingDistillationArguments(EncoderTrainingArguments):
    teacher_name_or_path: str = required("The teacher: a sentence-transformers folder.")
    student_name_or_path: str | None = key(
        None, "The student: a model folder or a sentence-transformers folder (or give --student_layers)."
    )
    student_layers: list[int] = key(
        [], "Build the student from these layers (0-based) of the teacher's BERT, e.g. 0 4 8 (or give a student)."
    )
    sentences: list[str] = required("Text files (one sentence per line), STS or NLI files, or Hub STS or NLI datasets.")
    max_sentences: int | None = key(None, "Use at most this many sentences.")
    cache_dir: str | None = key(None, f"Teacher-embedding cache folder (default: OUTPUT_DIR/{TEACHER_EMBEDDINGS}).")
    distance: Distance = key(
        "mse", "Student-to-teacher embedding distance (similarity: of the batch's cosine matrices)."
    )
    max_validation_sentences: int = key(2000, "Cap on the hold-out that picks the best checkpoint.")
    teacher_batch_size: int = key(64, "Sentences per teacher call.")
    test_file: str | None = key(None, TEST_FILE_HELP)
    # Reimers and Gurevych (2020), distilling sentence embeddings: MSE, learning rate 2e-5, batch 64.
    per_device_train_batch_size: int = key(64, "Examples per step, per process (the validation batches too).")
    learning_rate: float = key(5e-5, "Peak learning rate of AdamW.")
    num_train_epochs: float = key(3.0, "Passes over the training data.")

    @property
    def embedding_cache(self) -> str:
        """The teacher-embedding cache folder: --cache_dir, or OUTPUT_DIR/teacher-embeddings."""
        return self.cache_dir or os.path.join(self.output_dir, TEACHER_EMBEDDINGS)

    def data_options(self) -> tuple[str, ...]:
        return ("sentences", "test_file")

    def validate(self) -> None:
        if bool(self.student_name_or_path) == bool(self.student_layers):
            raise ValueError(
                "give the student as --student_name_or_path (a folder or Hub id) or as --student_layers (layers of "
                "the teacher's BERT), one of them"
            )
        if any(layer < 0 for layer in self.student_layers):
            raise ValueError(f"--student_layers {self.student_layers}: layer indices start at 0")
        if self.max_validation_sentences < 1 or self.teacher_batch_size < 1:
            raise ValueError("--max_validation_sentences and --teacher_batch_size must be positive")
        super().validate()


def distil_embeddings(args: EmbeddingDistillationArguments) -> dict[str, Any]:
    """Train the student towards the teacher's embeddings of ``args.sentences`` (cached once), keep the best
    checkpoint as ``OUTPUT_DIR/best``, score ``args.test_file``; returns what ``OUTPUT_DIR/results.json`` says.
    ValueError or OSError names an option or input that cannot work, before any training."""
    args.validate()
    from sentence.embedding_distillation import train_student  # the heavy libraries once the arguments are checked

    return train_student(args)


def main(argv: list[str] | None = None) -> int:
    results = run_command(
        distil_embeddings, EmbeddingDistillationArguments, argv, "python -m sentence.distil_embeddings", __doc__
    )
    from sentence.training import announce  # loaded by the training already

    summary = f"dev Spearman {results['dev']['spearman']:.2f}; " if results["dev"] else ""
    announce(f"{summary}the student: {results['model_dir']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

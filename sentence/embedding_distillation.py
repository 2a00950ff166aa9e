"""The work of ``sentence.distil_embeddings.distil_embeddings`` (which checks its arguments, then calls
``train_student``): the teacher's sentence embeddings cached once, the student trained to reproduce them (MSE, cosine
or the batch's similarity matrices), the best checkpoint by validation loss kept, and STS scored at the end.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from datasets import Dataset, Features, Sequence, Value
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainingArguments
from transformers import AutoConfig, BertForMaskedLM

from common.io import new_folder, output_written, write_json
from common.readers import is_local, read_sts
from modeling.fingerprint import file_fingerprint, model_fingerprint
from modeling.student import build_student
from sentence.arguments import Selection, setup_command_logging
from sentence.embedding_losses import embedding_distillation_loss
from sentence.evaluate import sts_correlations
from sentence.model import load_encoder, pooling_mode
from sentence.pairs import file_sentences, sentences
from sentence.training import fit, training_arguments, write_results

if TYPE_CHECKING:
    from sentence.distil_embeddings import EmbeddingDistillationArguments

logger = logging.getLogger("sentence.distil_embeddings")
SELECTION = Selection("eval_loss", greater_is_better=False)
CACHE_INFO = "cache.json"
EMBEDDINGS = "embeddings.npy"
ENCODE_CHUNK = 4096  # sentences handed to the teacher at a time: memory stays flat for any corpus


def source_fingerprint(path: str) -> str:
    """A sentence file's sha256; a Hub dataset's, the sha256 of its sentences in order (nothing else names its
    contents offline)."""
    if is_local(path):
        return file_fingerprint(path)
    digest = hashlib.sha256()
    for sentence in file_sentences(path):
        digest.update(sentence.encode("utf-8") + b"\n")
    return digest.hexdigest()


def cache_identity(teacher: str, paths: list[str], limit: int | None, max_seq_length: int) -> dict[str, Any]:
    """What decides the cached embeddings; two caches with the same identity hold the same numbers."""
    return {
        "teacher": model_fingerprint(teacher),
        "sentences": [source_fingerprint(path) for path in paths],
        "max_sentences": limit,
        "max_seq_length": max_seq_length,
    }


def read_cache_info(cache: Path) -> dict[str, Any] | None:
    info = cache / CACHE_INFO
    return json.loads(info.read_text(encoding="utf-8")) if info.is_file() else None


def check_cache(cache: Path, info: dict[str, Any], identity: dict[str, Any]) -> None:
    """Refuse a cache made by another teacher, from other files or with other settings, naming what differs."""
    differing = [key for key in identity if info["identity"].get(key) != identity[key]]
    if differing:
        raise ValueError(
            f"{cache}: these teacher embeddings were made with another {', '.join(differing)} (teacher "
            f"{info['teacher']}, sentences {', '.join(info['files'])}); pass another --cache_dir, or delete this one"
        )


def teacher_embeddings(args: EmbeddingDistillationArguments, identity: dict[str, Any], cache: Path) -> None:
    """Embed every sentence with the teacher into ``cache`` (written whole, under a temporary name first)."""
    teacher = load_encoder(args.teacher_name_or_path, max_seq_length=identity["max_seq_length"])
    count = sum(1 for _ in sentences(args.sentences, args.max_sentences))
    if count == 0:
        raise ValueError(f"--sentences {', '.join(args.sentences)}: no sentences (empty, or blank lines only)")
    with output_written(cache, "--cache_dir"), new_folder(cache, cache.name) as staging:
        vectors = np.lib.format.open_memmap(
            staging / EMBEDDINGS, mode="w+", dtype=np.float32, shape=(count, teacher.get_embedding_dimension())
        )
        stream = sentences(args.sentences, args.max_sentences)
        done = 0
        while chunk := list(itertools.islice(stream, ENCODE_CHUNK)):
            vectors[done : done + len(chunk)] = teacher.encode(
                chunk, batch_size=args.teacher_batch_size, convert_to_numpy=True, show_progress_bar=False
            )
            done += len(chunk)
            logger.info("teacher embeddings: %d of %d sentences", done, count)
        vectors.flush()
        del vectors
        write_json(
            staging / CACHE_INFO,
            {
                "identity": identity,
                "teacher": args.teacher_name_or_path,
                "files": args.sentences,
                "count": count,
                "dimension": teacher.get_embedding_dimension(),
            },
        )


def cached_embeddings(args: EmbeddingDistillationArguments) -> tuple[Path, dict[str, Any]]:
    """The cache folder and its record: reused when it matches, made (running the teacher) when there is none."""
    cache = Path(args.embedding_cache)
    identity = cache_identity(args.teacher_name_or_path, args.sentences, args.max_sentences, args.max_seq_length)
    info = read_cache_info(cache)
    if info is None:
        teacher_embeddings(args, identity, cache)
        info = read_cache_info(cache)
    else:
        check_cache(cache, info, identity)
        logger.info("reusing the teacher embeddings of %d sentences in %s", info["count"], cache)
    return cache, info


def embedding_rows(paths: tuple[str, ...], limit: int | None, embeddings: str) -> Iterator[dict[str, Any]]:
    """``{"sentence", "label"}`` rows: each sentence with its teacher embedding (read from the memory map)."""
    vectors = np.load(embeddings, mmap_mode="r")
    for index, text in enumerate(sentences(paths, limit)):
        yield {"sentence": text, "label": vectors[index]}


def distillation_dataset(args: EmbeddingDistillationArguments, cache: Path, info: dict[str, Any]) -> Dataset:
    """The sentences and their teacher embeddings as a datasets table on disk (memory-mapped, never all in RAM)."""
    features = Features({"sentence": Value("string"), "label": Sequence(Value("float32"), length=info["dimension"])})
    return Dataset.from_generator(
        embedding_rows,
        features=features,
        # A tuple, not a list: datasets splits a list in gen_kwargs into shards, one generator call per file, and
        # each would restart the row count the embeddings are looked up by.
        gen_kwargs={"paths": tuple(args.sentences), "limit": args.max_sentences, "embeddings": str(cache / EMBEDDINGS)},
        cache_dir=str(Path(args.output_dir) / "dataset"),
    )


def layer_copied_student(args: EmbeddingDistillationArguments) -> SentenceTransformer:
    """A DistilBERT of ``--student_layers`` of the teacher's BERT, with the teacher's tokenizer and pooling."""
    model_type = AutoConfig.from_pretrained(args.teacher_name_or_path).model_type
    if model_type != "bert":
        raise ValueError(
            f"--student_layers copies the layers of a BERT, but the teacher {args.teacher_name_or_path} is a "
            f"{model_type}; pass a student folder with --student_name_or_path instead"
        )
    teacher = load_encoder(args.teacher_name_or_path, max_seq_length=args.max_seq_length)
    folder = Path(args.output_dir) / "student-init"
    # the teacher folder's BertModel; the unused head is new
    bert = BertForMaskedLM.from_pretrained(args.teacher_name_or_path)
    build_student(bert, args.student_layers).save_pretrained(folder)
    teacher.tokenizer.save_pretrained(folder)
    return load_encoder(str(folder), pooling_mode(teacher), args.max_seq_length)


def train_student(args: EmbeddingDistillationArguments) -> dict[str, Any]:
    """``sentence.distil_embeddings.distil_embeddings``'s work, once the arguments are checked: its results.json
    record."""
    setup_command_logging()
    # Under several processes the first writes the student's start, the teacher embeddings and the table, and the
    # others then read them: the teacher runs once, and no two processes write one file. The trainer's arguments
    # start the process group that orders them.
    arguments = training_arguments(SentenceTransformerTrainingArguments, args, SELECTION, in_batch_negatives=False)
    with arguments.main_process_first(local=False, desc="the teacher embeddings"):
        test = read_sts(args.test_file) if args.test_file else None
        if args.student_layers:
            student = layer_copied_student(args)
        else:
            student = load_encoder(args.student_name_or_path, args.pooling, args.max_seq_length)
        cache, info = cached_embeddings(args)
        dataset = distillation_dataset(args, cache, info)
    held_out = min(args.max_validation_sentences, max(1, round(args.validation_split * len(dataset))))
    parts = dataset.train_test_split(test_size=held_out, seed=args.seed)
    train = parts["train"]
    if args.max_train_samples is not None:
        train = train.select(range(min(args.max_train_samples, len(train))))
    loss = embedding_distillation_loss(student, info["dimension"], args.distance)
    training = fit(student, loss, train, parts["test"], args, SELECTION, arguments=arguments)
    scores = sts_correlations(student, test, "dev") if test else None
    examples = {"sentences": info["count"], "train": len(train), "validation": held_out}
    return write_results(
        args,
        "sentence.distil_embeddings",
        student,
        examples=examples,
        dev=scores,
        teacher=args.teacher_name_or_path,
        **training,
    )

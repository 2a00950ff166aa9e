"""The work of ``distill.cache_logits.cache_logits`` (which checks its options, then calls ``write_cache``): the
teachers run once over the transfer set, block by block across the processes, their logits stored in the cache that
distill.train reads; an interrupted cache resumes from its last finished block.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import broadcast_object_list
from tqdm.auto import tqdm
from transformers import AutoModelForSequenceClassification, PreTrainedModel, PreTrainedTokenizerBase

from common.io import new_folder, not_written, output_written, setup_logging, write_json
from distill.augment import Augmenter, AugmentSettings, replacement_engine
from distill.cache_logits import CacheLogitsReport
from distill.examples import (
    CACHE_FORMAT,
    IGNORE_INDEX,
    CachedExamples,
    CacheWriter,
    Example,
    create_logits,
    no_examples,
    open_logits,
    read_cache_info,
    read_examples,
    write_cache_info,
)
from distill.fingerprint import cache_differences
from modeling.fingerprint import file_fingerprint, model_fingerprint
from modeling.load import check_vocabulary_fits, held_load_report, hub_or_local, load_tokenizer

if TYPE_CHECKING:
    from distill.cache_logits import CacheLogitsArguments

logger = logging.getLogger("distill.cache_logits")


PROGRESS_DIR = "progress"  # one JSON file per process: the blocks whose logits are on disk


def augmentation_record(settings: AugmentSettings) -> dict[str, Any] | None:
    """What decides the augmented copies, for cache.json: the settings and the replacement engine (the engine only
    when words are replaced); None without augmentation, whatever the rates, since no copy is made."""
    return {**settings.as_dict(), "pos_engine": replacement_engine(settings)} if settings.enabled else None


@dataclass
class Teacher:
    path: str
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase


def stop(err: Exception) -> NoReturn:
    """End every process on a bad input with the same error, on one line (the command's first process says it)."""
    one_line = " ".join(str(err).split())
    if one_line == str(err):
        raise err
    raise ValueError(one_line) from err


def check_data_files(paths: list[str]) -> None:
    """Each file exists, and no two share a name: keys are ``FILE_NAME:LINE``, so theirs would collide."""
    seen: dict[str, str] = {}
    for path in paths:
        if Path(path).is_dir():
            raise OSError(f"--data_files {path} is a folder: give the data files in it")
        if not Path(path).is_file():
            raise OSError(f"--data_files {path}: no such file")
        if next(read_examples(path), None) is None:
            raise no_examples(path, "--data_files")
        name = Path(path).name
        if name in seen:
            raise ValueError(
                f"--data_files {seen[name]} and {path} have the same file name {name!r}: example keys (FILE_NAME:LINE) "
                "would collide; rename one"
            )
        seen[name] = path


def planned_info(args: CacheLogitsArguments) -> dict[str, Any]:
    """The cache.json of the cache these options ask for, as far as it is known before any model is loaded:
    the fingerprints of teachers and data, the augmentation and the sequence length."""
    check_data_files(args.data_files)
    return {
        "teachers": [{"path": path, "fingerprint": model_fingerprint(path)} for path in args.teacher_name_or_path],
        "data": [
            {"path": path, "name": Path(path).name, "fingerprint": file_fingerprint(path)} for path in args.data_files
        ],
        "augmentation": augmentation_record(args.augment_settings()),
        "max_seq_length": args.max_seq_length,
        "max_examples_per_file": args.max_examples_per_file,
    }


def existing_cache_action(
    output: Path, existing: dict[str, Any] | None, wanted: dict[str, Any], overwrite: bool
) -> str:
    """What to do with ``output``: "write" a new cache, "resume" an interrupted one of the same inputs, or leave a
    finished one of the same inputs alone ("done"). Raises ValueError for a folder that must not be replaced."""
    if existing is None:
        if output.exists() and not output.is_dir():
            raise ValueError(f"--output_dir {output} is a file, not a folder")
        if output.is_dir() and any(output.iterdir()) and not overwrite:
            raise ValueError(
                f"--output_dir {output} is not empty and holds no logits cache; pass --overwrite to replace it, "
                "or choose another folder"
            )
        return "write"
    if overwrite:
        return "write"
    if existing.get("format") != CACHE_FORMAT:
        raise ValueError(
            f"--output_dir {output} holds a cache of format {existing.get('format')!r}, this version writes "
            f"{CACHE_FORMAT}; pass --overwrite to replace it"
        )
    differences = cache_differences(existing, wanted)
    if differences:
        raise ValueError(
            f"--output_dir {output} holds a cache of other inputs ({'; '.join(differences)}); pass --overwrite to "
            "replace it, or choose another folder"
        )
    return "done" if existing.get("complete") else "resume"


def load_classifier(path: str) -> PreTrainedModel:
    """A fine-tuned sequence classifier; a folder without a trained head (a masked LM, an encoder) is a ValueError,
    where ``from_pretrained`` would give it a random head without a word."""
    with held_load_report():
        model, info = hub_or_local(
            AutoModelForSequenceClassification.from_pretrained, path, "teacher", output_loading_info=True
        )
    if info["missing_keys"]:
        raise ValueError(
            f"teacher {path} is not a fine-tuned sequence classifier: its checkpoint has no "
            f"{', '.join(sorted(info['missing_keys']))}; fine-tune it first (e.g. python -m finetune.nsmc) and pass "
            "that run's best/ folder"
        )
    return model.eval()


def load_teachers(paths: list[str], max_seq_length: int) -> list[Teacher]:
    """Every teacher with its own tokenizer, checked to share one label count and to take ``max_seq_length``."""
    teachers = [Teacher(path, load_classifier(path), load_tokenizer(path)) for path in paths]
    first = teachers[0]
    for teacher in teachers:
        check_vocabulary_fits(teacher.tokenizer, teacher.model, teacher.path)
        if teacher.model.config.num_labels != first.model.config.num_labels:
            raise ValueError(
                f"teacher {teacher.path} has {teacher.model.config.num_labels} labels, teacher {first.path} "
                f"{first.model.config.num_labels}: an ensemble averages logits label by label, so its teachers "
                "must share their labels"
            )
        positions = getattr(teacher.model.config, "max_position_embeddings", None)
        if positions is not None and max_seq_length > positions:
            raise ValueError(
                f"--max_seq_length {max_seq_length} is longer than the {positions} position embeddings of teacher "
                f"{teacher.path}; pass --max_seq_length {positions} or less"
            )
    return teachers


def with_teacher_labels(info: dict[str, Any], teachers: list[Teacher]) -> dict[str, Any]:
    """``info`` with each teacher's label count and names, and the cache's (the first teacher's names)."""
    config = teachers[0].model.config
    described = [
        {**record, "num_labels": t.model.config.num_labels, "id2label": label_names(t.model.config)}
        for record, t in zip(info["teachers"], teachers, strict=True)
    ]
    return {**info, "teachers": described, "num_labels": config.num_labels, "id2label": label_names(config)}


def label_names(config: Any) -> dict[str, str]:
    return {str(i): name for i, name in sorted(config.id2label.items())}


def check_label(label: int, num_labels: int, path: str, key: str, teacher: str) -> None:
    """A gold label must be one of the teacher's: its logits have ``num_labels`` columns."""
    if label != IGNORE_INDEX and label >= num_labels:
        line = key.rsplit(":", 1)[1]
        raise ValueError(
            f"{path}:{line}: label {label}, but teacher {teacher} has {num_labels} labels (0 to {num_labels - 1}); "
            "use a teacher fine-tuned on this data's labels"
        )


def corpus_texts(paths: list[str]) -> Iterator[str]:
    """The texts of every data file, streamed: the corpus the augmenter draws replacement words from."""
    return (example.text for path in paths for example in read_examples(path))


def copies(example: Example, augmenter: Augmenter | None, example_index: int) -> list[Example]:
    """The augmented copies of ``example``: no gold label, the example as their origin."""
    if augmenter is None:
        return []
    texts = augmenter.augment(example.text, example_index)
    return [Example(f"{example.key}#aug{n}", text, IGNORE_INDEX, example.key) for n, text in enumerate(texts, 1)]


def write_examples(folder: Path, info: dict[str, Any], settings: AugmentSettings) -> dict[str, Any]:
    """Read every data file once, checking each line and label, into examples.tsv and offsets.npy of ``folder``,
    each example followed by its copies; returns ``info`` with the rows read per file, the rows of the cache and
    their count per source."""
    paths = [record["path"] for record in info["data"]]
    augmenter = Augmenter(settings, corpus_texts(paths)) if settings.enabled else None
    sources = {"labelled": 0, "unlabelled": 0, "augmented": 0}
    data = []
    with CacheWriter(folder) as writer:
        for record in info["data"]:
            rows, labelled = 0, False
            # Numbered within the file, as python -m distill.augment does: the same copies as that command's.
            examples = itertools.islice(read_examples(record["path"]), info["max_examples_per_file"] or None)
            for example_index, example in enumerate(examples):
                check_label(example.label, info["num_labels"], record["path"], example.key, info["teachers"][0]["path"])
                rows += 1
                labelled |= example.label != IGNORE_INDEX
                sources["labelled" if example.label != IGNORE_INDEX else "unlabelled"] += 1
                writer.add(example)
                for copy in copies(example, augmenter, example_index):
                    writer.add(copy)
                    sources["augmented"] += 1
            data.append({**record, "rows": rows, "labelled": labelled})
        total = writer.rows
    return {**info, "data": data, "rows": total, "sources": sources}


def start_cache(output: Path, info: dict[str, Any], settings: AugmentSettings, block_rows: int) -> dict[str, Any]:
    """Write a new cache's examples and its (zero) logits into a folder beside ``output``, then put it in place of
    whatever was there: a bad data line stops the run before an existing cache is touched."""
    with new_folder(output, "cache") as staging:
        info = write_examples(staging, info, settings)
        create_logits(staging, info["rows"], info["num_labels"]).flush()
        info = {**info, "block_rows": block_rows, "complete": False}
        write_cache_info(staging, info)
    return read_cache_info(output)


def prepared_cache(
    accelerator: Accelerator, output: Path, info: dict[str, Any], settings: AugmentSettings, block_rows: int
) -> dict[str, Any]:
    """The main process writes the new cache's examples; the others wait and stop with it if it fails."""
    outcome: list[Any] = [None]
    if accelerator.is_main_process:
        try:
            outcome = [start_cache(output, info, settings, block_rows)]
        except (ValueError, OSError) as err:
            outcome = [not_written(output, "--output_dir", err) or err]
    broadcast_object_list(outcome)
    if isinstance(outcome[0], Exception):
        stop(outcome[0])
    return outcome[0]


def progress_file(folder: Path, process: int) -> Path:
    return folder / PROGRESS_DIR / f"process-{process}.json"


def done_blocks(folder: Path) -> set[int]:
    """The blocks whose logits are on disk, recorded by the processes of every earlier run (of any process count)."""
    done: set[int] = set()
    for path in (folder / PROGRESS_DIR).glob("process-*.json"):
        done.update(recorded_blocks(path))
    return done


def recorded_blocks(path: Path) -> list[int]:
    return json.loads(path.read_text(encoding="utf-8"))["done"]


def block_range(block: int, block_rows: int, rows: int) -> range:
    return range(block * block_rows, min(rows, (block + 1) * block_rows))


def my_blocks(blocks: int, done: set[int], process: int, processes: int) -> list[int]:
    """This process's share of the blocks still to do: every ``processes``-th, so each gets as many rows."""
    return [block for block in range(blocks) if block not in done][process::processes]


def batch_logits(teachers: list[Teacher], texts: list[str], max_seq_length: int, device: torch.device) -> torch.Tensor:
    """The mean over ``teachers`` of their logits for ``texts`` (float32, on ``device``), each teacher reading the
    texts through its own tokenizer."""
    total = None
    for teacher in teachers:
        # token_type_ids left out: DistilBERT takes none, and BERT's default (all zeros) is a single sentence's.
        inputs = teacher.tokenizer(
            texts,
            truncation=True,
            max_length=max_seq_length,
            padding=True,
            return_token_type_ids=False,
            return_tensors="pt",
        )
        logits = teacher.model(**{key: value.to(device) for key, value in inputs.items()}).logits.float()
        total = logits if total is None else total + logits
    return total / len(teachers)


def block_logits(
    accelerator: Accelerator, teachers: list[Teacher], texts: list[str], batch_size: int, max_seq_length: int
) -> np.ndarray:
    """The ensemble's logits for one block of texts, in their order. Texts run shortest first, so that a batch
    holds texts of similar length and little padding."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.empty((len(texts), teachers[0].model.config.num_labels), dtype=np.float32)
    with torch.inference_mode(), accelerator.autocast():
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            logits = batch_logits(teachers, [texts[i] for i in batch], max_seq_length, accelerator.device)
            out[batch] = logits.cpu().numpy()
    return out


def compute_logits(
    accelerator: Accelerator, teachers: list[Teacher], folder: Path, info: dict[str, Any], batch_size: int
) -> None:
    """Fill logits.npy block by block, this process's blocks only, recording each block once it is on disk."""
    rows, block_rows = info["rows"], info["block_rows"]
    done = done_blocks(folder)
    mine = my_blocks(math.ceil(rows / block_rows), done, accelerator.process_index, accelerator.num_processes)
    record = progress_file(folder, accelerator.process_index)
    recorded = set(recorded_blocks(record)) if record.is_file() else set()
    # Every process has read the progress files before any writes to them: all agree on the blocks left.
    accelerator.wait_for_everyone()
    logger.info(
        "***** Caching the logits of %d teacher(s): %d rows, %d blocks of %d, %d done, %d processes *****",
        len(teachers),
        rows,
        math.ceil(rows / block_rows),
        block_rows,
        len(done),
        accelerator.num_processes,
    )
    examples = CachedExamples(folder, with_logits=False)
    logits = open_logits(folder, "r+")
    with tqdm(
        total=sum(len(block_range(b, block_rows, rows)) for b in mine),
        disable=not accelerator.is_main_process,
        desc="teacher logits",
        unit="rows",
    ) as progress:
        for block in mine:
            span = block_range(block, block_rows, rows)
            texts = [examples.example(i).text for i in span]
            logits[span.start : span.stop] = block_logits(
                accelerator, teachers, texts, batch_size, info["max_seq_length"]
            )
            logits.flush()
            recorded.add(block)
            write_json(record, {"done": sorted(recorded)})
            progress.update(len(span))


def teacher_accuracy(output: Path) -> dict[str, float]:
    """The teachers' accuracy (the argmax of the cached, averaged logits against the gold label) on the examples of
    each labelled file, by file name: a check of the teachers on their training data and, for a test file cached on
    its own, an ensemble's test accuracy (which no single member's results.json holds)."""
    rows = CachedExamples(output)
    correct: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for index in range(len(rows)):
        example, logits = rows[index]
        if example.label != IGNORE_INDEX and example.origin == example.key:
            name = example.key.rsplit(":", 1)[0]
            total[name] += 1
            correct[name] += int(np.argmax(logits)) == example.label
    return {name: correct[name] / total[name] for name in total}


def write_cache(args: CacheLogitsArguments) -> CacheLogitsReport:
    """The cache of ``args.output_dir``: written, resumed, or found up to date. The teachers' accuracy is the main
    process's to compute (the others' report has none)."""
    accelerator = Accelerator(mixed_precision=args.mixed_precision)
    setup_logging(accelerator.is_main_process)
    started = time.perf_counter()
    output = Path(args.output_dir)
    try:
        wanted = planned_info(args)
        existing = read_cache_info(output)
        action = existing_cache_action(output, existing, wanted, args.overwrite)
        if action == "done":
            return CacheLogitsReport(str(output), existing["rows"], len(existing["teachers"]), up_to_date=True)
        teachers = load_teachers(args.teacher_name_or_path, args.max_seq_length)
    except (ValueError, OSError) as err:
        stop(err)
    for teacher in teachers:
        teacher.model.to(accelerator.device)
    if action == "write":
        info = with_teacher_labels(wanted, teachers)
        info = prepared_cache(accelerator, output, info, args.augment_settings(), args.block_rows)
    else:
        info = existing
        logger.info("Resuming the unfinished cache in %s", output)
    report = CacheLogitsReport(str(output), info["rows"], len(teachers), up_to_date=False)
    with output_written(output, "--output_dir"):
        compute_logits(accelerator, teachers, output, info, args.batch_size)
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            report.teacher_accuracy = teacher_accuracy(output)
            write_cache_info(output, {**info, "teacher_accuracy": report.teacher_accuracy, "complete": True})
            shutil.rmtree(output / PROGRESS_DIR, ignore_errors=True)
    report.seconds = time.perf_counter() - started
    return report

"""Run fine-tuned teachers once over the transfer set and store their logits: the cache distill.train reads.

    # CPU: the bundled labelled and unlabelled reviews, each followed by a masked and a POS-replaced copy
    python -m distill.cache_logits --teacher_name_or_path runs/nsmc/kobert/best \
        --data_files data/nsmc_train.txt.gz data/reviews.txt.gz --output_dir runs/distill/cache \
        --mask_per_example 1 --pos_per_example 1
    # an ensemble teacher (the mean of its members' logits) on several GPUs, each process its share of the rows
    accelerate launch -m distill.cache_logits --teacher_name_or_path runs/nsmc/a/best runs/nsmc/b/best \
        --data_files ../shared/data/nsmc_train.txt ../shared/data/corpus/reviews.txt.gz \
        --output_dir runs/distill/cache --mixed_precision bf16 --batch_size 256

    report = cache_logits(CacheLogitsArguments(teacher_name_or_path=[...], data_files=[...], output_dir=...))

Data files are labelled (``id<TAB>document<TAB>label`` with that header) or unlabelled (one text per line); see
``distill.examples`` for the cache's files. A teacher is a local folder that loads with
``AutoModelForSequenceClassification`` (e.g. the ``best/`` folder of ``python -m finetune.nsmc``). With
augmentation (``distill.augment``: the ``--mask_*``, ``--pos_*`` and ``--ngram_*`` options, ``--augment_seed``),
each example is followed by its copies, keyed ``FILE_NAME:LINE#augN`` (N from 1), without a gold label (the
teacher's logits are their target) and with the example's key as their origin.

cache.json records the fingerprints of the teachers and the data, the augmentation settings and engine (null
without augmentation) and the sequence length (``distill.fingerprint``). Run again with an existing
``--output_dir``: a finished cache of the same inputs is up to date (nothing runs), an interrupted one is resumed
from its last finished block, and a cache of other inputs is refused, saying what differs, unless ``--overwrite``.
Everything is checked (teachers, labels, every data line) before a teacher runs, and bad input leaves an existing
cache as it was; with ``--overwrite`` the old cache gives way only once the new one's examples are written (a run
interrupted after that leaves the new cache, to be resumed).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from common.config import key, required, run_command
from common.io import first_process, require_data_files, require_output_place
from distill.augment import AugmentationOptions, setting_option


@dataclass(kw_only=True)
class CacheLogitsArguments(AugmentationOptions):
    """What ``python -m distill.cache_logits`` reads. The augmentation (``distill.augment``) is off while every
    ``*_per_example`` count is 0."""

    # The augmentation's seed, renamed: here "--seed" would read as the teachers'.
    seed_option: ClassVar[str] = "augment_seed"

    teacher_name_or_path: list[str] = required(
        "Fine-tuned sequence classifiers' folders: several make an ensemble (their logits averaged).", repeatable=True
    )
    data_files: list[str] = required("Labelled (NSMC-format) or unlabelled text files.")
    output_dir: str = required("The cache folder.")
    max_seq_length: int = key(128, "Tokens per input, special tokens included.")
    batch_size: int = key(64, "Texts per teacher call, per process.")
    max_examples_per_file: int = key(
        0, "Read at most the first N examples of each data file (a quick run); 0 reads them all."
    )
    block_rows: int = key(
        4096,
        "Rows per unit of work: blocks go round-robin to the processes, and progress is saved after each (a resumed "
        "cache keeps the value it was started with).",
    )
    mixed_precision: Literal["no", "fp16", "bf16"] = key(
        "no", "Run the teachers in bf16 or fp16 (GPUs), or in float32 (no); logits are stored as float32."
    )
    overwrite: bool = key(False, "Replace an existing cache of other inputs (or any other folder).")
    augment_seed: int = setting_option("seed")

    def validate(self) -> None:
        """ValueError naming the option whose value cannot work. (The data files are checked by ``cache_logits``: a
        recipe checks these options before it writes the transfer files they name.)"""
        self.check_augmentation()
        if self.max_seq_length < 8:
            raise ValueError("--max_seq_length must be at least 8")
        if self.batch_size < 1 or self.block_rows < 1:
            raise ValueError("--batch_size and --block_rows must be at least 1")
        if self.max_examples_per_file < 0:
            raise ValueError("--max_examples_per_file must be 0 (all) or more")
        require_output_place(self.output_dir, "--output_dir")


@dataclass
class CacheLogitsReport:
    output_dir: str
    rows: int
    teachers: int
    up_to_date: bool  # a finished cache of the same inputs was there: nothing ran
    teacher_accuracy: dict[str, float] = field(default_factory=dict)  # by labelled file name
    seconds: float = 0.0


def cache_logits(args: CacheLogitsArguments) -> CacheLogitsReport:
    """Write (or resume, or find up to date) the logits cache of ``args.output_dir``. ValueError or OSError names
    the option or input that cannot work, before any teacher runs; under ``accelerate launch`` every process raises
    it."""
    args.validate()
    require_data_files(args, ["data_files"])
    from distill.teacher_logits import write_cache  # the heavy libraries once the options and files are checked

    return write_cache(args)


def main(argv: list[str] | None = None) -> int:
    report = run_command(cache_logits, CacheLogitsArguments, argv, "python -m distill.cache_logits", __doc__)
    if not first_process():
        return 0
    if report.up_to_date:
        print(f"{report.output_dir} is up to date ({report.rows} rows); nothing to do")  # noqa: T201
        return 0
    for name, value in report.teacher_accuracy.items():
        print(f"teacher accuracy on {name}: {100 * value:.2f}%")  # noqa: T201
    print(f"{report.rows} rows, {report.teachers} teacher(s), {report.seconds:.1f} s: {report.output_dir}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())

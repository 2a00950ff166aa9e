"""Run fine-tuned teachers once over the transfer set and store their logits: the cache distill.train reads.

    # CPU: the bundled labelled and unlabelled reviews, each followed by a masked and a POS-replaced copy
    python -m distill.cache_logits --teacher runs/nsmc/kobert/best \
        --data data/nsmc_train.txt.gz data/reviews.txt.gz --output runs/distill/cache \
        --mask-per-example 1 --pos-per-example 1
    # an ensemble teacher (the mean of its members' logits) on several GPUs, each process its share of the rows
    accelerate launch -m distill.cache_logits --teacher runs/nsmc/a/best --teacher runs/nsmc/b/best \
        --data ../shared/data/nsmc_train.txt ../shared/data/corpus/reviews.txt.gz --output runs/distill/cache \
        --mixed-precision bf16 --batch-size 256

Data files are labelled (``id<TAB>document<TAB>label`` with that header) or unlabelled (one text per line); see
``distill.data`` for the cache's files. A teacher is a local folder that loads with
``AutoModelForSequenceClassification`` (e.g. the ``best/`` folder of ``python -m finetune.nsmc``). With
augmentation (``distill.augment``: the ``--mask-*``, ``--pos-*`` and ``--ngram-*`` flags), each example is followed
by its copies, keyed ``FILE_NAME:LINE#augN`` (N from 1), without a gold label (the teacher's logits are their
target) and with the example's key as their origin.

cache.json records the fingerprints of the teachers and the data, the augmentation settings and engine (null
without augmentation) and the sequence length (``distill.fingerprint``). Run again with an existing ``--output``: a
finished cache of the same inputs is up to date (nothing runs), an interrupted one is resumed from its last finished
block, and a cache of other inputs is refused, saying what differs, unless ``--overwrite``. Everything is checked
(teachers, labels, every data line) before a teacher runs, and bad input leaves an existing cache as it was; with
``--overwrite`` the old cache gives way only once the new one's examples are written (a run interrupted after that
leaves the new cache, to be resumed).
"""

from __future__ import annotations

import argparse

from common.cli import add_mixed_precision, command_parser
from common.io import check_output_place
from distill.augment import (
    SETTINGS_FLAGS,
    add_settings_arguments,
    check_settings_arguments,
)

# The augmentation's seed flag renamed: here "--seed" would read as the teachers'.
AUGMENT_FLAGS = {**SETTINGS_FLAGS, "seed": "--augment-seed"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = command_parser("python -m distill.cache_logits", __doc__)
    parser.add_argument(
        "--teacher",
        action="append",
        required=True,
        help="A fine-tuned sequence classifier's folder; repeat the flag for an ensemble (logits averaged).",
    )
    parser.add_argument("--data", nargs="+", required=True, help="Labelled (NSMC-format) or unlabelled text files.")
    parser.add_argument("--output", required=True, help="The cache folder.")
    parser.add_argument("--max-seq-length", type=int, default=128, help="Tokens per input, special tokens included.")
    parser.add_argument("--batch-size", type=int, default=64, help="Texts per teacher call, per process.")
    parser.add_argument(
        "--max-examples-per-file",
        type=int,
        default=0,
        help="Read at most the first N examples of each data file (a quick run); 0 reads them all.",
    )
    parser.add_argument(
        "--block-rows",
        type=int,
        default=4096,
        help="Rows per unit of work: blocks go round-robin to the processes, and progress is saved after each "
        "(a resumed cache keeps the value it was started with).",
    )
    teachers_in = "Run the teachers in bf16 or fp16 (GPUs), or in float32 (no); logits are stored as float32."
    add_mixed_precision(parser, teachers_in)
    parser.add_argument(
        "--overwrite", action="store_true", help="Replace an existing cache of other inputs (or any other folder)."
    )
    add_settings_arguments(
        parser.add_argument_group("augmentation (distill.augment; off while every count is 0)"), AUGMENT_FLAGS
    )
    args = parser.parse_args(argv)
    check_settings_arguments(parser, args, AUGMENT_FLAGS)
    if args.max_seq_length < 8:
        parser.error("--max-seq-length must be at least 8")
    if args.batch_size < 1 or args.block_rows < 1:
        parser.error("--batch-size and --block-rows must be at least 1")
    if args.max_examples_per_file < 0:
        parser.error("--max-examples-per-file must be 0 (all) or more")
    check_output_place(parser, args.output)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from distill.teacher_logits import cache_logits  # the heavy libraries once the arguments are checked

    cache_logits(args)


if __name__ == "__main__":
    main()

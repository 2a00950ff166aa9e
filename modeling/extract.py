"""Extract a DistilBERT student from a BERT teacher (a masked LM or an encoder) by copying chosen layers.

    python -m modeling.extract --teacher monologg/kobert-lm --num-layers 3 --output runs/distilkobert-init
    python -m modeling.extract --teacher runs/teacher --layers 0,4,8 --output runs/student --overwrite

Writes a ``save_pretrained`` folder (safetensors) with the teacher's tokenizer and ``extraction.json`` (teacher,
layers, token-type folding, where the MLM head came from), loadable with ``AutoModelForMaskedLM`` and
``AutoTokenizer(trust_remote_code=True)``. A teacher without a masked-LM head (a ``BertModel`` such as
multilingual-e5-small) gives a student whose head is new (seed 0): distil it through hidden states.
"""

from __future__ import annotations

import argparse
import sys

from common.cli import command_parser
from common.io import check_output_folder, new_folder, output_written, quiet_file_progress_bars, write_json

EXTRACTION_FILE = "extraction.json"


def parse_layer_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError as err:
        message = f"--layers takes comma-separated integers such as 0,4,8, got {text!r}"
        raise argparse.ArgumentTypeError(message) from err


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = command_parser("python -m modeling.extract", __doc__)
    parser.add_argument(
        "--teacher", required=True, help="BERT folder or Hub id: a masked LM (monologg/kobert-lm) or an encoder."
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--layers", type=parse_layer_list, help="Teacher layer indices, 0-based, e.g. 0,4,8.")
    which.add_argument(
        "--num-layers",
        type=int,
        help="Student depth; for a 12-layer teacher 1, 3 and 6 use the presets [5], [0,4,8], [0,2,4,7,9,11], "
        "other depths evenly spaced layers.",
    )
    parser.add_argument(
        "--no-fold-token-type",
        dest="fold_token_type",
        action="store_false",
        help="Do not add the teacher's segment-0 token-type embedding to the student's position embeddings.",
    )
    parser.add_argument("--output", required=True, help="Folder to write; refused if it exists and is not empty.")
    parser.add_argument("--overwrite", action="store_true", help="Replace an existing non-empty --output folder.")
    args = parser.parse_args(argv)
    check_output_folder(parser, args.output, args.overwrite)
    return args


def check_tokenizer_matches(tokenizer: object, vocab_size: int, teacher: str) -> None:
    if len(tokenizer) != vocab_size:
        raise ValueError(
            f"{teacher}: the tokenizer has {len(tokenizer)} tokens but the teacher's embeddings have {vocab_size} "
            "rows; they do not belong together"
        )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import torch  # after the arguments: --help and a refusal never wait for torch

    from modeling.load import load_bert_teacher, load_tokenizer
    from modeling.student import build_student, parameter_count, select_layers, size_mb

    quiet_file_progress_bars()
    try:
        torch.manual_seed(0)  # a teacher without an MLM head gives the student a new one: the same in every run
        teacher, has_head = load_bert_teacher(args.teacher)
        tokenizer = load_tokenizer(args.teacher)
        check_tokenizer_matches(tokenizer, teacher.config.vocab_size, args.teacher)
        layers = select_layers(teacher.config.num_hidden_layers, num_layers=args.num_layers, layers=args.layers)
        student = build_student(teacher, layers, fold_token_type=args.fold_token_type)
    except (ValueError, OSError) as err:
        raise SystemExit(f"error: {err}") from err

    with output_written(args.output), new_folder(args.output, "extract") as staging:
        student.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        summary = {
            "teacher": args.teacher,
            "teacher_layers": teacher.config.num_hidden_layers,
            "student_layers_from_teacher": layers,
            "fold_token_type": args.fold_token_type,
            "mlm_head": "the teacher's" if has_head else "new (seed 0): the teacher has none",
            "teacher_parameters": parameter_count(teacher),
            "student_parameters": parameter_count(student),
            "teacher_size_mb": round(size_mb(teacher), 1),
            "student_size_mb": round(size_mb(student), 1),
        }
        write_json(staging / EXTRACTION_FILE, summary)

    print(f"wrote {args.output}: DistilBertForMaskedLM with {len(layers)} layers")
    print(f"teacher layers taken (0-based): {layers} of {summary['teacher_layers']}")
    print(f"token-type embedding folded into positions: {'yes' if args.fold_token_type else 'no'}")
    print(f"masked-LM head: {summary['mlm_head']}")
    print(f"teacher: {summary['teacher_parameters']:,} parameters, {summary['teacher_size_mb']} MB")
    print(f"student: {summary['student_parameters']:,} parameters, {summary['student_size_mb']} MB")


if __name__ == "__main__":
    sys.exit(main())

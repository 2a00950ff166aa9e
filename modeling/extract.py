"""Extract a DistilBERT student from a BERT teacher (a masked LM or an encoder) by copying chosen layers.

    python -m modeling.extract --teacher_name_or_path monologg/kobert-lm --num_layers 3 \
        --output_dir runs/distilkobert-init
    python -m modeling.extract --teacher_name_or_path runs/teacher --layers 0 4 8 --output_dir runs/student --overwrite

Writes a ``save_pretrained`` folder (safetensors) with the teacher's tokenizer and ``extraction.json`` (teacher,
layers, token-type folding, where the MLM head came from), loadable with ``AutoModelForMaskedLM`` and
``AutoTokenizer(trust_remote_code=True)``. A teacher without a masked-LM head (a ``BertModel`` such as
multilingual-e5-small) gives a student whose head is new (seed 0): distil it through hidden states.

From Python: ``extract_student(ExtractArguments(teacher_name_or_path=..., layers=[0, 4, 8], output_dir=...))``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from common.config import key, required, run_command
from common.io import new_folder, output_written, quiet_file_progress_bars, require_output_folder, write_json

EXTRACTION_FILE = "extraction.json"


@dataclass(kw_only=True)
class ExtractArguments:
    """What ``python -m modeling.extract`` reads."""

    teacher_name_or_path: str = required(
        "BERT folder or Hub id: a masked LM (monologg/kobert-lm) or an encoder (a BertModel)."
    )
    layers: list[int] = key([], "Teacher layer indices, 0-based, e.g. 0 4 8 (or give --num_layers).")
    num_layers: int | None = key(
        None,
        "Student depth (or give --layers); for a 12-layer teacher 1, 3 and 6 use the presets [5], [0, 4, 8], "
        "[0, 2, 4, 7, 9, 11], other depths evenly spaced layers.",
    )
    fold_token_type: bool = key(
        True, "Add the teacher's segment-0 token-type embedding to the student's position embeddings."
    )
    output_dir: str = required("Folder to write; refused if it exists and is not empty.")
    overwrite: bool = key(False, "Replace an existing non-empty --output_dir.")

    def validate(self) -> None:
        """ValueError naming the option whose value cannot work (no model is loaded)."""
        if bool(self.layers) == (self.num_layers is not None):
            raise ValueError("give one of --layers (teacher layer indices) and --num_layers (a student depth)")
        require_output_folder(self.output_dir, self.overwrite, "--output_dir")


@dataclass
class ExtractReport:
    """What ``extract_student`` wrote (also in ``extraction.json``)."""

    output_dir: str
    teacher: str
    teacher_layers: int
    student_layers_from_teacher: list[int]
    fold_token_type: bool
    mlm_head: str
    teacher_parameters: int
    student_parameters: int
    teacher_size_mb: float
    student_size_mb: float


def check_tokenizer_matches(tokenizer: object, vocab_size: int, teacher: str) -> None:
    if len(tokenizer) != vocab_size:
        raise ValueError(
            f"{teacher}: the tokenizer has {len(tokenizer)} tokens but the teacher's embeddings have {vocab_size} "
            "rows; they do not belong together"
        )


def extract_student(args: ExtractArguments) -> ExtractReport:
    """Write the DistilBERT student of the teacher's chosen layers to ``args.output_dir``. ValueError or OSError
    names an option or a model that cannot work, before anything is written."""
    args.validate()
    import torch  # after the checks: a refusal never waits for torch

    from modeling.load import load_bert_teacher, load_tokenizer
    from modeling.student import build_student, parameter_count, select_layers, size_mb

    quiet_file_progress_bars()
    torch.manual_seed(0)  # a teacher without an MLM head gives the student a new one: the same in every run
    teacher, has_head = load_bert_teacher(args.teacher_name_or_path)
    tokenizer = load_tokenizer(args.teacher_name_or_path)
    check_tokenizer_matches(tokenizer, teacher.config.vocab_size, args.teacher_name_or_path)
    layers = select_layers(teacher.config.num_hidden_layers, num_layers=args.num_layers, layers=args.layers or None)
    student = build_student(teacher, layers, fold_token_type=args.fold_token_type)

    report = ExtractReport(
        output_dir=args.output_dir,
        teacher=args.teacher_name_or_path,
        teacher_layers=teacher.config.num_hidden_layers,
        student_layers_from_teacher=layers,
        fold_token_type=args.fold_token_type,
        mlm_head="the teacher's" if has_head else "new (seed 0): the teacher has none",
        teacher_parameters=parameter_count(teacher),
        student_parameters=parameter_count(student),
        teacher_size_mb=round(size_mb(teacher), 1),
        student_size_mb=round(size_mb(student), 1),
    )
    with output_written(args.output_dir, "--output_dir"), new_folder(args.output_dir, "extract") as staging:
        student.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        summary = {name: value for name, value in vars(report).items() if name != "output_dir"}
        write_json(staging / EXTRACTION_FILE, summary)
    return report


def main(argv: list[str] | None = None) -> int:
    report = run_command(extract_student, ExtractArguments, argv, "python -m modeling.extract", __doc__)
    layers = report.student_layers_from_teacher
    print(f"wrote {report.output_dir}: DistilBertForMaskedLM with {len(layers)} layers")
    print(f"teacher layers taken (0-based): {layers} of {report.teacher_layers}")
    print(f"token-type embedding folded into positions: {'yes' if report.fold_token_type else 'no'}")
    print(f"masked-LM head: {report.mlm_head}")
    print(f"teacher: {report.teacher_parameters:,} parameters, {report.teacher_size_mb} MB")
    print(f"student: {report.student_parameters:,} parameters, {report.student_size_mb} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

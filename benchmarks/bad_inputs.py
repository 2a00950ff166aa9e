"""What every command answers to the inputs people really feed it: the bad-input matrix, run, as a table.

    python benchmarks/bad_inputs.py                          # every case; writes docs/bad_inputs.md
    python benchmarks/bad_inputs.py --only finetune.nsmc     # one command's row

Each case puts one input of one kind (a missing, empty or binary file, a folder, a truncated .gz, CP949 Korean, a
byte-order mark, CRLF line ends, a missing header, a row with a column too many or too few, a label outside the label
set, a 1 MB line) into a command's data argument, beside valid other inputs in a fresh folder, and runs the command's
``main()`` in this process. It records the exit status and the last line the command wrote to stderr (the line a
user reads), and whether a traceback escaped. A case passes when the command does what its expectation says: ends
with an error whose one line names the input, or, for an input that is merely unusual (a byte-order mark, CRLF, a
1 MB line), succeeds. ``tests/test_bad_inputs.py`` runs every case; this command renders them for reviewers.

The model every command gets is a tiny random BERT (one layer, 32 wide) with the real KoBERT tokenizer
(``data/kobert``): what is tested is the handling of the input, never the model.
"""

from __future__ import annotations

import contextlib
import gzip
import importlib
import io
import logging
import shutil
import sys
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


KOBERT = ROOT / "data" / "kobert"
OUTPUT = ROOT / "docs" / "bad_inputs.md"
LONG_TEXT = "아주 긴 리뷰 " * (1_000_000 // 16)  # about 1 MB of UTF-8 in one line

# Valid inputs of each format: Korean text, so that CP949 has something to encode.
NSMC = "id\tdocument\tlabel\n1\t정말 재미있어요\t1\n2\t시간 아까움\t0\n3\t배우 연기 최고\t1\n4\t별로예요\t0\n"
NER = "김철수 서울 간다\tPER-B LOC-B O\n영희 부산 왔다\tPER-B LOC-B O\n"
NER_LABELS = "O\nPER-B\nPER-I\nLOC-B\nLOC-I\n"
NLI = (
    "sentence1\tsentence2\tgold_label\n비가 온다\t날씨가 흐리다\tentailment\n"
    "고양이가 잔다\t개가 짖는다\tneutral\n문이 열렸다\t문이 닫혔다\tcontradiction\n"
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


@dataclass(frozen=True)
class Format:
    """A file format a command reads: a valid example and how to spoil it in the ways of its family."""

    name: str
    valid: str
    model: bool = False  # a model folder rather than a file
    header: bool = False  # a header line that must be there
    bad_label: str | None = None  # the valid text with a label outside the label set
    extra_column: str | None = None
    missing_column: str | None = None
    long_line: str | None = None  # the valid text with a 1 MB line in it


def rows_with(valid: str, row: str, header: bool) -> str:
    lines = valid.splitlines(keepends=True)
    return "".join([*lines[:1], row, *lines[1:]]) if header else row + valid


FORMATS = {
    "nsmc": Format(
        "NSMC TSV",
        NSMC,
        header=True,
        bad_label=NSMC.replace("\t1\n", "\t2\n", 1),
        extra_column=rows_with(NSMC, "9\t좋아요\t1\t덤\n", True),
        missing_column=rows_with(NSMC, "9\t좋아요\n", True),
        long_line=rows_with(NSMC, f"9\t{LONG_TEXT}\t1\n", True),
    ),
    "ner": Format(
        "NER TSV",
        NER,
        bad_label=NER.replace("LOC-B O", "CITY O", 1),
        extra_column=rows_with(NER, "철수 간다\tPER-B O\t덤\n", False),
        missing_column=rows_with(NER, "철수 간다\n", False),
    ),
    "nli": Format(
        "KorNLI TSV",
        NLI,
        header=True,
        bad_label=NLI.replace("\tneutral\n", "\tmaybe\n"),
        extra_column=rows_with(NLI, "하나\t둘\tneutral\t덤\n", True),
        missing_column=rows_with(NLI, "하나\tneutral\n", True),
    ),
    "sts": Format(
        "KorSTS TSV",
        STS,
        header=True,
        bad_label=STS.replace("\t4.5\t", "\thigh\t"),
        missing_column=rows_with(STS, "main-news\tf\t2017\t9\t3.0\t하나\n", True),
    ),
    "corpus": Format("text corpus", CORPUS, long_line=CORPUS + LONG_TEXT + "\n"),
    "model": Format("model folder", "", model=True),
}


# The kinds of input: how each is written from a format, to which formats it applies, and whether a command must
# succeed on it.


@dataclass(frozen=True)
class Kind:
    name: str
    description: str
    # writes the input at (or beside) the path, from the format or the shared fixtures; the path to give
    write: Callable[[Path, Format, Path], Path]
    expect_ok: bool = False
    applies: Callable[[Format], bool] = lambda form: not form.model


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

    return Kind(name, description, write, expect_ok, applies=lambda form: not form.model and pick(form) is not None)


def folder(path: Path, form: Format, fixtures: Path) -> Path:
    path.mkdir()
    return path


def model_copy(
    source: str, spoil: Callable[[Path], None] = lambda folder: None
) -> Callable[[Path, Format, Path], Path]:
    """A kind that is a copy of one of the fixtures' model folders, spoiled by ``spoil``."""

    def write(path: Path, form: Format, fixtures: Path) -> Path:
        shutil.copytree(fixtures / source, path)
        spoil(path)
        return path

    return write


def without_weights(folder: Path) -> None:
    (folder / "model.safetensors").unlink()


def cut_config(folder: Path) -> None:
    config = folder / "config.json"
    config.write_bytes(config.read_bytes()[: config.stat().st_size // 2])


def model_kind(name: str, description: str, write: Callable[[Path, Format, Path], Path]) -> Kind:
    return Kind(name, description, write, applies=lambda form: form.model)


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
    variant("extra-column", "a row with a column too many", lambda form: form.extra_column),
    variant("missing-column", "a row with a column too few", lambda form: form.missing_column),
    variant("bad-label", "a label outside the label set", lambda form: form.bad_label),
    variant("long-line", "a 1 MB line", lambda form: form.long_line, expect_ok=True),
    model_kind(
        "model-file", "a file where the folder should be", lambda path, form, fixtures: write_bytes(path, b"{}")
    ),
    model_kind("model-empty", "an empty folder", folder),
    model_kind("other-architecture", "a GPT-2 folder", model_copy("gpt2")),
    model_kind("vocab-mismatch", "a tokenizer larger than the embedding", model_copy("small-vocab")),
    model_kind(
        "no-weights",
        "config and tokenizer, no weights (an interrupted save)",
        model_copy("classifier", without_weights),
    ),
    model_kind("broken-config", "config.json cut in half", model_copy("classifier", cut_config)),
]


# The commands: each gets the bad input in one argument, valid files and the tiny model in the others.


@dataclass(frozen=True)
class Command:
    name: str  # the module: python -m NAME
    argument: str  # the option that gets the input
    form: str  # a key of FORMATS
    argv: Callable[[Path, Path], list[str]]  # (the shared fixtures' folder, the case's folder) -> the other options
    ok_kinds: frozenset[str] = frozenset()  # kinds this command reads as valid although others refuse them


def valid_file(fixtures: Path, form: str) -> str:
    path = fixtures / f"valid-{form}.txt"
    if not path.exists():
        path.write_text(FORMATS[form].valid, encoding="utf-8")
    return str(path)


TRAINING = ["--epochs", "1", "--batch-size", "2", "--max-seq-length", "16"]


def fine_tuning(test_option: str, form: str, *more: str) -> Callable[[Path, Path], list[str]]:
    """A fine-tuning command's other options: the tiny model, a valid test file, an output, one short epoch."""

    def argv(fixtures: Path, work: Path) -> list[str]:
        model, output = str(fixtures / "model"), str(work / "out")
        extra = [value.format(fixtures=fixtures) for value in more]
        return ["--model", model, test_option, valid_file(fixtures, form), *extra, "--output", output, *TRAINING]

    return argv


def build_tokenizer(fixtures: Path, work: Path) -> list[str]:
    return ["--vocab-size", "30", "--output", str(work / "tokenizer")]


def prepare(fixtures: Path, work: Path) -> list[str]:
    return ["--tokenizer", str(fixtures / "model"), "--output", str(work / "data"), "--max-seq-length", "32"]


def cache_logits(fixtures: Path, work: Path) -> list[str]:
    return ["--teacher", str(fixtures / "classifier"), "--output", str(work / "cache"), "--max-seq-length", "16"]


def nsmc_without_model(fixtures: Path, work: Path) -> list[str]:
    data = valid_file(fixtures, "nsmc")
    return ["--train", data, "--test", data, "--output", str(work / "out"), *TRAINING]


def sts_without_model(fixtures: Path, work: Path) -> list[str]:
    data = valid_file(fixtures, "sts")
    return ["--train", data, "--dev", data, "--output", str(work / "out"), *TRAINING]


def cache_without_teacher(fixtures: Path, work: Path) -> list[str]:
    return ["--data", valid_file(fixtures, "nsmc"), "--output", str(work / "cache"), "--max-seq-length", "16"]


def extract(fixtures: Path, work: Path) -> list[str]:
    return ["--layers", "0", "--output", str(work / "student")]


def export(fixtures: Path, work: Path) -> list[str]:
    return ["--output", str(work / "exported"), "--parity-examples", "4"]


COMMANDS = [
    Command("pretrain.build_tokenizer", "--corpus", "corpus", build_tokenizer),
    Command("pretrain.prepare", "--corpus", "corpus", prepare),
    Command("finetune.nsmc", "--train", "nsmc", fine_tuning("--test", "nsmc")),
    Command("finetune.ner", "--train", "ner", fine_tuning("--test", "ner", "--labels", "{fixtures}/labels.txt")),
    Command("finetune.nli", "--train", "nli", fine_tuning("--test", "nli")),
    Command("sentence.sts", "--train", "sts", fine_tuning("--dev", "sts")),
    # A file without the NSMC header is unlabelled text, one example per line: a valid input here.
    Command("distill.cache_logits", "--data", "nsmc", cache_logits, ok_kinds=frozenset({"no-header"})),
    Command("finetune.nsmc", "--model", "model", nsmc_without_model),
    # sentence-transformers wraps any transformers model: a GPT-2 encoder is unusual, not wrong.
    Command("sentence.sts", "--model", "model", sts_without_model, ok_kinds=frozenset({"other-architecture"})),
    Command("distill.cache_logits", "--teacher", "model", cache_without_teacher),
    Command("modeling.extract", "--teacher", "model", extract),
    Command("serve.export", "--model", "model", export),
]


def build_fixtures(folder: Path) -> None:
    """The tiny random BERT (with its KoBERT tokenizer), a classifier of it and the NER label file, once."""
    if (folder / "classifier" / "config.json").exists():
        return
    import torch
    from transformers import (
        BertConfig,
        BertForMaskedLM,
        BertForSequenceClassification,
        GPT2Config,
        GPT2LMHeadModel,
    )

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
        "small-vocab": BertForSequenceClassification(small),
        "gpt2": GPT2LMHeadModel(gpt2),
    }
    for name, model in models.items():
        model.save_pretrained(folder / name)
        tokenizer.save_pretrained(folder / name)


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


@dataclass(frozen=True)
class Outcome:
    status: int
    message: str  # the last line on stderr ("" if none)
    traceback: bool  # an exception other than SystemExit escaped main()
    input_path: str

    def verdict(self, case: Case) -> str | None:
        """What is wrong with this outcome (None: the command did what the case expects)."""
        if self.traceback:
            return f"a traceback: {self.message}"
        if case.expect_ok:
            return None if self.status == 0 else f"refused a valid input: {self.message}"
        if self.status == 0:
            return "accepted it and succeeded"
        if "error" not in self.message:
            return f"no error line: {self.message!r}"
        if self.input_path not in self.message and case.command.argument not in self.message:
            return f"the error names neither {self.input_path} nor {case.command.argument}: {self.message}"
        return None


def cases(only: list[str] | None = None) -> list[Case]:
    """Every case whose kind applies to its command's format (``only``: these commands' cases)."""
    return [
        Case(command, kind)
        for command in COMMANDS
        if not only or command.name in only
        for kind in KINDS
        if kind.applies(FORMATS[command.form])
    ]


def run_case(case: Case, fixtures: Path, work: Path) -> Outcome:
    """Write the case's input into the empty folder ``work`` and run its command there."""
    work.mkdir(parents=True, exist_ok=True)
    given = case.kind.write(work / "input.txt", FORMATS[case.command.form], fixtures)
    argv = [case.command.argument, str(given), *case.command.argv(fixtures, work)]
    main = importlib.import_module(case.command.name).main
    errors = io.StringIO()
    status, escaped = 0, False
    with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
        try:
            main(argv)
        except SystemExit as exit_:
            if isinstance(exit_.code, str):  # what Python prints for SystemExit("error: ...")
                print(exit_.code, file=errors)
            status = exit_.code if isinstance(exit_.code, int) else 1
        except Exception:  # what escapes main() is what the matrix is here to find
            traceback.print_exc(file=errors)
            status, escaped = 1, True
    lines = [line for line in errors.getvalue().splitlines() if line.strip()]
    return Outcome(status, lines[-1] if lines else "", escaped, str(given))


# The table


def shown(text: str, folder: Path) -> str:
    """A message as the table shows it: the case's temporary folder as ``DIR``, the fixtures' as ``FIXTURES``,
    pipes escaped."""
    text = text.replace(str(folder), "DIR").replace(str(folder.parent / "fixtures"), "FIXTURES")
    return text.replace("|", "\\|")


def table(rows: list[tuple[Case, Outcome, Path]]) -> str:
    lines = [
        "# What each command answers to bad input",
        "",
        "Written by `python benchmarks/bad_inputs.py` (the cases are in that file; `tests/test_bad_inputs.py` runs",
        "them all). `DIR` is the case's folder; the message is the last line the command wrote to stderr.",
        "",
        "| command | input | expected | exit | what the user sees | as expected |",
        "|---|---|---|---:|---|---|",
    ]
    for case, outcome, folder in rows:
        verdict = outcome.verdict(case)
        expected = "success" if case.expect_ok else f"an error naming the file or {case.command.argument}"
        message = shown(outcome.message, folder) if outcome.status else "(succeeded)"
        mark = "yes" if verdict is None else f"**no**: {shown(verdict, folder)}"
        lines.append(
            f"| `{case.command.name}` {case.command.argument} | {case.kind.description} | {expected} | "
            f"{outcome.status} | {message} | {mark} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    from common.cli import command_parser
    from common.io import write_atomic

    parser = command_parser("python benchmarks/bad_inputs.py", __doc__)
    parser.add_argument("--only", nargs="+", help="These commands' cases alone (python -m NAME).")
    parser.add_argument("--output", default=str(OUTPUT), help="The table, as Markdown.")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)  # the commands' progress logs; the table keeps their last word
    rows = []
    with tempfile.TemporaryDirectory() as temporary:
        build_fixtures(Path(temporary) / "fixtures")
        for number, case in enumerate(cases(args.only)):
            folder = Path(temporary) / f"case-{number}"
            rows.append((case, run_case(case, Path(temporary) / "fixtures", folder), folder))
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.output, lambda staging: staging.write_text(table(rows), encoding="utf-8"))
    wrong = [case.id for case, outcome, _ in rows if outcome.verdict(case) is not None]
    commands = len({case.command.name for case, _, _ in rows})
    print(f"{len(rows)} cases ({commands} commands): {len(rows) - len(wrong)} as expected; table in {args.output}")
    if wrong:
        raise SystemExit(f"error: not as expected: {', '.join(wrong)}")


if __name__ == "__main__":
    main()

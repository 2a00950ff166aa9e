"""Trim a model's vocabulary to the pieces a corpus uses: fewer embedding rows, the same outputs on that text.

    python -m modeling.trim_vocab --model_name_or_path runs/e5-small --corpus data/reviews.txt.gz \
        --keep_tokens_file data/e5_review_tokens.txt --held_out data/nsmc_test.txt.gz --output_dir runs/e5-ko

The method is TextPruner's vocabulary pruning (airaria/TextPruner, ``VocabularyPruner``): every line of ``--corpus``
is tokenized with the special tokens, the ids seen at least ``--min_count`` times are kept with every special and
added token (and every piece of ``--keep_tokens_file``), in their original order; the word-embedding rows (and a
masked-LM head's rows and biases) are those ids' rows, and the tokenizer keeps those pieces, renumbered. A line
whose pieces are all kept is tokenized into the same pieces as before (a Unigram's best segmentation and WordPiece's
longest match are still there), so the trimmed model's outputs on it are the untrimmed model's: the command checks
that on up to ``--check_lines`` held-out lines and reports the largest difference. Works on any folder whose
tokenizer is a ``tokenizer.json`` with a Unigram (XLM-R, e5, T5-style) or WordPiece (BERT) model.

Writes the trimmed folder (sentence-transformers files copied when there are any), ``kept_tokens.txt`` (the pieces
kept, one a line, to pass as ``--keep_tokens_file`` another time) and ``trim.json``: the kept size, parameters and MB
before and after, the share of held-out lines whose pieces are all kept, and the check.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.config import key, required, run_command
from common.io import require_output_folder

TRIM_FILE = "trim.json"
KEPT_TOKENS_FILE = "kept_tokens.txt"


@dataclass(kw_only=True)
class TrimArguments:
    """What ``python -m modeling.trim_vocab`` reads."""

    model_name_or_path: str = required(
        "Model folder (or Hub id) whose tokenizer is a Unigram or WordPiece tokenizer.json."
    )
    corpus: list[str] = key([], "Text files (a text a line, or NSMC files; .gz read as such) whose pieces are kept.")
    keep_tokens_file: str = key("", "Pieces to keep besides the corpus's, one a line (an earlier kept_tokens.txt).")
    min_count: int = key(1, "Keep a corpus piece seen at least this many times.")
    held_out: list[str] = key([], "Text files not used for keeping: the share of their lines fully kept is reported.")
    check_lines: int = key(2000, "Held-out lines, fully kept, on which trimmed and untrimmed outputs are compared.")
    output_dir: str = required("Folder to write; refused if it exists and is not empty.")
    overwrite: bool = key(False, "Replace an existing non-empty --output_dir.")

    def validate(self) -> None:
        """ValueError naming every option whose value cannot work."""
        problems = []
        if not self.model_name_or_path:
            problems.append("--model_name_or_path is empty")
        if not self.corpus and not self.keep_tokens_file:
            problems.append("give --corpus (and/or --keep_tokens_file): the pieces to keep come from them")
        for flag, paths in (("--corpus", self.corpus), ("--held_out", self.held_out)):
            problems += [f"{flag}: no such file: {p}" for p in paths if not Path(p).is_file()]
        if self.keep_tokens_file and not Path(self.keep_tokens_file).is_file():
            problems.append(f"--keep_tokens_file: no such file: {self.keep_tokens_file}")
        if self.min_count < 1:
            problems.append(f"--min_count must be >= 1, got {self.min_count}")
        if problems:
            raise ValueError("; ".join(problems))
        require_output_folder(self.output_dir, self.overwrite, "--output_dir")


@dataclass
class TrimReport:
    model_name_or_path: str
    output_dir: str
    vocabulary_before: int
    vocabulary_after: int
    parameters_before: int
    parameters_after: int
    size_mb_before: float
    size_mb_after: float
    corpus_lines: int
    held_out_lines: int
    held_out_lines_fully_kept: float | None
    check: dict[str, Any] = field(default_factory=dict)


def trim_vocab(args: TrimArguments) -> TrimReport:
    """Write ``args.output_dir``, the model of ``args.model_name_or_path`` with the pieces of the corpus (and of the
    keep-tokens file) alone, and return the report (also its trim.json). ValueError or OSError names an option or
    an input that cannot work."""
    args.validate()
    from modeling.trimming import trim  # torch and transformers where there is work: --help never waits for them

    return trim(args)


def main(argv: list[str] | None = None) -> int:
    report = run_command(trim_vocab, TrimArguments, argv, "python -m modeling.trim_vocab", __doc__)
    print(f"wrote {report.output_dir}: {report.vocabulary_after:,} of {report.vocabulary_before:,} embedding rows kept")
    print(
        f"parameters {report.parameters_before:,} -> {report.parameters_after:,} "
        f"({report.size_mb_before} -> {report.size_mb_after} MB)"
    )
    if report.held_out_lines:
        print(
            f"held-out lines whose pieces are all kept: {report.held_out_lines_fully_kept:.2%} "
            f"of {report.held_out_lines:,}"
        )
    if report.check:
        print(
            f"trimmed vs untrimmed on {report.check['lines']:,} such lines: max abs difference "
            f"{report.check['max_abs_difference']:.2e}, lines with other ids {report.check['lines_with_other_ids']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

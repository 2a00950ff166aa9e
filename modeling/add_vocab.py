"""Add tokens to a BERT or DistilBERT masked LM and its tokenizer, each new embedding row the mean of the rows of the
pieces the old tokenizer split the token into: the start of further masked-LM pretraining on new text.

    python -m modeling.add_vocab --model_name_or_path runs/tiny-teacher --tokens_file new_tokens.txt \
        --output_dir runs/tiny-teacher-vocab
    python -m pretrain.prepare --corpus new_text.txt.gz --tokenizer_name_or_path runs/tiny-teacher-vocab \
        --output_dir runs/new-data
    python pretrain/run.py --config pretrain/configs/tiny.yaml --teacher "" --student runs/tiny-teacher-vocab \
        --data_dir runs/new-data --output_dir runs/tiny-more --alpha_ce 0 --alpha_cos 0 --alpha_mlm 1

``--tokens_file`` holds one token per line; blank lines and repeats are skipped, and so is a token the tokenizer already
has (it encodes to one id, or is a vocabulary entry already). New tokens get the ids after the old vocabulary, so
every old id keeps its meaning and a text without new tokens encodes as before; a new token is never split.

For a new token whose old pieces have ids ``p_1 .. p_k`` (as the old tokenizer encodes the token alone, word-start
piece and ``[UNK]`` included: what the old model saw for it)::

    input embedding row  = mean(E[p_1], ..., E[p_k])
    output embedding row = the same row when input and output embeddings are tied (BERT's and DistilBERT's default),
                           else mean(W[p_1], ..., W[p_k]) of the output matrix
    output bias          = mean(b[p_1], ..., b[p_k])     (the MLM head's per-token bias)

so the new token starts out as the old model's average reading of its pieces, and the head predicts it about as
often as its pieces. The folder (``save_pretrained`` safetensors, the tokenizer with its added tokens,
``add_vocab.json``) loads with ``AutoModelForMaskedLM`` and ``AutoTokenizer(..., trust_remote_code=True)``.
From Python: ``add_vocab(AddVocabArguments(model_name_or_path=..., tokens_file=..., output_dir=...))``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from common.config import key, required, run_command
from common.io import require_output_folder

SHOWN_TOKENS = 10  # tokens named in a printed list before "and N more"


@dataclass(kw_only=True)
class AddVocabArguments:
    """What ``python -m modeling.add_vocab`` reads."""

    model_name_or_path: str = required("BERT or DistilBERT masked-LM folder or Hub id, with its tokenizer.")
    tokens_file: str = required("Text file (.gz allowed) of new tokens, one per line.")
    output_dir: str = required("Folder to write; refused if it exists and is not empty.")
    overwrite: bool = key(False, "Replace an existing non-empty --output_dir.")

    def validate(self) -> None:
        """ValueError naming the option whose value cannot work."""
        if not Path(self.tokens_file).is_file():
            problem = "a folder, not a file" if Path(self.tokens_file).is_dir() else "no such file"
            raise ValueError(f"--tokens_file {self.tokens_file!r}: {problem}")
        require_output_folder(self.output_dir, self.overwrite, "--output_dir")


@dataclass
class AddVocabReport:
    output_dir: str
    model_class: str  # the masked LM's class name
    added: list[str]  # the new tokens, in the file's order
    present: list[str]  # tokens of the file the tokenizer had already
    vocabulary_before: int
    vocabulary_after: int


def add_vocab(args: AddVocabArguments) -> AddVocabReport:
    """Write ``args.output_dir``: the masked LM and tokenizer of ``args.model_name_or_path`` with the new tokens of
    ``args.tokens_file``, each new row the mean of its old pieces' rows. ValueError or OSError names an option, a
    line of the file or a model that cannot work, before anything is written."""
    args.validate()
    from modeling.vocab_growth import grow_vocabulary  # torch and transformers once the options are checked

    return grow_vocabulary(args)


def listed(tokens: list[str]) -> str:
    more = len(tokens) - SHOWN_TOKENS
    return ", ".join(tokens[:SHOWN_TOKENS]) + (f" and {more:,} more" if more > 0 else "")


def main(argv: list[str] | None = None) -> int:
    report = run_command(add_vocab, AddVocabArguments, argv, "python -m modeling.add_vocab", __doc__)
    print(f"added {len(report.added):,} tokens: {listed(report.added)}")  # noqa: T201
    if report.present:
        print(f"skipped {len(report.present):,} already in the vocabulary: {listed(report.present)}")  # noqa: T201
    print(  # noqa: T201
        f"wrote {report.output_dir}: {report.model_class}, vocabulary {report.vocabulary_before:,} -> "
        f"{report.vocabulary_after:,}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Add tokens to a BERT or DistilBERT masked LM and its tokenizer, each new embedding row the mean of the rows of the
pieces the old tokenizer split the token into: the start of further masked-LM pretraining on new text.

    python -m modeling.add_vocab --model runs/tiny-teacher --tokens new_tokens.txt --output runs/tiny-teacher-vocab
    python -m pretrain.prepare --corpus new_text.txt.gz --tokenizer runs/tiny-teacher-vocab --output runs/new-data
    python pretrain/run.py --config pretrain/configs/tiny.yaml --teacher "" --student runs/tiny-teacher-vocab \
        --data_dir runs/new-data --output_dir runs/tiny-more --alpha_ce 0 --alpha_cos 0 --alpha_mlm 1

``--tokens`` holds one token per line; blank lines and repeats are skipped, and so is a token the tokenizer already
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
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common.cli import command_parser
from common.io import check_output_folder


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = command_parser("python -m modeling.add_vocab", __doc__)
    parser.add_argument("--model", required=True, help="BERT or DistilBERT masked-LM folder or Hub id, with tokenizer.")
    parser.add_argument("--tokens", required=True, help="Text file (.gz allowed) of new tokens, one per line.")
    parser.add_argument("--output", required=True, help="Folder to write; refused if it exists and is not empty.")
    parser.add_argument("--overwrite", action="store_true", help="Replace an existing non-empty --output folder.")
    args = parser.parse_args(argv)
    if not Path(args.tokens).is_file():
        parser.error(f"--tokens {args.tokens!r}: no such file")
    check_output_folder(parser, args.output, args.overwrite)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from modeling.vocab_growth import add_vocab  # the heavy libraries once the arguments are checked

    add_vocab(args)


if __name__ == "__main__":
    sys.exit(main())

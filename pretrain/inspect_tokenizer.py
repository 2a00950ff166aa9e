"""Show what a KoBERT tokenizer folder does with some text: tokens, ids, segments, offsets and the round trip.

python -m pretrain.inspect_tokenizer runs/demo/tokenizer "[CLS] 한국어 모델을 공유합니다. [SEP]"
python -m pretrain.inspect_tokenizer runs/demo/tokenizer "첫 문장" --pair "둘째 문장"
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from common.cli import command_parser

if TYPE_CHECKING:
    from tokenization_kobert import KoBertTokenizer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = command_parser("python -m pretrain.inspect_tokenizer", __doc__)
    parser.add_argument("tokenizer", help="A tokenizer folder (for example one written by pretrain.build_tokenizer).")
    parser.add_argument("texts", nargs="+", help="Texts to encode.")
    parser.add_argument("--pair", default=None, help="A second segment encoded with each text.")
    return parser.parse_args(argv)


def describe(fast: object, slow: KoBertTokenizer, text: str, pair: str | None) -> list[str]:
    """Lines describing one encoding; says whether the slow tokenizer agrees."""
    encoding = fast(text, pair, return_offsets_mapping=True)
    ids = encoding["input_ids"]
    segments = encoding.sequence_ids()
    spans = [
        (pair if s == 1 else text)[a:b]
        for s, (a, b) in zip(segments, encoding["offset_mapping"], strict=True)
        if s is not None
    ]
    return [
        f"text:           {text!r}" + (f" + {pair!r}" if pair is not None else ""),
        f"tokens:         {encoding.tokens()}",
        f"input_ids:      {ids}",
        f"token_type_ids: {encoding['token_type_ids']}",
        f"offsets:        {encoding['offset_mapping']}",
        f"spans:          {spans}",
        f"word_ids:       {encoding.word_ids()}",
        f"decode:         {fast.decode(ids)!r}",
        f"slow == fast:   {slow(text, pair)['input_ids'] == ids}",
    ]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from transformers import AutoTokenizer  # after the arguments: --help never waits for transformers

    from modeling.load import check_tokenizer_folder, hub_or_local
    from tokenization_kobert import KoBertTokenizer

    try:
        check_tokenizer_folder(args.tokenizer)
        fast = hub_or_local(AutoTokenizer.from_pretrained, args.tokenizer, "tokenizer", trust_remote_code=True)
        slow = hub_or_local(KoBertTokenizer.from_pretrained, args.tokenizer, "tokenizer")
    except (OSError, ValueError) as err:
        raise SystemExit(f"error: {err}") from err
    print(f"{type(fast).__name__} from {args.tokenizer}: {fast.vocab_size} tokens")
    for text in args.texts:
        print()
        print("\n".join(describe(fast, slow, text, args.pair)))


if __name__ == "__main__":
    sys.exit(main())

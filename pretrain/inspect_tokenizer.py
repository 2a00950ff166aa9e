"""Show what a KoBERT tokenizer folder does with some text: tokens, ids, segments, offsets and the round trip.

    python -m pretrain.inspect_tokenizer --tokenizer_name_or_path runs/demo/tokenizer \
        --texts "[CLS] 한국어 모델을 공유합니다. [SEP]"
    python -m pretrain.inspect_tokenizer --tokenizer_name_or_path runs/demo/tokenizer --texts "첫 문장" \
        --pair "둘째 문장"

From Python: ``inspect_tokenizer(InspectArguments(tokenizer_name_or_path=..., texts=[...]))`` returns the lines.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from common.config import key, required, run_command

if TYPE_CHECKING:
    from tokenization_kobert import KoBertTokenizer


@dataclass(kw_only=True)
class InspectArguments:
    """What ``python -m pretrain.inspect_tokenizer`` reads."""

    tokenizer_name_or_path: str = required(
        "A tokenizer folder (for example one written by pretrain.build_tokenizer) or Hub id."
    )
    texts: list[str] = required("Texts to encode.")
    pair: str | None = key(None, "A second segment encoded with each text.")


@dataclass
class InspectReport:
    tokenizer_name_or_path: str
    tokenizer: str  # the fast tokenizer's class, e.g. KoBertTokenizerFast
    vocab_size: int
    encodings: list[list[str]]  # the lines describing each text's encoding (``describe``)


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


def inspect_tokenizer(args: InspectArguments) -> InspectReport:
    """Each text of ``args.texts`` (with ``args.pair``) encoded by the tokenizer, described line by line. OSError or
    ValueError names a tokenizer that does not load."""
    from transformers import AutoTokenizer  # after the options: --help never waits for transformers

    from modeling.load import check_tokenizer_folder, hub_or_local
    from tokenization_kobert import KoBertTokenizer

    name = args.tokenizer_name_or_path
    check_tokenizer_folder(name)
    fast = hub_or_local(AutoTokenizer.from_pretrained, name, "tokenizer", trust_remote_code=True)
    slow = hub_or_local(KoBertTokenizer.from_pretrained, name, "tokenizer")
    encodings = [describe(fast, slow, text, args.pair) for text in args.texts]
    return InspectReport(name, type(fast).__name__, fast.vocab_size, encodings)


def main(argv: list[str] | None = None) -> int:
    report = run_command(inspect_tokenizer, InspectArguments, argv, "python -m pretrain.inspect_tokenizer", __doc__)
    print(f"{report.tokenizer} from {report.tokenizer_name_or_path}: {report.vocab_size} tokens")
    for lines in report.encodings:
        print()
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

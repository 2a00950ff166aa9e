"""Check that a release folder loads the way users will load it; run in a fresh process, offline.

    python -m hub_upload.validate runs/release/distilkobert

Loads ``AutoModel``, ``AutoModelForMaskedLM`` (when the weights have the head) and
``AutoTokenizer(..., trust_remote_code=True)``, runs a forward pass, and checks that the tokenizer round-trips a
Korean sentence and keeps special tokens whole. Exits 1 naming the first check that failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common.cli import command_parser

SENTENCE = "한국어 모델을 공유합니다."


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = command_parser("python -m hub_upload.validate", __doc__)
    parser.add_argument("folder", help="The release folder.")
    return parser.parse_args(argv)


class CheckFailed(Exception):
    """A release check that did not hold (a real exception: ``assert`` would vanish under ``python -O``)."""


def require(condition: bool, detail: str) -> None:
    if not condition:
        raise CheckFailed(detail)


def has_mlm_head(folder: Path) -> bool:
    architectures = json.loads((folder / "config.json").read_text()).get("architectures") or []
    return any(name.endswith("ForMaskedLM") for name in architectures)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import torch
    from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer

    folder = Path(args.folder)
    check = "AutoTokenizer.from_pretrained(trust_remote_code=True)"
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
        check = "special tokens kept whole"
        tokens = tokenizer.tokenize(f"[CLS] {SENTENCE} [SEP]")
        require(tokens[0] == "[CLS]" and tokens[-1] == "[SEP]", f"got {tokens}")
        check = "round trip of a Korean sentence"
        ids = tokenizer(SENTENCE)["input_ids"]
        decoded = tokenizer.decode(ids, skip_special_tokens=True)
        require(decoded == SENTENCE, f"decoded {decoded!r}")
        loaders = [AutoModel, *([AutoModelForMaskedLM] if has_mlm_head(folder) else [])]
        for loader in loaders:
            check = f"{loader.__name__}.from_pretrained and a forward pass"
            model = loader.from_pretrained(folder).eval()
            inputs = tokenizer(SENTENCE, return_tensors="pt", return_token_type_ids=model.config.model_type == "bert")
            with torch.no_grad():
                model(**inputs)
            check = "tokenizer size equals the model's embeddings"
            require(
                model.config.vocab_size == len(tokenizer),
                f"{len(tokenizer)} tokens, {model.config.vocab_size} embeddings",
            )
    except Exception as err:  # any failure at all means the release is not usable: report which check failed
        sys.exit(f"validation failed at '{check}': {type(err).__name__}: {err}")
    print(
        f"validated {folder}: {', '.join(loader.__name__ for loader in loaders)} and AutoTokenizer load; "
        "forward pass and tokenizer round trip work"
    )


if __name__ == "__main__":
    main()

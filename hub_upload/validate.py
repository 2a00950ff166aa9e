"""Check that a release folder loads the way users will load it; run in a fresh process, offline.

    python -m hub_upload.validate --release_dir runs/release/distilkobert

Loads ``AutoModel``, ``AutoModelForMaskedLM`` (when the weights have the head) and
``AutoTokenizer(..., trust_remote_code=True)``, runs a forward pass, and checks that the tokenizer round-trips a
Korean sentence and keeps special tokens whole. A sentence encoder (``modules.json``) must also load with
``SentenceTransformer`` and give the vectors its card's plain-transformers code computes (the pooling of
``1_Pooling/config.json`` over ``AutoModel``'s last layer). Exits 1 naming the first check that failed. From Python:
``validate_release(ValidateArguments(release_dir=...))`` returns what loaded, or raises ValueError naming the check.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.config import required, run_command

if TYPE_CHECKING:
    import torch

SENTENCE = "한국어 모델을 공유합니다."
SENTENCES = [SENTENCE, "두 문장의 뜻이 비슷하다."]
SENTENCE_TOLERANCE = 1e-5  # largest difference allowed between the two ways of computing a normalised vector


@dataclass(kw_only=True)
class ValidateArguments:
    """What ``python -m hub_upload.validate`` reads."""

    release_dir: str = required("The release folder (python -m hub_upload --dry_run --output_dir DIR writes one).")


@dataclass
class ValidationReport:
    release_dir: str
    loaded: list[str]  # the classes that loaded the folder: AutoModel, AutoModelForMaskedLM, SentenceTransformer


WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
RELEASED_MODEL_TYPES = ("bert", "distilbert")  # what the model card, the remote code and the loading API are for


def check_model_folder(folder: Path) -> None:
    """ValueError naming ``folder`` when it is no model folder we release: not a folder, no config.json or
    weights, or another architecture than BERT and DistilBERT."""
    if not folder.is_dir():
        raise ValueError(f"{folder}: {'not a folder' if folder.exists() else 'no such folder'}")
    if not (folder / "config.json").is_file():
        raise ValueError(f"{folder}: no config.json; pass a folder written by save_pretrained")
    if not any((folder / name).is_file() for name in WEIGHTS):
        raise ValueError(f"{folder}: no weights ({', '.join(WEIGHTS)})")
    from modeling.load import check_model_type  # transformers' config reading, not needed for --help

    check_model_type(
        str(folder),
        RELEASED_MODEL_TYPES,
        "model",
        "a release is a BERT or DistilBERT model (or a sentence encoder of one)",
    )


class CheckFailed(Exception):
    """A release check that did not hold (a real exception: ``assert`` would vanish under ``python -O``)."""


def require(condition: bool, detail: str) -> None:
    if not condition:
        raise CheckFailed(detail)


def has_mlm_head(folder: Path) -> bool:
    architectures = json.loads((folder / "config.json").read_text()).get("architectures") or []
    return any(name.endswith("ForMaskedLM") for name in architectures)


def plain_transformers_vectors(folder: Path, tokenizer: Any, model: Any) -> torch.Tensor:
    """The sentence vectors with transformers alone: the folder's pooling over the last layer, normalised."""
    import torch

    pooling = json.loads((folder / "1_Pooling" / "config.json").read_text(encoding="utf-8"))["pooling_mode"]
    batch = tokenizer(
        SENTENCES, padding=True, return_tensors="pt", return_token_type_ids=model.config.model_type == "bert"
    )
    with torch.no_grad():
        tokens = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(tokens.dtype)
    vectors = tokens[:, 0] if pooling == "cls" else (tokens * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(vectors, dim=-1)


def check_sentence_encoder(folder: Path, tokenizer: Any, model: Any) -> None:
    import torch
    from sentence_transformers import SentenceTransformer

    encoder = SentenceTransformer(str(folder), device="cpu", trust_remote_code=True)
    vectors = encoder.encode(SENTENCES, convert_to_tensor=True, normalize_embeddings=True)
    difference = (vectors - plain_transformers_vectors(folder, tokenizer, model)).abs().max().item()
    require(difference <= SENTENCE_TOLERANCE, f"largest difference {difference:.2e} > {SENTENCE_TOLERANCE}")
    require(torch.isfinite(vectors).all().item(), "non-finite vectors")


def validate_release(args: ValidateArguments) -> ValidationReport:
    """Load ``args.release_dir`` as users will and run it. ValueError names the folder and the first check that
    failed."""
    folder = Path(args.release_dir)
    check_model_folder(folder)
    import torch
    from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer

    check = "AutoTokenizer.from_pretrained(trust_remote_code=True)"
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
        check = "special tokens kept whole"
        cls, sep = tokenizer.cls_token, tokenizer.sep_token
        tokens = tokenizer.tokenize(f"{cls} {SENTENCE} {sep}")
        require(tokens[0] == cls and tokens[-1] == sep, f"got {tokens}")
        check = "round trip of a Korean sentence"
        ids = tokenizer(SENTENCE)["input_ids"]
        decoded = tokenizer.decode(ids, skip_special_tokens=True)
        require(decoded == SENTENCE, f"decoded {decoded!r}")
        loaders = [AutoModel, *([AutoModelForMaskedLM] if has_mlm_head(folder) else [])]
        for loader in loaders:
            check = f"{loader.__name__}.from_pretrained"
            model = loader.from_pretrained(folder).eval()
            check = "tokenizer size equals the model's embeddings"  # before a forward pass trips over a bad id
            require(
                model.config.vocab_size == len(tokenizer),
                f"{len(tokenizer)} tokens, {model.config.vocab_size} embeddings",
            )
            check = f"{loader.__name__} forward pass"
            inputs = tokenizer(SENTENCE, return_tensors="pt", return_token_type_ids=model.config.model_type == "bert")
            with torch.no_grad():
                model(**inputs)
        if is_sentence_encoder := (folder / "modules.json").is_file():
            check = "SentenceTransformer loads it and gives the plain-transformers vectors"
            check_sentence_encoder(folder, tokenizer, model)
    except Exception as err:  # any failure at all means the release is not usable: report which check failed
        detail = f"{type(err).__name__}: {' '.join(str(err).split())}"
        raise ValueError(f"{folder}: validation failed at '{check}': {detail}") from err
    loaded = [loader.__name__ for loader in loaders] + (["SentenceTransformer"] if is_sentence_encoder else [])
    return ValidationReport(args.release_dir, loaded)


def main(argv: list[str] | None = None) -> int:
    report = run_command(validate_release, ValidateArguments, argv, "python -m hub_upload.validate", __doc__)
    print(
        f"validated {report.release_dir}: {', '.join(report.loaded)} and AutoTokenizer load; forward pass and "
        "tokenizer round trip work"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

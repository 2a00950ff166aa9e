"""The work of ``modeling.add_vocab.add_vocab`` (which checks its options, then calls ``grow_vocabulary``): the new
tokens planned from the old tokenizer's pieces, added to the tokenizer, and the embedding, output and bias rows grown
with the mean of each token's old pieces.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from tokenizers import AddedToken
from transformers import AutoModelForMaskedLM, PreTrainedModel
from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

from common.io import new_folder, open_text, output_written, write_json
from modeling.load import check_model_type, hub_or_local, load_tokenizer

if TYPE_CHECKING:
    from modeling.add_vocab import AddVocabArguments, AddVocabReport

RECORD_FILE = "add_vocab.json"


@dataclass(frozen=True)
class NewToken:
    token: str
    line: int  # in --tokens_file, 1-based
    pieces: list[int]  # the old tokenizer's ids for the token alone


def read_token_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """``(line number, token)`` for each non-blank line of ``path``, stripped, first occurrences only."""
    seen: set[str] = set()
    with open_text(path) as f:
        for line_no, line in enumerate(f, start=1):
            token = line.strip()
            if token and token not in seen:
                seen.add(token)
                yield line_no, token


def plan_tokens(tokenizer: Any, lines: Iterator[tuple[int, str]], path: str) -> tuple[list[NewToken], list[str]]:
    """The tokens to add, with their old pieces, and those the tokenizer already has. Raises ValueError naming the
    line of a token that encodes to no pieces at all (it is only characters the tokenizer removes)."""
    vocabulary = tokenizer.get_vocab()
    new: list[NewToken] = []
    present: list[str] = []
    for line_no, token in lines:
        pieces = tokenizer(token, add_special_tokens=False)["input_ids"]
        if not pieces:
            raise ValueError(
                f"{path}:{line_no}: the token {token!r} encodes to no pieces (the tokenizer removes all of its "
                "characters), so it could never be matched in a text; remove the line"
            )
        if len(pieces) == 1 or token in vocabulary:
            present.append(token)
        else:
            new.append(NewToken(token, line_no, pieces))
    return new, present


def mean_rows(matrix: torch.Tensor, pieces: list[list[int]]) -> torch.Tensor:
    """``(len(pieces), *matrix.shape[1:])``: for each list of row indices, the mean of those rows of ``matrix``."""
    return torch.stack([matrix[rows].mean(dim=0) for rows in pieces])


def add_tokens_with_mean_rows(model: PreTrainedModel, tokenizer: Any, new: list[NewToken]) -> None:
    """Add ``new`` to ``tokenizer`` (ids from ``len(tokenizer)`` on) and grow ``model``'s embeddings, output
    matrix and output bias to match, each new row the mean of the old rows of its pieces (see the module doc)."""
    first_id = len(tokenizer)
    pieces = [token.pieces for token in new]
    input_embeddings, output_embeddings = model.get_input_embeddings(), model.get_output_embeddings()
    tied = output_embeddings.weight is input_embeddings.weight
    old_input = input_embeddings.weight.detach().clone()
    old_output = output_embeddings.weight.detach().clone()
    old_bias = output_embeddings.bias.detach().clone()

    # Matched on the raw text, as typed (not normalised, no stripping): KoBertTokenizerFast's fast path needs that.
    added = tokenizer.add_tokens([AddedToken(token.token, normalized=False) for token in new])
    ids = tokenizer.convert_tokens_to_ids([token.token for token in new])
    if added != len(new) or ids != list(range(first_id, first_id + len(new))):
        raise RuntimeError(f"the tokenizer gave the new tokens ids {ids}, expected {first_id} on")
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)  # rows set below; old rows are kept
    input_embeddings, output_embeddings = model.get_input_embeddings(), model.get_output_embeddings()
    if tied and output_embeddings.weight is not input_embeddings.weight:
        raise RuntimeError("resizing untied the input and output embeddings")

    with torch.no_grad():
        input_embeddings.weight[first_id:] = mean_rows(old_input, pieces)
        if not tied:
            output_embeddings.weight[first_id:] = mean_rows(old_output, pieces)
        output_embeddings.bias[first_id:] = mean_rows(old_bias, pieces)


def load_masked_lm(name_or_path: str) -> PreTrainedModel:
    """A masked LM with its trained head; a checkpoint without one (a ``BertModel``) is a ValueError."""
    check_model_type(
        name_or_path,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
        "masked LM",
        "add_vocab takes a masked LM (BERT, DistilBERT, ...), such as monologg/kobert-lm",
    )
    model, info = hub_or_local(
        AutoModelForMaskedLM.from_pretrained, name_or_path, "masked LM", output_loading_info=True
    )
    if info["missing_keys"]:
        raise ValueError(
            f"{name_or_path}: not a masked LM with a trained head ({sorted(info['missing_keys'])[0]} and others are "
            "missing); use a BertForMaskedLM or DistilBertForMaskedLM checkpoint such as monologg/kobert-lm"
        )
    return model


def check_sizes(model: PreTrainedModel, tokenizer: Any, name: str) -> None:
    if len(tokenizer) != model.config.vocab_size:
        raise ValueError(
            f"{name}: the tokenizer has {len(tokenizer):,} tokens but the model's embeddings have "
            f"{model.config.vocab_size:,} rows; they do not belong together"
        )


def grow_vocabulary(args: AddVocabArguments) -> AddVocabReport:
    """The model and tokenizer with the new tokens, written to ``args.output_dir`` with ``add_vocab.json``."""
    from modeling.add_vocab import AddVocabReport

    tokenizer = load_tokenizer(args.model_name_or_path)
    model = load_masked_lm(args.model_name_or_path)
    check_sizes(model, tokenizer, args.model_name_or_path)
    new, present = plan_tokens(tokenizer, read_token_lines(args.tokens_file), args.tokens_file)
    if not new:
        raise ValueError(f"{args.tokens_file}: no token to add ({len(present):,} already in the vocabulary)")

    old_size = len(tokenizer)
    add_tokens_with_mean_rows(model, tokenizer, new)
    with output_written(args.output_dir, "--output_dir"), new_folder(args.output_dir, "add-vocab") as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        record = {
            "model_name_or_path": args.model_name_or_path,
            "tokens_file": args.tokens_file,
            "added": [asdict(t) for t in new],
            "present": present,
        }
        write_json(staging / RECORD_FILE, record)
    return AddVocabReport(
        output_dir=args.output_dir,
        model_class=type(model).__name__,
        added=[t.token for t in new],
        present=present,
        vocabulary_before=old_size,
        vocabulary_after=len(tokenizer),
    )

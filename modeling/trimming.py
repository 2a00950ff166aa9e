"""The work of ``modeling.trim_vocab`` (``trim_vocab(TrimArguments)`` there is the stage; its command checks the
arguments first): count the corpus's pieces, cut the tokenizer and the embeddings to the kept ones, and check that
the trimmed model gives the untrimmed one's outputs on held-out lines whose pieces are all kept.
"""

from __future__ import annotations

import itertools
import json
import shutil
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import transformers
from tokenizers import Tokenizer
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel, PreTrainedTokenizerBase

from common.io import (
    new_folder,
    open_text,
    output_written,
    write_json,
    write_text,
)
from modeling.load import check_vocabulary_fits, hub_or_local, load_tokenizer
from modeling.student import parameter_count, size_mb
from modeling.trim_vocab import KEPT_TOKENS_FILE, TRIM_FILE, TrimArguments, TrimReport

NSMC_HEADER = ["id", "document", "label"]


TRIMMED_MODELS = ("Unigram", "WordPiece")


BATCH_LINES = 2000  # lines tokenized at once: the corpus is streamed, never held whole


# Files a model folder's tokenizer and weights are written anew from; everything else is copied as it is.
REWRITTEN = {
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "sentencepiece.bpe.model",
    "spiece.model",
    "config.json",
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "README.md",
    TRIM_FILE,
    KEPT_TOKENS_FILE,
}


def text_lines(paths: Iterable[str]) -> Iterator[str]:
    """The non-empty texts of the files, streamed: a line each, or the document column of an NSMC file (one that
    starts with NSMC's header ``id<TAB>document<TAB>label``). A file without any text is a ValueError naming it."""
    for path in paths:
        texts = 0
        with open_text(path) as f:
            first = f.readline()
            nsmc = first.rstrip("\n").split("\t") == NSMC_HEADER
            lines = f if nsmc else itertools.chain([first], f)
            for number, line in enumerate(lines, start=2 if nsmc else 1):
                text = line.rstrip("\n")
                if nsmc:
                    fields = text.split("\t")
                    if len(fields) != len(NSMC_HEADER):
                        raise ValueError(f"{path}:{number}: {len(fields)} columns where the header has 3")
                    text = fields[1]
                if text.strip():
                    texts += 1
                    yield text
        if not texts:
            raise ValueError(f"{path}: no text in it (empty, or blank lines alone)")


def batches(lines: Iterable[str], size: int = BATCH_LINES) -> Iterator[list[str]]:
    batch = []
    for line in lines:
        batch.append(line)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def count_token_ids(tokenizer: PreTrainedTokenizerBase, lines: Iterable[str]) -> tuple[Counter[int], int]:
    """How often each id occurs in the lines tokenized with special tokens (TextPruner's ``count_unique_tokens``)."""
    counts: Counter[int] = Counter()
    seen = 0
    for batch in batches(lines):
        for ids in tokenizer(batch, add_special_tokens=True)["input_ids"]:
            counts.update(ids)
        seen += len(batch)
    return counts, seen


def always_kept_ids(tokenizer: PreTrainedTokenizerBase) -> set[int]:
    """The special tokens and every added token: a tokenizer without them would not work as before."""
    return set(tokenizer.all_special_ids) | set(tokenizer.added_tokens_decoder)


def read_kept_tokens(path: str, tokenizer: PreTrainedTokenizerBase) -> set[int]:
    vocabulary = tokenizer.get_vocab()
    ids = set()
    with open_text(path) as f:
        for number, line in enumerate(f, start=1):
            piece = line.rstrip("\n")
            if not piece:
                continue
            if piece not in vocabulary:
                raise ValueError(f"{path}:{number}: {piece!r} is not in the model's vocabulary")
            ids.add(vocabulary[piece])
    return ids


def kept_token_ids(
    counts: Counter[int], min_count: int, extra: set[int], tokenizer: PreTrainedTokenizerBase
) -> list[int]:
    """Ids to keep, ascending (so special tokens keep their places at the start)."""
    frequent = {token_id for token_id, count in counts.items() if count >= min_count}
    return sorted(frequent | extra | always_kept_ids(tokenizer))


def remap_post_processor(processor: dict[str, Any] | None, new_id: dict[int, int]) -> None:
    """The special-token ids a post-processor holds, renumbered in place (Template, Bert, Roberta, Sequence)."""
    if not processor:
        return
    kind = processor.get("type")
    if kind == "Sequence":
        for inner in processor["processors"]:
            remap_post_processor(inner, new_id)
    elif kind == "TemplateProcessing":
        for special in processor["special_tokens"].values():
            special["ids"] = [new_id[i] for i in special["ids"]]
    elif kind in ("BertProcessing", "RobertaProcessing"):
        for name in ("sep", "cls"):
            processor[name] = [processor[name][0], new_id[processor[name][1]]]


def trim_tokenizer_json(data: dict[str, Any], kept_ids: list[int]) -> dict[str, Any]:
    """A ``tokenizer.json`` (as parsed) keeping only ``kept_ids``, renumbered 0.. in their order."""
    new_id = {old: new for new, old in enumerate(kept_ids)}
    data = json.loads(json.dumps(data))  # a copy to change
    model = data["model"]
    if model["type"] == "Unigram":
        model["vocab"] = [model["vocab"][i] for i in kept_ids]
        if model.get("unk_id") is not None:
            model["unk_id"] = new_id[model["unk_id"]]
    elif model["type"] == "WordPiece":
        model["vocab"] = {token: new_id[i] for token, i in model["vocab"].items() if i in new_id}
    else:
        raise ValueError(f"a {model['type']} tokenizer: trimming knows {' and '.join(TRIMMED_MODELS)} models")
    for token in data.get("added_tokens") or []:
        token["id"] = new_id[token["id"]]
    remap_post_processor(data.get("post_processor"), new_id)
    if data.get("padding"):
        data["padding"]["pad_id"] = new_id[data["padding"]["pad_id"]]
    return data


def trim_embeddings(model: PreTrainedModel, kept_ids: list[int]) -> None:
    """The input embedding's rows, and an output embedding's rows and bias (tied again if it was tied), of
    ``kept_ids`` only (TextPruner's ``set_embeddings`` and ``set_lm_head``)."""
    index = torch.tensor(kept_ids, dtype=torch.long)
    old = model.get_input_embeddings()
    new = nn.Embedding(len(kept_ids), old.embedding_dim, padding_idx=None)
    new.weight.data = old.weight.data.index_select(0, index.to(old.weight.device)).clone()
    model.set_input_embeddings(new)
    head = model.get_output_embeddings()
    if head is not None:
        projection = nn.Linear(head.in_features, len(kept_ids), bias=head.bias is not None)
        projection.weight.data = head.weight.data.index_select(0, index.to(head.weight.device)).clone()
        if head.bias is not None:
            projection.bias.data = head.bias.data.index_select(0, index.to(head.bias.device)).clone()
        model.set_output_embeddings(projection)
    model.config.vocab_size = len(kept_ids)
    if getattr(model.config, "pad_token_id", None) is not None:
        model.config.pad_token_id = kept_ids.index(model.config.pad_token_id)
    model.tie_weights()


def load_model(name_or_path: str) -> PreTrainedModel:
    """The folder's model in its own class (``architectures``), so that a masked-LM head is kept and trimmed."""
    config = hub_or_local(AutoConfig.from_pretrained, name_or_path, "model")
    architecture = (config.architectures or [None])[0]
    model_class = getattr(transformers, architecture, None) if architecture else None
    return hub_or_local((model_class or AutoModel).from_pretrained, name_or_path, "model").eval()


def fully_kept(ids_list: list[list[int]], kept: set[int]) -> list[bool]:
    return [all(i in kept for i in ids) for ids in ids_list]


def held_out_coverage(
    tokenizer: PreTrainedTokenizerBase, lines: Iterable[str], kept: set[int], wanted: int
) -> tuple[int, int, list[str]]:
    """Lines read, lines whose pieces are all kept, and up to ``wanted`` of the latter for the check."""
    total, covered, sample = 0, 0, []
    for batch in batches(lines):
        ids_list = tokenizer(batch, add_special_tokens=True)["input_ids"]
        for text, ok in zip(batch, fully_kept(ids_list, kept), strict=True):
            total += 1
            covered += ok
            if ok and len(sample) < wanted:
                sample.append(text)
    return total, covered, sample


@torch.inference_mode()
def check_same_outputs(
    before: tuple[PreTrainedModel, PreTrainedTokenizerBase],
    after: tuple[PreTrainedModel, PreTrainedTokenizerBase],
    kept_ids: list[int],
    lines: list[str],
    max_length: int,
) -> dict[str, Any]:
    """On lines whose pieces are all kept: the trimmed tokenizer's ids are the old ids renumbered, and the trimmed
    model's last hidden states (and logits, for a head) equal the old model's; the largest difference."""
    new_id = {old: new for new, old in enumerate(kept_ids)}
    largest, ids_differ = 0.0, 0
    for batch in batches(lines, 32):
        old_inputs = before[1](batch, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        new_inputs = after[1](batch, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        remapped = old_inputs["input_ids"].clone().apply_(lambda i: new_id[i])
        ids_differ += int((remapped != new_inputs["input_ids"]).any(dim=1).sum())
        old_out = before[0](**old_inputs, output_hidden_states=True)
        new_out = after[0](**new_inputs, output_hidden_states=True)
        mask = old_inputs["attention_mask"].bool()
        largest = max(largest, float((old_out.hidden_states[-1] - new_out.hidden_states[-1])[mask].abs().max()))
        if getattr(old_out, "logits", None) is not None:
            old_logits = old_out.logits[..., kept_ids]
            largest = max(largest, float((old_logits - new_out.logits)[mask].abs().max()))
    return {"lines": len(lines), "lines_with_other_ids": ids_differ, "max_abs_difference": largest}


def tokenizer_json(tokenizer: PreTrainedTokenizerBase, name_or_path: str) -> dict[str, Any]:
    """The tokenizer as ``tokenizer.json`` holds it; a tokenizer that has none is a ValueError naming the folder."""
    problem = "it is not a fast (tokenizers) tokenizer"
    if getattr(tokenizer, "is_fast", False):
        try:
            data = json.loads(tokenizer.backend_tokenizer.to_str())
        except Exception as err:  # tokenizers raises its own Exception for parts it cannot write (custom Python ones)
            problem = f"tokenizers cannot write it ({err})"
        else:
            problem = f"its model is {data['model']['type']}"
            if data["model"]["type"] in TRIMMED_MODELS:
                try:  # the trimmed tokenizer is rebuilt in its class from tokenizer.json alone
                    type(tokenizer)(tokenizer_object=Tokenizer.from_str(json.dumps(data)))
                    return data
                except (TypeError, ValueError) as err:
                    problem = f"{type(tokenizer).__name__} is not made from a tokenizer.json alone ({err})"
    raise ValueError(
        f"{name_or_path}: the tokenizer cannot be trimmed: {problem}; trimming takes a tokenizer.json with a "
        f"{' or '.join(TRIMMED_MODELS)} model"
    )


def trimmed_tokenizer(
    tokenizer: PreTrainedTokenizerBase, data: dict[str, Any], kept_ids: list[int], folder: Path
) -> None:
    """Write the trimmed tokenizer into ``folder`` in the tokenizer's own class (``data``: its ``tokenizer_json``)."""
    backend = Tokenizer.from_str(json.dumps(trim_tokenizer_json(data, kept_ids)))
    kwargs = {
        name: getattr(tokenizer, name) for name in tokenizer.SPECIAL_TOKENS_ATTRIBUTES if getattr(tokenizer, name, None)
    }
    trimmed = type(tokenizer)(tokenizer_object=backend, model_max_length=tokenizer.model_max_length, **kwargs)
    trimmed.save_pretrained(folder)


def copy_other_files(source: Path, folder: Path) -> None:
    """The folder's other files (sentence-transformers' modules and prompts) as they are."""
    if not source.is_dir():
        return
    for entry in source.iterdir():
        if entry.name in REWRITTEN or entry.name.startswith("."):
            continue
        if entry.is_dir():
            shutil.copytree(entry, folder / entry.name)
        else:
            shutil.copy2(entry, folder / entry.name)


CARD_SECTION = """
## Vocabulary trimmed

Trimmed by `python -m modeling.trim_vocab` (TextPruner's vocabulary pruning) to the {after:,} pieces a Korean corpus
uses, of {before:,}: {params_before:,} -> {params_after:,} parameters ({mb_before} -> {mb_after} MB). On text whose
pieces are all kept ({coverage} of held-out lines), its outputs are the untrimmed model's; other text is tokenized
with the pieces that are left. Details in `trim.json`.
"""


def trim(args: TrimArguments) -> TrimReport:
    """Write the trimmed copy of ``args.model_name_or_path`` to ``args.output_dir``; return what it measured."""
    tokenizer = load_tokenizer(args.model_name_or_path)
    model = load_model(args.model_name_or_path)
    check_vocabulary_fits(tokenizer, model, args.model_name_or_path)
    pipeline = tokenizer_json(tokenizer, args.model_name_or_path)  # refused now rather than after the corpus
    counts, corpus_lines = count_token_ids(tokenizer, text_lines(args.corpus))
    extra = read_kept_tokens(args.keep_tokens_file, tokenizer) if args.keep_tokens_file else set()
    kept_ids = kept_token_ids(counts, args.min_count, extra, tokenizer)
    kept = set(kept_ids)
    held_out = text_lines(args.held_out)
    held_total, held_covered, sample = held_out_coverage(tokenizer, held_out, kept, args.check_lines)
    parameters_before, size_before = parameter_count(model), size_mb(model)
    vocabulary_before = model.get_input_embeddings().num_embeddings
    untrimmed = load_model(args.model_name_or_path) if sample else None
    trim_embeddings(model, kept_ids)
    source = Path(args.model_name_or_path)
    with output_written(args.output_dir, "--output_dir"), new_folder(args.output_dir, "trim") as staging:
        model.save_pretrained(staging)
        trimmed_tokenizer(tokenizer, pipeline, kept_ids, staging)
        copy_other_files(source, staging)
        pieces = tokenizer.convert_ids_to_tokens(kept_ids)
        special = always_kept_ids(tokenizer)
        write_text(
            staging / KEPT_TOKENS_FILE,
            "".join(f"{p}\n" for i, p in zip(kept_ids, pieces, strict=True) if i not in special),
        )
        check = {}
        if untrimmed is not None:
            after = (model, load_tokenizer(str(staging)))
            max_length = min(tokenizer.model_max_length, model.config.max_position_embeddings)
            check = check_same_outputs((untrimmed, tokenizer), after, kept_ids, sample, max_length)
        report = TrimReport(
            model_name_or_path=args.model_name_or_path,
            output_dir=args.output_dir,
            vocabulary_before=vocabulary_before,
            vocabulary_after=len(kept_ids),
            parameters_before=parameters_before,
            parameters_after=parameter_count(model),
            size_mb_before=round(size_before, 1),
            size_mb_after=round(size_mb(model), 1),
            corpus_lines=corpus_lines,
            held_out_lines=held_total,
            held_out_lines_fully_kept=round(held_covered / held_total, 5) if held_total else None,
            check=check,
        )
        write_json(staging / TRIM_FILE, {**asdict(report), "arguments": asdict(args)})
        write_card(source, staging, report)
    return report


def write_card(source: Path, folder: Path, report: TrimReport) -> None:
    card = (source / "README.md").read_text(encoding="utf-8") if (source / "README.md").is_file() else ""
    coverage = "n/a" if report.held_out_lines_fully_kept is None else f"{report.held_out_lines_fully_kept:.2%}"
    section = CARD_SECTION.format(
        after=report.vocabulary_after,
        before=report.vocabulary_before,
        params_before=report.parameters_before,
        params_after=report.parameters_after,
        mb_before=report.size_mb_before,
        mb_after=report.size_mb_after,
        coverage=coverage,
    )
    write_text(folder / "README.md", card.rstrip("\n") + "\n" + section)

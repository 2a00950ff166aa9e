"""The model card of a sentence encoder (a sentence-transformers folder): metadata for the Hub's sentence-similarity
widget, the STS table ``sentence.evaluate`` measured, and usage with sentence-transformers and with plain
transformers. Built from the folder and the results files, never typed by hand."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from hub_upload.card import describe_architecture, file_name, is_hub_id

# What the evaluation rows call the correlations, and how the model-index names them.
METRICS = {"spearman": ("spearman_cosine", "Spearman (cosine)"), "pearson": ("pearson_cosine", "Pearson (cosine)")}
EXAMPLE = ["한 남자가 음식을 먹는다.", "한 남자가 빵을 먹는다.", "남자가 말을 탄다."]


def read_evaluation_rows(paths: list[str], model: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The rows of ``sentence.evaluate --output_file`` files: this model's (matched by its folder) and all of them."""
    rows: list[dict[str, Any]] = []
    for path in paths:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(record, dict) or "rows" not in record:
            raise ValueError(f"{path}: not a sentence.evaluate --output_file (no 'rows'); score the encoder with it")
        rows += record["rows"]
    own = [row for row in rows if os.path.realpath(row["model_dir"]) == os.path.realpath(model)]
    if paths and not own:
        raise ValueError(
            f"{', '.join(paths)}: no row of {model!r}; evaluate it with sentence.evaluate --model_name_or_path"
        )
    return (own[0] if own else None), rows


def read_training_record(folder: Path) -> dict[str, Any] | None:
    """The results.json of the sentence command that wrote ``folder`` (OUTPUT/best beside OUTPUT/results.json)."""
    path = folder.parent / "results.json"
    if not path.is_file():
        return None
    record = json.loads(path.read_text(encoding="utf-8"))
    started = str(record.get("command", ""))
    same = os.path.realpath(record.get("model_dir", "")) == os.path.realpath(folder)
    return record if started.startswith("sentence.") and same else None


def run_name(path: str) -> str:
    """A model folder by its run's name: ``teacher`` for ``.../teacher/best``, a Hub id as it is."""
    if is_hub_id(path):
        return path
    folder = Path(path)
    return file_name(str(folder.parent if folder.name == "best" else folder))


def row_label(row: dict[str, Any], model: str, repo_id: str) -> str:
    """This model by its repo id, in bold; another by its run's name."""
    same = os.path.realpath(row["model_dir"]) == os.path.realpath(model)
    return f"**{repo_id}**" if same else run_name(row["model_dir"])


def sts_table(rows: list[dict[str, Any]], model: str, repo_id: str) -> str:
    """model | parameters | encoding | Spearman / Pearson per data file | sentences/s, as sentence.evaluate prints."""
    from sentence.evaluate import markdown_table

    return markdown_table([{**row, "model_dir": row_label(row, model, repo_id)} for row in rows])


def model_index(name: str, row: dict[str, Any]) -> list[dict[str, Any]]:
    """One model-index entry per data file the model was scored on (correlations x 100)."""
    results = []
    for data, scores in row["scores"].items():
        metrics = [{"type": kind, "name": label, "value": scores[key]} for key, (kind, label) in METRICS.items()]
        results.append(
            {
                "task": {"type": "sentence-similarity", "name": "Semantic Textual Similarity"},
                "dataset": {"name": f"{data} (local file)", "type": data},
                "metrics": metrics,
            }
        )
    return [{"name": name, "results": results}]


def metadata(name: str, license_id: str, base_model: str | None, row: dict[str, Any] | None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "language": ["ko"],
        "license": license_id,
        "library_name": "sentence-transformers",
        "pipeline_tag": "sentence-similarity",
        "tags": ["sentence-transformers", "sentence-similarity", "feature-extraction", "korean", "kobert"],
    }
    if base_model:
        meta["base_model"] = base_model
    if row:
        meta["model-index"] = model_index(name, row)
    return meta


def describe_training(record: dict[str, Any] | None) -> list[str]:
    """What the last training command did, from its results.json."""
    if not record:
        return []
    arguments, examples = record.get("arguments", {}), record.get("examples", {})
    start = arguments.get("model") or arguments.get("student")
    lines = [f"- Last trained by `python -m {record['command']}`, starting from `{run_name(str(start))}`."]
    if teacher := record.get("teacher"):
        lines.append(f"- Teacher (its sentence embeddings learned): `{run_name(teacher)}`.")
    if examples:
        lines.append("- Examples: " + ", ".join(f"{count:,} {split}" for split, count in examples.items()) + ".")
    return lines


def usage(repo_id: str, config: dict[str, Any], pooling: str, max_seq_length: int) -> str:
    """Loading with sentence-transformers, and the same vectors with plain transformers (the pooling written out)."""
    sentences = "[" + ", ".join(f'"{s}"' for s in EXAMPLE) + "]"
    pooled = (
        "tokens[:, 0]"
        if pooling == "cls"
        else "(tokens * mask).sum(1) / mask.sum(1)  # mean of the real tokens' vectors"
    )
    token_types = ", return_token_type_ids=False" if config["model_type"] == "distilbert" else ""
    return (
        "```python\n"
        "from sentence_transformers import SentenceTransformer\n\n"
        f'model = SentenceTransformer("{repo_id}", trust_remote_code=True)\n'
        f"embeddings = model.encode({sentences})\n"
        "print(model.similarity(embeddings, embeddings))\n"
        "```\n\n"
        "With transformers alone:\n\n"
        "```python\n"
        "import torch\n"
        "from transformers import AutoModel, AutoTokenizer\n\n"
        f'tokenizer = AutoTokenizer.from_pretrained("{repo_id}", trust_remote_code=True)\n'
        f'model = AutoModel.from_pretrained("{repo_id}").eval()\n'
        f"batch = tokenizer({sentences}, padding=True, truncation=True, max_length={max_seq_length}, "
        f'return_tensors="pt"{token_types})\n'
        "with torch.no_grad():\n"
        "    tokens = model(**batch).last_hidden_state\n"
        'mask = batch["attention_mask"].unsqueeze(-1).to(tokens.dtype)\n'
        f"embeddings = {pooled}\n"
        "embeddings = torch.nn.functional.normalize(embeddings, dim=-1)\n"
        "print(embeddings @ embeddings.T)  # cosine similarities\n"
        "```\n\n"
        "The tokenizer is KoBERT's SentencePiece tokenizer, shipped as remote code (`tokenization_kobert.py`); "
        "without `trust_remote_code`, sentence-transformers reads `tokenizer.json` and gives the same token ids."
    )


def build_sentence_card(
    repo_id: str,
    folder: Path,
    summary: dict[str, Any],
    size: float,
    license_id: str,
    row: dict[str, Any] | None,
    rows: list[dict[str, Any]],
    model: str,
) -> str:
    """README.md of a sentence encoder: metadata, the model, usage, the STS table, limits."""
    name = repo_id.split("/")[-1]
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    record = read_training_record(Path(model))
    start = str((record or {}).get("arguments", {}).get("model") or "")
    meta = metadata(name, license_id, start if is_hub_id(start) else None, row)
    model_lines = [
        "A sentence encoder: each sentence to one vector, similarity as the cosine of two vectors. "
        + describe_architecture(config, summary["params"], size),
        f"- Sentence vector: {summary['pooling']} pooling of the last layer, {summary['embedding_dimension']} "
        f"dimensions; inputs up to {summary['max_seq_length']} tokens.",
        *describe_training(record),
    ]
    sections = [
        "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---",
        f"# {name}",
        "## Model\n\n" + "\n".join(model_lines),
        "## Usage\n\n" + usage(repo_id, config, summary["pooling"], summary["max_seq_length"]),
    ]
    if rows:
        sections.append(
            "## Results\n\nSpearman and Pearson x 100 between the cosine similarity of the two sentences' vectors "
            "and the gold score (`python -m sentence.evaluate`), and sentences encoded per second on CPU, measured "
            "side by side:\n\n" + sts_table(rows, model, repo_id)
        )
    sections.append(
        "## Limitations\n\nTrained and scored on Korean text only. Scores on the small splits used here are not "
        "comparable with published tables; the speed is of the machine named in the results file."
    )
    return "\n\n".join(sections) + "\n"

"""Fingerprints of files and model folders: what a cache records so that it is never reused for another model.

    file_fingerprint("data/nsmc_train.txt.gz")          # sha256 of the file's bytes, streamed
    model_fingerprint("runs/nsmc/kobert/best")          # sha256 over its config, weights and tokenizer files

A sentence-transformers folder is covered whole: its module list and settings, and the files of every module's
subfolder (pooling, dense layers), which change its outputs as much as the weights do. Used by ``distill/``'s logits
caches and ``sentence.distil_embeddings``'s embedding cache. Paths are not part of a fingerprint: a moved folder is
the same.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from pathlib import Path

from common.io import looks_local

CHUNK = 1 << 20
# The files of a model folder that decide its outputs: config, weights (safetensors or PyTorch, sharded or not),
# tokenizer files and remote code. Logs, cards and results beside them are left out.
MODEL_FILES = (
    "config.json",
    "*.safetensors",
    "*.safetensors.index.json",
    "pytorch_model*.bin",
    "pytorch_model.bin.index.json",
    "tokenizer*",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.*",
    "merges.txt",
    "*.model",
    "*.py",
    # sentence-transformers: the module list and the settings of the whole encoder
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
)
WEIGHT_FILES = ("*.safetensors", "pytorch_model*.bin")


def file_fingerprint(path: str | Path) -> str:
    """The sha256 of a file's bytes (hex), read in 1 MiB chunks: memory stays flat for any file size."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in patterns)


def module_folders(folder: Path) -> list[Path]:
    """The subfolders of a sentence-transformers folder's modules (``1_Pooling``, ...); none for other folders."""
    modules = folder / "modules.json"
    if not modules.is_file():
        return []
    paths = [module.get("path", "") for module in json.loads(modules.read_text(encoding="utf-8"))]
    return [folder / path for path in paths if path and (folder / path).is_dir()]


def model_files(folder: Path) -> list[Path]:
    """The files ``model_fingerprint`` covers, in a stable order: the folder's model files by name, then every file
    of each module subfolder."""
    top = sorted((p for p in folder.iterdir() if p.is_file() and matches(p.name, MODEL_FILES)), key=lambda p: p.name)
    inner = [p for module in module_folders(folder) for p in sorted(module.rglob("*")) if p.is_file()]
    return top + inner


def model_fingerprint(folder: str | Path) -> str:
    """The sha256 over the names and contents of a model folder's config, weights and tokenizer files.

    Raises OSError for a missing folder or a Hub id (offline nothing can be fingerprinted but a local folder), and
    ValueError for a folder without config.json or weights.
    """
    path = Path(folder)
    if not path.is_dir():
        if looks_local(str(folder)):
            raise OSError(f"{'not a folder' if path.exists() else 'no such folder'}: {folder}")
        raise OSError(
            f"{folder!r} is not a local folder: a teacher must be one (a Hub model cannot be fingerprinted offline); "
            f"download it first (hf download {folder} --local-dir DIR) and pass --teacher DIR"
        )
    files = model_files(path)
    names = [p.name for p in files if p.parent == path]
    if "config.json" not in names or not any(matches(name, WEIGHT_FILES) for name in names):
        raise ValueError(f"{folder}: not a model folder (config.json and a weights file are needed)")
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.relative_to(path).as_posix()}\t{file_fingerprint(file)}\n".encode())
    return digest.hexdigest()

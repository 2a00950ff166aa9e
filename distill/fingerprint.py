"""Fingerprints of what a logits cache was made from: teachers, data files, augmentation and sequence length.

    file_fingerprint("data/nsmc_train.txt.gz")          # sha256 of the file's bytes, streamed
    teacher_fingerprint("runs/nsmc/kobert/best")        # sha256 over its config, weights and tokenizer files
    cache_differences(recorded_info, wanted_info)       # [] when two cache.json records describe the same cache

``distill.cache_logits`` writes the fingerprints into cache.json; ``distill.train`` checks a cache against its own
configuration with ``cache_differences``, so that a cache of another teacher or other data is refused, never
silently reused. Paths are recorded for the reader but not compared: a moved folder is the same teacher.
"""

from __future__ import annotations

import fnmatch
import hashlib
from pathlib import Path
from typing import Any

from modeling.load import looks_local

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


def model_files(folder: Path) -> list[Path]:
    """The files of ``folder`` that ``teacher_fingerprint`` covers, by name (a stable order)."""
    return sorted((p for p in folder.iterdir() if p.is_file() and matches(p.name, MODEL_FILES)), key=lambda p: p.name)


def teacher_fingerprint(folder: str | Path) -> str:
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
    names = [p.name for p in files]
    if "config.json" not in names or not any(matches(name, WEIGHT_FILES) for name in names):
        raise ValueError(f"{folder}: not a model folder (config.json and a weights file are needed)")
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.name}\t{file_fingerprint(file)}\n".encode())
    return digest.hexdigest()


def cache_identity(info: dict[str, Any]) -> dict[str, Any]:
    """The parts of a cache.json record that decide its logits: what two caches must share to be the same one."""
    return {
        "teachers": [teacher["fingerprint"] for teacher in info["teachers"]],
        "data": [(data["name"], data["fingerprint"]) for data in info["data"]],
        "augmentation": info["augmentation"],
        "max_seq_length": info["max_seq_length"],
        "max_examples_per_file": info["max_examples_per_file"],
    }


def describe(part: str, info: dict[str, Any]) -> str:
    """One part of a cache record as a reader wants to see it (paths and short fingerprints)."""
    if part == "teachers":
        return ", ".join(f"{t['path']} ({t['fingerprint'][:12]})" for t in info["teachers"])
    if part == "data":
        return ", ".join(f"{d['name']} ({d['fingerprint'][:12]})" for d in info["data"])
    return "none" if info[part] is None else str(info[part])


def difference(part: str, recorded: dict[str, Any], wanted: dict[str, Any]) -> str:
    """What differs in one part of two cache records: of the same data files, those whose contents changed; of two
    augmentation settings, the settings that differ."""
    found, expected = recorded[part], wanted[part]
    if part == "data" and [d["name"] for d in found] == [d["name"] for d in expected]:
        changed = [(a, b) for a, b in zip(found, expected, strict=True) if a["fingerprint"] != b["fingerprint"]]
        return "; ".join(
            f"data: {b['path']} is not the {a['name']} the cache was made from (sha256 {b['fingerprint'][:12]}, "
            f"not {a['fingerprint'][:12]})"
            for a, b in changed
        )
    if isinstance(found, dict) and isinstance(expected, dict):
        changed = sorted(key for key in found.keys() | expected.keys() if found.get(key) != expected.get(key))
        found = ", ".join(f"{key} {found.get(key)!r}" for key in changed)
        expected = ", ".join(f"{key} {expected.get(key)!r}" for key in changed)
        return f"{part}: the cache has {found}, not {expected}"
    return f"{part}: the cache has {describe(part, recorded)}, not {describe(part, wanted)}"


def cache_differences(recorded: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """What differs between the cache record ``recorded`` and the one ``wanted`` (both cache.json-shaped), one line
    per part: ``teachers: the cache has runs/a/best (1a2b3c4d5e6f), not runs/b/best (9f8e7d6c5b4a)``."""
    found, expected = cache_identity(recorded), cache_identity(wanted)
    return [difference(part, recorded, wanted) for part in expected if found[part] != expected[part]]

"""Fingerprints of what a logits cache was made from: teachers, data files, augmentation and sequence length.

    cache_differences(recorded_info, wanted_info)       # [] when two cache.json records describe the same cache

``distill.cache_logits`` writes the fingerprints of teachers and data files (``modeling.fingerprint``) into
cache.json; ``distill.train`` checks a cache against its own configuration with ``cache_differences``, so that a
cache of another teacher or other data is refused, never silently reused.
Paths are recorded for the reader but not compared: a moved folder is the same teacher.
"""

from __future__ import annotations

from typing import Any


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

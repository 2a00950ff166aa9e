"""Models: DistilBERT students built from BERT teacher layers, tiny BiLSTM students, and the kobert-transformers
loading API.

The names below load on first use (``from modeling import get_tokenizer`` imports torch and transformers then, not
``import modeling.extract``'s argument parsing), so that a command answers ``--help`` and refuses bad arguments before
those take seconds to import.
"""

from __future__ import annotations

import importlib
from typing import Any

HOMES = {
    "modeling.bilstm": ("KoBiLstmConfig", "KoBiLstmForSequenceClassification", "KoBiLstmModel", "bilstm_config"),
    "modeling.load": (
        "get_distilkobert_lm",
        "get_distilkobert_model",
        "get_kobert_lm",
        "get_kobert_model",
        "get_tokenizer",
        "load_teacher",
        "load_tokenizer",
    ),
    "modeling.student": ("build_student", "parameter_count", "select_layers", "size_mb", "student_state_dict"),
}
__all__ = sorted(name for names in HOMES.values() for name in names)


def __getattr__(name: str) -> Any:
    home = next((module for module, names in HOMES.items() if name in names), None)
    if home is None:
        raise AttributeError(f"module 'modeling' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)

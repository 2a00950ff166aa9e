"""Models: DistilBERT students built from BERT teacher layers, tiny BiLSTM students, and the kobert-transformers
loading API."""

from modeling.bilstm import KoBiLstmConfig, KoBiLstmForSequenceClassification, bilstm_config
from modeling.load import (
    get_distilkobert_lm,
    get_distilkobert_model,
    get_kobert_lm,
    get_kobert_model,
    get_tokenizer,
    load_teacher,
    load_tokenizer,
)
from modeling.student import build_student, parameter_count, select_layers, size_mb, student_state_dict

__all__ = [
    "KoBiLstmConfig",
    "KoBiLstmForSequenceClassification",
    "bilstm_config",
    "build_student",
    "get_distilkobert_lm",
    "get_distilkobert_model",
    "get_kobert_lm",
    "get_kobert_model",
    "get_tokenizer",
    "load_teacher",
    "load_tokenizer",
    "parameter_count",
    "select_layers",
    "size_mb",
    "student_state_dict",
]

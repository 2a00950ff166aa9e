"""Models: DistilBERT students built from BERT teacher layers, tiny BiLSTM students, and the kobert-transformers
loading API."""

from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

from modeling.bilstm import KoBiLstmConfig, KoBiLstmForSequenceClassification, KoBiLstmModel, bilstm_config
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

# Our classes for our folders: in a process that imports this package, the Auto classes load a BiLSTM folder without
# trust_remote_code (and without a prompt). The folder's copy of modeling/bilstm.py is for users without the package.
AutoConfig.register(KoBiLstmConfig.model_type, KoBiLstmConfig, exist_ok=True)
AutoModel.register(KoBiLstmConfig, KoBiLstmModel, exist_ok=True)
AutoModelForSequenceClassification.register(KoBiLstmConfig, KoBiLstmForSequenceClassification, exist_ok=True)

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

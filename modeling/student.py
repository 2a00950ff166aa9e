"""Build a DistilBERT student from a BERT teacher by copying a subset of its layers.

DistilKoBERT's student starts as teacher layers 1, 5 and 9 of KoBERT (indices 0, 4, 8)::

    teacher = BertForMaskedLM.from_pretrained("monologg/kobert-lm")
    student = build_student(teacher, select_layers(12, num_layers=3))   # DistilBertForMaskedLM, 3 layers

What is copied (teacher -> student): word and position embeddings, embedding LayerNorm; per chosen layer the q/k/v
and output projections, attention LayerNorm, both FFN linears and the output LayerNorm; the MLM head's transform,
LayerNorm and output bias, with the decoder tied to the word embeddings. DistilBERT has no token-type embeddings, so
by default the teacher's segment-0 embedding is folded into the student's position embeddings: a student with all
teacher layers then computes exactly what the teacher computes on single-segment input.
"""

from __future__ import annotations

import torch
from transformers import BertConfig, BertForMaskedLM, DistilBertConfig, DistilBertForMaskedLM

# Teacher layer indices per student depth, for 12-layer teachers (DistilKoBERT uses the 3-layer one).
LAYER_PRESETS_12 = {1: [5], 3: [0, 4, 8], 6: [0, 2, 4, 7, 9, 11]}

# Teacher (BERT) parameter name -> student (DistilBERT) parameter name, within one transformer layer.
LAYER_PARAMETER_MAP = {
    "attention.self.query": "attention.q_lin",
    "attention.self.key": "attention.k_lin",
    "attention.self.value": "attention.v_lin",
    "attention.output.dense": "attention.out_lin",
    "attention.output.LayerNorm": "sa_layer_norm",
    "intermediate.dense": "ffn.lin1",
    "output.dense": "ffn.lin2",
    "output.LayerNorm": "output_layer_norm",
}
# Outside the layers. The decoder weight is not listed: it is tied to the word embeddings.
SHARED_PARAMETER_MAP = {
    "bert.embeddings.word_embeddings.weight": "distilbert.embeddings.word_embeddings.weight",
    "bert.embeddings.position_embeddings.weight": "distilbert.embeddings.position_embeddings.weight",
    "bert.embeddings.LayerNorm.weight": "distilbert.embeddings.LayerNorm.weight",
    "bert.embeddings.LayerNorm.bias": "distilbert.embeddings.LayerNorm.bias",
    "cls.predictions.transform.dense.weight": "vocab_transform.weight",
    "cls.predictions.transform.dense.bias": "vocab_transform.bias",
    "cls.predictions.transform.LayerNorm.weight": "vocab_layer_norm.weight",
    "cls.predictions.transform.LayerNorm.bias": "vocab_layer_norm.bias",
    "cls.predictions.bias": "vocab_projector.bias",
}
DISTILBERT_LAYER_NORM_EPS = 1e-12  # hard-coded in DistilBERT


def select_layers(num_teacher_layers: int, num_layers: int | None = None, layers: list[int] | None = None) -> list[int]:
    """The teacher layers a student starts from: an explicit list, a 12-layer preset, or evenly spaced.

    Evenly spaced means ``floor(i * num_teacher_layers / num_layers)``, which is also the 3-layer preset.
    Raises ValueError, saying what is wrong, for indices out of range, repeated or unsorted.
    """
    if (num_layers is None) == (layers is None):
        raise ValueError("give exactly one of num_layers and layers")
    if layers is None:
        if not 1 <= num_layers <= num_teacher_layers:
            raise ValueError(f"num_layers must be between 1 and the teacher's {num_teacher_layers}, got {num_layers}")
        if num_teacher_layers == 12 and num_layers in LAYER_PRESETS_12:
            return list(LAYER_PRESETS_12[num_layers])
        return [i * num_teacher_layers // num_layers for i in range(num_layers)]
    check_layers(layers, num_teacher_layers)
    return list(layers)


def check_layers(layers: list[int], num_teacher_layers: int) -> None:
    if not layers:
        raise ValueError("the layer list is empty")
    out_of_range = [i for i in layers if not 0 <= i < num_teacher_layers]
    if out_of_range:
        raise ValueError(
            f"teacher layer indices {out_of_range} are out of range: the teacher has {num_teacher_layers} layers, "
            f"indices 0 to {num_teacher_layers - 1}"
        )
    repeated = sorted({i for i in layers if layers.count(i) > 1})
    if repeated:
        raise ValueError(f"teacher layer indices {repeated} are repeated in {layers}")
    if layers != sorted(layers):
        raise ValueError(f"teacher layer indices must be increasing, got {layers} (did you mean {sorted(layers)}?)")


def check_teacher_config(config: BertConfig) -> None:
    """The BERT features a DistilBERT student can represent exactly."""
    if config.model_type != "bert":
        raise ValueError(f"the teacher must be a BERT masked LM, got model_type {config.model_type!r}")
    position_type = getattr(config, "position_embedding_type", "absolute")
    if position_type != "absolute":
        raise ValueError(f"the teacher uses {position_type!r} position embeddings; DistilBERT has absolute ones only")
    if config.layer_norm_eps != DISTILBERT_LAYER_NORM_EPS:
        raise ValueError(f"the teacher's layer_norm_eps is {config.layer_norm_eps}; DistilBERT fixes it at 1e-12")


def student_config(teacher_config: BertConfig, num_layers: int) -> DistilBertConfig:
    """DistilBERT config with the teacher's sizes, activation, dropout and vocabulary, and ``num_layers`` layers."""
    return DistilBertConfig(
        vocab_size=teacher_config.vocab_size,
        max_position_embeddings=teacher_config.max_position_embeddings,
        sinusoidal_pos_embds=False,  # the teacher's learned positions are copied
        n_layers=num_layers,
        n_heads=teacher_config.num_attention_heads,
        dim=teacher_config.hidden_size,
        hidden_dim=teacher_config.intermediate_size,
        dropout=teacher_config.hidden_dropout_prob,
        attention_dropout=teacher_config.attention_probs_dropout_prob,
        activation=teacher_config.hidden_act,
        initializer_range=teacher_config.initializer_range,
        pad_token_id=teacher_config.pad_token_id,
        tie_word_embeddings=True,
    )


def student_state_dict(
    teacher_state: dict[str, torch.Tensor], layers: list[int], fold_token_type: bool = True
) -> dict[str, torch.Tensor]:
    """Map a ``BertForMaskedLM`` state dict to a ``DistilBertForMaskedLM`` one holding ``layers`` (pure function).

    Student layer ``j`` is teacher layer ``layers[j]``. With ``fold_token_type`` the teacher's segment-0
    token-type embedding is added to every position embedding.
    """
    state = {student: teacher_state[teacher].clone() for teacher, student in SHARED_PARAMETER_MAP.items()}
    if fold_token_type:
        segment_0 = teacher_state["bert.embeddings.token_type_embeddings.weight"][0]
        state["distilbert.embeddings.position_embeddings.weight"] += segment_0
    for j, i in enumerate(layers):
        for teacher_name, student_name in LAYER_PARAMETER_MAP.items():
            for kind in ("weight", "bias"):
                teacher_key = f"bert.encoder.layer.{i}.{teacher_name}.{kind}"
                state[f"distilbert.transformer.layer.{j}.{student_name}.{kind}"] = teacher_state[teacher_key].clone()
    return state


def build_student(teacher: BertForMaskedLM, layers: list[int], fold_token_type: bool = True) -> DistilBertForMaskedLM:
    """A ``DistilBertForMaskedLM`` initialised from ``teacher``'s ``layers`` (see the module docstring)."""
    if not isinstance(teacher, BertForMaskedLM):
        raise ValueError(f"the teacher must be a BertForMaskedLM, got {type(teacher).__name__}")
    check_teacher_config(teacher.config)
    check_layers(layers, teacher.config.num_hidden_layers)
    student = DistilBertForMaskedLM(student_config(teacher.config, len(layers))).to(teacher.dtype)
    state = student_state_dict(teacher.state_dict(), layers, fold_token_type)
    missing, unexpected = student.load_state_dict(state, strict=False)
    # Only the tied decoder weight and non-persistent buffers may be left to the student itself.
    missing = [k for k in missing if k != "vocab_projector.weight"]
    if missing or unexpected:
        raise RuntimeError(f"layer copy incomplete: missing {missing}, unexpected {unexpected}")
    student.tie_weights()
    return student


def parameter_count(model: torch.nn.Module) -> int:
    """Parameters, tied ones counted once."""
    return sum(p.numel() for p in model.parameters())


def size_mb(model: torch.nn.Module) -> float:
    """Size of the weights in MB of 2**20 bytes, the unit of the published table (KoBERT 351, DistilKoBERT 108)."""
    return sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20

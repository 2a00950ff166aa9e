"""KoBiLSTM: a tiny BiLSTM sentence classifier, the student of task-specific distillation (Tang et al., 2019).

Embedding, a bidirectional LSTM, pooling over the valid tokens, dropout and one linear layer, as in DistilKoBiLSTM,
with DistilKoBiLSTM's sizes as presets (counts at a 3,000-token vocabulary and 2 labels)::

    config = bilstm_config("base", vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, num_labels=2)
    model = KoBiLstmForSequenceClassification(config)     # 391,170 parameters, DistilKoBiLSTM-Base exactly
    logits = model(**tokenizer(texts, padding=True, return_tensors="pt")).logits
    model.save_pretrained(folder)                         # config.json with an auto_map, this file, safetensors

    model = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True)

``save_pretrained`` copies this file into the folder (the classes are registered for the Auto classes below), so
it is Hub remote code: it imports only torch, transformers and the standard library.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import SequenceClassifierOutput

POOLINGS = ("max", "mean", "last")
# Embedding and LSTM hidden sizes (per direction) of each preset, one LSTM layer. Total parameters at a 3,000-token
# vocabulary and 2 labels, against DistilKoBiLSTM's table: tiny 27,394 (27k), mini 52,418 (52k), small 146,434
# (146,434: DistilKoBiLSTM-Small), base 391,170 (391,170: DistilKoBiLSTM-Base), large 1,175,554 (1.2M).
PRESETS = {
    "tiny": {"embedding_size": 8, "hidden_size": 16},
    "mini": {"embedding_size": 16, "hidden_size": 16},
    "small": {"embedding_size": 32, "hidden_size": 64},
    "base": {"embedding_size": 64, "hidden_size": 128},
    "large": {"embedding_size": 128, "hidden_size": 256},
}


class KoBiLstmConfig(PreTrainedConfig):
    """The sizes of a KoBiLSTM classifier; the labels (``num_labels``, ``id2label``) are the base class's.

    ``vocab_size`` and ``pad_token_id`` must be the student tokenizer's (``len(tokenizer)``,
    ``tokenizer.pad_token_id``): the padding row of the embedding is never trained.
    """

    model_type = "kobilstm"

    vocab_size: int = 3000  # rows of the embedding: the student tokenizer's len()
    embedding_size: int = 64  # width of a token embedding, the LSTM's input
    hidden_size: int = 128  # LSTM hidden size per direction: the pooled sentence vector has 2 * hidden_size
    num_hidden_layers: int = 1  # stacked bidirectional LSTM layers
    dropout: float = 0.2  # on the embeddings, between LSTM layers and before the classifier (DistilKoBiLSTM's 0.2)
    pooling: Literal["max", "mean", "last"] = "max"  # how token states become one vector: see KoBiLstmModel
    pad_token_id: int = 0  # the tokenizer's padding id: padding_idx of the embedding

    def __post_init__(self, **kwargs) -> None:
        super().__post_init__(**kwargs)
        self.validate_fields()

    def validate_fields(self) -> None:
        """ValueError, saying which field is wrong, when the config is made or loaded.

        Written out rather than through ``huggingface_hub``'s ``@strict``: this file imports only torch, transformers
        and the standard library.
        """
        for name in ("vocab_size", "embedding_size", "hidden_size", "num_hidden_layers", "pad_token_id"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"{name} must be an integer, got {value!r}")
            if value < (0 if name == "pad_token_id" else 1):
                raise ValueError(f"{name} must be at least {0 if name == 'pad_token_id' else 1}, got {value}")
        if self.pad_token_id >= self.vocab_size:
            raise ValueError(
                f"pad_token_id {self.pad_token_id} is not an id of the {self.vocab_size}-token vocabulary: give the "
                "student tokenizer's len(tokenizer) and tokenizer.pad_token_id"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")


def bilstm_config(preset: str, vocab_size: int, pad_token_id: int, num_labels: int = 2, **overrides) -> KoBiLstmConfig:
    """The config of a preset (``tiny``, ``mini``, ``small``, ``base``, ``large``) for a tokenizer and label count.

    ``overrides`` set any other field (``num_hidden_layers=2``, ``pooling="last"``, even the preset's sizes).
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown BiLSTM preset {preset!r}: choose one of {', '.join(PRESETS)}")
    fields = {**PRESETS[preset], **overrides}
    return KoBiLstmConfig(vocab_size=vocab_size, pad_token_id=pad_token_id, num_labels=num_labels, **fields)


def valid_lengths(attention_mask: torch.Tensor) -> torch.Tensor:
    """Lengths ``(batch,)`` of a right-padded ``(batch, seq_len)`` mask; ValueError for any other mask.

    Packing reads each sequence's first ``length`` positions, so a left-padded or holed mask would silently feed
    padding to the LSTM and drop real tokens.
    """
    mask = attention_mask.bool()
    lengths = mask.sum(dim=1)
    positions = torch.arange(mask.shape[1], device=mask.device)
    if not torch.equal(mask, positions < lengths[:, None]):
        raise ValueError(
            "attention_mask must be right-padded (ones, then zeros) for KoBiLSTM: set tokenizer.padding_side = 'right'"
        )
    if bool((lengths == 0).any()):
        raise ValueError("every sequence needs at least one token, but the attention_mask has an all-zero row")
    return lengths


class KoBiLstmPreTrainedModel(PreTrainedModel):
    config_class = KoBiLstmConfig
    base_model_prefix = "bilstm"
    main_input_name = "input_ids"

    def _init_weights(self, module: nn.Module) -> None:
        """PyTorch's own initialisation of each layer, which DistilKoBiLSTM trained with, and a zero padding row.

        transformers' generic one (normal with std 0.02 for embeddings) starts a small LSTM with near-zero inputs.
        ``init`` functions leave weights loaded by ``from_pretrained`` alone.
        """
        if isinstance(module, nn.Embedding):
            init.normal_(module.weight)
            if module.padding_idx is not None and not getattr(module.weight, "_is_hf_initialized", False):
                init.zeros_(module.weight[module.padding_idx])
        elif isinstance(module, nn.LSTM):
            bound = 1 / math.sqrt(module.hidden_size)
            for parameter in module.parameters():
                init.uniform_(parameter, -bound, bound)
        elif isinstance(module, nn.Linear):
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            bound = 1 / math.sqrt(module.in_features)
            init.uniform_(module.bias, -bound, bound)


class KoBiLstmModel(KoBiLstmPreTrainedModel):
    """Token ids to one vector of ``2 * hidden_size`` per sequence.

    The LSTM never reads a padding position in either direction, so a sequence gets the same vector however much
    padding its batch has: the forward direction runs over the right-padded batch (padding comes after every valid
    state), the backward one over each sequence's valid positions reversed in place (``reverse_valid``), its
    padding again after them. This is what ``pack_padded_sequence`` computes, equal to float precision, on plain
    tensors: 1.3-1.6x faster to train on a CPU than packing, and exportable to ONNX, which packed sequences are not.
    The weights are the ones of ``self.lstm``, a bidirectional ``nn.LSTM``, run one direction of one layer at a
    time through ``torch._VF.lstm``, the kernel ``nn.LSTM.forward`` itself calls. Pooling (``config.pooling``):

    - ``max`` (default): the element-wise maximum of the top layer's states over the valid positions, as in
      InferSent (Conneau et al., 2017). Every token can set a feature, not only the ends, which suits reviews whose
      sentiment sits mid-sentence;
    - ``mean``: the average of those states over the valid positions;
    - ``last``: the final forward state and the final backward state (the backward one read at the first token),
      concatenated: what Tang et al. (2019) and DistilKoBiLSTM feed their classifier.
    """

    def __init__(self, config: KoBiLstmConfig) -> None:
        super().__init__(config)
        self.embeddings = nn.Embedding(config.vocab_size, config.embedding_size, padding_idx=config.pad_token_id)
        self.dropout = nn.Dropout(config.dropout)
        self.lstm = nn.LSTM(
            config.embedding_size,
            config.hidden_size,
            num_layers=config.num_hidden_layers,
            batch_first=True,
            bidirectional=True,
            # nn.LSTM applies dropout between layers only, and warns when there are none.
            dropout=config.dropout if config.num_hidden_layers > 1 else 0.0,
        )
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings = value

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(batch, seq_len)`` ids and right-padded mask (all ones when None) to ``(batch, 2 * hidden_size)``."""
        if attention_mask is None:
            self.warn_if_padding_and_no_attention_mask(input_ids, None)
            attention_mask = torch.ones_like(input_ids)
        lengths = valid_lengths(attention_mask)
        states = self.dropout(self.embeddings(input_ids))
        for layer in range(self.config.num_hidden_layers):
            if layer > 0:  # nn.LSTM's dropout between stacked layers
                states = nn.functional.dropout(states, self.config.dropout, self.training)
            forward_states = self.run_direction(states, layer, reverse=False)
            backward_states = reverse_valid(self.run_direction(reverse_valid(states, lengths), layer, True), lengths)
            states = torch.cat([forward_states, backward_states], dim=-1)
        if self.config.pooling == "last":
            # The forward direction ends at the last valid token, the backward one at the first.
            last = (lengths - 1)[:, None, None].expand(-1, 1, self.config.hidden_size)
            return torch.cat([forward_states.gather(1, last)[:, 0], backward_states[:, 0]], dim=-1)
        valid = attention_mask.bool()[:, :, None]
        if self.config.pooling == "max":
            return states.masked_fill(~valid, float("-inf")).amax(dim=1)
        return (states * valid).sum(dim=1) / lengths[:, None].to(states.dtype)

    def run_direction(self, inputs: torch.Tensor, layer: int, reverse: bool) -> torch.Tensor:
        """One direction of one layer of ``self.lstm`` over ``(batch, seq_len, features)``, from zero states."""
        suffix = "_reverse" if reverse else ""
        weights = [
            getattr(self.lstm, f"{name}_l{layer}{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        ]
        zeros = inputs.new_zeros(1, inputs.shape[0], self.config.hidden_size)
        states, _, _ = torch._VF.lstm(inputs, (zeros, zeros), weights, True, 1, 0.0, self.training, False, True)
        return states


def reverse_valid(states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each sequence's first ``length`` positions of ``(batch, seq_len, features)`` in reverse order, the padding after
    them left where it is (its own inverse)."""
    positions = torch.arange(states.shape[1], device=states.device)
    index = lengths[:, None] - 1 - positions
    index = torch.where(index >= 0, index, positions)
    return states.gather(1, index[:, :, None].expand_as(states))


class KoBiLstmForSequenceClassification(KoBiLstmPreTrainedModel):
    """KoBiLSTM with a linear classifier over the pooled vector; cross-entropy when labels are given.

    ``forward(**tokenizer(texts, padding=True, return_tensors="pt"))`` works: ``token_type_ids`` are accepted and
    ignored (one sentence per example).
    """

    def __init__(self, config: KoBiLstmConfig) -> None:
        super().__init__(config)
        self.bilstm = KoBiLstmModel(config)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(2 * config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        return_dict: bool | None = None,
    ) -> SequenceClassifierOutput | tuple[torch.Tensor, ...]:
        """``(batch, seq_len)`` ids and mask, labels ``(batch,)`` (``-100`` ignored): logits ``(batch, num_labels)``."""
        del token_type_ids  # a BiLSTM over one sentence has no segments
        pooled = self.bilstm(input_ids, attention_mask)
        logits = self.classifier(self.dropout(pooled))
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits, labels.to(logits.device))
        output = SequenceClassifierOutput(loss=loss, logits=logits)
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()


KoBiLstmConfig.register_for_auto_class()
KoBiLstmModel.register_for_auto_class("AutoModel")
KoBiLstmForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")

if __name__ == "modeling.bilstm":
    # Our classes for our folders: in a process that imports this module (modeling.load does), the Auto classes load
    # a BiLSTM folder without trust_remote_code (and without a prompt). Not in a folder's copy of this file, loaded
    # as remote code under another name: its classes are the Hub's way, for users without this package.
    from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

    AutoConfig.register(KoBiLstmConfig.model_type, KoBiLstmConfig, exist_ok=True)
    AutoModel.register(KoBiLstmConfig, KoBiLstmModel, exist_ok=True)
    AutoModelForSequenceClassification.register(KoBiLstmConfig, KoBiLstmForSequenceClassification, exist_ok=True)

"""One pretraining (general distillation) step, apart from the loop that runs it (``pretrain.trainer``): masking a
batch, the student and teacher forward passes, the weighted loss terms, the optimizer, and evaluation; benchmarks
time it alone.

Adding a loss term: write it as a pure tensor function in ``pretrain/distillation_losses.py``, add its weight field
(``alpha_*``) to ``DistillationConfig`` (and its line in the loss formula there), and one ``LossTerm`` entry in
``LOSS_TERMS`` below. A term whose weight is 0 is never computed.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from accelerate import Accelerator
from torch import nn
from torch.utils.data import DataLoader
from transformers import PreTrainedModel
from transformers.modeling_utils import remove_tied_weights_from_state_dict

from pretrain.distillation_config import DistillationConfig
from pretrain.distillation_losses import hidden_cosine, hidden_mse, logit_mse, masked_lm_cross_entropy, soft_target_kl
from pretrain.masking import mask_tokens


class EncoderOutputs(NamedTuple):
    """What one forward pass gives the loss terms; a part not asked for (or without a teacher) is None."""

    hidden: torch.Tensor | None  # (B, L, H): the last layer, every token
    logits: torch.Tensor | None  # (N, V): vocabulary logits at the N masked positions only
    layers: tuple[torch.Tensor, ...] | None  # (B, L, H) each: the embeddings, then every layer's output

    def as_float32(self) -> EncoderOutputs:
        return EncoderOutputs(
            None if self.hidden is None else self.hidden.float(),
            None if self.logits is None else self.logits.float(),
            None if self.layers is None else tuple(layer.float() for layer in self.layers),
        )


def masked_lm_outputs(
    model: PreTrainedModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    positions: torch.Tensor,
    with_logits: bool = True,
    with_layers: bool = False,
) -> EncoderOutputs:
    """Last hidden states for every token, vocabulary logits only at ``positions`` (the projection to the vocabulary
    is the costly part) and, if asked, every layer's hidden states, for a ``BertForMaskedLM`` (segment 0 throughout)
    or a ``DistilBertForMaskedLM``. ``with_logits=False`` for a teacher whose head was never trained."""
    if model.config.model_type == "bert":
        encoded = model.bert(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=torch.zeros_like(input_ids),
            output_hidden_states=with_layers,
        )
        hidden = encoded.last_hidden_state
        logits = model.cls(hidden[positions]) if with_logits else None
    else:
        encoded = model.distilbert(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=with_layers)
        hidden = encoded.last_hidden_state
        head = model.vocab_layer_norm(model.activation(model.vocab_transform(hidden[positions])))
        logits = model.vocab_projector(head) if with_logits else None
    return EncoderOutputs(hidden, logits, tuple(encoded.hidden_states) if with_layers else None)


class DistillationStudent(nn.Module):
    """The student as one module, so DDP/FSDP see a single forward (``masked_lm_outputs``, with every layer's hidden
    states when ``with_layers``)."""

    def __init__(self, student: PreTrainedModel, with_layers: bool = False) -> None:
        super().__init__()
        self.student = student
        self.with_layers = with_layers

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, positions: torch.Tensor) -> EncoderOutputs:
        return masked_lm_outputs(self.student, input_ids, attention_mask, positions, with_layers=self.with_layers)


def without_tied_copies(models: list[nn.Module], weights: list[dict[str, torch.Tensor]], output_dir: str) -> None:
    """accelerate's ``save_state`` hook: drop from each state dict the copies of the weights its transformers models
    declare tied (``_tied_weights_keys``: the student's output projection is its word embeddings), as
    ``save_pretrained`` does. accelerate would drop them anyway, warning at every checkpoint; ``load_state`` ties them
    back (safetensors' ``load_model``). Shared weights that no model declares still raise."""
    # No state dicts under FSDP and DeepSpeed, which save the models themselves.
    for i, (model, state) in enumerate(zip(models, weights, strict=False)):
        weights[i] = remove_tied_weights_from_state_dict(state, model)


@torch.no_grad()
def teacher_outputs(
    teacher: nn.Module | None,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    positions: torch.Tensor,
    with_logits: bool = True,
    with_layers: bool = False,
) -> EncoderOutputs:
    """The teacher's ``masked_lm_outputs``, in float32 from a teacher kept in a lower precision (``teacher_dtype``);
    all None when training without one."""
    if teacher is None:
        return EncoderOutputs(None, None, None)
    outputs = masked_lm_outputs(teacher, input_ids, attention_mask, positions, with_logits, with_layers)
    # A float32 teacher's outputs are left as they are: under autocast, in the student's precision.
    return outputs if next(teacher.parameters()).dtype == torch.float32 else outputs.as_float32()


def uses_teacher_logits(config: DistillationConfig) -> bool:
    """Whether a loss term reads the teacher's vocabulary logits (a teacher without a trained head has none)."""
    return config.alpha_ce > 0 or config.alpha_mse > 0


def default_layer_map(num_student_layers: int, num_teacher_layers: int) -> list[int]:
    """Evenly spaced teacher hidden states for the student's layers, the last on the last: 3 of 12 gives
    [4, 8, 12] (TinyBERT's uniform mapping)."""
    return [(i + 1) * num_teacher_layers // num_student_layers for i in range(num_student_layers)]


def check_layer_map(layer_map: list[int], num_student_layers: int, num_teacher_layers: int) -> None:
    if len(layer_map) != num_student_layers:
        raise ValueError(
            f"hidden_layer_map {layer_map} has {len(layer_map)} entries; the student has {num_student_layers} layers, "
            "one teacher hidden state each"
        )
    outside = [k for k in layer_map if not 0 <= k <= num_teacher_layers]
    if outside:
        raise ValueError(
            f"hidden_layer_map {layer_map}: {outside} out of range; the teacher's hidden states are 0 (embeddings) "
            f"to {num_teacher_layers}"
        )


@dataclass(frozen=True)
class StepOutputs:
    """What the loss terms read. Shapes: hidden (B, L, H), logits (N, V) at the N masked positions, targets (N,),
    attention_mask (B, L), layers the paired hidden states (B, L, H) each, student layer i with the teacher's
    ``hidden_layer_map[i]``; the teacher's are None when training on the masked LM alone (and logits when the
    teacher has no trained head)."""

    student_hidden: torch.Tensor
    student_logits: torch.Tensor
    teacher_hidden: torch.Tensor | None
    teacher_logits: torch.Tensor | None
    targets: torch.Tensor
    attention_mask: torch.Tensor
    student_layers: tuple[torch.Tensor, ...] | None = None
    teacher_layers: tuple[torch.Tensor, ...] | None = None


@dataclass(frozen=True)
class LossTerm:
    weight: str  # the DistillationConfig field holding its weight
    compute: Callable[[StepOutputs, DistillationConfig], torch.Tensor]
    needs_teacher: bool = True


def non_padding_cosine(out: StepOutputs, config: DistillationConfig) -> torch.Tensor:
    keep = out.attention_mask.bool()
    return hidden_cosine(out.student_hidden[keep], out.teacher_hidden[keep])


def non_padding_hidden_mse(out: StepOutputs, config: DistillationConfig) -> torch.Tensor:
    keep = out.attention_mask.bool()
    return hidden_mse([s[keep] for s in out.student_layers], [t[keep] for t in out.teacher_layers])


LOSS_TERMS: dict[str, LossTerm] = {
    "loss_ce": LossTerm("alpha_ce", lambda o, c: soft_target_kl(o.student_logits, o.teacher_logits, c.temperature)),
    "loss_mlm": LossTerm("alpha_mlm", lambda o, c: masked_lm_cross_entropy(o.student_logits, o.targets), False),
    "loss_cos": LossTerm("alpha_cos", non_padding_cosine),
    "loss_mse": LossTerm("alpha_mse", lambda o, c: logit_mse(o.student_logits, o.teacher_logits)),
    "loss_hidden_mse": LossTerm("alpha_hidden_mse", non_padding_hidden_mse),
}


def active_terms(config: DistillationConfig, has_teacher: bool) -> list[str]:
    """The loss terms a run computes and logs: weight > 0, and a teacher where the term needs one."""
    return [
        name
        for name, term in LOSS_TERMS.items()
        if getattr(config, term.weight) > 0 and (has_teacher or not term.needs_teacher)
    ]


def distillation_losses(
    student_hidden: torch.Tensor,
    student_logits: torch.Tensor,
    teacher_hidden: torch.Tensor | None,
    teacher_logits: torch.Tensor | None,
    targets: torch.Tensor,
    attention_mask: torch.Tensor,
    config: DistillationConfig,
    student_layers: tuple[torch.Tensor, ...] | None = None,
    teacher_layers: tuple[torch.Tensor, ...] | None = None,
) -> dict[str, torch.Tensor]:
    """Every active loss term (``active_terms``) and their weighted sum ``loss`` (formula in ``DistillationConfig``).
    The layers are the paired hidden states the per-layer term compares (``paired_layers``)."""
    out = StepOutputs(
        student_hidden,
        student_logits,
        teacher_hidden,
        teacher_logits,
        targets,
        attention_mask,
        student_layers,
        teacher_layers,
    )
    terms = {name: LOSS_TERMS[name].compute(out, config) for name in active_terms(config, teacher_hidden is not None)}
    terms["loss"] = sum(getattr(config, LOSS_TERMS[name].weight) * value for name, value in terms.items())
    return terms


def mask_seed(seed: int, epoch: int, batch: int, process: int) -> int:
    """The masking seed of one micro-batch: fixed by its place in training, so resuming repeats it. A digest, not
    ``hash()``, whose algorithm for tuples may change between Python versions."""
    digest = hashlib.blake2b(f"{seed},{epoch},{batch},{process}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % 2**63


def masked_batch(
    blocks: torch.Tensor, weights: torch.Tensor, seed: int, config: DistillationConfig, special: dict[str, int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mask a batch of blocks: ``(inputs, labels, attention_mask, positions)``, positions being the masked ones,
    all on the device of ``blocks``. The attention mask comes from ``blocks``, so a random replacement that happens
    to draw [PAD] still attends and is attended to.

    The masks are drawn with a CPU generator seeded by ``seed``, so they are a function of the seed alone: the same
    on a CPU and on any GPU, and the same again when a run resumes.
    """
    inputs, labels = mask_tokens(
        blocks,
        weights,
        special["mask"],
        len(weights),
        torch.Generator().manual_seed(seed),
        config.mlm_probability,
        config.mask_probability,
        config.random_probability,
    )
    return inputs, labels, (blocks != special["pad"]).long(), labels != -100


def paired_layers(
    student: EncoderOutputs, teacher: EncoderOutputs, config: DistillationConfig
) -> tuple[tuple[torch.Tensor, ...] | None, tuple[torch.Tensor, ...] | None]:
    """The student's layer outputs and the teacher hidden states ``hidden_layer_map`` pairs them with."""
    if student.layers is None or teacher.layers is None:
        return None, None
    return student.layers[1:], tuple(teacher.layers[k] for k in config.hidden_layer_map)


def distillation_step(
    accelerator: Accelerator,
    module: nn.Module,
    teacher: nn.Module | None,
    blocks: torch.Tensor,
    weights: torch.Tensor,
    seed: int,
    config: DistillationConfig,
    special: dict[str, int],
) -> dict[str, torch.Tensor]:
    """Mask ``blocks``, run student and teacher under autocast, return ``distillation_losses`` (no backward)."""
    inputs, labels, attention_mask, positions = masked_batch(blocks, weights, seed, config, special)
    with accelerator.autocast():
        student = module(inputs, attention_mask, positions)
        with_layers = config.alpha_hidden_mse > 0
        taught = teacher_outputs(teacher, inputs, attention_mask, positions, uses_teacher_logits(config), with_layers)
    student_layers, teacher_layers = paired_layers(student, taught, config)
    return distillation_losses(
        student.hidden,
        student.logits,
        taught.hidden,
        taught.logits,
        labels[positions],
        attention_mask,
        config,
        student_layers,
        teacher_layers,
    )


def build_optimizer(student: nn.Module, config: DistillationConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not on biases and LayerNorms)."""
    decay, no_decay = [], []
    for name, parameter in student.named_parameters():
        if parameter.requires_grad:
            (no_decay if parameter.ndim < 2 or "layer_norm" in name.lower() else decay).append(parameter)
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # The fused kernel: one pass over all parameters, 6x faster than the per-tensor loop for a 3-layer student on CPU.
    return torch.optim.AdamW(groups, lr=config.learning_rate, eps=config.adam_epsilon, fused=True)


@torch.no_grad()
def evaluate(
    accelerator: Accelerator,
    module: nn.Module,
    teacher: nn.Module | None,
    loader: DataLoader,
    weights: torch.Tensor,
    config: DistillationConfig,
    special: dict[str, int],
) -> dict[str, Any]:
    """Student MLM loss, perplexity and top-1 accuracy, and with a teacher the mean cosine of the two last hidden
    states on non-padding tokens and (with the teacher's logits) their top-1 agreement, on masked validation tokens.

    The masks are the same at every evaluation, so the numbers are comparable along a run.
    """
    module.eval()
    # loss, correct, agreements, masked tokens, hidden-state cosine sum, non-padding tokens
    totals = torch.zeros(6, dtype=torch.float64, device=accelerator.device)
    with_logits = uses_teacher_logits(config)
    for i, blocks in enumerate(loader):
        if i >= config.eval_max_batches:
            break
        inputs, labels, attention_mask, positions = masked_batch(
            blocks, weights, mask_seed(config.seed, -1, i, 0), config, special
        )
        with accelerator.autocast():
            student = module(inputs, attention_mask, positions)
            taught = teacher_outputs(teacher, inputs, attention_mask, positions, with_logits)
        student_logits, teacher_logits = student.logits, taught.logits
        predicted, targets = student_logits.argmax(-1), labels[positions]
        per_token = (
            nn.functional.cross_entropy(student_logits.float(), targets, reduction="none"),
            predicted == targets,
            predicted == (targets if teacher_logits is None else teacher_logits.argmax(-1)),
            torch.ones_like(targets),
        )
        rows = positions.nonzero()[:, 0]
        per_block = torch.stack(
            [
                torch.zeros(len(blocks), dtype=torch.float64, device=blocks.device).index_add_(0, rows, v.double())
                for v in per_token
            ],
            dim=1,
        )
        cosine_per_block = torch.zeros(len(blocks), 2, dtype=torch.float64, device=blocks.device)
        if taught.hidden is not None:
            keep = attention_mask.bool()
            cosine = nn.functional.cosine_similarity(student.hidden[keep].float(), taught.hidden[keep].float(), dim=-1)
            cosine_per_block.index_add_(
                0, keep.nonzero()[:, 0], torch.stack([cosine, torch.ones_like(cosine)], 1).double()
            )
        per_block = torch.cat([per_block, cosine_per_block], dim=1)
        totals += accelerator.gather_for_metrics(per_block).sum(0)
    module.train()
    loss_sum, correct, agreements, tokens, cosine_sum, hidden_tokens = totals.tolist()
    tokens = max(tokens, 1.0)
    metrics = {
        "eval_mlm_loss": loss_sum / tokens,
        "eval_perplexity": math.exp(min(loss_sum / tokens, 50.0)),
        "eval_top1_accuracy": correct / tokens,
        "eval_tokens": int(tokens),
    }
    if teacher is not None:
        metrics["eval_hidden_cosine"] = cosine_sum / max(hidden_tokens, 1.0)
    if teacher is not None and with_logits:
        metrics["eval_top1_agreement"] = agreements / tokens
    return metrics

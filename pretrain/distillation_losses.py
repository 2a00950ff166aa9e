"""Distillation losses as pure tensor functions (DistilBERT's terms and TinyBERT's hidden-state MSE; see
``DistillationConfig`` for the total).

Shapes: ``N`` masked positions, ``V`` vocabulary, ``M`` non-padding positions, ``H`` hidden size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_target_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 * KL(softmax(teacher / T) || softmax(student / T))``, summed over the vocabulary, mean over positions.

    Args: logits (N, V) each. The T^2 factor keeps gradient magnitudes independent of T (Hinton et al., 2015).
    """
    student_log_probs = F.log_softmax(student_logits.float() / temperature, dim=-1)
    teacher_log_probs = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    kl = F.kl_div(student_log_probs, teacher_log_probs, reduction="batchmean", log_target=True)
    return kl * temperature**2


def masked_lm_cross_entropy(student_logits: torch.Tensor, target_ids: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the original tokens. Args: logits (N, V), target ids (N,)."""
    return F.cross_entropy(student_logits.float(), target_ids)


def hidden_cosine(student_hidden: torch.Tensor, teacher_hidden: torch.Tensor) -> torch.Tensor:
    """Mean of ``1 - cos(student, teacher)`` over positions. Args: hidden states (M, H) each."""
    return (1 - F.cosine_similarity(student_hidden.float(), teacher_hidden.float(), dim=-1)).mean()


def logit_mse(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Squared error summed over the vocabulary, mean over positions. Args: logits (N, V) each."""
    return F.mse_loss(student_logits.float(), teacher_logits.float(), reduction="sum") / student_logits.shape[0]


def hidden_mse(student_layers: list[torch.Tensor], teacher_layers: list[torch.Tensor]) -> torch.Tensor:
    """Mean squared error between paired hidden states, averaged over the pairs (TinyBERT's hidden-state loss, for
    equal widths). Args: two lists of (M, H), student layer i paired with teacher layer i."""
    errors = [F.mse_loss(s.float(), t.float()) for s, t in zip(student_layers, teacher_layers, strict=True)]
    return torch.stack(errors).mean()

"""The task-specific distillation loss (Tang et al., 2019; Hinton et al., 2015) as pure tensor functions.

Shapes: ``N`` examples, ``C`` labels. The total, for a batch of ``N`` examples of which some have a gold label::

    loss = (1 / N) * sum_i [ alpha * CE_i * has_label_i + (1 - alpha) * soft_i ]

``soft`` is looked up by name in ``SOFT_LOSSES``: ``"kl"`` (:func:`soft_kl`) or ``"mse"`` (:func:`soft_mse`). The
two soft forms are the ones of ``pretrain.distillation_losses`` (general distillation), checked here for the shapes
of a classifier.

    >>> student = torch.tensor([[1.0, -1.0], [0.5, 0.0]])
    >>> teacher = torch.tensor([[2.0, -2.0], [0.0, 1.0]])
    >>> distillation_loss(student, teacher, torch.tensor([0, -100]), alpha=0.5, temperature=2.0)
    tensor(0.1676)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from distill.examples import IGNORE_INDEX
from pretrain.distillation_losses import logit_mse, soft_target_kl


def check_logits(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> None:
    if student_logits.dim() != 2:
        raise ValueError(f"student logits must be (examples, labels), got shape {tuple(student_logits.shape)}")
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(
            f"teacher logits {tuple(teacher_logits.shape)} and student logits {tuple(student_logits.shape)} differ in "
            "shape: the teacher must have as many labels as the student and one row per example"
        )


def check_temperature(temperature: float) -> None:
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a positive number, got {temperature} (1 leaves the logits as they are)")


def soft_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 * KL(softmax(teacher / T) || softmax(student / T))``, summed over labels, averaged over examples.

    Args: logits (N, C) each; ``temperature`` T > 0. Returns a scalar. The T^2 factor keeps the gradients' size
    independent of T (Hinton et al., 2015), so alpha means the same at every temperature.
    """
    check_logits(student_logits, teacher_logits)
    check_temperature(temperature)
    return soft_target_kl(student_logits, teacher_logits, temperature)


def soft_mse(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """``||student - teacher||^2`` on the logits, summed over labels, averaged over examples (Tang et al., 2019).

    Args: logits (N, C) each. Returns a scalar. Tang et al. match the logits themselves, not probabilities: no
    temperature. The sum over labels (not ``nn.MSELoss``'s mean over all N * C entries) is their squared distance.
    """
    check_logits(student_logits, teacher_logits)
    return logit_mse(student_logits, teacher_logits)


SOFT_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]] = {
    "kl": soft_kl,
    "mse": lambda student_logits, teacher_logits, temperature: soft_mse(student_logits, teacher_logits),
}


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor | None,
    labels: torch.Tensor | None,
    alpha: float,
    temperature: float = 1.0,
    soft: str = "kl",
) -> torch.Tensor:
    """``alpha * CE(gold) + (1 - alpha) * soft``, where examples without a gold label get the soft term alone.

    Args: ``student_logits`` (N, C); ``teacher_logits`` (N, C), or None when ``alpha`` is 1; ``labels`` (N,) of ids
    in ``[0, C)`` or -100 for an example without a gold label (None: no example has one); ``alpha`` in [0, 1];
    ``temperature`` T > 0 for ``soft="kl"`` (ignored by ``"mse"``); ``soft`` a name in ``SOFT_LOSSES``.

    Both means are over all N examples of the batch: the soft term is the mean of ``soft_i`` over all N, and the
    cross-entropy is the *sum* of ``CE_i`` over the labelled examples divided by N (not by their number). So the loss
    is the mean of per-example losses, ``alpha * CE_i + (1 - alpha) * soft_i`` for an example with a label and
    ``(1 - alpha) * soft_i`` for one without, and a batch's weight on an example does not depend on how many of
    the others have labels. With every example labelled this is the usual ``alpha * mean CE + (1 - alpha) * mean
    soft``.

    ``alpha = 1`` is the no-teacher baseline: the soft term is never computed (``teacher_logits`` may be None) and
    every example must have a label, since one without would learn nothing. ``alpha = 0`` is pure distillation:
    the cross-entropy is never computed. Raises ValueError for alpha outside [0, 1], T <= 0, an unknown ``soft``,
    shapes that do not match, or labels outside ``[0, C)`` other than -100.
    """
    if not 0.0 <= alpha <= 1.0:  # NaN fails too
        raise ValueError(f"alpha must be in [0, 1], got {alpha}: 1 trains on the gold labels alone, 0 on the teacher")
    check_temperature(temperature)
    if soft not in SOFT_LOSSES:
        raise ValueError(f"unknown soft loss {soft!r}: choose one of {', '.join(SOFT_LOSSES)}")
    if student_logits.dim() != 2:
        raise ValueError(f"student logits must be (examples, labels), got shape {tuple(student_logits.shape)}")
    n, num_labels = student_logits.shape
    if alpha < 1:
        if teacher_logits is None:
            raise ValueError(f"alpha = {alpha} < 1 needs the teacher's logits; only alpha = 1 trains without them")
        check_logits(student_logits, teacher_logits)
    loss = student_logits.new_zeros((), dtype=torch.float32)
    if alpha > 0:
        if labels is None or labels.shape != (n,):
            got = "no labels" if labels is None else f"labels of shape {tuple(labels.shape)}"
            raise ValueError(f"alpha > 0 needs one label per example, shape ({n},), got {got}")
        labelled = labels != IGNORE_INDEX
        if bool(((labels[labelled] < 0) | (labels[labelled] >= num_labels)).any()):
            raise ValueError(f"labels must be ids in [0, {num_labels}) or {IGNORE_INDEX} (no gold label)")
        if alpha == 1 and not bool(labelled.all()):
            raise ValueError(
                f"alpha = 1 (no teacher) learns nothing from examples without a gold label ({IGNORE_INDEX}): leave "
                "the unlabelled transfer set out of the baseline"
            )
        ce_sum = F.cross_entropy(student_logits.float(), labels, ignore_index=IGNORE_INDEX, reduction="sum")
        loss = loss + alpha * ce_sum / n
    if alpha < 1:
        loss = loss + (1 - alpha) * SOFT_LOSSES[soft](student_logits, teacher_logits, temperature)
    return loss

"""distill/task_losses.py against hand computations: KL and MSE forms, T, alpha 0 and 1, examples without gold
labels."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import ImplicitDeviceFactories

from distill.task_losses import SOFT_LOSSES, distillation_loss, soft_kl, soft_mse

STUDENT = [[1.0, 2.0, 0.0], [0.0, 0.0, 0.0], [-1.0, 0.5, 2.0]]
TEACHER = [[0.5, 0.0, 1.0], [2.0, 0.0, -1.0], [0.0, 3.0, 1.0]]


def softmax(row: list[float], t: float = 1.0) -> list[float]:
    exps = [math.exp(x / t) for x in row]
    return [e / sum(exps) for e in exps]


def kl(student: list[float], teacher: list[float], t: float) -> float:
    """T^2 * sum_c p_teacher * log(p_teacher / p_student) of one example."""
    p, q = softmax(teacher, t), softmax(student, t)
    return t * t * sum(pc * math.log(pc / qc) for pc, qc in zip(p, q, strict=True))


def squared_distance(student: list[float], teacher: list[float]) -> float:
    return sum((s - t) ** 2 for s, t in zip(student, teacher, strict=True))


def cross_entropy(student: list[float], label: int) -> float:
    return math.log(sum(math.exp(z) for z in student)) - student[label]


def tensors() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.tensor(STUDENT), torch.tensor(TEACHER)


def test_kl_in_closed_form() -> None:
    # Teacher [0, ln 3] gives (1/4, 3/4), a uniform student (1/2, 1/2): KL = 1/4 ln(1/2) + 3/4 ln(3/2).
    expected = 0.75 * math.log(3) - math.log(2)
    got = soft_kl(torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, math.log(3)]]), temperature=1.0)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # At T = 2 the teacher is (1, sqrt 3) / (1 + sqrt 3); the factor T^2 = 4.
    p = np.array([1.0, math.sqrt(3)]) / (1 + math.sqrt(3))
    expected = 4 * float(np.sum(p * np.log(p / 0.5)))
    got = soft_kl(torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, math.log(3)]]), temperature=2.0)
    assert got.item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0, 4.0])
def test_kl_is_the_mean_over_examples_and_matches_kl_div(temperature: float) -> None:
    student, teacher = tensors()
    expected = sum(kl(s, t, temperature) for s, t in zip(STUDENT, TEACHER, strict=True)) / len(STUDENT)
    got = soft_kl(student, teacher, temperature)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # torch's kl_div as documented: input log-probabilities, target probabilities, batchmean = sum / N.
    oracle = F.kl_div(
        F.log_softmax(student / temperature, dim=-1), F.softmax(teacher / temperature, dim=-1), reduction="batchmean"
    )
    assert got.item() == pytest.approx(oracle.item() * temperature**2, rel=1e-6)


def test_kl_is_zero_for_equal_logits_and_not_symmetric() -> None:
    student, teacher = tensors()
    assert soft_kl(teacher, teacher, 3.0).item() == pytest.approx(0.0, abs=1e-7)
    assert soft_kl(student, teacher, 1.0).item() != pytest.approx(soft_kl(teacher, student, 1.0).item(), rel=1e-3)


def test_mse_is_the_squared_distance_averaged_over_examples() -> None:
    # Rows: 0.25 + 4 + 1, 4 + 0 + 1, 1 + 6.25 + 1.
    assert soft_mse(*tensors()).item() == pytest.approx((5.25 + 5.0 + 8.25) / 3, rel=1e-6)
    assert soft_mse(torch.tensor(STUDENT[:1]), torch.tensor(TEACHER[:1])).item() == pytest.approx(5.25)


@pytest.mark.parametrize("soft", ["kl", "mse"])
def test_examples_without_gold_labels_get_the_soft_term_alone(soft: str) -> None:
    student, teacher = tensors()
    labels = [1, -100, 0]
    alpha, t = 0.25, 2.0

    def soft_term(i: int) -> float:
        return kl(STUDENT[i], TEACHER[i], t) if soft == "kl" else squared_distance(STUDENT[i], TEACHER[i])

    # The mean over all three examples of their own losses; the middle one has no cross-entropy.
    per_example = [
        alpha * cross_entropy(STUDENT[0], 1) + (1 - alpha) * soft_term(0),
        (1 - alpha) * soft_term(1),
        alpha * cross_entropy(STUDENT[2], 0) + (1 - alpha) * soft_term(2),
    ]
    got = distillation_loss(student, teacher, torch.tensor(labels), alpha=alpha, temperature=t, soft=soft)
    assert got.item() == pytest.approx(sum(per_example) / 3, rel=1e-6)


def test_cross_entropy_is_divided_by_all_examples_not_by_the_labelled_ones() -> None:
    student, teacher = tensors()
    one_label = distillation_loss(student, teacher, torch.tensor([-100, -100, 2]), alpha=0.5, temperature=1.0)
    soft = sum(kl(s, t, 1.0) for s, t in zip(STUDENT, TEACHER, strict=True)) / 3
    assert one_label.item() == pytest.approx(0.5 * cross_entropy(STUDENT[2], 2) / 3 + 0.5 * soft, rel=1e-6)
    # No gold label in the batch: the soft term alone, weighted by 1 - alpha.
    none = distillation_loss(student, teacher, torch.tensor([-100, -100, -100]), alpha=0.5, temperature=1.0)
    assert none.item() == pytest.approx(0.5 * soft, rel=1e-6)


def test_all_labelled_is_the_usual_weighted_sum_of_means() -> None:
    student, teacher = tensors()
    labels = [2, 0, 1]
    ce = sum(cross_entropy(s, y) for s, y in zip(STUDENT, labels, strict=True)) / 3
    soft = sum(kl(s, t, 3.0) for s, t in zip(STUDENT, TEACHER, strict=True)) / 3
    got = distillation_loss(student, teacher, torch.tensor(labels), alpha=0.1, temperature=3.0)
    assert got.item() == pytest.approx(0.1 * ce + 0.9 * soft, rel=1e-6)


def test_alpha_one_is_cross_entropy_alone_and_never_reads_the_teacher() -> None:
    student = torch.tensor(STUDENT)
    labels = [2, 0, 1]
    ce = sum(cross_entropy(s, y) for s, y in zip(STUDENT, labels, strict=True)) / 3
    nan_teacher = torch.full((3, 3), float("nan"))
    got = distillation_loss(student, nan_teacher, torch.tensor(labels), alpha=1.0, temperature=2.0)
    assert got.item() == pytest.approx(ce, rel=1e-6)
    for soft in SOFT_LOSSES:
        assert distillation_loss(student, None, torch.tensor(labels), alpha=1.0, soft=soft).item() == pytest.approx(
            ce, rel=1e-6
        )


def test_alpha_zero_is_the_soft_term_alone_and_needs_no_labels() -> None:
    student, teacher = tensors()
    soft = sum(kl(s, t, 2.0) for s, t in zip(STUDENT, TEACHER, strict=True)) / 3
    assert distillation_loss(student, teacher, None, alpha=0.0, temperature=2.0).item() == pytest.approx(soft, rel=1e-6)
    # Labels are not read either: an out-of-range one changes nothing.
    got = distillation_loss(student, teacher, torch.tensor([7, 0, 1]), alpha=0.0, temperature=2.0)
    assert got.item() == pytest.approx(soft, rel=1e-6)


def test_mse_ignores_the_temperature() -> None:
    student, teacher = tensors()
    labels = torch.tensor([0, 1, 2])
    at = [distillation_loss(student, teacher, labels, 0.5, temperature=t, soft="mse").item() for t in (1.0, 5.0)]
    assert at[0] == pytest.approx(at[1], rel=1e-7)


def test_gradients_flow_to_the_student_only() -> None:
    student = torch.tensor(STUDENT, requires_grad=True)
    teacher = torch.tensor(TEACHER, requires_grad=True)
    distillation_loss(student, teacher, torch.tensor([1, -100, 0]), alpha=0.5, temperature=2.0).backward()
    assert student.grad is not None and torch.isfinite(student.grad).all()
    # The soft term's gradient for one example, KL at T: T * (p_student - p_teacher) / N, here with no label.
    p_s, p_t = softmax(STUDENT[1], 2.0), softmax(TEACHER[1], 2.0)
    expected = [0.5 * 2.0 * (s - t) / 3 for s, t in zip(p_s, p_t, strict=True)]
    torch.testing.assert_close(student.grad[1], torch.tensor(expected), atol=1e-6, rtol=0)


def test_no_tensor_is_made_without_the_inputs_device() -> None:
    student, teacher = tensors()
    with ImplicitDeviceFactories() as factories:
        for soft in SOFT_LOSSES:
            distillation_loss(student, teacher, torch.tensor([1, -100, 0]), alpha=0.5, temperature=2.0, soft=soft)
    assert factories.calls == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": -0.1}, r"alpha must be in \[0, 1\], got -0.1"),
        ({"alpha": 1.5}, r"alpha must be in \[0, 1\], got 1.5"),
        ({"alpha": float("nan")}, r"alpha must be in \[0, 1\]"),
        ({"temperature": 0.0}, "temperature must be a positive number, got 0.0"),
        ({"temperature": -1.0}, "temperature must be a positive number"),
        ({"temperature": float("inf")}, "temperature must be a positive number"),
        ({"soft": "cosine"}, "unknown soft loss 'cosine': choose one of kl, mse"),
        ({"teacher_logits": torch.zeros(3, 2)}, r"teacher logits \(3, 2\) and student logits \(3, 3\) differ"),
        ({"teacher_logits": torch.zeros(2, 3)}, r"teacher logits \(2, 3\) and student logits \(3, 3\) differ"),
        ({"student_logits": torch.zeros(3)}, r"student logits must be \(examples, labels\), got shape \(3,\)"),
        ({"labels": torch.tensor([0, 1])}, r"one label per example, shape \(3,\), got labels of shape \(2,\)"),
        ({"labels": None}, r"one label per example, shape \(3,\), got no labels"),
        ({"labels": torch.tensor([0, 3, 1])}, r"labels must be ids in \[0, 3\) or -100"),
        ({"labels": torch.tensor([0, -1, 1])}, r"labels must be ids in \[0, 3\) or -100"),
        ({"teacher_logits": None}, "needs the teacher's logits"),
        ({"alpha": 1.0, "labels": torch.tensor([0, -100, 1])}, "alpha = 1 .* learns nothing from examples without"),
    ],
)
def test_bad_arguments_say_what_is_wrong(kwargs: dict, message: str) -> None:
    student, teacher = tensors()
    arguments = {
        "student_logits": student,
        "teacher_logits": teacher,
        "labels": torch.tensor([0, 1, 2]),
        "alpha": 0.5,
        "temperature": 2.0,
        **kwargs,
    }
    with pytest.raises(ValueError, match=message):
        distillation_loss(**arguments)


def test_the_soft_forms_check_their_inputs_too() -> None:
    student, teacher = tensors()
    with pytest.raises(ValueError, match="differ in shape"):
        soft_kl(student, teacher[:, :2], 1.0)
    with pytest.raises(ValueError, match="differ in shape"):
        soft_mse(student, teacher[:2])
    with pytest.raises(ValueError, match="temperature must be a positive number"):
        soft_kl(student, teacher, 0.0)


def test_the_module_docstring_example_holds() -> None:
    import doctest

    import distill.task_losses

    assert doctest.testmod(distill.task_losses, extraglobs={"torch": torch}).failed == 0

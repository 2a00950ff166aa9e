"""The GPU contract, for those who have one: masking, a distillation step and a fine-tuning step on ``cuda`` with
bf16 autocast give what the CPU gives in float32, within bf16's tolerance.

This project's machines have no GPU, so these tests skip here; run them with ``pytest -m cuda`` on a CUDA machine.
What the CPU can check of the same paths (every tensor made on its inputs' device) is in test_distillation_parts.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, BertConfig, BertForMaskedLM

from modeling.student import build_student
from pretrain.distillation_config import DistillationConfig
from pretrain.masking import token_weights
from pretrain.step import DistillationStudent, distillation_losses, masked_batch, teacher_outputs

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; this project's machines have none"),
]
SPECIAL = {"mask": 4, "pad": 1}
VOCAB = 200
# bf16 keeps 8 bits of mantissa: relative differences of a few 1e-3 per operation, a few 1e-2 after a network.
BF16_RTOL = 5e-2


def blocks(device: str) -> torch.Tensor:
    ids = torch.randint(5, VOCAB, (4, 32), generator=torch.Generator().manual_seed(0))
    ids[:, 0], ids[:, -1] = 2, 3
    return ids.to(device)


def weights() -> torch.Tensor:
    return token_weights(np.ones(VOCAB, dtype=np.int64), 0.7, [0, 1, 2, 3, 4])


def test_masks_are_the_same_on_cuda_as_on_cpu() -> None:
    config = DistillationConfig()
    on_cpu = masked_batch(blocks("cpu"), weights(), 5, config, SPECIAL)
    on_cuda = masked_batch(blocks("cuda"), weights().cuda(), 5, config, SPECIAL)
    assert all(t.device.type == "cuda" for t in on_cuda)
    assert all(torch.equal(a, b.cpu()) for a, b in zip(on_cpu, on_cuda, strict=True))


def test_distillation_step_in_bf16_on_cuda_matches_cpu() -> None:
    torch.manual_seed(0)
    shape = {"hidden_size": 64, "num_attention_heads": 4, "intermediate_size": 128, "max_position_embeddings": 64}
    teacher = BertForMaskedLM(BertConfig(vocab_size=VOCAB, num_hidden_layers=4, pad_token_id=1, **shape)).eval()
    student = DistillationStudent(build_student(teacher, [0, 2]))
    config = DistillationConfig()

    def losses(device: str, autocast: bool) -> dict[str, float]:
        teacher.to(device)
        student.to(device)
        inputs, labels, attention_mask, positions = masked_batch(blocks(device), weights(), 5, config, SPECIAL)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=autocast):
            student_hidden, student_logits, _ = student(inputs, attention_mask, positions)
            teacher_hidden, teacher_logits, _ = teacher_outputs(teacher, inputs, attention_mask, positions)
        terms = distillation_losses(
            student_hidden, student_logits, teacher_hidden, teacher_logits, labels[positions], attention_mask, config
        )
        terms["loss"].backward()
        assert all(p.grad is not None and p.grad.device.type == device for p in student.parameters() if p.requires_grad)
        student.zero_grad()
        return {name: value.item() for name, value in terms.items()}

    reference, on_cuda = losses("cpu", autocast=False), losses("cuda", autocast=True)
    assert on_cuda.keys() == reference.keys()
    for name, value in reference.items():
        assert on_cuda[name] == pytest.approx(value, rel=BF16_RTOL, abs=1e-3), name


def test_a_bf16_teacher_on_cuda_gives_float32_targets_near_the_cpu_float32_teachers() -> None:
    """--teacher_dtype bfloat16 on a GPU, outside autocast: the copy's weights stay bf16 on cuda, its outputs come
    back float32 on cuda, within bf16's tolerance of the float32 teacher on the CPU."""
    import copy

    from pretrain.trainer import prepare_models

    torch.manual_seed(0)
    shape = {"hidden_size": 64, "num_attention_heads": 4, "intermediate_size": 128, "max_position_embeddings": 64}
    teacher = BertForMaskedLM(BertConfig(vocab_size=VOCAB, num_hidden_layers=4, pad_token_id=1, **shape)).eval()
    lower = copy.deepcopy(teacher)
    prepare_models(DistillationConfig(teacher_dtype="bfloat16"), build_student(teacher, [0]), lower)
    lower.to("cuda")
    assert {(p.dtype, p.device.type) for p in lower.parameters()} == {(torch.bfloat16, "cuda")}
    config = DistillationConfig()
    inputs, _, attention_mask, positions = masked_batch(blocks("cpu"), weights(), 5, config, SPECIAL)
    exact = teacher_outputs(teacher, inputs, attention_mask, positions)
    on_cuda = [t.cuda() for t in (inputs, attention_mask, positions)]
    approx = teacher_outputs(lower, *on_cuda)
    for want, got in ((exact.hidden, approx.hidden), (exact.logits, approx.logits)):
        assert got.dtype == torch.float32 and got.device.type == "cuda"
        torch.testing.assert_close(got.cpu(), want, rtol=BF16_RTOL, atol=5e-2)


def test_fine_tuning_step_in_bf16_on_cuda_matches_cpu(models: dict[str, Path]) -> None:
    from tokenization_kobert import KoBertTokenizerFast

    tokenizer = KoBertTokenizerFast.from_pretrained(models["bert"])
    batch = tokenizer(["정말 재미있는 영화", "지루했다"], padding=True, return_tensors="pt")
    batch["labels"] = torch.tensor([1, 0])
    model = AutoModelForSequenceClassification.from_pretrained(models["bert"], num_labels=2)

    def loss_and_grad(device: str, autocast: bool) -> tuple[float, torch.Tensor]:
        model.to(device).zero_grad()
        with torch.autocast(device, dtype=torch.bfloat16, enabled=autocast):
            loss = model(**{k: v.to(device) for k, v in batch.items()}).loss
        loss.backward()
        return loss.item(), model.classifier.weight.grad.float().cpu()

    (cpu_loss, cpu_grad), (cuda_loss, cuda_grad) = loss_and_grad("cpu", False), loss_and_grad("cuda", True)
    assert cuda_loss == pytest.approx(cpu_loss, rel=BF16_RTOL)
    assert torch.allclose(cuda_grad, cpu_grad, rtol=BF16_RTOL, atol=1e-3)

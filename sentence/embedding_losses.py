"""The training objectives, as sentence-transformers losses with the settings of the papers they come from.

- SimCSE (Gao et al. 2021), supervised: each premise is pulled towards its entailed hypothesis and pushed from every
  other hypothesis in the batch and from every contradiction (hard negatives); cosine similarities divided by the
  temperature go through a softmax cross-entropy. sentence-transformers' ``MultipleNegativesRankingLoss`` computes
  exactly this with ``scale = 1 / temperature``.
- STS regression (Reimers and Gurevych 2019): the cosine similarity of a pair regressed on its gold score / 5.
- Embedding distillation: MSE (or 1 - cosine) between the student's embedding, projected to the teacher's dimension
  when they differ, and the teacher's cached one (``EmbedDistillLoss``); or the MSE between the two in-batch
  cosine-similarity matrices (``SimilarityDistillLoss``, relational distillation).
"""

from __future__ import annotations

import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.losses import (
    CosineSimilarityLoss,
    EmbedDistillLoss,
    MultipleNegativesRankingLoss,
)
from torch import Tensor, nn
from torch.nn import functional

from sentence.arguments import DISTANCES


def simcse_loss(encoder: SentenceTransformer, temperature: float, gather_across_devices: bool) -> nn.Module:
    """Inputs ``(anchor, positive[, negative])`` columns; ``gather_across_devices`` makes every process's sentences
    negatives of every other's (the batch SimCSE means, on several GPUs)."""
    if temperature <= 0:
        raise ValueError(f"the temperature must be positive, got {temperature}")
    return MultipleNegativesRankingLoss(encoder, scale=1.0 / temperature, gather_across_devices=gather_across_devices)


def sts_loss(encoder: SentenceTransformer) -> nn.Module:
    """Inputs ``(sentence1, sentence2)`` and a label in [0, 1]: the gold score divided by ``STS_MAX_SCORE``."""
    return CosineSimilarityLoss(encoder)


class SimilarityDistillLoss(EmbedDistillLoss):
    """Relational distillation: the MSE between the student's and the teacher's cosine-similarity matrices over the
    batch. Only how sentences lie to each other is taught, which is what similarity search and STS read; a teacher
    whose embeddings share one direction (e5's unrelated sentences sit near 0.8 cosine) would otherwise spend the
    vector MSE on that direction. Any student dimension works, with no projection."""

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], teacher_embeddings: list[Tensor]) -> Tensor:
        losses = []
        for student, teacher in zip(embeddings, teacher_embeddings, strict=True):
            student = functional.normalize(student, dim=-1)
            teacher = functional.normalize(teacher.to(student.dtype), dim=-1)
            losses.append(functional.mse_loss(student @ student.T, teacher @ teacher.T))
        return torch.stack(losses).mean()


def embedding_distillation_loss(encoder: SentenceTransformer, teacher_dimension: int, distance: str) -> nn.Module:
    """Input ``sentence`` and the teacher's embedding as label; ``mse`` and ``cosine`` through a trained linear
    projection when the dimensions differ (it lives in the loss and is not saved: the student keeps its own
    dimension), ``similarity`` the batch's similarity matrices (``SimilarityDistillLoss``)."""
    if distance not in DISTANCES:
        raise ValueError(f"unknown distance {distance!r}; choose one of {', '.join(DISTANCES)}")
    if distance == "similarity":
        return SimilarityDistillLoss(encoder)
    dimension = encoder.get_embedding_dimension()
    projection = None if dimension == teacher_dimension else teacher_dimension
    return EmbedDistillLoss(encoder, distance_metric=distance, projection_dim=projection)

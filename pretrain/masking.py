"""Dynamic masking for masked-LM distillation: BERT's 80/10/10 rule, with XLM's frequency smoothing.

Pure functions on tensors with an explicit ``torch.Generator``, so a batch's masks depend only on the seed given.
Every random draw happens on the generator's device and the results move to the batch's: with a CPU generator the
masks are the same whatever device the batch is on.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def token_weights(token_counts: np.ndarray, smoothing: float, special_ids: list[int]) -> torch.Tensor:
    """Relative probability of choosing each token id: ``max(count, 1) ** -smoothing``, 0 for special tokens.

    ``smoothing`` 0 gives every ordinary token the same weight; DistilBERT uses 0.7, which favours rare tokens.
    """
    weights = torch.from_numpy(np.maximum(token_counts, 1).astype(np.float64) ** -smoothing)
    weights[special_ids] = 0.0
    return weights


def mask_tokens(
    input_ids: torch.Tensor,
    weights: torch.Tensor,
    mask_token_id: int,
    vocab_size: int,
    generator: torch.Generator,
    mlm_probability: float = 0.15,
    mask_probability: float = 0.8,
    random_probability: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Choose ``ceil(mlm_probability * eligible)`` positions of the batch, drawn without replacement with
    probability proportional to ``weights[token]`` (tokens of weight 0, the special ones, are never chosen), then
    replace each by [MASK] with ``mask_probability``, by a random token with ``random_probability``, else keep it.

    Args:
        input_ids: (B, L) token ids, on any device.
        weights: (V,) from ``token_weights``, on any device.
        generator: draws on its own device (``generator.device``).
    Returns:
        ``(masked_input_ids, labels)``, both (B, L) on ``input_ids.device``; labels hold the original id at chosen
        positions, -100 elsewhere.
    """
    draw_device = generator.device
    flat = input_ids.reshape(-1).to(draw_device)
    position_weights = weights.to(draw_device)[flat].float()
    eligible = int((position_weights > 0).sum())
    labels = torch.full_like(flat, -100)
    if eligible == 0:
        return input_ids.clone(), labels.view_as(input_ids).to(input_ids.device)
    n_chosen = min(eligible, max(1, math.ceil(mlm_probability * eligible)))
    chosen = torch.multinomial(position_weights, n_chosen, replacement=False, generator=generator)
    labels[chosen] = flat[chosen]

    masked = flat.clone()
    action = torch.rand(n_chosen, generator=generator, device=draw_device)
    to_mask = action < mask_probability
    to_random = (action >= mask_probability) & (action < mask_probability + random_probability)
    masked[chosen[to_mask]] = mask_token_id
    random_ids = torch.randint(vocab_size, (int(to_random.sum()),), generator=generator, device=draw_device)
    masked[chosen[to_random]] = random_ids
    return masked.view_as(input_ids).to(input_ids.device), labels.view_as(input_ids).to(input_ids.device)

"""Soft targets from several teachers: their logits combined with fixed or per-sample weights.

Multi-teacher distillation (e.g. CA-MKD, Zhang et al., ICASSP 2022) gives the student one target
built from every teacher; the strategy's logit loss then takes it like a single teacher's logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from autokd.errors import AutokdError


def weighted_logits(teacher_logits: list[torch.Tensor], weights: torch.Tensor) -> torch.Tensor:
    """``sum_k w_k z_k`` over the K teachers, detached; ``weights`` (K,) for every sample or (B, K)
    per sample, normalised to sum to 1 over the teachers."""
    if not teacher_logits:
        raise AutokdError("weighted_logits needs at least one teacher's logits")
    stacked = torch.stack([z.detach() for z in teacher_logits], dim=1)  # (B, K, C)
    w = weights.to(stacked.dtype).to(stacked.device)
    if w.dim() == 1:
        w = w.expand(stacked.shape[0], -1)
    if w.shape != stacked.shape[:2]:
        raise AutokdError(f"weights of shape {tuple(weights.shape)} do not fit {len(teacher_logits)} teachers "
                          f"and a batch of {stacked.shape[0]}")
    w = w / w.sum(dim=1, keepdim=True)
    return (w.unsqueeze(-1) * stacked).sum(dim=1)


def confidence_weights(teacher_logits: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    """CA-MKD's per-sample teacher weights: ``softmax_k(-CE(z_k, y))`` (B, K), so a teacher that is
    more confident in the true class counts more for that sample."""
    ce = torch.stack([F.cross_entropy(z.detach(), labels, reduction="none") for z in teacher_logits], dim=1)
    return torch.softmax(-ce, dim=1)

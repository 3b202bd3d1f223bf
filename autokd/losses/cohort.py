"""Losses among peers trained together (no frozen teacher): deep mutual learning and online
distillation from the cohort's ensemble.

Each takes every member's logits (the shipped student first) and returns one loss per member, in
the same order. The targets are detached: a member learns from the others' predictions, it does
not pull them toward its own (a known defect of some library versions of DML).
"""

from __future__ import annotations

import torch

from autokd.errors import AutokdError
from autokd.losses.logits import kd


def _check_cohort(member_logits: list[torch.Tensor]) -> None:
    if len(member_logits) < 2:
        raise AutokdError(f"a cohort loss needs at least 2 members' logits, got {len(member_logits)}")


def mutual_kl(member_logits: list[torch.Tensor], temperature: float = 1.0) -> list[torch.Tensor]:
    """Deep mutual learning (Zhang et al., CVPR 2018): member m's loss is the mean over the other
    members o of ``KL(softmax(z_o / T) || softmax(z_m / T)) * T**2`` (batch-mean, z_o detached)."""
    _check_cohort(member_logits)
    return [torch.stack([kd(z_m, z_o, temperature) for o, z_o in enumerate(member_logits) if o != m]).mean()
            for m, z_m in enumerate(member_logits)]


def ensemble_kl(member_logits: list[torch.Tensor], temperature: float = 1.0) -> list[torch.Tensor]:
    """Online distillation from the cohort's ensemble (KDCL's naive ensemble, Guo et al., CVPR 2020):
    the target is the mean of all members' logits, detached; member m's loss is
    ``KL(softmax(mean / T) || softmax(z_m / T)) * T**2`` (batch-mean)."""
    _check_cohort(member_logits)
    ensemble = torch.stack([z.detach() for z in member_logits]).mean(0)
    return [kd(z_m, ensemble, temperature) for z_m in member_logits]

"""Feature-map distillation losses on one student/teacher layer pair: FitNet, AT, NST.

Each function takes the student feature first and the teacher feature second, detaches the
teacher itself, and returns a scalar tensor. Maps are 1-D ``(B, C, L)`` or 2-D
``(B, C, H, W)``; FitNet also accepts vectors ``(B, D)``. The caller sums over layers.
"""

from __future__ import annotations

import math
from typing import Tuple

import torch
import torch.nn.functional as F

from autokd.errors import AutokdError


def _shape(t: torch.Tensor) -> Tuple[int, ...]:
    return tuple(t.shape)


def _check_maps(name: str, student: torch.Tensor, teacher: torch.Tensor) -> None:
    """Both tensors must be maps of the same rank (3-D or 4-D) with the same batch size."""
    if student.dim() not in (3, 4) or student.dim() != teacher.dim():
        raise AutokdError(
            f"{name} needs feature maps (B, C, L) or (B, C, H, W) of the same rank; "
            f"got student {_shape(student)} and teacher {_shape(teacher)}"
        )
    if student.shape[0] != teacher.shape[0]:
        raise AutokdError(
            f"{name} needs the same batch size for student and teacher; "
            f"got student {_shape(student)} and teacher {_shape(teacher)}"
        )


def _pool_to_smaller(student: torch.Tensor, teacher: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Adaptive-average-pool both maps to the smaller spatial size, dimension by dimension.

    mdistiller pools the larger of two square maps to the smaller one; taking the minimum per
    spatial dimension is the same for square maps and also covers non-square ones. (Maps that pool to
    one position make at and nst 0: see :func:`one_position`.)
    """
    size = tuple(min(s, t) for s, t in zip(student.shape[2:], teacher.shape[2:]))
    pool = F.adaptive_avg_pool1d if student.dim() == 3 else F.adaptive_avg_pool2d
    if tuple(student.shape[2:]) != size:
        student = pool(student, size)
    if tuple(teacher.shape[2:]) != size:
        teacher = pool(teacher, size)
    return student, teacher


def one_position(student_shape: Tuple[int, ...], teacher_shape: Tuple[int, ...]) -> bool:
    """Whether two maps' per-sample shapes ``(C, *spatial)`` pool to one position: there, normalised over
    positions, at and nst are always 0 with no gradient (the references do the same)."""
    return math.prod(min(s, t) for s, t in zip(student_shape[1:], teacher_shape[1:])) == 1


def fitnet(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """FitNets hint loss (Romero et al., 2015): ``mean((s - t)**2)`` (``nn.MSELoss()``).

    The student feature must already be projected to the teacher's shape by the caller (the
    regressor is part of the model, not of the loss); any rank is accepted.
    """
    if student.shape != teacher.shape:
        raise AutokdError(
            f"fitnet needs the student feature projected to the teacher's shape; "
            f"got student {_shape(student)} and teacher {_shape(teacher)}"
        )
    return F.mse_loss(student, teacher.detach())


def _attention_map(feat: torch.Tensor, p: float) -> torch.Tensor:
    """``normalize(mean_c(|f|**p))`` flattened to (B, positions), L2-normalised per sample (the
    paper's ``|A|**p``; RepDistiller's ``f.pow(p)`` is the same at its p = 2 and NaN or
    sign-cancelling at other p on features that can be negative)."""
    return F.normalize(feat.abs().pow(p).mean(1).reshape(feat.shape[0], -1), dim=1)


def at(student: torch.Tensor, teacher: torch.Tensor, p: float = 2) -> torch.Tensor:
    """Attention transfer (Zagoruyko & Komodakis, ICLR 2017), as RepDistiller / mdistiller.

    ``a(f) = normalize(mean_c(|f|**p).view(B, -1))``; loss = ``mean((a(s) - a(t))**2)`` over
    batch and positions. If the spatial sizes differ, the larger map is adaptive-average
    pooled to the smaller one first (mdistiller). Channel counts may differ.
    """
    _check_maps("at", student, teacher)
    student, teacher = _pool_to_smaller(student, teacher.detach())
    return (_attention_map(student, p) - _attention_map(teacher, p)).pow(2).mean()


def _poly_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B, C_a, C_b) polynomial kernel ``(a_i . b_j)**2`` between channel vectors of a and b."""
    return torch.bmm(a, b.transpose(1, 2)).pow(2)


def nst(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Neural selectivity transfer (Huang & Wang, 2017) with the polynomial kernel, as RepDistiller.

    Each channel is flattened over positions and L2-normalised; with ``k(a, b) = (a . b)**2``
    over all channel pairs, the squared MMD is
    ``mean k(t, t) - 2 mean k(s, t) + mean k(s, s)``. Spatial sizes are pooled to the smaller
    one first; channel counts may differ.
    """
    _check_maps("nst", student, teacher)
    student, teacher = _pool_to_smaller(student, teacher.detach())
    s = F.normalize(student.reshape(student.shape[0], student.shape[1], -1), dim=2)
    t = F.normalize(teacher.reshape(teacher.shape[0], teacher.shape[1], -1), dim=2)
    return _poly_kernel(t, t).mean() - 2 * _poly_kernel(s, t).mean() + _poly_kernel(s, s).mean()

"""Relational distillation losses on a batch of features: SP, RKD, PKT.

These compare how samples relate to each other within a batch, so the student and teacher
features may have any (different) widths; every input is flattened to ``(B, -1)``. Each
function takes the student feature first and the teacher feature second, detaches the teacher
itself, and returns a scalar tensor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from autokd.errors import AutokdError


def _flatten_pair(name: str, student: torch.Tensor, teacher: torch.Tensor):
    if student.dim() < 2 or teacher.dim() < 2 or student.shape[0] != teacher.shape[0]:
        raise AutokdError(
            f"{name} needs batched features with the same batch size; "
            f"got student {tuple(student.shape)} and teacher {tuple(teacher.shape)}"
        )
    return student.reshape(student.shape[0], -1), teacher.detach().reshape(teacher.shape[0], -1)


def sp(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Similarity-preserving KD (Tung & Mori, ICCV 2019), as RepDistiller's ``Similarity``.

    ``G = f f^T`` on ``f = feature.view(B, -1)``, each row L2-normalised;
    loss = ``sum((G_t - G_s)**2) / B**2``.
    """
    s, t = _flatten_pair("sp", student, teacher)
    g_s = F.normalize(s @ s.t(), p=2, dim=1)
    g_t = F.normalize(t @ t.t(), p=2, dim=1)
    batch = s.shape[0]
    return (g_t - g_s).pow(2).sum() / batch**2


def _pairwise_distances(e: torch.Tensor, eps: float) -> torch.Tensor:
    """(B, B) Euclidean distances, squared distances clamped at ``eps``, zero diagonal."""
    sq = e.pow(2).sum(dim=1)
    d2 = (sq.unsqueeze(1) + sq.unsqueeze(0) - 2 * e @ e.t()).clamp(min=eps)
    off_diagonal = 1.0 - torch.eye(e.shape[0], dtype=e.dtype, device=e.device)
    return d2.sqrt() * off_diagonal


def _normalised_distances(e: torch.Tensor, eps: float) -> torch.Tensor:
    d = _pairwise_distances(e, eps)
    return d / d[d > 0].mean()


def _angles(e: torch.Tensor) -> torch.Tensor:
    """Flattened (B*B*B,) cosines of the angles ``e_j - e_i`` vs ``e_k - e_i`` for every anchor i."""
    diff = F.normalize(e.unsqueeze(0) - e.unsqueeze(1), p=2, dim=2)
    return torch.bmm(diff, diff.transpose(1, 2)).reshape(-1)


def rkd(
    student: torch.Tensor,
    teacher: torch.Tensor,
    distance_weight: float = 25.0,
    angle_weight: float = 50.0,
    eps: float = 1e-12,
) -> torch.Tensor:
    """Relational KD (Park et al., CVPR 2019), as RepDistiller's ``RKDLoss``.

    Distance term: pairwise Euclidean distances (squared distances clamped at ``eps``, diagonal
    zero), each divided by the mean of the positive distances; ``smooth_l1(d_s, d_t)``.
    Angle term: for every anchor, cosines between the L2-normalised difference vectors
    (``bmm``); ``smooth_l1(a_s, a_t)``. Returns
    ``distance_weight * distance + angle_weight * angle``. A batch of one sample has no
    relations and gives 0 (still connected to the student's graph).
    """
    s, t = _flatten_pair("rkd", student, teacher)
    if s.shape[0] < 2:
        return s.sum() * 0.0
    loss_d = F.smooth_l1_loss(_normalised_distances(s, eps), _normalised_distances(t, eps))
    loss_a = F.smooth_l1_loss(_angles(s), _angles(t))
    return distance_weight * loss_d + angle_weight * loss_a


def _similarity_distribution(f: torch.Tensor, eps: float) -> torch.Tensor:
    """Rows of ``(cos_sim + 1) / 2`` normalised to sum to 1 (PKT's conditional probabilities)."""
    # the norm's gradient at a zero row is 0 here (sqrt's is infinite: a student's all-zero embedding row made
    # every gradient NaN); its value is RepDistiller's sqrt(sum(f**2))
    f = f / (torch.linalg.vector_norm(f, dim=1, keepdim=True) + eps)
    f = torch.nan_to_num(f, nan=0.0)
    sim = (f @ f.t() + 1.0) / 2.0
    return sim / sim.sum(dim=1, keepdim=True)


def pkt(student: torch.Tensor, teacher: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Probabilistic knowledge transfer (Passalis & Tefas, ECCV 2018), as RepDistiller's ``PKT``.

    Rows are L2-normalised (``x / (||x|| + eps)``, NaNs set to 0), cosine-similarity matrices
    are mapped to ``(x + 1) / 2`` and each row normalised to sum 1, giving P_s and P_t;
    loss = ``mean(P_t * log((P_t + eps) / (P_s + eps)))`` over all B*B entries.
    """
    s, t = _flatten_pair("pkt", student, teacher)
    p_s = _similarity_distribution(s, eps)
    p_t = _similarity_distribution(t, eps)
    return torch.mean(p_t * torch.log((p_t + eps) / (p_s + eps)))

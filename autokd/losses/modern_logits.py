"""Newer logit-level losses: DIST (NeurIPS 2022), TTM / WTTM (ICLR 2024), and logit standardization (CVPR 2024).

Each loss takes the student logits first and the teacher logits second, detaches the teacher
itself, and returns a scalar tensor. :func:`standardize` is a transform, not a loss: the
caller applies it to both logits before any loss that takes it (kd, dkd, dist).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from autokd.errors import AutokdError
from autokd.losses.logits import _check_logits

# Added to the product of norms in DIST's cosine similarity (hunto/DIST_KD ``dist_kd.py``).
_DIST_EPS = 1e-8
# Added to the standard deviation in logit standardization (sunshangquan/logit-standardization-KD ``normalize``).
_STANDARDIZE_EPS = 1e-7


def standardize(logits: torch.Tensor) -> torch.Tensor:
    """Logit standardization (Sun et al., CVPR 2024): a per-sample Z-score over the classes.

    ``(z - mean_c(z)) / (1e-7 + std_c(z))`` with the *unbiased* standard deviation, as the
    reference's ``normalize``. The KD temperature is applied afterwards by the loss (the
    paper's "base temperature"), and KD keeps its ``T**2`` factor.
    """
    if logits.dim() != 2 or logits.shape[1] < 2:
        raise AutokdError(f"logit standardization needs logits (B, num_classes) with at least 2 classes; "
                          f"got {tuple(logits.shape)}")
    mean = logits.mean(dim=1, keepdim=True)
    std = logits.std(dim=1, keepdim=True)  # unbiased (N - 1), as the reference
    return (logits - mean) / (_STANDARDIZE_EPS + std)


def _pearson_rows(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N,) Pearson correlation of each row of ``a`` with the same row of ``b``.

    Both rows are centred, then ``<a, b> / (|a| |b| + 1e-8)``: a constant row gives 0, not NaN.
    """
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    return (a * b).sum(dim=1) / (a.norm(dim=1) * b.norm(dim=1) + _DIST_EPS)


def dist(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    temperature: float = 4.0,
    beta: float = 1.0,
    gamma: float = 1.0,
) -> torch.Tensor:
    """DIST (Huang et al., NeurIPS 2022), as hunto/DIST_KD's ``DIST`` (classification ``dist_kd.py``).

    With ``y = softmax(z / T)`` for both models, (B, C):

    - inter-class relation = ``1 - mean_b pearson(y_s[b, :], y_t[b, :])`` (each sample's
      correlation across the classes, averaged over the batch);
    - intra-class relation = ``1 - mean_c pearson(y_s[:, c], y_t[:, c])`` (the same on the
      transposed matrices: each class's correlation across the batch, averaged over classes);

    loss = ``T**2 * (beta * inter + gamma * intra)``. Pearson is the cosine of the centred
    vectors with 1e-8 added to the product of norms, as the reference. The intra-class term
    needs a batch of at least 2 to carry information (a batch of 1 gives ``intra = 1``).
    """
    _check_logits(student_logits, teacher_logits)
    y_s = F.softmax(student_logits / temperature, dim=1)
    y_t = F.softmax(teacher_logits.detach() / temperature, dim=1)
    inter = 1.0 - _pearson_rows(y_s, y_t).mean()
    intra = 1.0 - _pearson_rows(y_s.t(), y_t.t()).mean()
    return temperature**2 * (beta * inter + gamma * intra)


def _ttm_parts(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float):
    """Per-sample KL(transformed teacher || student) and WTTM's weight ``sum_c p_t**l``, with l = 1/T.

    ``softmax(t)**l`` renormalised is exactly ``softmax(t / T)``, so the transformed teacher is
    computed that way (no underflow of ``p**l``); the normaliser is ``exp(logsumexp(l * log p_t))``.
    """
    _check_logits(student_logits, teacher_logits)
    teacher_logits = teacher_logits.detach()
    power = 1.0 / temperature
    p_t = F.softmax(teacher_logits * power, dim=1)
    log_p_s = F.log_softmax(student_logits, dim=1)  # no temperature on the student
    kl = F.kl_div(log_p_s, p_t, reduction="none").sum(dim=1)
    norm = torch.logsumexp(power * F.log_softmax(teacher_logits, dim=1), dim=1).exp()
    return kl, norm


def ttm(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 10.0) -> torch.Tensor:
    """Transformed teacher matching (Zheng & Yang, ICLR 2024), as the authors' ``TTM`` (zkxufo/TTM).

    The teacher's probabilities are power-transformed with exponent ``l = 1 / temperature``
    (the paper's gamma, the reference's ``ttm_l``) and renormalised:
    ``p_t' = softmax(t)**l / sum_c softmax(t)_c**l``. The student gets **no** temperature:
    loss = ``mean_b KL(p_t' || softmax(s))``, the KL summed over classes. No ``T**2`` factor.
    """
    kl, _ = _ttm_parts(student_logits, teacher_logits, temperature)
    return kl.mean()


def wttm(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 5.0) -> torch.Tensor:
    """Weighted TTM (Zheng & Yang, ICLR 2024), as the authors' ``WTTM`` (zkxufo/TTM).

    :func:`ttm`'s per-sample KL weighted by the power transform's normaliser
    ``w_b = sum_c softmax(t_b)_c**l`` (``l = 1 / temperature``), which is larger for smoother
    teacher outputs: loss = ``mean_b w_b * KL_b``. The weights are **not** normalised over the
    batch, as the reference.
    """
    kl, norm = _ttm_parts(student_logits, teacher_logits, temperature)
    return (norm * kl).mean()

"""Logit-level distillation losses: KD (Hinton et al., 2015) and DKD (Zhao et al., CVPR 2022).

Each function takes the student logits first and the teacher logits second, detaches the
teacher itself, and returns a scalar tensor averaged over the batch.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from autokd.errors import AutokdError

def _check_logits(student: torch.Tensor, teacher: torch.Tensor) -> None:
    if student.dim() != 2 or student.shape != teacher.shape:
        raise AutokdError(
            "logit losses need student and teacher logits of the same shape (B, num_classes); "
            f"got student {tuple(student.shape)} and teacher {tuple(teacher.shape)}"
        )


def kd(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 4.0) -> torch.Tensor:
    """Vanilla knowledge distillation (Hinton et al., 2015).

    ``KL(softmax(t / T) || softmax(s / T)) * T**2``, summed over classes and averaged over the
    batch, i.e. ``kl_div(log_softmax(s/T), softmax(t/T), reduction='sum') * T**2 / B`` as in
    RepDistiller's ``DistillKL``. The ``T**2`` keeps the gradient scale independent of ``T``.
    """
    _check_logits(student_logits, teacher_logits)
    teacher_logits = teacher_logits.detach()
    log_p_s = F.log_softmax(student_logits / temperature, dim=1)
    p_t = F.softmax(teacher_logits / temperature, dim=1)
    batch = student_logits.shape[0]
    return F.kl_div(log_p_s, p_t, reduction="sum") * temperature**2 / batch


def _binary_log_probs(log_probs: torch.Tensor, gt_mask: torch.Tensor) -> torch.Tensor:
    """(B, 2) log-probabilities of [target class, all other classes] from (B, C) log-probs.

    Computed with logsumexp rather than ``log(sum(p))`` so a vanishing share stays finite.
    """
    neg_inf = torch.finfo(log_probs.dtype).min
    log_target = log_probs.masked_fill(~gt_mask, neg_inf).logsumexp(dim=1, keepdim=True)
    log_other = log_probs.masked_fill(gt_mask, neg_inf).logsumexp(dim=1, keepdim=True)
    return torch.cat([log_target, log_other], dim=1)


def dkd(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    target: torch.Tensor,
    alpha: float = 1.0,
    beta: float = 8.0,
    temperature: float = 4.0,
) -> torch.Tensor:
    """Decoupled knowledge distillation (Zhao et al., CVPR 2022), as mdistiller's ``dkd_loss``.

    With ``p = softmax(logits / T)`` and ``b = [p_target, 1 - p_target]``:

    - TCKD = ``KL(b_t || b_s)`` (binary target / non-target KL);
    - NCKD = ``KL(q_t || q_s)`` with ``q`` the softmax of ``logits / T`` over the non-target
      classes only (mdistiller subtracts 1000 from the target logit instead, which is the same
      unless logit gaps divided by T approach 1000: then its target share stops vanishing);

    loss = ``(alpha * TCKD + beta * NCKD) * T**2``, each KL summed over classes and averaged
    over the batch. The warm-up factor is *not* applied here: multiply by
    :func:`dkd_warmup`.
    """
    _check_logits(student_logits, teacher_logits)
    target = target.reshape(-1)
    if target.dtype.is_floating_point or target.dtype.is_complex or target.dtype == torch.bool:
        raise AutokdError(f"dkd needs integer class indices as targets, got a {target.dtype} tensor")
    if target.shape[0] != student_logits.shape[0]:
        raise AutokdError(
            f"dkd needs one target per sample: got {target.shape[0]} targets "
            f"for a batch of {student_logits.shape[0]}"
        )
    teacher_logits = teacher_logits.detach()
    batch, classes = student_logits.shape
    if target.numel() and not 0 <= int(target.min()) <= int(target.max()) < classes:
        raise AutokdError(f"dkd's targets must be class indices from 0 to {classes - 1}, "
                          f"got {int(target.min())} to {int(target.max())}")
    gt_mask = torch.zeros_like(student_logits, dtype=torch.bool).scatter_(1, target.unsqueeze(1), True)

    s_scaled = student_logits / temperature
    t_scaled = teacher_logits / temperature

    # Target-class KD: binary [target, rest] distributions.
    log_b_s = _binary_log_probs(F.log_softmax(s_scaled, dim=1), gt_mask)
    b_t = _binary_log_probs(F.log_softmax(t_scaled, dim=1), gt_mask).exp()
    tckd = F.kl_div(log_b_s, b_t, reduction="sum") * temperature**2 / batch

    # Non-target-class KD: the softmax over the other classes, the target column left out.
    log_q_s = F.log_softmax(s_scaled[~gt_mask].reshape(batch, classes - 1), dim=1)
    q_t = F.softmax(t_scaled[~gt_mask].reshape(batch, classes - 1), dim=1)
    nckd = F.kl_div(log_q_s, q_t, reduction="sum") * temperature**2 / batch

    return alpha * tckd + beta * nckd


def dkd_warmup(epoch: Optional[float], warmup_epochs: float) -> float:
    """DKD's linear warm-up factor: ``min(epoch / warmup_epochs, 1.0)``; 1.0 if ``warmup_epochs <= 0``.

    ``epoch`` counts from 1, as in mdistiller (so the first epoch already gets
    ``1 / warmup_epochs``). Callers multiply the :func:`dkd` loss by this factor. ``epoch``
    None (not known) is an error unless there is no warm-up.
    """
    if warmup_epochs <= 0:
        return 1.0
    if epoch is not None and (isinstance(epoch, bool) or not isinstance(epoch, (int, float)) or not epoch >= 1):
        raise AutokdError(f"DKD's warm-up needs the epoch counting from 1, got {epoch!r}")  # (0, -5, NaN, '3')
    if epoch is None:
        raise AutokdError(f"DKD's warm-up ({warmup_epochs:g} epochs) needs each batch's epoch, counting from 1 "
                          "(Distiller(...)(x, y, epoch=...)); without it DKD would get 1/warmup of its weight "
                          "for the whole run")
    return min(epoch / warmup_epochs, 1.0)

"""Contrastive representation distillation (Tian et al., ICLR 2020), after RepDistiller's ``crd/``.

:class:`CRDMemory` holds the state CRD needs across steps: the two linear embedding heads
(student and teacher penultimate features -> ``feat_dim``, then L2 norm), one memory bank of
past embeddings per side, and the NCE normalisation constants. :func:`crd` is the loss.

Both directions are contrasted, as in RepDistiller:

- student anchor: the student embedding of sample i against the *teacher* bank rows
  ``[i, negatives...]``;
- teacher anchor: the teacher embedding of sample i against the *student* bank rows.

Scores are ``exp(<bank_row, anchor> / nce_t) / Z`` with ``Z = mean(exp(...)) * num_samples``
estimated once on the first batch per direction. The NCE loss with noise ``P_n = 1 / N`` and
``m`` negatives is ``-[log(P_pos / (P_pos + m P_n)) + sum_neg log(m P_n / (P_neg + m P_n))]``,
averaged over the batch.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from autokd.errors import AutokdError

# Added to the NCE denominators, as RepDistiller's ``ContrastLoss``.
_NCE_EPS = 1e-7


class CRDMemory(nn.Module):
    """Embedding heads, memory banks and NCE constants for :func:`crd`.

    Args:
        student_dim: width of the (flattened) student penultimate feature.
        teacher_dim: width of the (flattened) teacher penultimate feature.
        num_samples: size of the training set; each bank has one row per sample.
        feat_dim: width of the shared embedding space.
        num_negatives: negatives per positive, capped at ``num_samples - 1``.
        nce_t: temperature of the exponential scores.
        momentum: bank update ``row <- normalize(momentum * row + (1 - momentum) * embed)``.

    The banks start uniform in ``[-stdv, stdv]`` with ``stdv = 1 / sqrt(feat_dim / 3)``, as
    RepDistiller's ``ContrastMemory``. The heads are trainable parameters: put this module's
    parameters in the optimiser alongside the student's.
    """

    def __init__(
        self,
        student_dim: int,
        teacher_dim: int,
        num_samples: int,
        feat_dim: int = 128,
        num_negatives: int = 4096,
        nce_t: float = 0.07,
        momentum: float = 0.5,
    ):
        super().__init__()
        if num_samples < 2:
            raise AutokdError(f"CRD needs at least 2 training samples to draw negatives; got num_samples={num_samples}")
        if not 0.0 <= momentum <= 1.0:
            raise AutokdError(f"CRD momentum must lie in [0, 1]; got {momentum}")
        self.num_samples = int(num_samples)
        self.feat_dim = int(feat_dim)
        self.num_negatives = int(max(1, min(num_negatives, num_samples - 1)))
        self.nce_t = float(nce_t)
        self.momentum = float(momentum)

        self.embed_student = nn.Linear(student_dim, feat_dim)
        self.embed_teacher = nn.Linear(teacher_dim, feat_dim)

        stdv = 1.0 / math.sqrt(feat_dim / 3)
        self.register_buffer("memory_student", torch.rand(num_samples, feat_dim) * 2 * stdv - stdv)
        self.register_buffer("memory_teacher", torch.rand(num_samples, feat_dim) * 2 * stdv - stdv)
        # NCE normalisation constants; negative means "not estimated yet".
        self.register_buffer("z_student", torch.tensor(-1.0))
        self.register_buffer("z_teacher", torch.tensor(-1.0))

    def embed(self, student_feat: torch.Tensor, teacher_feat: torch.Tensor):
        """Project both (flattened) features to ``feat_dim`` and L2-normalise them.

        The teacher feature is detached: gradients reach the teacher head, not the teacher.
        """
        s = self.embed_student(student_feat.reshape(student_feat.shape[0], -1))
        t = self.embed_teacher(teacher_feat.detach().reshape(teacher_feat.shape[0], -1))
        return F.normalize(s, p=2, dim=1), F.normalize(t, p=2, dim=1)

    def sample_indices(self, index: torch.Tensor) -> torch.Tensor:
        """(B, K + 1) bank rows: column 0 the positive ``index``, then K uniform negatives.

        Negatives are drawn uniformly from the other ``num_samples - 1`` samples, so a row
        never contains its own positive as a negative.
        """
        draws = torch.randint(
            0, self.num_samples - 1, (index.shape[0], self.num_negatives), device=index.device
        )
        negatives = draws + (draws >= index.unsqueeze(1)).long()  # skip the positive
        return torch.cat([index.unsqueeze(1), negatives], dim=1)

    def _scores(self, bank: torch.Tensor, anchor: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """(B, K + 1) ``exp(<bank[idx], anchor> / nce_t)``; the bank is a constant."""
        rows = bank.index_select(0, idx.reshape(-1)).view(idx.shape[0], idx.shape[1], -1)
        return torch.exp(torch.bmm(rows, anchor.unsqueeze(2)).squeeze(2) / self.nce_t)

    def _normalise(self, scores: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Divide by Z, estimating Z as ``mean(scores) * num_samples`` the first time."""
        if z.item() < 0:
            z.fill_(scores.detach().mean().item() * self.num_samples)
        return scores / z.item()

    @torch.no_grad()
    def update(self, index: torch.Tensor, student_embed: torch.Tensor, teacher_embed: torch.Tensor) -> None:
        """Momentum update of the banks' rows ``index``, re-normalised to unit length."""
        for bank, embed in ((self.memory_student, student_embed), (self.memory_teacher, teacher_embed)):
            rows = bank.index_select(0, index) * self.momentum + embed.detach() * (1.0 - self.momentum)
            bank.index_copy_(0, index, F.normalize(rows, p=2, dim=1))


def _nce_loss(scores: torch.Tensor, num_samples: int) -> torch.Tensor:
    """RepDistiller's ``ContrastLoss``: NCE over column 0 (positive) and the rest (negatives)."""
    m = scores.shape[1] - 1
    noise = m / float(num_samples)  # m * P_n
    log_d1 = torch.log(scores[:, 0] / (scores[:, 0] + noise + _NCE_EPS))
    log_d0 = torch.log(noise / (scores[:, 1:] + noise + _NCE_EPS))
    return -(log_d1.sum() + log_d0.sum()) / scores.shape[0]


def crd(
    student_embed: torch.Tensor,
    teacher_embed: torch.Tensor,
    index: torch.Tensor,
    memory: CRDMemory,
    contrast_idx: Optional[torch.Tensor] = None,
    update: bool = True,
) -> torch.Tensor:
    """CRD loss: NCE with the student as anchor plus NCE with the teacher as anchor.

    Args:
        student_embed: student penultimate features (B, student_dim) (flattened if not 2-D).
        teacher_embed: teacher penultimate features (B, teacher_dim); detached here.
        index: (B,) LongTensor, the samples' positions in the training set.
        memory: the :class:`CRDMemory` holding heads, banks and NCE constants.
        contrast_idx: optional (B, K + 1) bank rows, column 0 the positive; if omitted,
            ``memory.num_negatives`` negatives per sample are drawn uniformly.
        update: write this batch's embeddings into the banks (False to measure a loss on
            samples that are not the training split's, e.g. in evaluation).

    Returns the summed batch-mean NCE losses, then (with ``update``) updates both banks with momentum.
    Gradients reach the student feature and both heads, never the teacher feature.
    """
    if index.dtype.is_floating_point or index.dtype.is_complex or index.dtype == torch.bool:
        raise AutokdError(f"crd's index must hold integer sample positions, got a {index.dtype} tensor")
    index = index.reshape(-1).long()
    if index.numel() and not 0 <= int(index.min()) <= int(index.max()) < memory.num_samples:
        raise AutokdError(f"crd's index must be positions in the training split, 0 to {memory.num_samples - 1} "
                          f"(its memory bank's num_train_samples), got {int(index.min())} to {int(index.max())}")
    batch = student_embed.shape[0]
    if teacher_embed.shape[0] != batch or index.shape[0] != batch:
        raise AutokdError(
            f"crd needs the same batch size everywhere; got student {tuple(student_embed.shape)}, "
            f"teacher {tuple(teacher_embed.shape)} and index {tuple(index.shape)}"
        )
    if contrast_idx is None:
        contrast_idx = memory.sample_indices(index)
    elif contrast_idx.dim() != 2 or contrast_idx.shape[0] != batch or contrast_idx.shape[1] < 2:
        raise AutokdError(
            f"crd contrast_idx must be (B, K + 1) with B={batch} and K >= 1; got {tuple(contrast_idx.shape)}"
        )
    contrast_idx = contrast_idx.long()

    s, t = memory.embed(student_embed, teacher_embed)
    # Student anchor against the teacher bank, teacher anchor against the student bank.
    scores_s = memory._normalise(memory._scores(memory.memory_teacher, s, contrast_idx), memory.z_student)
    scores_t = memory._normalise(memory._scores(memory.memory_student, t, contrast_idx), memory.z_teacher)
    loss = _nce_loss(scores_s, memory.num_samples) + _nce_loss(scores_t, memory.num_samples)

    if update:
        memory.update(index, s, t)
    return loss

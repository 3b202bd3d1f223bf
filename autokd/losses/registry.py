"""Registries of the distillation losses and their metadata, by where they apply.

- ``LOGIT_LOSSES``: on the final logits (kd, dkd);
- ``PAIR_LOSSES``: on one teacher/student intermediate layer pair (fitnet, at, nst, sp);
- ``EMBEDDING_LOSSES``: on the penultimate (embedding) features (sp, rkd, pkt, crd).

``default_weight`` is the published loss scale (RepDistiller / mdistiller; kd 0.9 with CE
0.1 as mdistiller's KD config, dkd 1.0 since alpha/beta already scale it); ``params`` are
the tunable hyper-parameters with their published defaults. For ``crd`` the params are the
:class:`~autokd.losses.crd.CRDMemory` constructor arguments, and for ``dkd`` ``warmup`` is
applied by the caller through :func:`~autokd.losses.logits.dkd_warmup`, not passed to ``dkd``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict

from autokd.losses.crd import crd
from autokd.losses.features import at, fitnet, nst
from autokd.losses.logits import dkd, kd
from autokd.losses.relations import pkt, rkd, sp

LEVELS = ("logit", "pair", "embedding")


@dataclass(frozen=True)
class LossInfo:
    """One registered loss: its function, where it applies and how it is usually weighted."""

    name: str
    fn: Callable
    level: str  # "logit" | "pair" | "embedding"
    default_weight: float
    params: dict = field(default_factory=dict)
    needs_projector: bool = False
    description: str = ""
    # allowed values of params: name -> (low, high, whole number?); both ends included
    limits: dict = field(default_factory=dict)


LOGIT_LOSSES: Dict[str, LossInfo] = {
    "kd": LossInfo(
        name="kd", fn=kd, level="logit", default_weight=0.9,
        params={"temperature": 4.0},
        description="Hinton KD: temperature-softened KL(teacher || student) * T^2.",
    ),
    "dkd": LossInfo(
        name="dkd", fn=dkd, level="logit", default_weight=1.0,
        params={"alpha": 1.0, "beta": 8.0, "temperature": 4.0, "warmup": 20},
        limits={"alpha": (0.0, 1e4, False), "beta": (0.0, 1e4, False), "warmup": (0, 100_000, True)},
        description="Decoupled KD: alpha * target-class KL + beta * non-target-class KL (CVPR 2022).",
    ),
}

PAIR_LOSSES: Dict[str, LossInfo] = {
    "fitnet": LossInfo(
        name="fitnet", fn=fitnet, level="pair", default_weight=100.0,
        params={}, needs_projector=True,
        description="FitNets hint: MSE between the projected student feature and the teacher's.",
    ),
    "at": LossInfo(
        name="at", fn=at, level="pair", default_weight=1000.0,
        params={"p": 2}, limits={"p": (0.5, 16.0, False)},
        description="Attention transfer: MSE between normalised spatial attention maps.",
    ),
    "nst": LossInfo(
        name="nst", fn=nst, level="pair", default_weight=50.0,
        params={},
        description="Neural selectivity transfer: polynomial-kernel MMD between channel activations.",
    ),
    "sp": LossInfo(
        name="sp", fn=sp, level="pair", default_weight=3000.0,
        params={},
        description="Similarity-preserving: match the row-normalised batch similarity matrices.",
    ),
}

EMBEDDING_LOSSES: Dict[str, LossInfo] = {
    "sp": LossInfo(
        name="sp", fn=sp, level="embedding", default_weight=3000.0,
        params={},
        description="Similarity-preserving: match the row-normalised batch similarity matrices.",
    ),
    "rkd": LossInfo(
        name="rkd", fn=rkd, level="embedding", default_weight=1.0,
        params={"distance_weight": 25.0, "angle_weight": 50.0},
        limits={"distance_weight": (0.0, 1e6, False), "angle_weight": (0.0, 1e6, False)},
        description="Relational KD: match normalised pairwise distances and triplet angles.",
    ),
    "pkt": LossInfo(
        name="pkt", fn=pkt, level="embedding", default_weight=30000.0,
        params={},
        description="Probabilistic KT: KL between cosine-similarity conditional distributions.",
    ),
    "crd": LossInfo(
        name="crd", fn=crd, level="embedding", default_weight=0.8,
        params={"feat_dim": 128, "num_negatives": 4096, "nce_t": 0.07, "momentum": 0.5},
        # the memory banks hold num_samples x feat_dim; a batch gathers batch x num_negatives x feat_dim
        limits={"feat_dim": (1, 4096, True), "num_negatives": (1, 65_536, True), "nce_t": (1e-3, 100.0, False),
                "momentum": (0.0, 1.0, False)},
        description="Contrastive representation distillation: two-way NCE against memory banks.",
    ),
}

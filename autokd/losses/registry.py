"""Registries of the distillation losses and their metadata, by where they apply.

- ``LOGIT_LOSSES``: on the final logits (kd, dkd, dist, ttm, wttm);
- ``PAIR_LOSSES``: on one teacher/student intermediate layer pair (fitnet, at, nst, sp);
- ``EMBEDDING_LOSSES``: on the penultimate (embedding) features (sp, rkd, pkt, crd).

``default_weight`` is the published loss scale (RepDistiller / mdistiller); for a logit loss it
is the strategy ``alpha`` (the logit loss's share, CE gets ``1 - alpha``) that keeps the
published ratio of the CE and KD weights (kd: CE 0.1, KD 0.9). ``params`` are the tunable
hyper-parameters with their published defaults. For ``crd`` the params are the
:class:`~autokd.losses.crd.CRDMemory` constructor arguments, and for ``dkd`` ``warmup`` is
applied by its ``term`` through :func:`~autokd.losses.logits.dkd_warmup`, not passed to ``dkd``.

A logit loss is called through :meth:`LossInfo.apply` (its ``term``), so the caller never
branches on its name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, Optional

import torch

from autokd.losses.crd import crd
from autokd.losses.features import at, fitnet, nst
from autokd.losses.logits import dkd, dkd_warmup, kd
from autokd.losses.modern_logits import dist, ttm, wttm
from autokd.losses.relations import pkt, rkd, sp

LEVELS = ("logit", "pair", "embedding")

# How a logit loss is computed from one batch: term(student_logits, teacher_logits, target,
# temperature, epoch, params) -> scalar, with params the registry defaults overridden by the
# strategy's logit_params (temperature left out: the strategy's own rules).
LogitTerm = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float, float, dict], torch.Tensor]


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
    # logit losses only: the uniform call (see LogitTerm); None elsewhere
    term: Optional[LogitTerm] = None
    # logit losses only: may run on standardized logits (the strategy's logit_standardization)
    standardizable: bool = False
    # the range a search space should explore for this loss's own params: name -> (low, high, log);
    # the temperature is searched by the space itself, never here
    searched: dict = field(default_factory=dict)
    # params whose default follows the run's length: name -> its share of the epochs (at least 1)
    per_length: dict = field(default_factory=dict)
    # pair losses only: compares maps over their positions (0 where they pool to one: features.one_position)
    needs_positions: bool = False

    def length_defaults(self, epochs: int) -> dict:
        """The :attr:`per_length` params for a run of ``epochs`` epochs."""
        return {name: max(1, round(share * epochs)) for name, share in self.per_length.items()}

    def apply(self, student, teacher, target, temperature: float, epoch: Optional[float] = 1,
              params: Optional[dict] = None):
        """The logit loss on one batch: registry defaults, then ``params``, the strategy's ``temperature``."""
        if self.term is None:
            raise TypeError(f"{self.name!r} is a {self.level} loss; only logit losses have a term")
        merged = {k: v for k, v in {**self.params, **(params or {})}.items() if k != "temperature"}
        return self.term(student, teacher, target, temperature, epoch, merged)


def _kd_term(student, teacher, target, temperature, epoch, params):
    return kd(student, teacher, temperature=temperature, **params)


def _dkd_term(student, teacher, target, temperature, epoch, params):
    params = dict(params)
    warmup = params.pop("warmup", 0)
    return dkd_warmup(epoch, warmup) * dkd(student, teacher, target, temperature=temperature, **params)


def _teacher_only(fn: Callable) -> LogitTerm:
    """The term of a loss that needs neither the labels nor the epoch: ``fn(s, t, temperature=T, **params)``."""
    def term(student, teacher, target, temperature, epoch, params):
        return fn(student, teacher, temperature=temperature, **params)

    term.__name__ = f"{fn.__name__}_term"
    return term


LOGIT_LOSSES: Dict[str, LossInfo] = {
    "kd": LossInfo(
        name="kd", fn=kd, level="logit", default_weight=0.9,
        params={"temperature": 4.0}, term=_kd_term, standardizable=True,
        description="Hinton KD: temperature-softened KL(teacher || student) * T^2.",
    ),
    "dkd": LossInfo(
        # mdistiller's CIFAR-100 DKD: CE 1, DKD 1 (alpha 1, beta 8, T 4, warm-up 20 of 240 epochs) -> alpha 0.5
        name="dkd", fn=dkd, level="logit", default_weight=0.5,
        params={"alpha": 1.0, "beta": 8.0, "temperature": 4.0, "warmup": 20},
        limits={"alpha": (0.0, 1e4, False), "beta": (0.0, 1e4, False), "warmup": (0, 100_000, True)},
        term=_dkd_term, standardizable=True,
        searched={"beta": (1.0, 16.0, True)},  # the DKD paper tunes beta (2 / 6 / 8 per pair), alpha stays 1
        per_length={"warmup": 1 / 12},  # 20 of 240 epochs: a strategy that does not set it warms up over 1/12
        description="Decoupled KD: alpha * target-class KL + beta * non-target-class KL (CVPR 2022).",
    ),
    "dist": LossInfo(
        # hunto/image_classification_sota configs/strategies/distill/dist_cifar.yaml: kd dist_t4, i.e.
        # DIST(beta=1, gamma=1, tau=4), ori_loss_weight 1, kd_loss_weight 2 -> alpha 2/3
        name="dist", fn=dist, level="logit", default_weight=2 / 3,
        params={"temperature": 4.0, "beta": 1.0, "gamma": 1.0},
        limits={"beta": (0.0, 1e4, False), "gamma": (0.0, 1e4, False)},
        term=_teacher_only(dist), standardizable=True,
        searched={"beta": (0.5, 4.0, True), "gamma": (0.5, 4.0, True)},
        description="DIST: inter- and intra-class Pearson relations of softened predictions * T^2 (NeurIPS 2022).",
    ),
    "ttm": LossInfo(
        # zkxufo/TTM README: --distill ttm --ttm_l 0.1 -r 1 -b 45 (vgg13 -> vgg8): l = 1/T = 0.1, CE 1 : TTM 45
        name="ttm", fn=ttm, level="logit", default_weight=45 / 46,
        params={"temperature": 10.0}, term=_teacher_only(ttm), standardizable=False,
        description="Transformed teacher matching: KL(teacher^(1/T) renormalised || student at T=1) (ICLR 2024).",
    ),
    "wttm": LossInfo(
        # zkxufo/TTM README (WTTM+CRD): --add wttm --ttm_l 0.2 -a 4, CE 1: l = 1/T = 0.2, CE 1 : WTTM 4
        name="wttm", fn=wttm, level="logit", default_weight=0.8,
        params={"temperature": 5.0}, term=_teacher_only(wttm), standardizable=False,
        description="Weighted TTM: TTM's per-sample KL weighted by sum_c p_t^(1/T) (ICLR 2024).",
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
        params={"p": 2}, limits={"p": (0.5, 16.0, False)}, needs_positions=True,
        description="Attention transfer: MSE between normalised spatial attention maps.",
    ),
    "nst": LossInfo(
        name="nst", fn=nst, level="pair", default_weight=50.0,
        params={}, needs_positions=True,
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

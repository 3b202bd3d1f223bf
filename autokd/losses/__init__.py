"""Distillation losses: one pure function per loss, plus the registry the rest of autokd uses.

Every function takes the student tensor first and the teacher tensor second, detaches the
teacher itself (gradients reach the student only) and returns a scalar tensor. Per-layer
losses take one layer pair; the caller sums over layers and applies the loss weight.
Importing this package loads torch and nothing heavier.
"""

from autokd.losses.cohort import ensemble_kl, mutual_kl
from autokd.losses.crd import CRDMemory, crd
from autokd.losses.features import at, fitnet, nst, one_position
from autokd.losses.logits import dkd, dkd_warmup, kd
from autokd.losses.modern_logits import dist, standardize, ttm, wttm
from autokd.losses.registry import (
    EMBEDDING_LOSSES,
    LEVELS,
    LOGIT_LOSSES,
    PAIR_LOSSES,
    LossInfo,
)
from autokd.losses.relations import pkt, rkd, sp
from autokd.losses.teachers import confidence_weights, weighted_logits

__all__ = [
    "kd", "dkd", "dkd_warmup", "dist", "ttm", "wttm", "standardize",
    "fitnet", "at", "nst", "one_position",
    "sp", "rkd", "pkt",
    "crd", "CRDMemory",
    "mutual_kl", "ensemble_kl", "weighted_logits", "confidence_weights",
    "LossInfo", "LOGIT_LOSSES", "PAIR_LOSSES", "EMBEDDING_LOSSES", "LEVELS",
]

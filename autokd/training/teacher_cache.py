"""Teacher outputs computed once over the training split and reused by every student run.

Valid only while the training inputs are fixed: with augmentation on, every epoch sees
different inputs, so the teacher must run on the fly (:func:`can_cache` says which).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import nn

from autokd.models.taps import FeatureTaps
from autokd.training.distiller import TeacherOutputs


@dataclass
class TeacherCache:
    """Teacher logits and tapped features for every sample of one split, indexed by position."""

    logits: torch.Tensor
    features: dict[str, torch.Tensor]

    def lookup(self, index: torch.Tensor) -> TeacherOutputs:
        return TeacherOutputs(
            logits=self.logits[index], features={p: f[index] for p, f in self.features.items()}
        )

    def subset(self, paths: Sequence[str]) -> "TeacherCache":
        """The same cache restricted to ``paths`` (cheap: no copies)."""
        return TeacherCache(self.logits, {p: self.features[p] for p in paths})

    def to(self, device) -> "TeacherCache":
        return TeacherCache(self.logits.to(device), {p: f.to(device) for p, f in self.features.items()})


@torch.no_grad()
def teacher_logits(teacher: nn.Module, cache: Optional[TeacherCache], x: torch.Tensor,
                   index: Optional[torch.Tensor]) -> torch.Tensor:
    """``teacher``'s logits for a batch: looked up in ``cache`` (its outputs over the training split)
    by the batch's positions when there are both, else computed, without gradients."""
    if cache is not None and index is not None:
        return cache.logits[index.to(cache.logits.device)]
    return teacher(x)


def can_cache(data) -> bool:
    """Cached outputs are exact only when the training inputs never change (no augmentation)."""
    return not data.augment


def memory_budget(device) -> int:
    """The most bytes a teacher cache may take: a quarter of the memory it lives in (the machine's,
    or the GPU's). Past it the teacher runs with each batch instead of an out-of-memory kill."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory // 4
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4


@torch.no_grad()
def compute_teacher_cache(
    teacher: nn.Module, data, paths: Sequence[str], device, batch_size: int = 1024,
    max_bytes: Optional[int] = None,
) -> Optional[TeacherCache]:
    """Run the teacher (eval mode) once over ``data.train``, keeping logits and ``paths`` features;
    None when they would take more than ``max_bytes`` (found from the first batch, before the rest)."""
    if not can_cache(data):
        raise ValueError("teacher outputs cannot be cached for an augmented training split")
    was_training = teacher.training
    teacher.eval()
    out: list[torch.Tensor] = []  # the logits, then each path's features, over the whole split
    start, n = 0, len(data.train)
    try:
        with FeatureTaps(teacher, list(paths)) as taps:
            for _, x, _ in data.batches("train", batch_size, shuffle=False, device=device):
                taps.clear()
                got = [teacher(x), *(taps.outputs[p] for p in paths)]
                if not out:  # allocated once and filled in place: no second copy at the end
                    if max_bytes is not None and sum(t[0].numel() * t.element_size() for t in got) * n > max_bytes:
                        return None
                    out = [t.new_empty((n, *t.shape[1:])) for t in got]
                for whole, t in zip(out, got):
                    whole[start:start + len(t)] = t
                start += len(x)
    finally:
        teacher.train(was_training)
    return TeacherCache(out[0], dict(zip(paths, out[1:])))


def cache_size(cache: TeacherCache) -> int:
    """The bytes ``cache`` holds."""
    return sum(t.numel() * t.element_size() for t in [cache.logits, *cache.features.values()])

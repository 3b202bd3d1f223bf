"""One student distilled from one frozen model: the step every scheme is made of.

``distill`` builds the student (seeded), wraps it with its teacher in a :class:`Distiller` and
trains it with ``fit``; the teacher may be the task's teacher or any frozen model (an earlier
born-again generation). Schemes compose these steps; ``fit`` knows nothing of schemes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Collection, Optional

import torch
from torch import nn

from autokd.config.strategy import Recipe, Strategy
from autokd.formatting import format_bytes
from autokd.models.registry import build_model
from autokd.training.distiller import Distiller
from autokd.training.fit import EpochStats, fit
from autokd.training.shipping import start_student
from autokd.training.teacher_cache import TeacherCache, cache_size, can_cache, compute_teacher_cache, memory_budget


@dataclass
class Trained:
    """What a scheme hands back: the model that is shipped and evaluated, and what it cost."""

    model: nn.Module
    val_acc: float
    history: list[EpochStats] = field(default_factory=list)
    steps: int = 0  # model training steps: batches x models trained, every stage included


def build_student(prepared, seed: int, model: Optional[str] = None, kwargs: Optional[dict] = None,
                  strategy: Optional[Strategy] = None) -> nn.Module:
    """The task's student (or ``model`` with ``kwargs``), seeded, on the task's device; with
    ``strategy`` (and no ``model``) the student that strategy distils (its kwargs, compression)."""
    data, spec = prepared.data, prepared.task.student
    if model is None and strategy is not None:
        return start_student(prepared, strategy, seed)
    if seed is not None:
        torch.manual_seed(seed)
    name, args = (model, kwargs or {}) if model is not None else (spec.model, spec.kwargs)
    return build_model(name, args, data.num_classes, data.input_shape).to(prepared.device)


def build_distiller(prepared, strategy: Strategy, seed: int, teacher: Optional[nn.Module] = None,
                    model: Optional[str] = None, kwargs: Optional[dict] = None,
                    student: Optional[nn.Module] = None) -> Distiller:
    """``student`` (default: a fresh one, seeded: the strategy's student, or ``model`` with
    ``kwargs``) and ``teacher`` (default: the task's) wrapped for ``strategy``."""
    if student is None:
        student = build_student(prepared, seed, model, kwargs, strategy=None if model is not None else strategy)
    teacher = prepared.teacher if teacher is None else teacher
    distiller = Distiller(teacher, student, strategy, prepared.data.input_shape,
                          num_train_samples=len(prepared.data.train))
    return distiller.to(prepared.device)


def teacher_cache_for(prepared, paths: list[str], teacher: Optional[nn.Module] = None,
                      say: Optional[Callable[[str], None]] = None) -> Optional[TeacherCache]:
    """Outputs of ``teacher`` (default: the task's) over the training split for ``paths``; None when
    augmentation forbids caching, or they would take more than :func:`memory_budget` (the teacher
    then runs with each batch). ``say`` hears which."""
    if not can_cache(prepared.data):
        return None
    budget = memory_budget(prepared.device)
    cache = compute_teacher_cache(prepared.teacher if teacher is None else teacher, prepared.data, paths,
                                  prepared.device, max_bytes=budget)
    if say is not None:
        n = len(prepared.data.train)
        say(f"teacher outputs: too large to keep over the {n:,} training samples (more than {format_bytes(budget)}, "
            f"a quarter of memory); the teacher runs with each batch" if cache is None else
            f"teacher outputs: kept over the {n:,} training samples ({format_bytes(cache_size(cache))})")
    return cache


def fit_cached(distiller: Distiller, prepared, recipe: Recipe, teacher_cache: Optional[TeacherCache] = None,
               on_epoch: Optional[Callable[[EpochStats], None]] = None,
               validate_at: Optional[Collection[int]] = None):
    """``fit`` with the distiller's teacher outputs computed once over the training split when
    the data allow it (``teacher_cache``: outputs of that same teacher, possibly a superset). The
    distiller is closed after it: the trained student and the teacher leave without its hooks."""
    with distiller:
        cache = None
        if distiller.strategy.needs_teacher and can_cache(prepared.data):
            cache = teacher_cache or teacher_cache_for(prepared, distiller.teacher_paths, distiller.teacher)
            cache = cache.subset(distiller.teacher_paths) if cache is not None else None  # None: too large
        return fit(distiller, prepared.data, recipe, prepared.device, teacher_cache=cache, on_epoch=on_epoch,
                   validate_at=validate_at)


def distill(prepared, strategy: Strategy, recipe: Recipe, teacher: Optional[nn.Module] = None,
            teacher_cache: Optional[TeacherCache] = None, on_epoch: Optional[Callable[[EpochStats], None]] = None,
            validate_at: Optional[Collection[int]] = None, model: Optional[str] = None,
            kwargs: Optional[dict] = None) -> Trained:
    """Train one student (the task's, or ``model`` with ``kwargs``) from ``teacher`` (default: the
    task's) with ``strategy`` and ``recipe``."""
    distiller = build_distiller(prepared, strategy, recipe.seed, teacher, model, kwargs)
    result = fit_cached(distiller, prepared, recipe, teacher_cache, on_epoch, validate_at)
    return Trained(distiller.student, result.val_acc, result.history, result.steps)


class LogitEnsemble(nn.Module):
    """Models whose logits are averaged (e.g. born-again generations shipped together)."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members]).mean(0)

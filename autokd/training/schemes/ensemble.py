"""``ensemble``: several teachers teach one student (multi-teacher distillation).

The task's teacher and its ``teachers`` (:mod:`autokd.training.extra_teachers`) each give
logits; :class:`TeacherEnsemble` combines them (equal or fixed weights, or CA-MKD's per-sample
confidence, :mod:`autokd.losses.teachers`) into the target of the strategy's logit term, while
the pairs and relations use the ``feature_teacher``'s layers. The teachers' logits over the
training split are computed once when the data allow (like the teacher cache); every teacher
runs without gradients.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from autokd.config.strategy import Strategy
from autokd.errors import AutokdError
from autokd.losses import confidence_weights, weighted_logits
from autokd.models.registry import build_model
from autokd.training.distiller import DistillOutput, Distiller, TeacherOutputs
from autokd.training.extra_teachers import extra_teachers
from autokd.training.schemes.base import SchemeJob, WrappedDistiller
from autokd.training.students import Trained, build_distiller, fit_cached, teacher_cache_for
from autokd.training.teacher_cache import can_cache, teacher_logits


class TeacherEnsemble(WrappedDistiller):
    """The student's Distiller (whose teacher is the feature teacher) with the combined teachers' logits as target."""

    def __init__(self, distiller: Distiller, teachers: list[nn.Module], weights, caches: Optional[list] = None):
        super().__init__(distiller)
        self.members = list(teachers)  # frozen; not submodules: never trained, never saved
        self.weights = weights  # "equal", "confidence" or a list of numbers, one per teacher
        self.caches = caches  # per teacher, its logits over the training split (None: run the teachers)

    @torch.no_grad()
    def target(self, x: torch.Tensor, y: torch.Tensor, index: Optional[torch.Tensor]) -> torch.Tensor:
        """The teachers' logits combined for this batch."""
        caches = self.caches or [None] * len(self.members)
        logits = [teacher_logits(t, c, x, index) for t, c in zip(self.members, caches)]
        if self.weights == "confidence":
            weights = confidence_weights(logits, y)
        elif self.weights == "equal":
            weights = torch.ones(len(logits))
        else:
            weights = torch.tensor(self.weights, dtype=torch.float32)
        return weighted_logits(logits, weights)

    def forward(self, x: torch.Tensor, y: torch.Tensor, index: Optional[torch.Tensor] = None,
                teacher_outputs: Optional[TeacherOutputs] = None, epoch: int = 1) -> DistillOutput:
        features = teacher_outputs or (self.distiller.teacher_outputs(x) if self.teacher_paths else None)
        target = TeacherOutputs(self.target(x, y, index), features.features if features is not None else {})
        return self.distiller(x, y, index=index, teacher_outputs=target, epoch=epoch)


def _count_check(prepared, strategy: Strategy) -> None:
    problem = strategy.scheme.misfit(1 + len(prepared.task.teachers))
    if problem:
        raise AutokdError(f"strategy.scheme (ensemble): {problem}")


def check(prepared, strategy: Strategy) -> None:
    _count_check(prepared, strategy)
    index, data = strategy.scheme.feature_teacher, prepared.data
    spec = prepared.task.teacher if index == 0 else prepared.task.teachers[index - 1]
    feature_teacher = build_model(spec.model, spec.kwargs, data.num_classes, data.input_shape).to(prepared.device)
    # the pairs name the feature teacher's layers
    build_distiller(prepared, strategy, 0, teacher=feature_teacher).close()


def _caches(job: SchemeJob, teachers: list[nn.Module], paths: list[str]):
    """Every teacher's outputs over the training split, computed once (the task's teacher's from the
    job when it has them; the feature teacher's with ``paths``): (all of them or None, the feature
    teacher's or None). Nothing when the data forbid caching, and only what the strategy uses."""
    if not can_cache(job.prepared.data):
        return None, None
    f = job.strategy.scheme.feature_teacher

    def cache_of(i: int):
        if i == 0 and job.teacher_cache is not None:
            return job.teacher_cache
        return teacher_cache_for(job.prepared, paths if i == f else [], teachers[i])

    if job.strategy.alpha > 0:  # the logit term's target needs every teacher's logits
        caches = [cache_of(i) for i in range(len(teachers))]
        return caches, caches[f]
    return None, (cache_of(f) if paths else None)


def train(job: SchemeJob) -> Trained:
    prepared, scheme = job.prepared, job.strategy.scheme
    _count_check(prepared, job.strategy)
    teachers = [prepared.teacher] + [model for model, _ in extra_teachers(prepared, job.say)]
    feature_teacher = teachers[scheme.feature_teacher]
    distiller = build_distiller(prepared, job.strategy, job.recipe.seed, teacher=feature_teacher)
    caches, feature_cache = _caches(job, teachers, distiller.teacher_paths)
    wrapped = TeacherEnsemble(distiller, teachers, scheme.weights, caches)
    result = fit_cached(wrapped, prepared, job.recipe, feature_cache, job.on_epoch, job.validate_at)
    return Trained(distiller.student, result.val_acc, result.history, result.steps)

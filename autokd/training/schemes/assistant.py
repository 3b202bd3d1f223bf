"""``assistant``: teacher -> teacher assistant -> student (TAKD, Mirzadeh et al., AAAI 2020), and
with ``teacher_weight`` the teacher's logits guiding the student too (DGKD, Son et al., ICCV 2021).

The assistant (the scheme's ``model`` and ``kwargs``) distils from the task's teacher with the
strategy's logit term only (its temperature, alpha, logit loss and standardization; no pairs or
relations; not the student's kwargs or compression, which it never uses) and the run's recipe; it
is cached like a born-again generation, keyed by that training, so every student of a search that
uses the same assistant trains it once (each run still counts its steps in its cost). The
student then distils from the frozen assistant with the whole strategy: its pairs name the
assistant's layers. :class:`Guided` adds ``teacher_weight`` x alpha x the logit loss against the
task's teacher (run without gradients) to the student's loss.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Optional

import torch
from torch import nn

from autokd.config.compression import Compression
from autokd.config.schemes import SingleScheme
from autokd.config.strategy import Strategy
from autokd.models.checks import check_logits
from autokd.models.registry import build_model
from autokd.training.distiller import DistillOutput, Distiller, TeacherOutputs
from autokd.training.schemes.base import SchemeJob, WrappedDistiller, counting_cost
from autokd.training.stage_cache import StageCache, stage_key
from autokd.training.students import Trained, build_distiller, build_student, distill, fit_cached, teacher_cache_for
from autokd.training.teacher_cache import TeacherCache, teacher_logits


def assistant_strategy(strategy: Strategy) -> Strategy:
    """What the assistant learns from the teacher: the strategy's logit term alone (the student's
    kwargs and compression left out: they shape the student, not the assistant)."""
    return replace(strategy, pairs=[], relations=[], scheme=SingleScheme(), student={}, compression=Compression())


class Guided(WrappedDistiller):
    """A student distilling from the assistant (``distiller``) and, weighted, from ``teacher``'s logits
    (looked up in ``cache``, the teacher's outputs over the training split, when there is one)."""

    def __init__(self, distiller: Distiller, teacher: nn.Module, weight: float, cache: Optional[TeacherCache] = None):
        super().__init__(distiller)
        self.guide = [teacher.eval().requires_grad_(False)]  # not a submodule: never trained, never saved
        self.weight = weight
        self.cache = cache

    def forward(self, x: torch.Tensor, y: torch.Tensor, index: Optional[torch.Tensor] = None,
                teacher_outputs: Optional[TeacherOutputs] = None, epoch: int = 1) -> DistillOutput:
        out = self.distiller(x, y, index=index, teacher_outputs=teacher_outputs, epoch=epoch)
        s = self.strategy
        guide_logits = teacher_logits(self.guide[0], self.cache, x, index)
        parts = dict(out.parts)
        term = self.distiller.logit_term(out.logits, guide_logits, y, epoch)
        parts[f"{s.logit_loss}@teacher"] = self.weight * s.alpha * term
        return DistillOutput(total=torch.stack(list(parts.values())).sum(), parts=parts, logits=out.logits)


def check(prepared, strategy: Strategy) -> None:
    scheme, data = strategy.scheme, prepared.data
    model = build_model(scheme.model, scheme.kwargs, data.num_classes, data.input_shape)
    check_logits(model, scheme.model, "assistant", data.input_shape, data.num_classes)
    assistant = build_student(prepared, 0, scheme.model, scheme.kwargs)
    build_distiller(prepared, assistant_strategy(strategy), 0, model=scheme.model, kwargs=scheme.kwargs).close()
    build_distiller(prepared, strategy, 0, teacher=assistant).close()  # the pairs name the assistant's layers


def assistant_key(prepared, strategy: Strategy, recipe) -> str:
    """The stage-cache key of ``strategy``'s assistant (its model's source included, when it is user code)."""
    scheme = strategy.scheme
    spec = json.dumps({"model": scheme.model, "kwargs": scheme.kwargs}, sort_keys=True, default=str)
    return stage_key(prepared, assistant_strategy(strategy), recipe, f"assistant/{spec}", models=(scheme.model,))


def _assistant(job: SchemeJob) -> Trained:
    """The assistant, from the cache or trained from the teacher (then cached)."""
    prepared, scheme = job.prepared, job.strategy.scheme
    strategy = assistant_strategy(job.strategy)
    key = assistant_key(prepared, job.strategy, job.recipe)
    stages = StageCache(prepared.cache_root)
    model = build_student(prepared, job.recipe.seed, scheme.model, scheme.kwargs)
    steps = stages.load(key, model)
    if steps is not None:
        job.say(f"teacher assistant {scheme.model}: from the cache")
        return Trained(model.to(prepared.device), float("nan"), steps=steps)
    job.say(f"teacher assistant {scheme.model}: distilling from the teacher")
    trained = distill(prepared, strategy, job.recipe, teacher_cache=job.teacher_cache, validate_at=(),
                      model=scheme.model, kwargs=scheme.kwargs)
    stages.save(key, trained.model, trained.steps)
    return trained


def train(job: SchemeJob) -> Trained:
    prepared, scheme = job.prepared, job.strategy.scheme
    assistant = _assistant(job)
    teacher = assistant.model.eval()
    distiller = build_distiller(prepared, job.strategy, job.recipe.seed, teacher=teacher)
    wrapped = distiller
    if scheme.teacher_weight > 0:
        cache = job.teacher_cache or teacher_cache_for(prepared, [])  # the teacher's logits once, not every batch
        wrapped = Guided(distiller, prepared.teacher, scheme.teacher_weight, cache)
    on_epoch = counting_cost(job.on_epoch, assistant.steps)
    result = fit_cached(wrapped, prepared, job.recipe, None, on_epoch, job.validate_at)
    return Trained(distiller.student, result.val_acc, result.history, assistant.steps + result.steps)

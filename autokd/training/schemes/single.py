"""``single``: one frozen teacher, one student (the strategy as it is)."""

from __future__ import annotations

from autokd.training.schemes.base import SchemeJob
from autokd.training.students import Trained, build_distiller, distill


def check(prepared, strategy) -> None:
    build_distiller(prepared, strategy, seed=0).close()


def train(job: SchemeJob) -> Trained:
    return distill(job.prepared, job.strategy, job.recipe, teacher_cache=job.teacher_cache, on_epoch=job.on_epoch,
                   validate_at=job.validate_at)

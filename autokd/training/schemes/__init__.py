"""Distillation schemes: who teaches whom, one module per kind behind one interface.

Each kind registers a :class:`SchemeInfo`: ``train(job: SchemeJob) -> Trained`` runs the whole
scheme (every stage) and hands back the model that is shipped, its validation accuracy and its
cost in training steps; ``check(prepared, strategy)`` raises :class:`~autokd.errors.AutokdError`
when the strategy cannot run on the task's models, before any training. The knobs of each kind
are the dataclasses of :mod:`autokd.config.schemes`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from autokd.training.schemes import assistant, born_again, cohort, ensemble, single
from autokd.training.schemes.base import SchemeJob
from autokd.training.students import Trained


@dataclass(frozen=True)
class SchemeInfo:
    train: Callable[[SchemeJob], Trained]
    check: Callable[[object, object], None]
    summary: str
    one_stage: bool = True  # False: earlier stages (a generation, an assistant) train before the shipped student
    pairs_on_teacher: bool = True  # False: the strategy's pairs tap another model (an assistant, a further teacher)


SCHEMES: dict[str, SchemeInfo] = {
    "single": SchemeInfo(single.train, single.check, "one frozen teacher, one student"),
    "born_again": SchemeInfo(born_again.train, born_again.check,
                             "generations of the student, each taught by the one before", one_stage=False),
    "mutual": SchemeInfo(cohort.train, cohort.check, "the student and its peers learn from each other (DML)"),
    "online": SchemeInfo(cohort.train, cohort.check, "the student and its peers learn from their ensemble (KDCL)"),
    "assistant": SchemeInfo(assistant.train, assistant.check,
                            "a teacher assistant between teacher and student (TAKD; DGKD with teacher_weight)",
                            one_stage=False, pairs_on_teacher=False),
    "ensemble": SchemeInfo(ensemble.train, ensemble.check, "several teachers teach together (multi-teacher)",
                           pairs_on_teacher=False),
}

__all__ = ["SCHEMES", "SchemeInfo", "SchemeJob", "Trained"]

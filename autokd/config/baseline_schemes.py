"""A baseline's scheme adapted to a task: the assistant sized between teacher and student, the
ensemble checked against the task's teachers.

A baseline file serves every task, so a scheme baseline names its assistant ``model: between``:
the teacher's architecture with every size keyword halfway to the student's (e.g. ``cnn1d``
with 128 and 64 channels gives 96). A task whose teacher and student are not one architecture at
two sizes, or that has one teacher for an ensemble baseline, cannot take that baseline
(:class:`DoesNotFit`; the compare and the warm start leave it out and say so).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

from autokd.config.strategy import Strategy
from autokd.errors import ConfigError

BETWEEN = "between"


class DoesNotFit(ConfigError):
    """A well-formed baseline that this task cannot take (no layer pairs, one teacher, no size between)."""


def fit_scheme(strategy: Strategy, task, where: str) -> Strategy:
    """``strategy`` with its scheme made concrete for ``task`` (None: a task not known here)."""
    scheme = strategy.scheme
    if scheme.kind == "assistant" and scheme.model == BETWEEN:
        if task is None:
            raise DoesNotFit(f"{where}: an assistant 'between' teacher and student needs the task")
        model, kwargs = assistant_between(task.teacher, task.student, where)
        return replace(strategy, scheme=replace(scheme, model=model, kwargs={**kwargs, **scheme.kwargs}))
    if scheme.kind == "ensemble":
        problem = scheme.misfit(1 + len(task.teachers) if task is not None else 1)
        if problem:
            raise DoesNotFit(f"{where}: {problem}")
    return strategy


def assistant_between(teacher, student, where: str) -> tuple[str, dict]:
    """The teacher's model with each numeric keyword that differs from the student's set halfway (a
    keyword one of them leaves out counts at the model's default: depth 3 written and left out agree)."""
    from autokd.models.registry import keyword_defaults

    defaults = keyword_defaults(teacher.model) if teacher.model == student.model else {}
    keys = set(teacher.kwargs) | set(student.kwargs)
    t_kwargs = {key: teacher.kwargs.get(key, defaults.get(key)) for key in keys if key in teacher.kwargs or key in defaults}
    s_kwargs = {key: student.kwargs.get(key, defaults.get(key)) for key in keys if key in student.kwargs or key in defaults}
    if teacher.model != student.model or set(t_kwargs) != keys or set(s_kwargs) != keys:
        raise DoesNotFit(f"{where}: teacher {teacher.model} {teacher.kwargs} and student {student.model} "
                         f"{student.kwargs} are not one architecture at two sizes; name the assistant's model")
    kwargs, sized = {}, False
    for key in sorted(keys, key=str):
        t, s = t_kwargs[key], s_kwargs[key]
        mid = _halfway(t, s)
        if mid is None:
            raise DoesNotFit(f"{where}: teacher and student differ in {key!r} ({t!r} vs {s!r}), not a size")
        kwargs[key] = mid
        sized = sized or mid != t
    if not sized:
        raise DoesNotFit(f"{where}: teacher and student have the same size; there is nothing between them")
    return teacher.model, kwargs


def _halfway(t, s) -> Optional[object]:
    if t == s:
        return t
    numbers = (int, float)
    if isinstance(t, bool) or isinstance(s, bool) or not (isinstance(t, numbers) and isinstance(s, numbers)):
        return None
    if isinstance(t, int) and isinstance(s, int):
        return round((t + s) / 2)
    return (t + s) / 2

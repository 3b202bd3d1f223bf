"""Constraints no student of the space can meet, refused before the search (not after a budget of
infeasible trials).

A student's parameter count, deployed size and MACs do not depend on training, so the smallest the
space can ship is known up front: every student it lists (its kwargs choices), at the fewest bits
its ``quantize`` choices allow. Only exact bounds refuse anything: a space that prunes (the pruned
size is known only once pruned), searches a student kwarg over a range, or lists more student
combinations than :data:`VARIANTS_LIMIT` is not checked, and
latency, a noisy measurement, never is.
"""

from __future__ import annotations

from typing import Callable, Optional

from autokd.errors import AutokdError, short_repr
from autokd.search.shipped_space import NO_QUANTIZATION
from autokd.search.space import FloatRange

FLOAT_BITS = 32
VARIANTS_LIMIT = 64  # student combinations tried (each one built and counted)


def check_constraints_reachable(spec, task, shape, classes: int) -> None:
    """Refuse ``max_params``, ``max_size_kb`` or ``max_macs`` that every student of the space breaks."""
    from autokd.search.objectives import CONSTRAINTS
    from autokd.search.shipped_space import student_variants

    limits = {key: limit for key, limit in spec.constraints.items() if CONSTRAINTS[key][0] != "latency_ms"}
    if not limits or spec.prune is not None or not _exhaustive(spec):
        return
    bounds = _smallest(spec, task, shape, classes, student_variants(spec, limit=VARIANTS_LIMIT))
    for key, limit in limits.items():
        field, unit = CONSTRAINTS[key]
        smallest = bounds.get(field)
        if smallest is not None and smallest[0] > limit * unit:
            value, kwargs = smallest
            which = f"the student with {short_repr(kwargs, 80)}" if spec.student else "the task's student"
            raise AutokdError(f"no student this space can ship meets {key} {limit:g}: the smallest, {which}, has "
                              f"{_amount(field, value)}; raise the limit, or list smaller students (space.student)"
                              f"{' or fewer bits (space.quantize)' if field == 'size_bytes' else ''}")


def _exhaustive(spec) -> bool:
    """Whether :func:`student_variants` tries every student the space lists (no range, at most its limit)."""
    total = 1
    for knob in spec.student.values():
        if isinstance(knob, FloatRange):
            return False
        total *= len(knob) if isinstance(knob, list) else 1
    return total <= VARIANTS_LIMIT


def _smallest(spec, task, shape, classes: int, variants: list[dict]) -> dict[str, tuple[float, dict]]:
    """Per footprint field, the smallest value over the students and the kwargs that give it; size at the
    fewest bits any quantize choice allows (every weight at those bits: a bound below the true size)."""
    import torch

    from autokd.compression.measure import at_a_batch_it_takes, count_macs, count_params, deployed_bytes
    from autokd.models.registry import build_model

    bits = min(FLOAT_BITS if q == NO_QUANTIZATION else int(q) for q in spec.quantize)
    best: dict[str, tuple[float, dict]] = {}
    for kwargs in variants:
        model = build_model(task.student.model, {**task.student.kwargs, **kwargs}, classes, shape)
        params = count_params(model)
        size = deployed_bytes(model) if bits == FLOAT_BITS else params * bits / 8
        with torch.no_grad():
            macs, _ = at_a_batch_it_takes(lambda x: round(count_macs(model, x) / len(x)), shape)
        for field, value in (("params", params), ("size_bytes", size), ("macs", macs)):
            _keep_smaller(best, field, value, kwargs)
    return best


def _keep_smaller(best: dict, field: str, value: Optional[float], kwargs: dict) -> None:
    if value is not None and (field not in best or value < best[field][0]):
        best[field] = (value, kwargs)


AMOUNTS: dict[str, Callable[[float], str]] = {
    "params": lambda v: f"{int(v):,} parameters",
    "size_bytes": lambda v: f"at least {v / 1024:.3g} KiB deployed",
    "macs": lambda v: f"{int(v):,} MACs",
}


def _amount(field: str, value: float) -> str:
    return AMOUNTS[field](value)

"""Constraints no student of the space can meet, refused before the search (not after a budget of
infeasible trials).

A student's parameter count, deployed size and MACs do not depend on training, so the smallest the
space can ship is known up front: every student it lists (its kwargs choices), quantized as each of
its ``quantize`` choices would quantize it (its deployed size, exactly as a trial measures it). Only exact bounds refuse anything: a space that prunes (the pruned
size is known only once pruned), searches a student kwarg over a range, or lists more student
combinations than :data:`VARIANTS_LIMIT` is not checked, and
latency, a noisy measurement, never is.

:func:`check_quantize_reachable` refuses a ``quantize`` choice that no student of the space can ship.
"""

from __future__ import annotations

from typing import Callable, Optional

from autokd.errors import AutokdError, short_repr
from autokd.search.shipped_space import NO_QUANTIZATION
from autokd.search.space import FloatRange

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
    """Per footprint field, the smallest value over the students and the kwargs that give it; the size
    exactly as a trial measures it (:func:`deployed_bytes` of the student quantized as each quantize
    choice does it: the classifier float, the first layer at 8 bits, buffers as they are), the smallest
    over the choices."""
    import torch

    from autokd.compression.measure import at_a_batch_it_takes, count_macs, count_params
    from autokd.models.registry import build_model

    best: dict[str, tuple[float, dict]] = {}
    for kwargs in variants:
        model = build_model(task.student.model, {**task.student.kwargs, **kwargs}, classes, shape)
        params = count_params(model)
        with torch.no_grad():
            macs, _ = at_a_batch_it_takes(lambda x: round(count_macs(model, x) / len(x)), shape)
        size = _smallest_size(model, spec.quantize, shape)
        for field, value in (("params", params), ("size_bytes", size), ("macs", macs)):
            _keep_smaller(best, field, value, kwargs)
    return best


def _smallest_size(model, choices: list, shape) -> Optional[float]:
    """The fewest bytes ``model`` ships in over the quantize ``choices`` (None: it ships in none of them)."""
    import copy

    import torch

    from autokd.compression.measure import deployed_bytes
    from autokd.compression.quantize import prepare, quiet

    sizes = []
    for choice in choices:
        if choice == NO_QUANTIZATION:
            sizes.append(deployed_bytes(model))
            continue
        try:
            with quiet():
                sizes.append(deployed_bytes(prepare(copy.deepcopy(model), int(choice), torch.zeros(2, *shape))))
        except ValueError:  # this student cannot be quantized so: it ships otherwise, or not at all
            continue
    return min(sizes, default=None)


def check_quantize_reachable(spec, task, shape, classes: int) -> None:
    """Refuse a ``quantize`` choice that no student of the space can ship: one without a layer to
    quantize besides its classifier, one where no layer would be at 4 bits (the first layer stays at 8,
    the classifier float), one whose quantized layers cannot be deployed. Every trial drawing it would
    fail; a choice that only some students cannot take fails only their trials, saying why."""
    from autokd.models.registry import build_model
    from autokd.search.shipped_space import student_variants

    choices = [int(q) for q in spec.quantize if q != NO_QUANTIZATION]
    if not choices:
        return
    if spec.prune is not None and spec.prune["of"] == "teacher":
        students = [(task.teacher.model, dict(task.teacher.kwargs), "the pruned teacher (prune.of: teacher)")]
    else:
        students = [(task.student.model, {**task.student.kwargs, **kwargs},
                     f"the student with {short_repr(kwargs, 80)}" if kwargs else "the student")
                    for kwargs in student_variants(spec, limit=VARIANTS_LIMIT)]
    for bits in choices:
        problems = [(what, _quantize_problem(build_model(name, kwargs, classes, shape), bits, shape))
                    for name, kwargs, what in students]
        if all(problem for _, problem in problems):
            what, problem = problems[0]
            fix = "use quantize: none" if len(spec.quantize) == 1 else f"drop {bits} from space.quantize"
            raise AutokdError(f"space.quantize {bits}: no student of the space can ship at {bits} bits ({what}: "
                              f"{problem}); {fix}")


def _quantize_problem(model, bits: int, shape) -> str:
    """Why ``model`` cannot be quantized at ``bits`` and deployed ("" when it can)."""
    import torch

    from autokd.compression.quantize import check_deploys, prepare, quiet

    example = torch.zeros(2, *shape)
    try:
        with quiet():
            check_deploys(prepare(model, bits, example), example)
    except ValueError as exc:
        return str(exc)
    return ""


def _keep_smaller(best: dict, field: str, value: Optional[float], kwargs: dict) -> None:
    if value is not None and (field not in best or value < best[field][0]):
        best[field] = (value, kwargs)


AMOUNTS: dict[str, Callable[[float], str]] = {
    "params": lambda v: f"{int(v):,} parameters",
    "size_bytes": lambda v: f"{v / 1024:.4g} KiB deployed ({int(v):,} bytes)",  # a limit just below shows a difference
    "macs": lambda v: f"{int(v):,} MACs",
}


def _amount(field: str, value: float) -> str:
    return AMOUNTS[field](value)

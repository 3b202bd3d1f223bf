"""What is shipped, in a search space: the student's kwargs, quantization and pruning searched,
the objectives traded against each other, and the constraints a shipped student must meet.

    space:
      student: {channels: [16, 32, 48, 64], depth: {low: 2, high: 4}}   # kwargs over the task's student
      quantize: [none, 8, 4]                    # or one of them, fixed (default none)
      prune: {amount: {low: 0, high: 0.7}, of: student}    # amount fixed, a list or a range
      objectives: [accuracy, params]            # accuracy first; then params, size, latency or macs
      constraints: {max_params: 20000, max_size_kb: 40, max_latency_ms: 0.5}

A student kwarg is a fixed value, a list of choices (a non-scalar choice, such as a list of
width multipliers, is a categorical choice by its JSON text) or a range: ``{low, high}`` of
whole numbers is the list of its values (``step`` apart, default 1); of other numbers a float
range (``log`` allowed). Parameters: ``student.KWARG``, ``quantize``, ``prune.amount``.

With more than one objective the study is an Optuna multi-objective study (accuracy maximised,
the others minimised) and has a Pareto front; constraints make trials whose student exceeds a
limit infeasible (they never rank, and TPE and NSGA-II, which read each trial's constraint
values, avoid them), whatever the objectives.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from autokd.config.compression import MAX_PRUNE_AMOUNT, QUANTIZE_BITS, Compression, Prune, Quantize
from autokd.config.parse import from_mapping
from autokd.errors import ConfigError, short_repr
from autokd.search.objectives import check_constraints, check_objectives
from autokd.search.space import FloatRange

NO_QUANTIZATION = "none"
MAX_INT_CHOICES = 1000


def parse_shipped(spec, where: str) -> None:
    """Validate (and normalise in place) the space's ``student``, ``quantize``, ``prune``,
    ``objectives`` and ``constraints``."""
    spec.student = {key: _student_knob(value, f"{where}.student.{key}") for key, value in _mapping(
        spec.student, f"{where}.student").items()}
    for key in spec.student:
        if not isinstance(key, str) or not key.isidentifier():
            raise ConfigError(f"{where}.student: {short_repr(key)} is not a keyword argument name")
    spec.quantize = _quantize_choices(spec.quantize, f"{where}.quantize")
    spec.prune = _prune_knobs(spec.prune, f"{where}.prune") if spec.prune is not None else None
    if spec.prune is not None and spec.prune["of"] == "teacher" and spec.student:
        raise ConfigError(f"{where}.student searches the student's kwargs, but {where.rsplit(': ', 1)[-1]}.prune.of is teacher (the "
                          f"student is the pruned teacher); remove one of them")
    ensemble = (spec.scheme_knobs.get("born_again") or {}).get("ensemble", False)
    if (spec.prune is not None and spec.prune["of"] == "student" and "born_again" in spec.schemes
            and True in (ensemble if isinstance(ensemble, list) else [ensemble])):
        raise ConfigError(f"{where}.prune.of is student, which prunes one trained student, but born_again may ship an "
                          f"ensemble of its generations ({where.rsplit(': ', 1)[-1]}.scheme_knobs.born_again.ensemble: "
                          f"{short_repr(ensemble)}); set ensemble: false, or prune of: teacher")
    spec.objectives = check_objectives(spec.objectives, f"{where}.objectives")
    spec.constraints = check_constraints(spec.constraints, f"{where}.constraints")


def _mapping(value, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping, got {short_repr(value)}")
    return value


def _student_knob(value, where: str):
    """A fixed value, a list of choices (JSON text for non-scalars) or a FloatRange."""
    if isinstance(value, dict) and "low" in value:
        return _range(value, where)
    if isinstance(value, list):
        coded = next((v for v in value if isinstance(v, str) and v[:1] in ("[", "{")), None)
        if coded is not None:  # list and mapping choices are kept as JSON text: this one would be read as one
            raise ConfigError(f"{where}: the text choice {short_repr(coded)} starts with [ or {{, which the search "
                              f"keeps for list and mapping choices; write the list or mapping itself, or other text")
        texts = [v if _scalar(v) else json.dumps(v, sort_keys=True) for v in value]
        if not value or len({repr(t) for t in texts}) != len(texts):
            raise ConfigError(f"{where} must list one or more distinct values, got {short_repr(value)}")
        return texts if len(texts) > 1 else [texts[0]]
    return value


def _range(value: dict, where: str):
    data = dict(value)
    step = data.pop("step", 1)
    low, high = data.get("low"), data.get("high")
    if _whole(low) and _whole(high) and not data.get("log"):
        if not _whole(step) or step < 1 or low > high or (high - low) // step + 1 > MAX_INT_CHOICES:
            raise ConfigError(f"{where}: a range of whole numbers needs low <= high and a whole step >= 1 "
                              f"(at most {MAX_INT_CHOICES} values), got {short_repr(value)}")
        return list(range(low, high + 1, step))
    if "step" in value:
        raise ConfigError(f"{where}.step applies to a range of whole numbers (low and high whole, no log)")
    rng = from_mapping(FloatRange, data, where)
    if rng.low > rng.high or (rng.log and rng.low <= 0):
        raise ConfigError(f"{where}: the range must have low <= high (and low > 0 on a log scale), got {short_repr(value)}")
    return rng


def _whole(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _scalar(v) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def _quantize_choices(value, where: str) -> list:
    choices = value if isinstance(value, list) else [value]
    allowed = [NO_QUANTIZATION, *QUANTIZE_BITS]
    if not choices or len(set(map(repr, choices))) != len(choices):
        raise ConfigError(f"{where} must be one of {', '.join(map(str, allowed))} or a list of them, got {short_repr(value)}")
    for choice in choices:
        if isinstance(choice, bool) or choice not in allowed:
            raise ConfigError(f"{where}: {short_repr(choice)} is not one of {', '.join(map(str, allowed))}")
    return list(choices)


def _prune_knobs(value, where: str) -> dict:
    data = dict(_mapping(value, where))
    for key in data:
        if key not in ("amount", "of", "recover_epochs"):
            raise ConfigError(f"unknown key {where}.{key}; allowed: amount, of, recover_epochs")
    amount = data.get("amount", 0.5)
    if isinstance(amount, dict):
        amount = from_mapping(FloatRange, amount, f"{where}.amount").check(f"{where}.amount", upper=MAX_PRUNE_AMOUNT)
        ends = [amount.low, amount.high]
    else:
        ends = amount if isinstance(amount, list) else [amount]
    for end in ends:
        Prune(amount=end, of=data.get("of", "teacher"), recover_epochs=data.get("recover_epochs")).validate(where)
    if isinstance(amount, list) and (not amount or len(set(amount)) != len(amount)):
        raise ConfigError(f"{where}.amount must list one or more distinct amounts, got {short_repr(amount)}")
    return {"amount": amount, "of": data.get("of", "teacher"), "recover_epochs": data.get("recover_epochs")}


def needs_footprint(spec) -> bool:
    """Whether trials must measure their student's footprint: several objectives, constraints, or
    a searched student or compression (so the leaderboard can show sizes)."""
    return bool(spec.multi_objective or spec.constraints or spec.student or spec.prune is not None
                or spec.quantize != [NO_QUANTIZATION])


# --- parameters and strategies -----------------------------------------------------------------


def shipped_dimensions(spec) -> list:
    from autokd.search.strategy_space import Dimension  # (it imports this module)

    dims = []
    for key, knob in spec.student.items():
        if isinstance(knob, FloatRange):
            dims.append(Dimension(f"student.{key}", range=knob))
        elif isinstance(knob, list) and len(knob) > 1:
            dims.append(Dimension(f"student.{key}", choices=list(knob)))
    if len(spec.quantize) > 1:
        dims.append(Dimension("quantize", choices=list(spec.quantize)))
    amount = spec.prune["amount"] if spec.prune is not None else None
    if isinstance(amount, FloatRange):
        dims.append(Dimension("prune.amount", range=amount))
    elif isinstance(amount, list) and len(amount) > 1:
        dims.append(Dimension("prune.amount", choices=list(amount)))
    return dims


def build_shipped(spec, pick: Callable[[str, Any], Any]) -> tuple[dict, Compression]:
    """The strategy's ``student`` kwargs and ``compression`` that ``pick(name, default)`` answers."""
    student = {}
    for key, knob in spec.student.items():
        if isinstance(knob, FloatRange):
            student[key] = float(pick(f"student.{key}", knob.low))
        elif isinstance(knob, list):
            value = pick(f"student.{key}", knob[0])
            student[key] = json.loads(value) if isinstance(value, str) and value[:1] in ("[", "{") else value
        else:
            student[key] = knob
    bits = pick("quantize", spec.quantize[0])
    quantize = None if bits == NO_QUANTIZATION else Quantize(bits=int(bits))
    prune = None
    if spec.prune is not None:
        amount = spec.prune["amount"]
        default = amount.low if isinstance(amount, FloatRange) else amount[0] if isinstance(amount, list) else amount
        prune = Prune(amount=float(pick("prune.amount", default)), of=spec.prune["of"],
                      recover_epochs=spec.prune["recover_epochs"])
    return student, Compression(prune=prune, quantize=quantize)


def student_variants(spec, limit: int = 64) -> list[dict]:
    """Student kwargs to check the space with: every combination of the choices (a range at its
    ends) when there are at most ``limit``, else each choice with the others at their first."""
    import itertools

    options = {}
    for key, knob in spec.student.items():
        values = [knob.low, knob.high] if isinstance(knob, FloatRange) else knob if isinstance(knob, list) else [knob]
        options[key] = [json.loads(v) if isinstance(v, str) and v[:1] in ("[", "{") else v for v in values]
    total = 1
    for values in options.values():
        total *= len(values)
    if total <= limit:
        return [dict(zip(options, combo)) for combo in itertools.product(*options.values())]
    first = {k: v[0] for k, v in options.items()}
    return [{**first, key: value} for key, values in options.items() for value in values]

"""``--warm-start baselines``: the hand-tuned baselines the space can express become a new study's
first trials, so the sampler starts from the published points rather than from random ones.

A baseline fits the space when every part of it is a value the space can take: its temperature
and alpha inside their ranges, its logit loss and every pair and relation loss among the
space's choices, each weight a scale inside ``weight_scale`` (times the loss's default weight),
its scheme among the space's with each knob a value the space can take, and what it ships (the
task's student, float, unpruned) among the space's choices (a searched student kwarg that lists the
task's own value, ``quantize`` that lists ``none``; a space that prunes fits no baseline).
The space's own DKD warm-up applies. Each fitting baseline costs one trial of the budget.
"""

from __future__ import annotations

from typing import Any, Optional

from autokd.config.parse import to_mapping
from autokd.config.strategy import Strategy
from autokd.losses import EMBEDDING_LOSSES, LOGIT_LOSSES, PAIR_LOSSES
from autokd.search.ledger import param_key
from autokd.search.scheme_space import scheme_values
from autokd.search.space import NONE
from autokd.search.strategy_space import SearchSpace, logit_param, match_param, pair_param, relation_param

WARM_START_ATTR = "warm_start"
_RELATIVE_TOLERANCE = 1e-9


class _NotInSpace(Exception):
    pass


def params_for(space: SearchSpace, strategy: Strategy, student: Optional[dict] = None) -> Optional[dict]:
    """The space's parameters that make ``strategy``, or None when the space cannot express it. ``student``:
    the task student's kwargs with the model's defaults (what a strategy without ``student`` ships)."""
    student = student or {}
    values = {**_values_of(space, strategy), **_shipped_values(space, strategy, student)}
    dims = {d.name: d for d in space.dimensions()}
    used: dict[str, Any] = {}

    def pick(name: str, default: Any) -> Any:
        if name not in dims:
            return default
        value = values.get(name, default)
        dim = dims[name]
        if dim.choices is not None and value not in dim.choices:
            raise _NotInSpace
        if dim.range is not None:
            low, high = dim.range.low, dim.range.high
            if not low * (1 - _RELATIVE_TOLERANCE) <= value <= high * (1 + _RELATIVE_TOLERANCE):
                raise _NotInSpace
            value = min(max(float(value), low), high)
        used[name] = value
        return value

    try:
        rebuilt = space.build(pick)
    except _NotInSpace:
        return None
    return used if _same(rebuilt, strategy, student) else None


def _shipped_values(space: SearchSpace, strategy: Strategy, student: dict) -> dict[str, Any]:
    """The shipped-student parameters ``strategy`` implies: its student kwargs over the task's, its bits
    (``none``: float). (A space that prunes always prunes: a baseline, unpruned, does not fit it.)"""
    kwargs = {**student, **strategy.student}
    values: dict[str, Any] = {f"student.{key}": kwargs[key] for key in space.spec.student if key in kwargs}
    quantize = strategy.compression.quantize
    values["quantize"] = "none" if quantize is None else quantize.bits
    return values


def _values_of(space: SearchSpace, strategy: Strategy) -> dict[str, Any]:
    """Every parameter value ``strategy`` implies, by parameter name (the space picks the ones it has)."""
    info = LOGIT_LOSSES[strategy.logit_loss]
    values: dict[str, Any] = {
        "temperature": strategy.temperature, "alpha": strategy.alpha, "logit_loss": strategy.logit_loss,
        "logit_standardization": strategy.logit_standardization, "lr": strategy.recipe.lr,
        **{logit_param(strategy.logit_loss, p): {**info.params, **strategy.logit_params}[p] for p in info.searched},
    }
    by_pair = {(p.teacher, p.student): p for p in strategy.pairs}
    for t, s in space.pairs:
        pair = by_pair.get((t, s))
        values[pair_param(t, s, "loss")] = pair.loss if pair else NONE
        if pair:
            values[pair_param(t, s, "scale")] = pair.weight / PAIR_LOSSES[pair.loss].default_weight
    by_student = {p.student: p for p in strategy.pairs}
    for student, _ in space.matches or []:
        pair = by_student.get(student)
        values[match_param(student, "teacher")] = pair.teacher if pair else NONE
        if pair:
            values[match_param(student, "loss")] = pair.loss
            values[match_param(student, "scale")] = pair.weight / PAIR_LOSSES[pair.loss].default_weight
    for rel in strategy.relations:
        values[relation_param(rel.loss, "on")] = True
        values[relation_param(rel.loss, "scale")] = rel.weight / EMBEDDING_LOSSES[rel.loss].default_weight
    return {**values, **scheme_values(strategy.scheme)}


def _same(a: Strategy, b: Strategy, student: Optional[dict] = None) -> bool:
    """Equal strategies, recipe and DKD warm-up aside (the space's own apply), floats to 9 digits; the
    student's kwargs over ``student`` (the task's)."""

    def with_defaults(params: dict, registry_params: dict) -> dict:
        return {k: v for k, v in {**registry_params, **params}.items() if k not in ("warmup", "temperature")}

    def plain(strategy: Strategy) -> Any:
        data = to_mapping(strategy)
        data.pop("recipe")
        data["student"] = {**(student or {}), **data["student"]}
        data["logit_params"] = with_defaults(data["logit_params"], LOGIT_LOSSES[strategy.logit_loss].params)
        for pair in data["pairs"]:
            pair["params"] = with_defaults(pair["params"], PAIR_LOSSES[pair["loss"]].params)
        for rel in data["relations"]:
            rel["params"] = with_defaults(rel["params"], EMBEDDING_LOSSES[rel["loss"]].params)
        return _rounded(data)

    return plain(a) == plain(b) and _close(a.recipe.lr, b.recipe.lr)


def _close(x: float, y: float) -> bool:
    return abs(x - y) <= _RELATIVE_TOLERANCE * max(abs(x), abs(y))


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def enqueue_baselines(study, space: SearchSpace, baselines, student: Optional[dict] = None) -> tuple[list[str], list[str]]:
    """Queue every baseline the space can express as a trial (one per distinct strategy); ``student``: the
    task student's kwargs (see :func:`params_for`); returns (queued names, names that do not fit)."""
    queued, misfits, seen = [], [], set()
    for baseline in baselines:
        params = params_for(space, baseline.strategy, student)
        if params is None:
            misfits.append(baseline.name)
            continue
        if param_key(params) in seen:
            continue
        seen.add(param_key(params))
        study.enqueue_trial(params, user_attrs={WARM_START_ATTR: baseline.name}, skip_if_exists=True)
        queued.append(baseline.name)
    return queued, misfits

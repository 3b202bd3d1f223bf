"""What a trial is judged by: its objectives (accuracy first, then the shipped student's size or
speed), the constraints it must meet, and the Pareto front of a multi-objective study.

A trial's :class:`~autokd.compression.Footprint` is stored with it (user attribute
``footprint``); objective values and feasibility are computed from it and the space's
``objectives`` and ``constraints``, so every sampler and every reader agrees on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from autokd.errors import ConfigError, did_you_mean, short_repr


@dataclass(frozen=True)
class Objective:
    direction: str  # "maximize" or "minimize"
    footprint: Optional[str]  # the Footprint field it reads (None: validation accuracy)
    label: str


OBJECTIVES: dict[str, Objective] = {
    "accuracy": Objective("maximize", None, "val acc"),
    "params": Objective("minimize", "params", "params"),
    "size": Objective("minimize", "size_bytes", "bytes"),
    "latency": Objective("minimize", "latency_ms", "ms"),
    "macs": Objective("minimize", "macs", "MACs"),
}
# constraint -> (the Footprint field it limits, how many of that field's units one of its own is)
CONSTRAINTS: dict[str, tuple[str, float]] = {
    "max_params": ("params", 1.0), "max_size_kb": ("size_bytes", 1024.0),
    "max_latency_ms": ("latency_ms", 1.0), "max_macs": ("macs", 1.0),
}

# the ``autokd search`` flag that sets each objective or constraint key of a space (max_macs has none)
FLAGS: dict[str, str] = {"objectives": "--objectives", "max_params": "--max-params",
                         "max_size_kb": "--max-size-kb", "max_latency_ms": "--max-latency-ms"}


def check_objectives(objectives, where: str) -> list[str]:
    """``accuracy`` first, then distinct names of :data:`OBJECTIVES` (a comma-separated text too)."""
    if isinstance(objectives, str):
        objectives = [o.strip() for o in objectives.split(",")]
    if not isinstance(objectives, list) or not objectives or objectives[0] != "accuracy":
        raise ConfigError(f"{where} must list accuracy first, then any of {', '.join(list(OBJECTIVES)[1:])}; "
                          f"got {short_repr(objectives)}")
    for name in objectives:
        if name not in OBJECTIVES:
            raise ConfigError(f"{where}: unknown objective {short_repr(name)}{did_you_mean(str(name), OBJECTIVES)}; "
                              f"known: {', '.join(OBJECTIVES)}")
    if len(set(objectives)) != len(objectives):
        raise ConfigError(f"{where} lists an objective twice: {', '.join(objectives)}")
    return list(objectives)


def check_constraints(constraints, where: str) -> dict[str, float]:
    if constraints is None:
        return {}
    if not isinstance(constraints, dict):
        raise ConfigError(f"{where} must be a mapping of {', '.join(CONSTRAINTS)} to limits, got {short_repr(constraints)}")
    for key, value in constraints.items():
        if key not in CONSTRAINTS:
            raise ConfigError(f"unknown key {where}.{key}{did_you_mean(str(key), CONSTRAINTS)}; "
                              f"allowed: {', '.join(CONSTRAINTS)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
            raise ConfigError(f"{where}.{key} must be a number > 0, got {short_repr(value)}")
    return dict(constraints)


@dataclass(frozen=True)
class Judging:
    """A study's objectives and constraints (from its stored space)."""

    objectives: tuple[str, ...] = ("accuracy",)
    constraints: tuple[tuple[str, float], ...] = ()

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    def feasible(self, footprint: Optional[dict]) -> bool:
        return feasible(dict(self.constraints), footprint)

    @property
    def limits(self) -> str:
        """The constraints as users wrote them, e.g. ``max_params 40000, max_size_kb 50``."""
        return ", ".join(f"{key} {limit:g}" for key, limit in self.constraints)


def judging_of(space_text: str) -> Judging:
    """The objectives and constraints a space's YAML text sets (defaults when absent)."""
    from autokd.config.yaml_io import load_yaml_value

    space = (load_yaml_value(space_text) or {}).get("space") or {}
    objectives = check_objectives(space.get("objectives", ["accuracy"]), "space.objectives")
    constraints = check_constraints(space.get("constraints"), "space.constraints")
    return Judging(tuple(objectives), tuple(constraints.items()))


def differing_flags(old_text: str, new_text: str) -> list[tuple[str, str, str]]:
    """``(flag, old value, new value)`` for each objective or constraint setting that differs
    between two space files' YAML texts; [] when anything else differs (the task, another space key)."""
    from autokd.config.yaml_io import load_yaml_value

    old, new = load_yaml_value(old_text), load_yaml_value(new_text)
    old_space, new_space = old.get("space") or {}, new.get("space") or {}
    if not (isinstance(old_space, dict) and isinstance(new_space, dict)) or _rest(old) != _rest(new):
        return []
    old_limits, new_limits = old_space.get("constraints") or {}, new_space.get("constraints") or {}
    if not (isinstance(old_limits, dict) and isinstance(new_limits, dict)):
        return []
    changes = []
    if old_space.get("objectives") != new_space.get("objectives"):
        changes.append((FLAGS["objectives"], _objectives_text(old_space.get("objectives")),
                        _objectives_text(new_space.get("objectives"))))
    for key in sorted(set(old_limits) | set(new_limits), key=str):
        if old_limits.get(key) != new_limits.get(key):
            changes.append((FLAGS.get(key, f"constraints.{key}"), _limit_text(old_limits.get(key)),
                            _limit_text(new_limits.get(key))))
    return changes


def _rest(data: dict) -> dict:
    """A space file's data without the space's objectives and constraints."""
    space = {k: v for k, v in (data.get("space") or {}).items() if k not in ("objectives", "constraints")}
    return {**data, "space": space}


def _objectives_text(objectives) -> str:
    if objectives is None:
        return "unset (accuracy only)"
    return ",".join(map(str, objectives)) if isinstance(objectives, list) else short_repr(objectives)


def _limit_text(limit) -> str:
    if limit is None:
        return "unset"
    return f"{limit:g}" if isinstance(limit, (int, float)) and not isinstance(limit, bool) else short_repr(limit)


def directions(objectives: Sequence[str]) -> list[str]:
    return [OBJECTIVES[name].direction for name in objectives]


def trial_values(objectives: Sequence[str], val_acc: float, footprint: Optional[dict]) -> list[float]:
    """The values Optuna is told: accuracy, then each other objective read from the footprint."""
    values = [float(val_acc)]
    for name in objectives[1:]:  # bind_space refuses a student whose measured objectives cannot be measured
        values.append(float(footprint[OBJECTIVES[name].footprint]))
    return values


def violations(constraints: dict, footprint: Optional[dict]) -> dict[str, float]:
    """Optuna's constraint values, by constraint: how far each limit is exceeded (<= 0: met).
    Without a footprint (a pruned trial) every constraint counts as broken."""
    out = {}
    for key, limit in constraints.items():
        field, unit = CONSTRAINTS[key]
        measured = None if footprint is None else footprint.get(field)  # None: pruned, or not measurable
        out[key] = 1.0 if measured is None else float(measured) / unit - float(limit)
    return out


def feasible(constraints: dict, footprint: Optional[dict]) -> bool:
    return all(v <= 0 for v in violations(constraints, footprint).values())


def trial_constraints(spec, footprint: Optional[dict]) -> Optional[dict[str, float]]:
    """What a finished trial tells Optuna about the space's constraints (``Trial.set_constraint``,
    read by TPE and NSGA-II); None when the space has none."""
    return violations(spec.constraints, footprint) if spec.constraints else None


def pareto_front(points: list[tuple[int, list[float]]], objectives: Sequence[str]) -> list[int]:
    """The numbers of the points no other point dominates (better or equal in every objective,
    better in one); ``points`` are ``(number, values)``, values in ``objectives``' order."""
    signs = [1.0 if OBJECTIVES[name].direction == "maximize" else -1.0 for name in objectives]
    scored = [(number, [s * v for s, v in zip(signs, values)]) for number, values in points]

    def dominates(a: list[float], b: list[float]) -> bool:
        return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))

    return [n for n, a in scored if not any(dominates(b, a) for m, b in scored if m != n)]

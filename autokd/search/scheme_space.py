"""Schemes in a search space: which kinds the searcher may choose, and how each kind's knobs are searched.

    space:
      schemes: [single, born_again, mutual, online]   # default [single]
      scheme_knobs:                                   # optional; these are the defaults
        born_again: {generations: [2, 3]}
        mutual: {peers: [1, 2]}
        online: {peers: [1, 2]}

A knob (a field of the kind's dataclass in :mod:`autokd.config.schemes`) is a fixed value, a
list of choices, or for a number a range ``{low, high, log}``; knobs not given keep the kind's
defaults (above, or the dataclass's). Parameters: ``scheme`` (when more than one kind is listed)
and ``scheme[KIND].KNOB`` for each searched knob, asked only when the trial's scheme is KIND.
"""

from __future__ import annotations

import dataclasses
import itertools
import typing
from typing import Any, Callable

from autokd.config.parse import from_mapping
from autokd.config.schemes import SCHEME_TYPES, Scheme, scheme_from_dict
from autokd.errors import ConfigError, did_you_mean, short_repr
from autokd.search.space import FloatRange

# search defaults where they differ from the dataclass's own default
DEFAULT_KNOBS: dict[str, dict[str, Any]] = {
    "born_again": {"generations": [2, 3]},
    "mutual": {"peers": [1, 2]},
    "online": {"peers": [1, 2]},
}


def scheme_param(kind: str, knob: str) -> str:
    return f"scheme[{kind}].{knob}"


def parse_scheme_knobs(schemes: list[str], knobs: Any, where: str) -> dict[str, dict[str, Any]]:
    """Validate ``schemes`` and ``scheme_knobs``; returns every listed kind's knobs (defaults filled in),
    each a fixed value, a list of choices or a :class:`~autokd.search.space.FloatRange`."""
    if not schemes or not isinstance(schemes, list):
        raise ConfigError(f"{where}.schemes must list at least one of {', '.join(SCHEME_TYPES)}")
    for kind in schemes:
        if kind not in SCHEME_TYPES:
            raise ConfigError(f"{where}.schemes: unknown scheme {short_repr(kind)}{did_you_mean(str(kind), SCHEME_TYPES)}; "
                              f"known: {', '.join(SCHEME_TYPES)}")
    if len(set(schemes)) != len(schemes):
        raise ConfigError(f"{where}.schemes lists a scheme twice: {schemes}")
    if not isinstance(knobs, dict):
        raise ConfigError(f"{where}.scheme_knobs must be a mapping of scheme kind to its knobs, got {short_repr(knobs)}")
    for kind in knobs:
        if kind not in schemes:
            raise ConfigError(f"{where}.scheme_knobs.{kind}: {short_repr(kind)} is not in {where}.schemes ({', '.join(schemes)})")
    out: dict[str, dict[str, Any]] = {}
    for kind in schemes:
        given = knobs.get(kind) or {}
        if not isinstance(given, dict):
            raise ConfigError(f"{where}.scheme_knobs.{kind} must be a mapping of knob to value, list or range")
        fields = {f.name for f in dataclasses.fields(SCHEME_TYPES[kind])} - {"kind"}
        hints = typing.get_type_hints(SCHEME_TYPES[kind])
        out[kind] = {}
        for knob, setting in {**DEFAULT_KNOBS.get(kind, {}), **given}.items():
            at = f"{where}.scheme_knobs.{kind}.{knob}"
            if knob not in fields:
                raise ConfigError(f"unknown key {at}{did_you_mean(str(knob), fields)}; allowed: {', '.join(sorted(fields))}")
            if hints[knob] is float and isinstance(setting, dict):
                setting = from_mapping(FloatRange, setting, at).check(at)
                for end in (setting.low, setting.high):
                    _check_value(kind, knob, end, f"{where}.scheme_knobs.{kind}")
            elif isinstance(setting, list):
                if not setting or len({repr(v) for v in setting}) != len(setting):
                    raise ConfigError(f"{at} must list one or more distinct values, got {short_repr(setting)}")
                for i, value in enumerate(setting):
                    if value is not None and not isinstance(value, (bool, int, float, str)):
                        raise ConfigError(f"{at}[{i}]: a choice must be a number, a string, true/false or null, "
                                          f"got {short_repr(value)}")
                    _check_value(kind, knob, value, f"{where}.scheme_knobs.{kind}")
            else:
                _check_value(kind, knob, setting, f"{where}.scheme_knobs.{kind}")
            out[kind][knob] = setting
        _check_together(kind, out[kind], f"{where}.scheme_knobs.{kind}")
    return out


def _check_together(kind: str, knobs: dict[str, Any], where: str, limit: int = 1000) -> None:
    """Every combination of the knobs' choices (a range at its ends) must make a valid scheme."""
    options = {k: v if isinstance(v, list) else [v.low, v.high] if isinstance(v, FloatRange) else [v]
               for k, v in knobs.items()}
    for i, combo in enumerate(itertools.product(*options.values())):
        if i >= limit:
            return
        scheme_from_dict({"kind": kind, **dict(zip(options, combo))}, where)


def _check_value(kind: str, knob: str, value: Any, where: str) -> None:
    """One value of a knob must make a valid scheme on its own (``where``: the kind's knobs)."""
    scheme_from_dict({"kind": kind, knob: value}, where)


def scheme_dimensions(schemes: list[str], knobs: dict[str, dict[str, Any]]) -> list:
    """The searched parameters of the schemes: ``scheme`` and each searched knob (conditional on its kind)."""
    from autokd.search.strategy_space import Dimension  # (it imports this module)

    dims = [Dimension("scheme", choices=list(schemes))] if len(schemes) > 1 else []
    for kind in schemes:
        for knob, setting in knobs[kind].items():
            if isinstance(setting, list) and len(setting) > 1:
                dims.append(Dimension(scheme_param(kind, knob), choices=list(setting)))
            elif isinstance(setting, FloatRange):
                dims.append(Dimension(scheme_param(kind, knob), range=setting))
    return dims


def build_scheme(schemes: list[str], knobs: dict[str, dict[str, Any]], pick: Callable[[str, Any], Any]) -> Scheme:
    """The scheme ``pick(name, default)`` answers (only the chosen kind's knobs are asked)."""
    kind = pick("scheme", schemes[0])
    values = {}
    for knob, setting in knobs[kind].items():
        if isinstance(setting, list):
            values[knob] = pick(scheme_param(kind, knob), setting[0])
        elif isinstance(setting, FloatRange):
            values[knob] = float(pick(scheme_param(kind, knob), setting.low))
        else:
            values[knob] = setting
    return scheme_from_dict({"kind": kind, **values})


def scheme_values(scheme: Scheme) -> dict[str, Any]:
    """Every parameter value ``scheme`` implies, by parameter name (for placing a baseline in a space)."""
    return {"scheme": scheme.kind, **{scheme_param(scheme.kind, f.name): getattr(scheme, f.name)
                                      for f in dataclasses.fields(scheme) if f.name != "kind"}}

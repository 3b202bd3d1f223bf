"""Schemes in a search space: which kinds the searcher may choose, and how each kind's knobs are searched.

    space:
      schemes: [single, born_again, mutual, online]   # default [single]
      scheme_knobs:                                   # optional; these are the defaults
        born_again: {generations: [2, 3]}
        mutual: {peers: [1, 2]}
        online: {peers: [1, 2]}

A knob (a field of the kind's dataclass in :mod:`autokd.config.schemes`) is a fixed value, a
list of choices, or for a number a range ``{low, high, log}``; knobs not given keep the kind's
defaults (above, or the dataclass's). A mapping knob (``kwargs``, ``peer_kwargs``) may list
mappings: its parameter's choices are their JSON text (``{"channels": 96}``), as Optuna's
categorical choices must be plain values. Parameters: ``scheme`` (when more than one kind is listed)
and ``scheme[KIND].KNOB`` for each searched knob, asked only when the trial's scheme is KIND.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import typing
from typing import Any, Callable, Union

from autokd.config.parse import from_mapping
from autokd.config.schemes import SCHEME_TYPES, Scheme, scheme_from_dict
from autokd.errors import ConfigError, did_you_mean, short_repr
from autokd.search.space import FloatRange

# search defaults where they differ from the dataclass's own default
DEFAULT_KNOBS: dict[str, dict[str, Any]] = {
    "born_again": {"generations": [2, 3]},  # (assistant: no default, its model must be named)
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
            raise ConfigError(f"{where}.scheme_knobs.{kind}: {short_repr(kind)} is not one of the space's schemes "
                              f"({', '.join(schemes)}); list it under schemes, or drop its knobs")
    out: dict[str, dict[str, Any]] = {}
    for kind in schemes:
        given = knobs.get(kind) or {}
        if not isinstance(given, dict):
            raise ConfigError(f"{where}.scheme_knobs.{kind} must be a mapping of knob to value, list or range")
        out[kind] = _parse_kind(kind, {**DEFAULT_KNOBS.get(kind, {}), **given}, f"{where}.scheme_knobs.{kind}")
    return out


def _parse_kind(kind: str, raw: dict[str, Any], where: str) -> dict[str, Any]:
    """One kind's knobs, each checked against the kind's dataclass (the other knobs at their first value)."""
    fields = {f.name for f in dataclasses.fields(SCHEME_TYPES[kind])} - {"kind"}
    for knob in raw:
        if knob not in fields:
            raise ConfigError(f"unknown key {where}.{knob}{did_you_mean(str(knob), fields)}; "
                              f"allowed: {', '.join(sorted(fields))}")
    base = {k: v[0] if isinstance(v, list) and v else v.get("low") if isinstance(v, dict) and "low" in v else v
            for k, v in raw.items()}
    searched = {k for k, v in raw.items() if isinstance(v, (list, dict)) and len(v) > 1}  # knobs with choices
    parsed = {knob: _parse_knob(kind, knob, setting, base, where, searched) for knob, setting in raw.items()}
    _check_together(kind, parsed, where)
    return parsed


def _parse_knob(kind: str, knob: str, setting: Any, base: dict, where: str, searched: set) -> Any:
    hint, at = typing.get_type_hints(SCHEME_TYPES[kind])[knob], f"{where}.{knob}"

    def check(value: Any) -> None:  # one value must make a valid scheme with the other knobs' first values
        values = {**base, knob: value}
        try:
            scheme_from_dict({"kind": kind, **values}, where)
        except ConfigError as exc:
            others = {k: v for k, v in values.items() if k != knob and k in searched}
            if not others:
                raise
            scheme_from_dict({"kind": kind, knob: value}, where)  # the value alone is bad: its own message
            raise _with_choices(kind, {knob: value, **others}, where, exc) from None

    if hint is float and isinstance(setting, dict):
        setting = from_mapping(FloatRange, setting, at).check(at)
        check(setting.low), check(setting.high)
        return setting
    if _is_mapping_knob(hint) and isinstance(setting, list):
        return _mapping_choices(setting, at, check)
    if _takes_numbers(hint) and isinstance(setting, list) and setting and all(_is_number(v) for v in setting):
        check(setting)  # a knob that is a list of numbers (ensemble weights): this list, fixed
        return tuple(setting)
    if isinstance(setting, list):
        if not setting or len({_choice_key(v) for v in setting}) != len(setting):
            raise ConfigError(f"{at} must list one or more distinct values, got {short_repr(setting)}")
        for i, value in enumerate(setting):
            if value is not None and not isinstance(value, (bool, int, float, str)):
                raise ConfigError(f"{at}[{i}]: a choice must be a number, a string, true/false or null, "
                                  f"got {short_repr(value)}")
            check(value)
        return setting
    check(setting)
    return setting


def _choice_key(value: Any) -> tuple:
    """Equal for choices the scheme cannot tell apart (2 and 2.0), apart for true and 1."""
    if _is_number(value):
        return "number", float(value)
    return type(value).__name__, value if isinstance(value, (str, bool, type(None))) else repr(value)


def _is_mapping_knob(hint) -> bool:
    return hint is dict or typing.get_origin(hint) is dict


def _takes_numbers(hint) -> bool:
    """A knob whose value may be a list of numbers (ensemble weights)."""
    return typing.get_origin(hint) is Union and any(typing.get_origin(a) is list for a in typing.get_args(hint))


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _mapping_choices(setting: list, at: str, check: Callable[[Any], None]) -> list[str]:
    """Mapping choices as their JSON text (Optuna's choices are plain values)."""
    if not setting or not all(isinstance(v, dict) for v in setting):
        raise ConfigError(f"{at} must be a mapping or a list of mappings, got {short_repr(setting)}")
    texts = [json.dumps(v, sort_keys=True) for v in setting]
    if len(set(texts)) != len(texts):
        raise ConfigError(f"{at} lists a mapping twice: {short_repr(setting)}")
    for value in setting:
        check(value)
    return texts


def _decoded(knob_hint, value: Any) -> Any:
    return json.loads(value) if _is_mapping_knob(knob_hint) and isinstance(value, str) else value


def _check_together(kind: str, knobs: dict[str, Any], where: str, limit: int = 1000) -> None:
    """Every combination of the knobs' choices (a range at its ends) must make a valid scheme."""
    hints = typing.get_type_hints(SCHEME_TYPES[kind])
    options = {k: v if isinstance(v, list) else [v.low, v.high] if isinstance(v, FloatRange)
               else [list(v)] if isinstance(v, tuple) else [v] for k, v in knobs.items()}
    for i, combo in enumerate(itertools.product(*options.values())):
        if i >= limit:
            return
        values = {k: _decoded(hints[k], v) for k, v in zip(options, combo)}
        try:
            scheme_from_dict({"kind": kind, **values}, where)
        except ConfigError as exc:
            chosen = {k: v for k, v in values.items() if len(options[k]) > 1}
            if not chosen:  # no choice involved (a knob missing): the scheme's own message says it
                raise
            raise _with_choices(kind, chosen, where, exc) from None


def _with_choices(kind: str, values: dict[str, Any], where: str, exc: ConfigError) -> ConfigError:
    """``exc`` (a scheme made of one combination of the space's choices is invalid) naming the combination."""
    combination = ", ".join(f"{k} {short_repr(v, 60)}" for k, v in values.items())
    reason = str(exc)[len(where) + 1:] if str(exc).startswith(where + ".") else str(exc)  # the path once
    return ConfigError(f"{where}: the choices {combination} together make no valid {kind} scheme ({reason}); "
                       f"drop one of them")


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
    hints = typing.get_type_hints(SCHEME_TYPES[kind])
    values = {}
    for knob, setting in knobs[kind].items():
        if isinstance(setting, list):
            values[knob] = _decoded(hints[knob], pick(scheme_param(kind, knob), setting[0]))
        elif isinstance(setting, FloatRange):
            values[knob] = float(pick(scheme_param(kind, knob), setting.low))
        else:
            values[knob] = list(setting) if isinstance(setting, tuple) else setting
    return scheme_from_dict({"kind": kind, **values})


def scheme_values(scheme: Scheme) -> dict[str, Any]:
    """Every parameter value ``scheme`` implies, by parameter name (for placing a baseline in a space)."""
    hints = typing.get_type_hints(type(scheme))

    def value(name: str) -> Any:
        v = getattr(scheme, name)
        return json.dumps(v, sort_keys=True) if _is_mapping_knob(hints[name]) else v

    return {"scheme": scheme.kind, **{scheme_param(scheme.kind, f.name): value(f.name)
                                      for f in dataclasses.fields(scheme) if f.name != "kind"}}

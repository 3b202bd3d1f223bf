"""Strict conversion between plain mappings (from YAML) and dataclasses.

Unknown keys, missing required keys and wrong types are reported with the key's full
path (``task.data.num_samples``) and what is allowed. Values are not evaluated.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Union

from autokd.errors import ConfigError, did_you_mean, key_text, short_repr


def from_mapping(cls: type, data: Any, where: str) -> Any:
    """Build dataclass ``cls`` from ``data``, checking keys and types; ``where`` names the section."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping, got {_describe(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            raise ConfigError(
                f"unknown key {where}.{key_text(key)}{did_you_mean(key, fields)}; allowed: {', '.join(fields)}"
            )
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, field in fields.items():
        if name in data:
            kwargs[name] = convert(hints[name], data[name], f"{where}.{name}")
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing key {where}.{name}")
    return cls(**kwargs)


def to_mapping(obj: Any) -> Any:
    """Dataclasses to plain dicts/lists (the inverse of :func:`from_mapping`)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_mapping(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_mapping(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_mapping(v) for k, v in obj.items()}
    return obj


def convert(hint: Any, value: Any, where: str) -> Any:
    """Check ``value`` against the type ``hint`` and convert it (ints are accepted for floats)."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        real = [option for option in options if option is not type(None)]
        if len(real) == 1:  # Optional[X]: X's own, located error
            return convert(real[0], value, where)
        if float in options and isinstance(value, (int, float)) and not isinstance(value, bool):
            finite_float(value, where)  # NaN is "not a finite number", not "not an integer or a number"
        errors = []
        for option in real:
            try:
                return convert(option, value, where)
            except ConfigError as exc:
                errors.append((option, exc))
        shaped = [exc for option, exc in errors if _same_shape(option, value)]
        if len(shaped) == 1:  # a list where a list may go: the error inside it ("weights[0] must be finite")
            raise shaped[0]
        raise ConfigError(f"{where} must be {_type_name(hint)}, got {_describe(value)}")
    if dataclasses.is_dataclass(hint):
        return from_mapping(hint, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list, got {_describe(value)}")
        (item,) = typing.get_args(hint) or (Any,)
        return [convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping, got {_describe(value)}")
        return dict(value)
    if hint is Any:
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {_describe(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {_describe(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {_describe(value)}")
        return finite_float(value, where)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {_describe(value)}")
        return value
    raise TypeError(f"unsupported type hint {hint!r} at {where}")  # a bug in autokd, not user input


def finite_float(value: Any, where: str) -> float:
    """``value`` as a float; NaN, infinities and ints beyond the float range are a ConfigError."""
    try:
        number = float(value)
    except OverflowError:  # an int of hundreds of digits
        number = math.inf
    if not math.isfinite(number):
        raise ConfigError(f"{where} must be a finite number, got {short_repr(value)}")
    return number


def _same_shape(hint: Any, value: Any) -> bool:
    """``value`` is the container ``hint`` asks for (a list for a list, a mapping for a mapping or a dataclass)."""
    if isinstance(value, list):
        return typing.get_origin(hint) is list
    if isinstance(value, dict):
        return typing.get_origin(hint) is dict or hint is dict or dataclasses.is_dataclass(hint)
    return False


def _type_name(hint: Any) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    if typing.get_origin(hint) in (Union, types.UnionType):
        return " or ".join(_type_name(a) if a is not type(None) else "null" for a in typing.get_args(hint))
    if typing.get_origin(hint) is list:
        return "a list"
    return names.get(hint, "a mapping")


def _describe(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return f"a {'mapping' if isinstance(value, dict) else 'list'}"
    return f"{short_repr(value)} ({type(value).__name__})"

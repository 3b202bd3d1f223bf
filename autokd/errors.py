"""User-facing errors.

Anything a user can get wrong (a bad flag, a bad config value, a missing file) raises
:class:`AutokdError`. The CLI prints its message on one line and exits with code 2;
library users catch it like any other exception.

Messages echo user values through :func:`short_repr`, so a huge (or alias-shared, or
self-referential) value never makes a huge message.
"""

from __future__ import annotations

from typing import Any

ECHO_LIMIT = 100  # characters of a user value an error message echoes


class AutokdError(Exception):
    """A mistake in the user's input: the message names the bad thing and what is allowed."""


class ConfigError(AutokdError):
    """A config or search-space file that does not validate."""


def short_repr(value: Any, limit: int = ECHO_LIMIT) -> str:
    """``repr(value)`` cut to about ``limit`` characters, ending in ``...`` when cut.

    Containers are walked with a budget: the full repr of a huge, deeply nested,
    alias-shared or self-referential structure is never built.
    """
    parts: list[str] = []
    budget = [limit + 1]  # one more than the limit tells "cut" from "exactly the limit"
    _walk(value, parts, budget)
    text = "".join(parts)
    text = " ".join(text.split()) if any(c in text for c in "\n\r\t") else text
    return text if len(text) <= limit else text[: max(limit - 3, 0)] + "..."


def _emit(text: str, parts: list[str], budget: list[int]) -> bool:
    """Append ``text`` (cut to the budget); False once the budget is spent."""
    if budget[0] <= 0:
        return False
    parts.append(text[: budget[0]])
    budget[0] -= len(text)
    return budget[0] > 0


_BRACKETS = {list: ("[", "]"), tuple: ("(", ")"), set: ("{", "}"), frozenset: ("frozenset({", "})"), dict: ("{", "}")}


def _walk(value: Any, parts: list[str], budget: list[int]) -> bool:
    kind = next((k for k in _BRACKETS if isinstance(value, k)), None)
    if kind is None:
        return _emit(_scalar_repr(value, budget[0]), parts, budget)
    opening, closing = _BRACKETS[kind]
    if kind in (set, frozenset) and not value:
        return _emit(f"{type(value).__name__}()", parts, budget)
    if not _emit(opening, parts, budget):
        return False
    items = value.items() if kind is dict else value
    for i, item in enumerate(items):
        if i and not _emit(", ", parts, budget):
            return False
        if kind is dict:
            if not _walk(item[0], parts, budget) or not _emit(": ", parts, budget):
                return False
            item = item[1]
        if not _walk(item, parts, budget):
            return False
    if kind is tuple and len(value) == 1 and not _emit(",", parts, budget):
        return False
    return _emit(closing, parts, budget)


def _scalar_repr(value: Any, room: int) -> str:
    """repr of a leaf, without building more than ``room`` characters for strings, bytes and ints."""
    if isinstance(value, (str, bytes)):
        return repr(value[: max(room, 0) + 1])
    if isinstance(value, int) and not isinstance(value, bool):
        digits = int(value.bit_length() * 0.30103) + 1  # about; str() of a huge int is slow, or refused
        if digits > max(room, 20):
            return f"<an integer of about {digits} digits>"
    try:
        return repr(value)
    except Exception:  # a broken __repr__ of a user object
        return f"<{type(value).__name__}>"


def key_text(key: Any, limit: int = 60) -> str:
    """A mapping key as written in a key path (``task.data.num_sampels``): plain when it is a
    short printable name, else a cut repr."""
    if isinstance(key, str) and len(key) <= limit and key.isprintable():
        return key
    return short_repr(key, limit)


def did_you_mean(value, allowed) -> str:
    """Return ' (did you mean X?)' for a close match in ``allowed``, or ''."""
    import difflib

    text = value if isinstance(value, str) else short_repr(value)
    if len(text) > ECHO_LIMIT:  # fuzzy matching is quadratic in the length: no guesses for huge values
        return ""
    match = difflib.get_close_matches(text, [str(a) for a in allowed], n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _value_and_known(value, allowed) -> str:
    """``'foo' (did you mean 'fo'?); known: a, b, ...`` (at most 40 listed)."""
    allowed = sorted(str(a) for a in allowed)
    listing = ", ".join(allowed) if len(allowed) <= 40 else ", ".join(allowed[:40]) + ", ..."
    return f"{short_repr(value)}{did_you_mean(value, allowed)}; known: {listing}"


def unknown_at(where: str, value, allowed) -> AutokdError:
    """:func:`unknown` for a config key: ``x.yaml: strategy.logit_loss: unknown value 'foo' ...``."""
    return AutokdError(f"{where}: unknown value {_value_and_known(value, allowed)}")


def unknown(kind: str, value, allowed) -> AutokdError:
    """An error for an unknown name: names the value, suggests a match, lists what is allowed."""
    return AutokdError(f"unknown {kind} {_value_and_known(value, allowed)}")

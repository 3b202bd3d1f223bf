"""User-facing errors.

Anything a user can get wrong (a bad flag, a bad config value, a missing file) raises
:class:`AutokdError`. The CLI prints its message on one line and exits with code 2;
library users catch it like any other exception.
"""


class AutokdError(Exception):
    """A mistake in the user's input: the message names the bad thing and what is allowed."""


class ConfigError(AutokdError):
    """A config or search-space file that does not validate."""


def did_you_mean(value: str, allowed) -> str:
    """Return ' (did you mean X?)' for a close match in ``allowed``, or ''."""
    import difflib

    match = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


def unknown(kind: str, value, allowed) -> AutokdError:
    """An error for an unknown name: names the value, suggests a match, lists what is allowed."""
    allowed = sorted(str(a) for a in allowed)
    listing = ", ".join(allowed) if len(allowed) <= 40 else ", ".join(allowed[:40]) + ", ..."
    return AutokdError(f"unknown {kind} {value!r}{did_you_mean(value, allowed)}; known: {listing}")

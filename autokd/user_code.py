"""A user's own code named ``package.module:callable`` (a model, a data source): imported with
:mod:`importlib`, and fingerprinted by its source file so that caches notice when it changes.

Importing runs the module's code: name only modules you trust (the same rule as ``pip install``).
The working folder is put on ``sys.path`` (a console script leaves it out; users expect it there).
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import os
import sys
from typing import Any, Callable

from autokd.errors import AutokdError, short_repr


def named(name: Any) -> str:
    return short_repr(name, 80)


def one_line(exc: BaseException) -> str:
    """An exception as one line (``sys.exit`` said as such)."""
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({short_repr(exc.code, 40)})"
    text = " ".join(str(exc).split())
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def import_callable(spec: str, what: str = "model") -> Callable:
    """The callable ``package.module:attr`` names; every failure (``sys.exit`` included) is a
    one-line AutokdError starting with ``what``."""
    label = f"{what} {named(spec)}"
    module_name, _, attr_path = spec.partition(":")
    if not module_name or not attr_path or ":" in attr_path:
        raise AutokdError(f"{label}: user code is written 'package.module:callable'")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())
    try:
        obj = importlib.import_module(module_name)
    except (Exception, SystemExit) as exc:
        raise AutokdError(f"{label}: cannot import module {short_repr(module_name)}: {one_line(exc)}") from None
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AutokdError(
                f"{label}: module {short_repr(module_name)} has no attribute {short_repr(attr_path)}") from None
        except (Exception, SystemExit) as exc:
            raise AutokdError(f"{label}: reading {short_repr(attr_path)} failed: {one_line(exc)}") from None
    if not callable(obj):
        raise AutokdError(f"{label}: {short_repr(attr_path)} is not callable (got {type(obj).__name__})")
    return obj


def source_fingerprint(spec: str) -> str:
    """A hash of the source files of ``package.module:callable``: its module's file and the file that
    defines the callable (another one when a package's ``__init__`` re-exports it); empty when there is
    none (built-in or compiled code). Modules those files import in turn are not hashed."""
    obj = import_callable(spec)
    module = sys.modules.get(spec.partition(":")[0])
    paths = []
    for source in (module, obj):
        try:
            path = inspect.getsourcefile(source)
        except TypeError:  # built in, or an object inspect cannot place
            continue
        if path and os.path.isfile(path) and path not in paths:
            paths.append(path)
    if not paths:
        return ""
    digest = hashlib.sha256()
    for i, path in enumerate(paths):
        if i:  # one file hashes as its bytes alone: caches keyed by it before stay valid
            digest.update(b"\0next file\0")
        with open(path, "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()[:16]

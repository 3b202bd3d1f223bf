"""A Python callable as a task's data: ``data.callable: package.module:function``.

The function is called with no arguments and returns NumPy arrays or tensors: a mapping with
the names of :mod:`autokd.data.arrays` (``x_train``, ``y_train``, ``x_test``, ``y_test``,
optionally ``x_val``, ``y_val``; renamed with ``data.keys``), or a tuple ``(x_train, y_train,
x_test, y_test)``. Importing and calling it runs its code: the same trust rule as for a
``package.module:callable`` model (name only code you trust).
"""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import AutokdError, short_repr


def load_python(spec) -> dict:
    from autokd.user_code import import_callable, one_line

    from .arrays import NAMES, REQUIRED, check_mapped, key_names

    label = f"data.callable {short_repr(spec.callable, 80)}"
    function = import_callable(spec.callable, "data.callable")
    try:
        out = function()
    except (Exception, SystemExit) as exc:
        raise AutokdError(f"{label}: calling it failed: {one_line(exc)}") from None
    if isinstance(out, Mapping):
        names = key_names(spec.keys)
        arrays = {std: out[name] for std, name in names.items() if name in out}
        missing = [repr(names[std]) for std in REQUIRED if std not in arrays]
        if missing:
            raise AutokdError(f"{label} returned a mapping without {' and '.join(missing)} "
                              f"(it has {', '.join(map(str, list(out)[:10])) or 'nothing'})")
        check_mapped(spec.keys, arrays, f"{label} returned a mapping that")
        return arrays
    if isinstance(out, (tuple, list)) and len(out) in (4, 6):
        return dict(zip(NAMES, out))
    raise AutokdError(f"{label} returned {type(out).__name__}; return a mapping of arrays (x_train, y_train, "
                      "x_test, y_test) or the tuple (x_train, y_train, x_test, y_test)")

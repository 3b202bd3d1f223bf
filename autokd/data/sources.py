"""A user's own data (``arrays``, ``table``, ``python``): one reader per source, registered in
:data:`READERS`, each returning named arrays that :func:`autokd.data.arrays.as_task_arrays`
checks and turns into a task's tensors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from autokd.errors import short_repr

from .arrays import as_task_arrays, read_array_file
from .python_source import load_python
from .table import load_table


def _arrays(spec) -> dict:
    return read_array_file(spec.path, spec.keys)


READERS: dict[str, Callable] = {"arrays": _arrays, "table": load_table, "python": load_python}
SOURCE_LABELS = {"arrays": "data.path", "table": "data.path", "python": "data.callable"}


def load_user_source(spec, progress=None) -> dict:
    """The raw data of a user source (``x``, ``y``, ``x_test``, ``y_test``, ``classes``, ...)."""
    if progress is not None:
        progress(f"reading {spec.name} data from {spec.path or spec.callable}")
    where = f"{SOURCE_LABELS[spec.name]} " + (spec.path or short_repr(spec.callable, 80))  # a callable quoted, as elsewhere
    return as_task_arrays(READERS[spec.name](spec), spec, where)


_PEEKED: dict[str, tuple] = {}


def peek(spec) -> tuple[tuple[int, ...], int]:
    """(per-sample shape, number of classes) of a user source, read once per process and file state."""
    key = json.dumps([spec.__dict__, _file_state(spec.path), _file_state(spec.test_path)], sort_keys=True, default=str)
    if key not in _PEEKED:
        raw = load_user_source(spec)
        _PEEKED[key] = (tuple(raw["input_shape"]), len(raw["classes"]))
    return _PEEKED[key]


def _file_state(path) -> list:
    if not path:
        return []
    file = Path(path).expanduser()
    files = sorted(file.glob("*.npy")) if file.is_dir() else [file]
    return [[str(f), f.stat().st_size, f.stat().st_mtime_ns] for f in files if f.exists()]

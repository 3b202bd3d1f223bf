"""What a search ships to its Ray workers once: the data and the cached teacher outputs, in a form
every worker maps from Ray's object store instead of holding its own copy.

Ray hands a NumPy array to each worker as a read-only view of the object store's shared memory
(no copy); a torch tensor it unpickles into each worker's own memory. So the tensors of the data
splits and of the teacher cache travel as NumPy arrays (:func:`for_workers`) and become tensors
again in the worker (:func:`in_worker`), sharing that memory: with K workers the data and the
cache are held once, not K times. The training code only reads them (batches are gathered
copies), which is what a read-only view allows.
"""

from __future__ import annotations

import copy
import dataclasses
import warnings
from typing import Any

import numpy as np
import torch


class _Shipped:
    """A CPU tensor's contents as a NumPy array, marked so that only these become tensors again."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray):
        self.array = array

    def __getstate__(self):
        return self.array

    def __setstate__(self, array):
        self.array = array


def for_workers(obj: Any) -> Any:
    """``obj`` (dataclasses, dicts, lists and tuples of them, down to tensors: a prepared task, a teacher
    cache) with its CPU tensors as shipped NumPy arrays; a tensor NumPy cannot hold (bfloat16, on a
    GPU, needing grad) stays, and so does anything else (a model keeps its parameters)."""
    return _walk(obj, _ship)


def in_worker(obj: Any) -> Any:
    """The inverse of :func:`for_workers`, in the worker: tensors over the shipped arrays (no copy)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return _walk(obj, _land)


def _ship(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and value.device.type == "cpu" and not value.requires_grad:
        try:
            return _Shipped(value.contiguous().numpy())
        except TypeError:  # a dtype NumPy does not have
            return value
    return value


def _land(value: Any) -> Any:
    return torch.from_numpy(value.array) if isinstance(value, _Shipped) else value


def _walk(obj: Any, convert) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = copy.copy(obj)  # not rebuilt: its checks (__post_init__) ran when it was made
        for f in dataclasses.fields(obj):
            object.__setattr__(out, f.name, _walk(getattr(obj, f.name), convert))
        return out
    if isinstance(obj, dict):
        return {key: _walk(value, convert) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)) and not hasattr(obj, "_fields"):  # a named tuple stays as it is
        return type(obj)(_walk(value, convert) for value in obj)
    return convert(obj)

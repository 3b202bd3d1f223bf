"""Checks of a user's loaded data, each failure one line naming the split and what is wrong:
lengths that differ, non-finite features, labels that are not whole numbers 0..C-1 (or names)."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import AutokdError

MAX_CLASSES = 100_000
FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_features(x: np.ndarray, y: np.ndarray, split: str, source: str) -> None:
    if len(x) != len(y):
        raise AutokdError(f"{source}: x_{split} has {len(x):,} samples but y_{split} has {len(y):,} labels; "
                          f"they must match")
    if x.ndim < 2:
        raise AutokdError(f"{source}: x_{split} must be one array per sample (shape (N, ...), e.g. (N, features)), "
                          f"got shape {x.shape}")
    if y.ndim != 1:
        raise AutokdError(f"{source}: y_{split} must be one label per sample (shape (N,)), got shape {y.shape}")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise AutokdError(f"{source}: x_{split} must hold numbers, got dtype {x.dtype}")
    if np.issubdtype(x.dtype, np.complexfloating):  # casting to float would drop the imaginary part
        raise AutokdError(f"{source}: x_{split} holds complex numbers (dtype {x.dtype}); give real features, e.g. "
                          f"the real and imaginary parts as two channels")
    if np.issubdtype(x.dtype, np.floating):
        bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        if bad:
            raise AutokdError(f"{source}: x_{split} holds {bad:,} NaN or infinite value(s); clean or impute them first")
        if x.dtype.itemsize > 4:  # inputs become float32: a larger value would turn infinite there
            big = int(np.count_nonzero(np.abs(x) > FLOAT32_MAX))
            if big:
                raise AutokdError(f"{source}: x_{split} holds {big:,} value(s) beyond float32's range (about "
                                  f"±3.4e38), which training's float32 would make infinite; rescale the features")


def encode_labels(labels: dict[str, np.ndarray], source: str) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Labels as int64 tensors 0..C-1, and the class names. Whole numbers (also in an object array,
    as pandas gives them) must already be 0..C-1 with every class in train; strings (names) are
    numbered in sorted order of train's names (numeric order when every name is a whole number)."""
    labels = {split: _numbers_of_objects(y) for split, y in labels.items()}
    train = labels["train"]
    if train.dtype.kind in "USO":  # names
        classes = sorted({str(v) for v in train})
        if all(_canonical_int(name) for name in classes):  # "2" before "10", as the numbers they are
            classes.sort(key=int)
        if len(classes) < 2:
            raise AutokdError(f"{source}: y_train holds a single class ({classes}); a classifier needs two or more")
        index = {name: i for i, name in enumerate(classes)}
        out = {}
        for split, y in labels.items():
            unknown = sorted({str(v) for v in y} - set(classes))
            if unknown:
                raise AutokdError(f"{source}: y_{split} has label(s) {unknown[:5]} that y_train does not; every class "
                                  f"must appear in training")
            out[split] = torch.tensor([index[str(v)] for v in y], dtype=torch.long)
        return out, classes
    out = {split: _whole(y, split, source) for split, y in labels.items()}
    top = int(out["train"].max())
    if top < 1:
        raise AutokdError(f"{source}: y_train holds a single class; a classifier needs two or more")
    present = set(out["train"].unique().tolist())
    missing = sorted(set(range(top + 1)) - present)
    if missing:
        raise AutokdError(f"{source}: labels must be 0..C-1 with every class in y_train; classes {missing[:10]} of "
                          f"0..{top} never occur (renumber the labels, or give them as names)")
    for split, y in out.items():
        if int(y.max()) > top:
            raise AutokdError(f"{source}: y_{split} has label {int(y.max())}, but y_train's classes are 0..{top}")
    return out, [str(i) for i in range(top + 1)]


def _canonical_int(name: str) -> bool:
    return name.lstrip("-").isdecimal() and name.isascii() and str(int(name)) == name


def _numbers_of_objects(y: np.ndarray) -> np.ndarray:
    """An object array holding only numbers (pandas' object columns, ``.astype(object)``) as a
    numeric array: its labels are whole numbers, not names sorted as text ('10' before '2')."""
    import numbers

    if y.dtype != object or len(y) == 0 or not all(isinstance(v, numbers.Number) for v in y.ravel()):
        return y
    if all(isinstance(v, numbers.Integral) for v in y.ravel()):
        values = [int(v) for v in y.ravel()]
        wide = any(abs(v) > 2**62 for v in values)  # refused as too large a label, not wrapped around
        return np.array(values, dtype=np.float64 if wide else np.int64).reshape(y.shape)
    return np.array(y.tolist(), dtype=np.float64)


def _whole(y: np.ndarray, split: str, source: str) -> torch.Tensor:
    if y.dtype == np.bool_:
        y = y.astype(np.int64)
    if not np.issubdtype(y.dtype, np.number):
        found = "names (text)" if y.dtype.kind in "USO" else f"dtype {y.dtype}"
        raise AutokdError(f"{source}: y_{split} must hold whole-number labels as y_train does, got {found}")
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise AutokdError(f"{source}: y_{split} holds labels that are not whole numbers (e.g. "
                              f"{y[~(np.isfinite(y) & (y == np.round(y)))][:3].tolist()})")
    low, high = y.min().item(), y.max().item()  # checked before the cast: 1e20 or 2**63 would wrap in int64
    if low < 0:
        raise AutokdError(f"{source}: y_{split} has the negative label {low!r}; labels are 0..C-1")
    if high >= MAX_CLASSES:
        raise AutokdError(f"{source}: y_{split}'s largest label is {high!r}; labels are 0..C-1, at most "
                          f"{MAX_CLASSES:,} classes")
    return torch.from_numpy(np.array(y, dtype=np.int64))  # a copy: labels are small, and a memory map is read-only

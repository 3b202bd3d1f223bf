"""A user's arrays as a task's data: a ``.npz`` file, a folder of ``.npy`` files, or the arrays a
Python callable returns (:mod:`autokd.data.python_source`).

Names (configurable with ``data.keys``): ``x_train``, ``y_train``, ``x_test``, ``y_test`` and
optionally ``x_val``, ``y_val``. Without a test pair a seeded ``test_fraction`` of train is held
out; without a validation pair ``val_size`` is carved out of train as for every source. Inputs
may have any per-sample shape (vectors, signals ``(C, L)``, images ``(C, H, W)``); ``uint8``
inputs are kept as bytes and scaled to [0, 1] per batch, others become float32 as given (no
normalisation). ``.npy`` files are memory-mapped, not read whole into memory
first (the train, validation and test splits a run holds are copies of their rows).
"""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from ..errors import AutokdError, short_repr

NAMES = ("x_train", "y_train", "x_test", "y_test", "x_val", "y_val")
REQUIRED = ("x_train", "y_train")


def key_names(keys: Mapping) -> dict[str, str]:
    """Each array's name in the file: the standard name unless ``data.keys`` renames it."""
    return {name: str(keys.get(name, name)) for name in NAMES}


def read_array_file(path: str, keys: Mapping) -> dict[str, np.ndarray]:
    """The arrays of a ``.npz`` file or of a folder of ``NAME.npy`` files (memory-mapped)."""
    base, names = Path(path).expanduser(), key_names(keys)
    if base.is_dir():
        found = {std: _load_npy(base / f"{name}.npy") for std, name in names.items() if (base / f"{name}.npy").is_file()}
        where = f"folder {base} (files NAME.npy)"
    elif base.is_file():
        _check_npz_magic(base)
        try:
            with np.load(base, allow_pickle=False) as archive:
                found = {std: archive[name] for std, name in names.items() if name in archive.files}
                stored = list(archive.files)
        except UNREADABLE as exc:
            raise AutokdError(f"data.path {base}: not a readable .npz file ({type(exc).__name__}: "
                              f"{str(exc)[:150]})") from None
        where = f"file {base} (holds {', '.join(stored) or 'no arrays'})"
    else:
        raise AutokdError(f"data.path {base} does not exist: name a .npz file or a folder of .npy files")
    missing = [names[n] for n in REQUIRED if n not in found]
    if missing:
        raise AutokdError(f"data.path: the {where} has no {' or '.join(missing)}; name them with data.keys "
                          f"(e.g. keys: {{x_train: X, y_train: y}})")
    check_mapped(keys, found, f"data.path: the {where}")
    return found


# what NumPy raises on a damaged, truncated or pickled file
UNREADABLE = (OSError, ValueError, EOFError, zipfile.BadZipFile, NotImplementedError)


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except UNREADABLE as exc:
        raise AutokdError(f"data.path: {path} is not a readable .npy array of numbers or names ({type(exc).__name__}: "
                          f"{str(exc)[:150]}); save it with np.save from a non-object array") from None


def check_mapped(keys: Mapping, found: Mapping, where: str) -> None:
    """Every array ``data.keys`` names explicitly must be there: a renamed test or validation pair that is
    missing would otherwise be replaced, silently, by a hold-out of train."""
    lost = [f"{std}: {short_repr(name, 40)}" for std, name in keys.items() if std not in found]
    if lost:
        raise AutokdError(f"{where} has no array for data.keys {{{', '.join(lost)}}}; fix the names in data.keys "
                          f"(or drop those keys)")


def _check_npz_magic(path: Path) -> None:
    """A .npz is a zip archive; anything else would reach NumPy's pickle refusal, a confusing message."""
    try:
        with path.open("rb") as f:
            head = f.read(6)
    except OSError:
        return  # np.load names the failure
    if head.startswith(b"\x93NUMPY"):
        raise AutokdError(f"data.path {path}: a single .npy array; give a .npz file (np.savez(path, x_train=..., "
                          f"y_train=...)) or a folder of NAME.npy files")
    if not head.startswith(b"PK"):
        raise AutokdError(f"data.path {path}: not a .npz file (a zip archive of arrays, as np.savez writes)")


def as_task_arrays(arrays: Mapping[str, object], spec, source: str) -> dict:
    """Checked tensors and classes from the arrays (test held out when absent), as ``_load_raw`` returns."""
    from .checks import check_features, encode_labels

    x, y = _numpy(arrays["x_train"], "x_train", source), _numpy(arrays["y_train"], "y_train", source)
    x_test, y_test = _pair(arrays, "test", source)
    x_val, y_val = _pair(arrays, "val", source)
    check_features(x, y, "train", source)
    if x_test is None:
        x, y, x_test, y_test = _hold_out(x, y, spec.test_fraction, spec.seed, source)
    splits = {"train": (x, y), "test": (x_test, y_test), **({"val": (x_val, y_val)} if x_val is not None else {})}
    for split, (xs, ys) in list(splits.items())[1:]:
        check_features(xs, ys, split, source)
    _check_same_scaling({split: xs.dtype for split, (xs, _) in splits.items()}, source)
    shapes = {split: tuple(xs.shape[1:]) for split, (xs, _) in splits.items()}
    if len(set(shapes.values())) > 1:
        raise AutokdError(f"{source}: the splits' samples have different shapes ({shapes}); they must match")
    _warn_channels_last(shapes["train"], source)
    labels, classes = encode_labels({split: ys for split, (_, ys) in splits.items()}, source)
    raw = {"x": _tensor(x), "y": labels["train"], "x_test": _tensor(x_test), "y_test": labels["test"],
           "classes": classes, "input_shape": shapes["train"], "normalize": None}
    if x_val is not None:
        raw.update(x_val=_tensor(x_val), y_val=labels["val"])
    return raw


def _warn_channels_last(shape: tuple, source: str) -> None:
    """Samples are read channels first, (C, H, W): images stored (H, W, C) with 1, 3 or 4 channels
    would train as H channels of W x C, silently. Said, not refused (the shape may be meant)."""
    import warnings

    if len(shape) == 3 and shape[2] in (1, 3, 4) and shape[0] > 4 and shape[0] == shape[1]:
        warnings.warn(f"{source}: samples of shape {shape} are read channels first, as {shape[0]} channels of "
                      f"{shape[1]}x{shape[2]}; if they are images with {shape[2]} channel(s) last, store them as "
                      f"(N, {shape[2]}, {shape[0]}, {shape[1]}) (np.moveaxis(x, -1, 1))", RuntimeWarning, stacklevel=3)


def _check_same_scaling(dtypes: dict, source: str) -> None:
    """uint8 inputs are scaled to [0, 1], others used as given: splits of both kinds would be scaled apart."""
    byte = [split for split, dtype in dtypes.items() if dtype == np.uint8]
    other = [split for split in dtypes if split not in byte]
    if byte and other:
        raise AutokdError(f"{source}: x_{byte[0]} is uint8 (bytes, scaled to [0, 1]) but x_{other[0]} is "
                          f"{dtypes[other[0]]} (used as given), so they would be scaled differently; store every "
                          f"split with one dtype")


def _pair(arrays, split: str, source: str):
    x, y = arrays.get(f"x_{split}"), arrays.get(f"y_{split}")
    if (x is None) != (y is None):
        raise AutokdError(f"{source}: x_{split} and y_{split} come together; it has only "
                          f"{'x' if x is not None else 'y'}_{split}")
    if x is None:
        return None, None
    return _numpy(x, f"x_{split}", source), _numpy(y, f"y_{split}", source)


def _numpy(value, name: str, source: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = _tensor_numpy(value, name, source)
    try:
        array = np.asarray(value)
    except Exception as exc:
        raise AutokdError(f"{source}: {name} is not an array ({type(value).__name__}: {exc})") from None
    if array.dtype == object and name.startswith("x"):
        raise AutokdError(f"{source}: {name} holds Python objects, not numbers (dtype object)")
    if array.ndim == 0:
        raise AutokdError(f"{source}: {name} is a single value ({short_repr(array.item(), 40)}), not an array with "
                          f"one entry per sample")
    if len(array) == 0:
        raise AutokdError(f"{source}: {name} is empty (shape {array.shape}); every split needs samples")
    return array


def _tensor_numpy(value: torch.Tensor, name: str, source: str) -> np.ndarray:
    """A tensor as NumPy: sparse made dense, floats NumPy lacks (bfloat16, float8) made float32."""
    t = value.detach().cpu()
    try:
        if t.layout != torch.strided:
            t = t.to_dense()
        if t.is_floating_point() and t.dtype not in (torch.float16, torch.float32, torch.float64):
            t = t.float()
        return t.numpy()
    except (TypeError, RuntimeError) as exc:
        raise AutokdError(f"{source}: {name} is a tensor NumPy cannot read (dtype {t.dtype}, layout {t.layout}: "
                          f"{str(exc).splitlines()[0][:120]}); give a dense tensor of numbers") from None


def _hold_out(x: np.ndarray, y: np.ndarray, fraction: float, seed: int, source: str):
    """A seeded ``fraction`` of train as the test split (when the data brings none)."""
    n = len(y)
    n_test = int(round(n * fraction))
    if not 1 <= n_test < n - 1:
        raise AutokdError(f"{source}: holding out test_fraction {fraction} of {n} samples leaves "
                          f"{n_test} for test and {n - n_test} for train; both need samples")
    perm = np.random.default_rng(seed).permutation(n)
    test, train = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    lost = sorted({str(v) for v in y[test].tolist()} - {str(v) for v in y[train].tolist()})
    if lost:
        raise AutokdError(f"{source}: holding out test_fraction {fraction} of train (data.seed {seed}) leaves no "
                          f"training sample of class(es) {short_repr(lost, 60)}, which have too few samples; give "
                          f"more samples of them, or a test split (x_test and y_test; a table's test_path)")
    return x[train], y[train], x[test], y[test]


def _tensor(x: np.ndarray) -> torch.Tensor:
    """uint8 kept as bytes (scaled per batch); everything else float32."""
    x = np.ascontiguousarray(x) if x.dtype == np.uint8 else np.ascontiguousarray(x, dtype=np.float32)
    with warnings.catch_warnings():  # a memory-mapped .npy is read-only: the tensor only reads it
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(x)



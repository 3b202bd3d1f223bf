"""MNIST-1D, generated locally with the ``mnist1d`` package and cached as ``.npz``.

Never downloads: only ``mnist1d.data.make_dataset`` is used. The generated arrays are cached
under ``<cache>/mnist1d/`` (see :func:`cache_path`), written atomically (temp file, then
``os.replace``); an unreadable cache file is regenerated, an unwritable cache folder keeps the
data in memory for this process.
"""

from __future__ import annotations

import contextlib
import os
import random
import warnings
from pathlib import Path
from typing import Callable, Dict, Iterator, Optional

import numpy as np
import torch

from ..errors import AutokdError

NUM_CLASSES = 10
INPUT_SHAPE = (1, 40)
# bump when the cached content or the generator arguments change
CACHE_VERSION = 1
_KEYS = ("x", "y", "x_test", "y_test")


def cache_path(cache_root: Path, num_samples: int, test_fraction: float, seed: int) -> Path:
    """``<cache_root>/mnist1d/mnist1d_v1_n<num_samples>_test<test_fraction>_seed<seed>.npz``."""
    name = f"mnist1d_v{CACHE_VERSION}_n{int(num_samples)}_test{float(test_fraction)!r}_seed{int(seed)}.npz"
    return Path(cache_root) / "mnist1d" / name


@contextlib.contextmanager
def preserved_global_rng() -> Iterator[None]:
    """Restore Python's, NumPy's and torch's (CPU) global RNG states on exit.

    ``make_dataset`` reseeds ``random`` and ``np.random`` (``mnist1d.utils.set_seed``);
    callers' random streams must not notice.
    """
    py_state = random.getstate()
    np_state = np.random.get_state()
    torch_state = torch.get_rng_state()
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        torch.set_rng_state(torch_state)


def generate(num_samples: int, test_fraction: float, seed: int) -> Dict[str, np.ndarray]:
    """Generate MNIST-1D: float32 signals (N, 40) and int64 labels, train and test parts.

    The generator makes ``num_samples // 10`` samples per class; ``1 - test_fraction`` of them
    (after its own shuffle) form the training part. Global RNG states are left unchanged.
    """
    from mnist1d.data import get_dataset_args, make_dataset  # heavy import (matplotlib)

    args = get_dataset_args()
    args.num_samples = int(num_samples)
    args.train_split = 1.0 - float(test_fraction)
    args.seed = int(seed)
    with preserved_global_rng():
        data = make_dataset(args)
    return {
        "x": np.asarray(data["x"], dtype=np.float32),
        "y": np.asarray(data["y"], dtype=np.int64),
        "x_test": np.asarray(data["x_test"], dtype=np.float32),
        "y_test": np.asarray(data["y_test"], dtype=np.int64),
    }


def read_cache(path: Path) -> Optional[Dict[str, np.ndarray]]:
    """The arrays stored at ``path``, or None when it is missing, unreadable or malformed."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {key: np.asarray(npz[key]) for key in _KEYS}
    except Exception:  # truncated zip, bad header, missing key, ...: regenerate
        return None
    for part in ("", "_test"):
        x, y = data["x" + part], data["y" + part]
        if x.ndim != 2 or x.shape[1] != INPUT_SHAPE[1] or y.shape != (len(x),):
            return None
    return data


def write_cache(path: Path, data: Dict[str, np.ndarray]) -> None:
    """Write ``data`` to ``path`` atomically (a temp file in the same folder, then a rename);
    any failure is one AutokdError line (see :mod:`autokd.outputs`)."""
    from ..outputs import write_atomic

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, **data)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the cache is ordinary shared data

    write_atomic(path, write, "the MNIST-1D cache", create_folder=True)


# Generated data that could not be cached, kept for the rest of this process: path -> arrays.
_KEPT_IN_MEMORY: Dict[Path, Dict[str, np.ndarray]] = {}


def load_mnist1d(
    num_samples: int,
    test_fraction: float,
    seed: int,
    cache_root: Path,
    progress: Optional[Callable[[str], None]] = None,
) -> Dict[str, torch.Tensor]:
    """MNIST-1D as tensors: ``x``/``x_test`` float32 (N, 1, 40), ``y``/``y_test`` int64 (N,).

    Read from the cache when present and valid, else generated (reporting through
    ``progress``) and cached. When the cache cannot be written the data are kept in memory for
    the rest of this process and a warning is given once (through ``progress``, else
    :func:`warnings.warn`).
    """
    path = cache_path(cache_root, num_samples, test_fraction, seed)
    data = _KEPT_IN_MEMORY.get(path) or read_cache(path)
    if data is None:
        if progress is not None:
            progress(f"generating MNIST-1D ({int(num_samples)} samples)...")
        data = generate(num_samples, test_fraction, seed)
        try:
            write_cache(path, data)
        except AutokdError as exc:  # an unwritable cache costs only memory for this run
            _KEPT_IN_MEMORY[path] = data
            message = f"warning: {exc}; the data are kept in memory for this run only"
            if progress is not None:
                progress(message)
            else:
                warnings.warn(message, RuntimeWarning, stacklevel=2)
    return {
        "x": torch.from_numpy(data["x"]).unsqueeze(1),
        "y": torch.from_numpy(data["y"]),
        "x_test": torch.from_numpy(data["x_test"]).unsqueeze(1),
        "y_test": torch.from_numpy(data["y_test"]),
    }

"""Checking a :class:`DataSpec` before anything is read or generated (pure, no torch).

Every bound is named in its message, so a mistake such as ``image_size: 100000`` (a 30 GB
tensor) or ``num_samples: 1e12`` fails at once with what is allowed.
"""

from __future__ import annotations

import math
import numbers

from ..errors import ConfigError, short_repr, unknown
from .spec import DATASETS, DataSpec

MIN_MNIST1D_SAMPLES = 100  # 10 samples for each of the 10 classes
MAX_MNIST1D_SAMPLES = 5_000_000  # 800 MB of float32 signals
MAX_IMAGE_SIZE = 1024  # pixels per side (a 1024x1024 RGB image is 3 MB as uint8)
MAX_COUNT = 1_000_000_000  # val_size / train_size counts
MAX_SEED = 2**32 - 1
MAX_PATH = 4096


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def validate_spec(spec: DataSpec, where: str = "data") -> None:
    """Raise a ConfigError naming the first bad field of ``spec``, its value and what is allowed."""
    if spec.name not in DATASETS:
        raise unknown("dataset", spec.name, DATASETS)
    if not isinstance(spec.download, bool):
        raise ConfigError(f"{where}.download must be true or false; got {short_repr(spec.download)}")
    if spec.augment is not None and not isinstance(spec.augment, bool):
        raise ConfigError(f"{where}.augment must be true, false or null (default); got {short_repr(spec.augment)}")
    if spec.name == "mnist1d" and spec.augment:
        raise ConfigError(
            f"{where}.augment: true is not defined for mnist1d (1-D signals have no crop / flip "
            "augmentation); use false or leave it unset"
        )
    if not _is_int(spec.seed) or not 0 <= spec.seed <= MAX_SEED:
        raise ConfigError(f"{where}.seed must be a whole number in [0, 2**32 - 1] (0 to {MAX_SEED}); "
                          f"got {short_repr(spec.seed)}")
    _validate_sizes(spec, where)
    if spec.root is not None:
        check_path_text(spec.root, f"{where}.root")
    if spec.name == "mnist1d":
        _validate_mnist1d(spec, where)
    _validate_source_keys(spec, where)
    if spec.name == "imagefolder" and (not _is_int(spec.image_size) or not 1 <= spec.image_size <= MAX_IMAGE_SIZE):
        raise ConfigError(f"{where}.image_size must be a whole number of pixels from 1 to {MAX_IMAGE_SIZE}; "
                          f"got {short_repr(spec.image_size)}")


def _validate_sizes(spec: DataSpec, where: str) -> None:
    vs = spec.val_size
    if not _is_number(vs) or (not _is_int(vs) and not math.isfinite(vs)) or vs <= 0 or (vs >= 1 and vs != int(vs)):
        raise ConfigError(f"{where}.val_size must be a fraction in (0, 1) or a whole count >= 1; got {short_repr(vs)}")
    if vs > MAX_COUNT:
        raise ConfigError(f"{where}.val_size {short_repr(vs)} is more than {MAX_COUNT:,} samples; "
                          f"use a fraction in (0, 1) or a smaller count")
    ts = spec.train_size
    if ts is not None and (not _is_int(ts) or not 1 <= ts <= MAX_COUNT):
        raise ConfigError(
            f"{where}.train_size must be a whole number from 1 to {MAX_COUNT:,} (or null for all); got {short_repr(ts)}"
        )


def _validate_mnist1d(spec: DataSpec, where: str) -> None:
    """num_samples and test_fraction must give at least one train and one test sample."""
    n = spec.num_samples
    if not _is_int(n) or not MIN_MNIST1D_SAMPLES <= n <= MAX_MNIST1D_SAMPLES:
        raise ConfigError(
            f"{where}.num_samples must be a whole number from {MIN_MNIST1D_SAMPLES} "
            f"(10 samples for each of the 10 classes) to {MAX_MNIST1D_SAMPLES:,}; got {short_repr(n)}"
        )
    tf = spec.test_fraction
    if not _is_number(tf) or not 0 < tf < 1:
        raise ConfigError(f"{where}.test_fraction must be a number strictly between 0 and 1; got {short_repr(tf)}")
    total = (n // 10) * 10
    n_train = int(total * (1.0 - tf))
    if n_train < 2 or n_train >= total:
        raise ConfigError(
            f"{where}.test_fraction {tf!r} of {total} samples leaves {n_train} for training and "
            f"{total - n_train} for test; both need samples"
        )


# the keys each user source takes (required first); other sources take none of them
SOURCE_KEYS = {"arrays": (("path",), ("keys", "test_fraction")),
               "table": (("path", "label"), ("test_path", "features", "test_fraction")),
               "python": (("callable",), ("keys", "test_fraction"))}
USER_KEYS = ("path", "test_path", "keys", "label", "features", "callable")


def _validate_source_keys(spec: DataSpec, where: str) -> None:
    """A user source has its required keys and no key of another source's."""
    required, optional = SOURCE_KEYS.get(spec.name, ((), ()))
    for key in USER_KEYS:
        value = getattr(spec, key)
        if key not in required + optional and value not in (None, {}):
            users = [name for name, (req, opt) in SOURCE_KEYS.items() if key in req + opt]
            raise ConfigError(f"{where}.{key} applies to data {', '.join(users)}, not {spec.name}; remove it")
    for key in required:
        if getattr(spec, key) in (None, ""):
            raise ConfigError(f"{where}.{key} is required for data {spec.name}")
    for key in ("path", "test_path"):
        if getattr(spec, key) is not None:
            check_path_text(getattr(spec, key), f"{where}.{key}")
    if spec.callable is not None and (not isinstance(spec.callable, str) or spec.callable.count(":") != 1):
        raise ConfigError(f"{where}.callable must be 'package.module:function', got {short_repr(spec.callable)}")
    if spec.label is not None and not isinstance(spec.label, str):
        raise ConfigError(f"{where}.label must be a column name, got {short_repr(spec.label)}")
    if spec.features is not None and (not isinstance(spec.features, list) or not spec.features
                                      or not all(isinstance(f, str) for f in spec.features)):
        raise ConfigError(f"{where}.features must list one or more column names, got {short_repr(spec.features)}")
    from .arrays import NAMES

    if not isinstance(spec.keys, dict):
        raise ConfigError(f"{where}.keys must map array names to the names in the data, got {short_repr(spec.keys)}")
    for key, value in spec.keys.items():
        if key not in NAMES or not isinstance(value, str) or not value:
            raise ConfigError(f"{where}.keys: {short_repr(key)}: {short_repr(value)} must map one of "
                              f"{', '.join(NAMES)} to a name in the data")
    read = {}  # the name each array is read under (its own unless renamed)
    for name in NAMES:
        source = spec.keys.get(name, name)
        if source in read:
            raise ConfigError(f"{where}.keys: {read[source]} and {name} would both be read from {source!r} (one "
                              f"split would be another's data: validation on training data, say); give each its own")
        read[source] = name
    if spec.name in SOURCE_KEYS:
        tf = spec.test_fraction
        if not _is_number(tf) or not 0 < tf < 1:
            raise ConfigError(f"{where}.test_fraction must be a number strictly between 0 and 1; got {short_repr(tf)}")
        if spec.augment:
            raise ConfigError(f"{where}.augment: true (crop and flip) is defined for image data sets (cifar10, "
                              f"cifar100, imagefolder), not {spec.name}; use false or leave it unset")


def check_path_text(value, where: str) -> None:
    """A path from a config: a string of at most :data:`MAX_PATH` characters without NUL bytes."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where} must be a non-empty path; got {short_repr(value)}")
    if len(value) > MAX_PATH or "\0" in value:
        raise ConfigError(f"{where} must be a path of at most {MAX_PATH} characters without NUL bytes; "
                          f"got {short_repr(value)} ({len(value):,} characters)")

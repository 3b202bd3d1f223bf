"""What data a task uses: plain data, parsed from the ``task.data`` section of a config."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

DATASETS = ("mnist1d", "cifar10", "cifar100", "mnist", "fashionmnist", "imagefolder", "arrays", "table", "python")
USER_SOURCES = ("arrays", "table", "python")  # a user's own data: shapes and classes come from reading it


@dataclass
class DataSpec:
    """A data set and its fixed, seeded splits.

    ``train / val / test``: validation is carved out of the training set (never out of test);
    search ranks on validation, only final comparisons touch test.
    """

    name: str = "mnist1d"
    # torchvision sets and image folders: the local folder holding the files.
    root: Optional[str] = None
    # torchvision sets only: fetch missing files (an explicit opt-in; off by default).
    download: bool = False
    # mnist1d only: how many samples the generator makes in all, and the share kept for test.
    num_samples: int = 30000
    test_fraction: float = 0.2
    # validation carved out of train: a fraction (< 1) or a count (>= 1).
    val_size: Union[int, float] = 0.1
    # train on only this many samples of what is left after validation (None: all of it).
    train_size: Optional[int] = None
    # seeds the generator (mnist1d) and the split permutation.
    seed: int = 0
    # standard augmentation (random crop + horizontal flip for images); None: on for
    # CIFAR / image folders, off for mnist1d / MNIST / FashionMNIST.
    augment: Optional[bool] = None
    # imagefolder only: images are resized to this square size.
    image_size: int = 32
    # arrays: a .npz file or a folder of .npy files; table: a .csv or .parquet file.
    path: Optional[str] = None
    # table: the test split's own file (else a seeded test_fraction of ``path`` is held out).
    test_path: Optional[str] = None
    # arrays and python: other names for the arrays x_train, y_train, x_test, y_test, x_val, y_val.
    keys: dict = field(default_factory=dict)
    # table: the label column, and the feature columns (None: every other column).
    label: Optional[str] = None
    features: Optional[list[str]] = None
    # python: ``package.module:callable`` returning the arrays (a mapping or x_train, y_train, x_test, y_test).
    callable: Optional[str] = None


def nominal_shape(spec: DataSpec) -> tuple[tuple[int, ...], int]:
    """(per-sample input shape, number of classes) without reading any data.

    For image folders the class count is unknown until the folder is read; 10 is returned,
    which is enough to list layers and match pairs (only the classifier depends on it). A user's
    own data (arrays, table, python) is read for it (once per process).
    """
    if spec.name in USER_SOURCES:
        from .sources import peek

        return peek(spec)
    shapes = {
        "mnist1d": ((1, 40), 10),
        "cifar10": ((3, 32, 32), 10),
        "cifar100": ((3, 32, 32), 100),
        "mnist": ((1, 28, 28), 10),
        "fashionmnist": ((1, 28, 28), 10),
        "imagefolder": ((3, spec.image_size, spec.image_size), 10),
    }
    return shapes[spec.name]

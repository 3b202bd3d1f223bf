"""Load a task's data (:class:`DataSpec`) into memory as :class:`TaskData`.

``train`` and ``val`` come from the data set's training part through a seeded split
(:func:`split_indices`); ``test`` is the data set's own test part, untouched.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from ..errors import unknown
from .batches import Split, iterate_batches, standard_augment
from .spec import USER_SOURCES, DataSpec
from .splits import split_indices, subset_indices
from .validate import validate_spec

Progress = Optional[Callable[[str], None]]

# data sets whose standard augmentation (crop + flip) is on unless the spec says otherwise
AUGMENT_BY_DEFAULT = ("cifar10", "cifar100", "imagefolder")


def cache_dir() -> Path:
    """autokd's cache folder: ``$AUTOKD_CACHE``, default ``~/.cache/autokd``."""
    return Path(os.path.expanduser(os.environ.get("AUTOKD_CACHE") or "~/.cache/autokd"))


_default_cache_dir = cache_dir  # load_task_data's parameter shadows the name


@dataclass
class TaskData:
    """A task's data in memory: seeded train / val splits and the untouched test split.

    ``normalize`` is the per-channel ``(mean, std)`` applied to every batch (None: inputs are
    used as stored, e.g. MNIST-1D which the generator already standardises).
    """

    train: Split
    val: Split
    test: Split
    num_classes: int
    input_shape: tuple
    augment: bool
    spec: DataSpec
    normalize: Optional[Tuple[Sequence[float], Sequence[float]]] = None
    class_names: Tuple[str, ...] = field(default_factory=tuple)
    fingerprint: str = ""  # a hash of the data as loaded (every split): caches built on it key by it

    def split(self, name: str) -> Split:
        """The split called ``name`` (train, val or test)."""
        if name not in ("train", "val", "test"):
            raise unknown("split", name, ("train", "val", "test"))
        return getattr(self, name)

    def batches(
        self,
        split_name: str,
        batch_size: int,
        shuffle: bool = False,
        generator: Optional[torch.Generator] = None,
        device: Union[str, torch.device, None] = None,
        drop_last: bool = False,
    ) -> Iterator[Tuple[Tensor, Tensor, Tensor]]:
        """:func:`iterate_batches` over one split with the task's normalisation, and its
        augmentation on ``train`` only (when ``augment`` is on)."""
        augment = standard_augment if (self.augment and split_name == "train") else None
        return iterate_batches(
            self.split(split_name),
            batch_size,
            shuffle=shuffle,
            generator=generator,
            augment=augment,
            normalize=self.normalize,
            device=device,
            drop_last=drop_last,
        )


# ----------------------------------------------------------------------------- loading


def _load_raw(spec: DataSpec, cache_root: Path, progress: Progress) -> dict:
    """The data set's train and test parts as tensors, plus shape / class / normalisation info."""
    if spec.name in USER_SOURCES:
        from .sources import load_user_source

        return load_user_source(spec, progress)
    if spec.name == "mnist1d":
        from .mnist1d import INPUT_SHAPE, NUM_CLASSES, load_mnist1d

        raw = load_mnist1d(spec.num_samples, spec.test_fraction, spec.seed, cache_root, progress)
        raw.update(classes=[str(i) for i in range(NUM_CLASSES)], input_shape=INPUT_SHAPE, normalize=None)
        return raw
    if spec.name == "imagefolder":
        from .imagefolder import load_image_folder

        raw = load_image_folder(spec.root, spec.image_size, progress)
        raw.update(input_shape=(3, spec.image_size, spec.image_size), normalize=None)
        return raw
    from .torchvision_sets import SETS, load_torchvision_set

    info = SETS[spec.name]
    raw = load_torchvision_set(spec.name, spec.root, spec.download, progress)
    raw.update(input_shape=tuple(raw["x"].shape[1:]), normalize=(info.mean, info.std))
    return raw


def load_task_data(
    spec: DataSpec,
    cache_dir: Optional[Path] = None,
    progress: Progress = None,
) -> TaskData:
    """Validate ``spec``, load its data set into memory and split it.

    ``cache_dir`` (default :func:`cache_dir`) holds generated data (MNIST-1D); ``progress``
    receives one-line messages about slow steps (generation, reading files).
    """
    validate_spec(spec)
    cache_root = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
    raw = _load_raw(spec, cache_root, progress)
    x, y = raw["x"], raw["y"]
    if raw.get("x_val") is not None:  # the data brings its validation split: train_size still applies
        train_idx = subset_indices(len(y), spec.train_size, spec.seed)
        val = Split(raw["x_val"], raw["y_val"], torch.arange(len(raw["y_val"])))
    else:
        train_idx, val_idx = split_indices(len(y), spec.val_size, spec.train_size, spec.seed)
        val = Split(x[val_idx], y[val_idx], val_idx)
    train = Split(x[train_idx], y[train_idx], train_idx)
    test = Split(raw["x_test"], raw["y_test"], torch.arange(len(raw["y_test"])))
    normalize = raw["normalize"]
    if normalize is None and spec.name == "imagefolder":  # from the whole training split, as the teacher's:
        from .imagefolder import channel_stats  # a train_size subset feeds the cached teacher what it learnt on

        everything = (torch.arange(len(y)) if raw.get("x_val") is not None
                      else split_indices(len(y), spec.val_size, None, spec.seed)[0])
        normalize = channel_stats(x[everything])
    augment = spec.augment if spec.augment is not None else spec.name in AUGMENT_BY_DEFAULT
    classes = tuple(str(c) for c in raw["classes"])
    _warn_unseen_classes(train.y, classes, spec, progress)
    return TaskData(
        train=train,
        val=val,
        test=test,
        num_classes=len(classes),
        input_shape=tuple(raw["input_shape"]),
        augment=bool(augment),
        spec=spec,
        normalize=normalize,
        class_names=classes,
        fingerprint=content_fingerprint(raw),
    )


def _warn_unseen_classes(y: Tensor, classes: tuple, spec: DataSpec, progress: Progress) -> None:
    """A class with no training sample once validation is split off (or ``train_size`` applied): the
    models never learn it. Said through ``progress`` (else :func:`warnings.warn`), not refused: a
    deliberately few-shot subset is the user's choice."""
    seen = set(torch.unique(y).tolist())
    unseen = [name for i, name in enumerate(classes) if i not in seen]
    if not unseen:
        return
    shown = ", ".join(unseen[:5]) + (f" and {len(unseen) - 5} more" if len(unseen) > 5 else "")
    message = (f"warning: class(es) {shown} have no training sample after the validation split (data.val_size "
               f"{spec.val_size}, data.train_size {spec.train_size}, data.seed {spec.seed}); the models never see them")
    if progress is not None:
        progress(message)
    else:
        import warnings

        warnings.warn(message, RuntimeWarning, stacklevel=3)


def content_fingerprint(raw: dict) -> str:
    """A hash of the data actually loaded (every split's inputs and labels, as stored), so that
    caches keyed by it notice changed files, folders or generators, whatever the spec says."""
    import hashlib

    digest = hashlib.blake2b(digest_size=12)
    for name in ("x", "y", "x_test", "y_test", "x_val", "y_val"):
        tensor = raw.get(name)
        if tensor is None:
            continue
        array = tensor.detach().cpu().contiguous().numpy()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(memoryview(array).cast("B"))  # the buffer itself: no copy of a large (memory-mapped) array
    return digest.hexdigest()


def describe(task_data: TaskData) -> str:
    """One line, e.g. ``mnist1d: train 4000 / val 2400 / test 6000, input (1, 40), 10 classes,
    augment off``."""
    td = task_data
    return (
        f"{td.spec.name}: train {len(td.train)} / val {len(td.val)} / test {len(td.test)}, "
        f"input {tuple(td.input_shape)}, {td.num_classes} classes, "
        f"augment {'on' if td.augment else 'off'}"
    )

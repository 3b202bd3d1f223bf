"""Seeded train / validation splits, carved out of a data set's training part.

The test set is never touched here: it is always the data set's own test split.
"""

from __future__ import annotations

import numbers
from typing import Optional, Tuple, Union

import torch

from ..errors import AutokdError


def val_count(n: int, val_size: Union[int, float]) -> int:
    """How many of ``n`` training samples go to validation.

    ``val_size`` is a fraction (``0 < val_size < 1``) of ``n`` or a whole count (``>= 1``).
    Raises :class:`AutokdError` naming ``data.val_size`` when the value is unusable or would
    leave no sample for training.
    """
    if isinstance(val_size, bool) or not isinstance(val_size, numbers.Real):
        raise AutokdError(
            f"data.val_size must be a fraction in (0, 1) or a count >= 1; got {val_size!r}"
        )
    if val_size <= 0:
        raise AutokdError(
            f"data.val_size must be a fraction in (0, 1) or a count >= 1; got {val_size!r}"
        )
    if val_size < 1:
        count = int(round(float(val_size) * n))
        if count < 1:
            raise AutokdError(
                f"data.val_size {val_size!r} of {n} training samples is less than one sample; "
                f"use a larger fraction or a count >= 1"
            )
    else:
        if float(val_size) != int(val_size):
            raise AutokdError(
                f"data.val_size must be a fraction in (0, 1) or a whole count >= 1; got {val_size!r}"
            )
        count = int(val_size)
    if count >= n:
        raise AutokdError(
            f"data.val_size {val_size!r} takes {count} of the {n} training samples, leaving none "
            f"to train on; it must be less than {n}"
        )
    return count


def subset_indices(n: int, train_size: Optional[int], seed: int = 0) -> torch.Tensor:
    """Sorted indices of a seeded ``train_size`` subset of ``range(n)`` (all of it when None), for
    data that brings its own validation split."""
    if train_size is None:
        return torch.arange(int(n))
    if train_size > n:
        raise AutokdError(f"data.train_size {train_size} is more than the {n} training samples; use at most {n} or null")
    perm = torch.randperm(int(n), generator=torch.Generator().manual_seed(int(seed)))
    return perm[: int(train_size)].sort().values


def split_indices(
    n: int,
    val_size: Union[int, float],
    train_size: Optional[int] = None,
    seed: int = 0,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Split ``range(n)`` into sorted ``(train_idx, val_idx)`` LongTensors.

    A permutation seeded by ``seed`` alone (a local generator: the global RNG is neither read
    nor changed) puts its first ``val_count(n, val_size)`` positions in validation; the rest
    is training, cut to its first ``train_size`` positions when that is set. So the same inputs
    always give the same split, validation does not depend on ``train_size``, and smaller
    ``train_size`` values give subsets of larger ones.
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 2:
        raise AutokdError(f"a training set needs at least 2 samples to split off validation; got {n!r}")
    n_val = val_count(int(n), val_size)
    generator = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(int(n), generator=generator)
    val_idx, train_idx = perm[:n_val], perm[n_val:]
    if train_size is not None:
        if isinstance(train_size, bool) or not isinstance(train_size, numbers.Integral) or train_size < 1:
            raise AutokdError(f"data.train_size must be a whole number >= 1 (or null for all); got {train_size!r}")
        if train_size > len(train_idx):
            raise AutokdError(
                f"data.train_size {train_size} is more than the {len(train_idx)} training samples "
                f"left after validation ({n} - {n_val}); use at most {len(train_idx)} or null"
            )
        train_idx = train_idx[: int(train_size)]
    return train_idx.sort().values, val_idx.sort().values

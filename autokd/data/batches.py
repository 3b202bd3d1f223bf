"""In-memory splits and index-based batching, with small pure tensor augmentations.

Data is batched by index rather than with a ``DataLoader``: everything already lives in memory
as tensors, and for 40-dimensional signals worker processes would be pure overhead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

Augment = Callable[[Tensor, Optional[torch.Generator]], Tensor]
Normalize = Tuple[Sequence[float], Sequence[float]]


@dataclass
class Split:
    """One split held in memory: inputs ``x`` (N, ...) and integer labels ``y`` (N,).

    ``origin`` (optional) holds each sample's position in the data set's original split
    (training or test part), for tracing samples back.
    """

    x: Tensor
    y: Tensor
    origin: Optional[Tensor] = None

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ValueError(f"Split: {len(self.x)} inputs but {len(self.y)} labels")

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device: Union[str, torch.device, None]) -> "Split":
        """A copy with ``x`` and ``y`` on ``device`` (``origin`` stays where it is)."""
        return Split(self.x.to(device), self.y.to(device), self.origin)


def _rand_device(generator: Optional[torch.Generator]) -> torch.device:
    """Where random numbers must be drawn for ``generator`` (the CPU when it is None)."""
    return generator.device if generator is not None else torch.device("cpu")


def random_crop(x: Tensor, padding: int = 4, generator: Optional[torch.Generator] = None) -> Tensor:
    """Pad a batch (N, C, H, W) with ``padding`` zeros on each side and crop back to (H, W).

    Every sample gets its own random offset. Shape and dtype are kept.
    """
    if padding <= 0:
        return x
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (padding, padding, padding, padding))
    span = 2 * padding + 1
    dev = _rand_device(generator)
    top = torch.randint(0, span, (n,), generator=generator, device=dev).to(x.device)
    left = torch.randint(0, span, (n,), generator=generator, device=dev).to(x.device)
    rows = top[:, None] + torch.arange(h, device=x.device)  # (N, H)
    cols = left[:, None] + torch.arange(w, device=x.device)  # (N, W)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chans = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, chans, rows[:, None, :, None], cols[:, None, None, :]]


def random_hflip(x: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
    """Mirror each sample of a batch (N, C, H, W) left-right with probability 1/2."""
    flip = torch.rand(x.shape[0], generator=generator, device=_rand_device(generator)) < 0.5
    flip = flip.to(x.device)[:, None, None, None]
    return torch.where(flip, x.flip(-1), x)


def standard_augment(x: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
    """The standard image augmentation: 4-pixel zero-padded random crop, then random flip."""
    return random_hflip(random_crop(x, 4, generator), generator)


def to_float(x: Tensor) -> Tensor:
    """uint8 images in [0, 255] -> float32 in [0, 1]; float inputs pass through as float32."""
    if x.dtype == torch.uint8:
        return x.float().div_(255.0)
    return x.float()


def normalize_batch(x: Tensor, normalize: Optional[Normalize]) -> Tensor:
    """Subtract per-channel ``mean`` and divide by ``std`` (dim 1 is the channel)."""
    if normalize is None:
        return x
    mean, std = normalize
    shape = (1, -1) + (1,) * (x.dim() - 2)
    mean_t = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(shape)
    std_t = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(shape)
    return (x - mean_t) / std_t


def batch_order(n: int, shuffle: bool, generator: Optional[torch.Generator] = None) -> Tensor:
    """The order of one epoch over ``n`` samples: a permutation when shuffling, else 0..n-1."""
    if not shuffle:
        return torch.arange(n)
    return torch.randperm(n, generator=generator, device=_rand_device(generator)).cpu()


def iterate_batches(
    split: Split,
    batch_size: int,
    *,
    shuffle: bool,
    generator: Optional[torch.Generator] = None,
    augment: Optional[Augment] = None,
    normalize: Optional[Normalize] = None,
    device: Union[str, torch.device, None] = None,
    drop_last: bool = False,
) -> Iterator[Tuple[Tensor, Tensor, Tensor]]:
    """Yield ``(idx, x, y)`` batches covering ``split`` once (one epoch).

    ``idx`` is a LongTensor of the samples' positions in ``split`` (to look up cached teacher
    outputs or CRD's memory bank); ``idx``, ``x`` and ``y`` are all on ``device`` (default:
    where the split is). uint8 images become float32 in [0, 1]; then ``augment(x, generator)`` is applied
    when given, then ``normalize = (mean, std)`` per channel. ``generator`` drives both the
    shuffle and the augmentation, so a seeded generator gives a reproducible epoch.
    """
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1; got {batch_size!r}")
    batch_size = int(batch_size)
    n = len(split)
    order = batch_order(n, shuffle, generator)
    stop = (n // batch_size) * batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        idx = order[start : start + batch_size]
        src_idx = idx.to(split.x.device)
        x = split.x[src_idx]
        y = split.y[src_idx]
        if device is not None:
            x = x.to(device, non_blocking=True)
            y = y.to(device, non_blocking=True)
        idx = idx.to(x.device)
        x = to_float(x)
        if augment is not None:
            x = augment(x, generator)
        x = normalize_batch(x, normalize)
        yield idx, x, y

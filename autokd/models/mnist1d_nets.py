"""Tiny networks for MNIST-1D signals (input ``(B, 1, 40)``, or ``(B, 40)``).

Both nets are small enough to train in seconds on a CPU, which is what makes a KD search on
MNIST-1D cheap. Their layers have stable module paths so features can be tapped by name:

* :class:`CNN1d`: ``stages.0 ... stages.{depth-1}`` (each Conv1d stride 2 + BatchNorm1d + ReLU,
  so a 40-long signal goes 20, 10, 5), ``pool`` (global average), ``fc`` (classifier).
* :class:`MLP1d`: ``layers.0 ... layers.{depth-1}`` (each Linear + ReLU), ``fc``.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import nn

from autokd.errors import AutokdError


def _as_signal(x: torch.Tensor) -> torch.Tensor:
    """Accept ``(B, L)`` signals by adding the channel dimension."""
    return x.unsqueeze(1) if x.dim() == 2 else x


class CNN1d(nn.Module):
    """A stack of strided 1-D conv stages, global average pooling and a linear classifier.

    ``width_multipliers`` (one per stage) scales ``channels`` per stage; without it every
    stage has ``channels`` channels.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        channels: int = 32,
        depth: int = 3,
        kernel_size: int = 5,
        width_multipliers: Optional[Sequence[float]] = None,
    ):
        super().__init__()
        if depth < 1:
            raise AutokdError(f"cnn1d: depth must be >= 1, got {depth}")
        if channels < 1 or kernel_size < 1:
            raise AutokdError(f"cnn1d: channels and kernel_size must be >= 1, got {channels}, {kernel_size}")
        if width_multipliers is None:
            widths = [channels] * depth
        else:
            if len(width_multipliers) != depth:
                raise AutokdError(
                    f"cnn1d: width_multipliers needs one value per stage ({depth}), got {list(width_multipliers)}"
                )
            widths = [max(1, int(round(channels * m))) for m in width_multipliers]
        stages, prev = [], in_channels
        for width in widths:
            stages.append(
                nn.Sequential(
                    nn.Conv1d(prev, width, kernel_size, stride=2, padding=kernel_size // 2, bias=False),
                    nn.BatchNorm1d(width),
                    nn.ReLU(),
                )
            )
            prev = width
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.fc = nn.Linear(prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(_as_signal(x))
        return self.fc(torch.flatten(self.pool(x), 1))


class MLP1d(nn.Module):
    """``depth`` hidden Linear + ReLU blocks of ``width`` units, then a linear classifier."""

    def __init__(self, num_classes: int = 10, in_features: int = 40, width: int = 100, depth: int = 2):
        super().__init__()
        if depth < 1 or width < 1:
            raise AutokdError(f"mlp1d: depth and width must be >= 1, got {depth}, {width}")
        blocks, prev = [], in_features
        for _ in range(depth):
            blocks.append(nn.Sequential(nn.Linear(prev, width), nn.ReLU()))
            prev = width
        self.layers = nn.Sequential(*blocks)
        self.fc = nn.Linear(prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.layers(torch.flatten(x, 1)))


# --- registry builders: (num_classes, input_shape, **architecture kwargs) -------------------


def cnn1d(
    num_classes: int = 10,
    input_shape: Sequence[int] = (1, 40),
    channels: int = 32,
    depth: int = 3,
    kernel_size: int = 5,
    width_multipliers: Optional[Sequence[float]] = None,
) -> CNN1d:
    """A :class:`CNN1d` for signals of shape ``(C, L)`` or ``(L,)``."""
    if len(input_shape) not in (1, 2):
        raise AutokdError(f"cnn1d takes 1-D signals of shape (C, L) or (L,), got input shape {tuple(input_shape)}")
    in_channels = input_shape[0] if len(input_shape) == 2 else 1
    return CNN1d(num_classes, in_channels, channels, depth, kernel_size, width_multipliers)


def mlp1d(num_classes: int = 10, input_shape: Sequence[int] = (1, 40), width: int = 100, depth: int = 2) -> MLP1d:
    """An :class:`MLP1d` over the flattened input."""
    return MLP1d(num_classes, math.prod(input_shape), width, depth)

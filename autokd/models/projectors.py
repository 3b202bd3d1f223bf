"""Projectors: small trainable modules mapping a student feature to its teacher's shape.

Shapes are per sample (no batch): ``(D,)`` for vectors, ``(C, L)`` / ``(C, H, W)`` /
``(C, D, H, W)`` for feature maps. The caller trains the projector's parameters with the
student.

* equal shapes: ``nn.Identity``;
* vector -> vector: ``Linear``;
* map -> vector: global average pooling, then ``Linear``;
* map -> map with the same number of spatial dims: a 1x1 conv + BatchNorm when the channels
  differ, then adaptive average pooling when the student's resolution is larger, or
  (bi/tri)linear interpolation when it is smaller in some dimension;
* anything else (vector -> map, 1-D map -> 2-D map, ...): :class:`AutokdError`.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from autokd.errors import AutokdError

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_BN = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_POOL = {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d}
_MODE = {1: "linear", 2: "bilinear", 3: "trilinear"}


class Interpolate(nn.Module):
    """Resize a feature map to ``size`` with ``F.interpolate`` (no parameters)."""

    def __init__(self, size: Sequence[int], mode: str):
        super().__init__()
        self.size = tuple(size)
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=self.size, mode=self.mode, align_corners=False)

    def extra_repr(self) -> str:
        return f"size={self.size}, mode={self.mode!r}"


def make_projector(student_shape: Sequence[int], teacher_shape: Sequence[int]) -> nn.Module:
    """A module mapping student features of ``student_shape`` to ``teacher_shape``."""
    s, t = tuple(int(d) for d in student_shape), tuple(int(d) for d in teacher_shape)
    if s == t:
        return nn.Identity()
    s_dims, t_dims = len(s) - 1, len(t) - 1  # spatial dims; 0 for vectors
    if len(s) == 0 or len(t) == 0 or s_dims > 3 or t_dims > 3:
        raise _cannot(s, t)
    if t_dims == 0:
        if s_dims == 0:
            return nn.Linear(s[0], t[0])
        return nn.Sequential(_POOL[s_dims](1), nn.Flatten(1), nn.Linear(s[0], t[0]))
    if s_dims != t_dims:
        raise _cannot(s, t)

    layers: list[nn.Module] = []
    if s[0] != t[0]:
        layers += [_CONV[s_dims](s[0], t[0], kernel_size=1, bias=False), _BN[s_dims](t[0])]
    s_size, t_size = s[1:], t[1:]
    if s_size != t_size:
        if all(a >= b for a, b in zip(s_size, t_size)):
            layers.append(_POOL[s_dims](t_size))
        else:
            layers.append(Interpolate(t_size, _MODE[s_dims]))
    return nn.Sequential(*layers)


def _cannot(s: tuple[int, ...], t: tuple[int, ...]) -> AutokdError:
    return AutokdError(
        f"cannot project a student feature of shape {s} onto a teacher feature of shape {t}: "
        "pair a vector with a vector, or feature maps with the same number of spatial dims"
    )

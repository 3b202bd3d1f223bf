"""Wide ResNets for CIFAR as used in the knowledge-distillation literature (CRD / RepDistiller).

WRN-d-k: a 3x3 stem conv ``conv1`` with 16 filters, three stages ``block1``, ``block2``,
``block3`` of ``(d - 4) / 6`` pre-activation blocks with ``16k``, ``32k``, ``64k`` filters
(the last two halve the resolution), a final ``bn1`` + ``relu``, global average pooling and the
classifier ``fc``. ``forward`` returns logits only; no operation is in place.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from autokd.errors import AutokdError


class WideBasicBlock(nn.Module):
    """Pre-activation block: BN-ReLU-conv-BN-ReLU-(dropout)-conv plus a shortcut.

    When the shape changes the shortcut is a 1x1 conv applied to the pre-activated input,
    otherwise the identity on the raw input.
    """

    def __init__(self, in_planes: int, out_planes: int, stride: int, drop_rate: float = 0.0):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_planes, out_planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.drop_rate = drop_rate
        self.shortcut = None
        if in_planes != out_planes or stride != 1:
            self.shortcut = nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.relu1(self.bn1(x))
        out = self.relu2(self.bn2(self.conv1(pre)))
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        out = self.conv2(out)
        return out + (x if self.shortcut is None else self.shortcut(pre))


class NetworkBlock(nn.Module):
    """One WRN stage: ``layer`` is a Sequential of :class:`WideBasicBlock`."""

    def __init__(self, num_layers: int, in_planes: int, out_planes: int, stride: int, drop_rate: float = 0.0):
        super().__init__()
        self.layer = nn.Sequential(
            *[
                WideBasicBlock(in_planes if i == 0 else out_planes, out_planes, stride if i == 0 else 1, drop_rate)
                for i in range(num_layers)
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class WideResNet(nn.Module):
    """WRN-depth-widen_factor; stages ``block1``, ``block2``, ``block3``; classifier ``fc``."""

    def __init__(
        self, depth: int, widen_factor: int, num_classes: int = 10, in_channels: int = 3, drop_rate: float = 0.0
    ):
        super().__init__()
        if depth < 10 or (depth - 4) % 6 != 0:
            raise AutokdError(f"WRN depth must be 6n+4 (10, 16, 22, 28, 40, ...), got {depth}")
        n = (depth - 4) // 6
        widths = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.conv1 = nn.Conv2d(in_channels, widths[0], kernel_size=3, stride=1, padding=1, bias=False)
        self.block1 = NetworkBlock(n, widths[0], widths[1], 1, drop_rate)
        self.block2 = NetworkBlock(n, widths[1], widths[2], 2, drop_rate)
        self.block3 = NetworkBlock(n, widths[2], widths[3], 2, drop_rate)
        self.bn1 = nn.BatchNorm2d(widths[3])
        self.relu = nn.ReLU()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[3], num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block3(self.block2(self.block1(self.conv1(x))))
        x = self.relu(self.bn1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# --- registry builders: (num_classes, input_shape, drop_rate) -------------------------------


def _build(depth: int, k: int, num_classes: int, input_shape: Sequence[int], drop_rate: float) -> WideResNet:
    if len(input_shape) != 3:
        raise AutokdError(f"WRNs take images of shape (C, H, W), got input shape {tuple(input_shape)}")
    return WideResNet(depth, k, num_classes, in_channels=input_shape[0], drop_rate=drop_rate)


def wrn_16_2(num_classes: int = 10, input_shape: Sequence[int] = (3, 32, 32), drop_rate: float = 0.0) -> WideResNet:
    """WRN-16-2 (widths 32, 64, 128)."""
    return _build(16, 2, num_classes, input_shape, drop_rate)


def wrn_40_2(num_classes: int = 10, input_shape: Sequence[int] = (3, 32, 32), drop_rate: float = 0.0) -> WideResNet:
    """WRN-40-2 (widths 32, 64, 128)."""
    return _build(40, 2, num_classes, input_shape, drop_rate)

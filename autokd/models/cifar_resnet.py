"""CIFAR ResNets as used in the knowledge-distillation literature (CRD / RepDistiller).

A 3x3 stem conv, three stages of BasicBlocks (``layer1`` at full resolution, ``layer2`` and
``layer3`` each halving it), global average pooling and a linear classifier ``fc``. Depth is
``6n + 2`` with ``n`` blocks per stage. The ``x4`` variants use filters ``[32, 64, 128, 256]``
(stem, layer1, layer2, layer3), the plain ones ``[16, 16, 32, 64]``.

Unlike the reference code, ``forward`` returns logits only (features are tapped with hooks, see
:mod:`autokd.models.taps`) and no operation is in place, so a tapped tensor keeps its value.
Global pooling is adaptive, so other image sizes work too (identical for 32x32 inputs).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from autokd.errors import AutokdError


def _conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """conv-BN-ReLU-conv-BN plus a shortcut (1x1 conv + BN when the shape changes), then ReLU."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = _conv3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        residual = x if self.downsample is None else self.downsample(x)
        return F.relu(out + residual)


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for small images; stages ``layer1``, ``layer2``, ``layer3``; classifier ``fc``."""

    def __init__(self, depth: int, num_filters: Sequence[int], num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        if depth < 8 or (depth - 2) % 6 != 0:
            raise AutokdError(f"CIFAR ResNet depth must be 6n+2 (8, 20, 32, 56, 110, ...), got {depth}")
        if len(num_filters) != 4:
            raise AutokdError(f"CIFAR ResNet needs 4 filter counts (stem + 3 stages), got {list(num_filters)}")
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, num_filters[0], kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(num_filters[0])
        self.relu = nn.ReLU()
        self._in_planes = num_filters[0]
        self.layer1 = self._make_layer(num_filters[1], n, stride=1)
        self.layer2 = self._make_layer(num_filters[2], n, stride=2)
        self.layer3 = self._make_layer(num_filters[3], n, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(num_filters[3], num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        layers = [BasicBlock(self._in_planes, planes, stride)]
        self._in_planes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# --- registry builders: (num_classes, input_shape) ------------------------------------------


def _build(depth: int, filters: Sequence[int], num_classes: int, input_shape: Sequence[int]) -> CifarResNet:
    if len(input_shape) != 3:
        raise AutokdError(f"CIFAR ResNets take images of shape (C, H, W), got input shape {tuple(input_shape)}")
    return CifarResNet(depth, filters, num_classes, in_channels=input_shape[0])


_X4 = (32, 64, 128, 256)
_PLAIN = (16, 16, 32, 64)


def resnet8x4(num_classes: int = 10, input_shape: Sequence[int] = (3, 32, 32)) -> CifarResNet:
    """ResNet-8, filters [32, 64, 128, 256] (the usual KD student)."""
    return _build(8, _X4, num_classes, input_shape)


def resnet32x4(num_classes: int = 10, input_shape: Sequence[int] = (3, 32, 32)) -> CifarResNet:
    """ResNet-32, filters [32, 64, 128, 256] (the usual KD teacher)."""
    return _build(32, _X4, num_classes, input_shape)


def resnet20(num_classes: int = 10, input_shape: Sequence[int] = (3, 32, 32)) -> CifarResNet:
    """ResNet-20, filters [16, 16, 32, 64]."""
    return _build(20, _PLAIN, num_classes, input_shape)


def resnet56(num_classes: int = 10, input_shape: Sequence[int] = (3, 32, 32)) -> CifarResNet:
    """ResNet-56, filters [16, 16, 32, 64]."""
    return _build(56, _PLAIN, num_classes, input_shape)


def resnet110(num_classes: int = 10, input_shape: Sequence[int] = (3, 32, 32)) -> CifarResNet:
    """ResNet-110, filters [16, 16, 32, 64]."""
    return _build(110, _PLAIN, num_classes, input_shape)

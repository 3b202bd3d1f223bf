"""Shared by the loss tests: a tolerant equality that takes tensors, seeded random tensors."""

import pytest
import torch


def approx(value, expected, rel=1e-6, abs=1e-9):
    """``value == expected`` to a tolerance; tensors may be part of a graph."""
    if isinstance(value, torch.Tensor):
        value = value.detach()
    if isinstance(expected, torch.Tensor):
        expected = expected.detach()
    return float(value) == pytest.approx(float(expected), rel=rel, abs=abs)


def seeded(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))

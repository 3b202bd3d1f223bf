"""Compression steps: what turns a trained student into the model that is shipped.

Each step is one small module behind one interface, registered in :data:`STEPS` in the order
they apply: ``apply(model, step_config, example)`` transforms a model before it is distilled
(prune: remove channels; quantize: fake-quantize it for quantization-aware training), and
``deploy(model)`` turns the trained model into what runs (quantize: real int8 kernels). Which
model a step applies to (the teacher, a trained student) is the training layer's business
(:mod:`autokd.training.shipping`); the knobs are :mod:`autokd.config.compression`'s dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from autokd.compression import prune, quantize
from autokd.compression.measure import Footprint, footprint


@dataclass(frozen=True)
class CompressionStep:
    apply: Callable[[nn.Module, object, torch.Tensor], nn.Module]
    deploy: Callable[[nn.Module], nn.Module]
    summary: str


def _prune(model: nn.Module, config, example: torch.Tensor) -> nn.Module:
    return prune.prune_channels(model, config.amount, example)


def _quantize(model: nn.Module, config, example: torch.Tensor) -> nn.Module:
    return quantize.prepare(model, config.bits, example)


def _as_is(model: nn.Module) -> nn.Module:
    return model


STEPS: dict[str, CompressionStep] = {
    "prune": CompressionStep(_prune, _as_is, "structured L1 channel pruning, channels removed (torch-pruning)"),
    "quantize": CompressionStep(_quantize, quantize.deploy,
                                "quantization-aware training; int8 converted to real kernels, int4 simulated"),
}


def deploy(model: nn.Module, compression) -> nn.Module:
    """``model`` as it runs under ``compression`` (each step's deploy in order; the model itself
    is not changed when a step converts)."""
    for name, step in STEPS.items():
        if getattr(compression, name) is not None:
            model = step.deploy(model)
    return model


__all__ = ["STEPS", "CompressionStep", "Footprint", "deploy", "footprint"]

"""Checking that a model is usable as a classifier: one dummy forward, before any training, and
parameters for the optimizer to train.

A model whose forward returns a tuple, a dict or logits of the wrong width would otherwise fail
deep inside a loss or the accuracy count, after the teacher has trained.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from autokd.errors import AutokdError, short_repr


def check_logits(model: nn.Module, name: str, role: str, input_shape: tuple[int, ...], num_classes: int) -> None:
    """Run ``model`` once on a zero batch of 2 (eval mode, no grad; the RNG is not touched).

    Raises :class:`AutokdError` naming the model (``role``: teacher or student) when the forward
    fails or returns anything but a tensor of shape (2, ``num_classes``), or when the model has no
    trainable parameter (see :func:`check_trainable`).
    """
    batch = (2, *input_shape)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(batch))
    except Exception as exc:
        text = " ".join(str(exc).split())[:300]
        raise AutokdError(
            f"{role} model {short_repr(name, 80)}: a forward pass on a dummy batch of shape {batch} failed: "
            f"{type(exc).__name__}: {text}"
        ) from None
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, num_classes):
        raise AutokdError(
            f"{role} model {short_repr(name, 80)}: forward returned {describe_output(out)} for a batch of 2; "
            f"expected a tensor of logits of shape (batch, num_classes) = (2, {num_classes})"
        )
    if not out.is_floating_point():
        raise AutokdError(f"{role} model {short_repr(name, 80)}: forward returned logits of dtype {out.dtype}; "
                          f"expected floating-point logits (softmax and the losses need them)")
    check_trainable(model, name, role)


def check_trainable(model: nn.Module, name: str, role: str) -> None:
    """Raise :class:`AutokdError` when ``model`` has no parameter with ``requires_grad``: autokd
    trains every model it builds (teacher, student, peers, assistant), and its optimizer would get
    nothing to train."""
    if not any(p.requires_grad for p in model.parameters()):
        frozen = sum(p.numel() for p in model.parameters())
        what = f"all its {frozen:,} parameters are frozen (requires_grad=False)" if frozen else "it has no parameters"
        raise AutokdError(f"{role} model {short_repr(name, 80)} has nothing to train: {what}, so autokd cannot "
                          f"train it; give it at least one trainable parameter (an nn.Linear, say)")


def describe_output(out: Any) -> str:
    """A short description of what a forward returned: ``a tensor of shape (2, 7)``, ``a tuple of 2 ...``."""
    if isinstance(out, torch.Tensor):
        return f"a tensor of shape {tuple(out.shape)}"
    if isinstance(out, (tuple, list)):
        items = ", ".join(_brief(v) for v in list(out)[:4]) + (", ..." if len(out) > 4 else "")
        return f"a {type(out).__name__} of {len(out)} ({items})"
    if isinstance(out, dict):
        keys = ", ".join(short_repr(k, 30) for k in list(out)[:6]) + (", ..." if len(out) > 6 else "")
        return f"a {type(out).__name__} with keys {keys}"
    return f"{short_repr(out, 60)} ({type(out).__name__})"


def _brief(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor {tuple(value.shape)}"
    return type(value).__name__

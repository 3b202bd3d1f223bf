"""Checking that a model is usable as a classifier: one dummy forward in eval mode and one in
training mode, before any training, and parameters for the optimizer to train.

A model whose forward returns a tuple, a dict or logits of the wrong width (in either mode: torchvision's
googlenet returns its auxiliary logits too in training mode) would otherwise fail deep inside a loss
or the accuracy count, after the teacher has trained.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch
from torch import nn

from autokd.errors import AutokdError, short_repr

TRAINING_MODE_HINT = ("autokd trains a model in training mode (model.train()); switch off auxiliary outputs "
                      "(torchvision's googlenet and inception_v3: kwargs aux_logits=False)")


def check_logits(model: nn.Module, name: str, role: str, input_shape: tuple[int, ...], num_classes: int) -> None:
    """Run ``model`` on a float32 zero batch of 2, in eval mode and then in training mode (no grad).

    Raises :class:`AutokdError` naming the model (``role``: teacher or student) when a forward
    fails or returns anything but a floating tensor of shape (2, ``num_classes``), or when the model
    has no trainable parameter (see :func:`check_trainable`). The check changes nothing: each
    module's mode, the buffers (BatchNorm's running statistics) and the RNG state are restored.
    """
    batch = (2, *input_shape)
    with _untouched(model):
        for training in (False, True):
            out = _forward(model, name, role, batch, training)
            _check_output(out, name, role, num_classes, training)
    check_trainable(model, name, role)


def _forward(model: nn.Module, name: str, role: str, batch: tuple[int, ...], training: bool) -> Any:
    """One forward on a float32 zero batch (the data's dtype), without gradient; a failure is an AutokdError."""
    model.train(training)
    try:
        with torch.no_grad():
            return model(torch.zeros(batch, dtype=torch.float32, device=_device_of(model)))
    except Exception as exc:
        text = " ".join(str(exc).split())[:300]
        which = "a training-mode forward pass (model.train())" if training else "a forward pass"
        raise AutokdError(
            f"{role} model {short_repr(name, 80)}: {which} on a dummy batch of shape {batch} failed: "
            f"{type(exc).__name__}: {text}{_dtype_hint(model)}"
        ) from None


def _check_output(out: Any, name: str, role: str, num_classes: int, training: bool) -> None:
    when, hint = (" in training mode", f"; {TRAINING_MODE_HINT}") if training else ("", "")
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, num_classes):
        raise AutokdError(
            f"{role} model {short_repr(name, 80)}: forward returned {describe_output(out)}{when} for a batch of 2; "
            f"expected a tensor of logits of shape (batch, num_classes) = (2, {num_classes}){hint}"
        )
    if not out.is_floating_point():
        raise AutokdError(f"{role} model {short_repr(name, 80)}: forward returned logits of dtype {out.dtype}{when}; "
                          f"expected floating-point logits (softmax and the losses need them)")


def _dtype_hint(model: nn.Module) -> str:
    """Why a float32 batch may not fit: the model's weights are of another floating dtype."""
    dtypes = {t.dtype for t in [*model.parameters(), *model.buffers()] if t.is_floating_point()} - {torch.float32}
    if not dtypes:
        return ""
    names = " and ".join(sorted(str(d) for d in dtypes))
    return (f" (its weights are {names}, autokd's data is torch.float32: build the model in float32; a module that "
            f"calls torch.set_default_dtype(...) at import makes the models built after it {names})")


@contextmanager
def _untouched(model: nn.Module) -> Iterator[None]:
    """Restore each module's mode, every buffer (object and values) and the RNG states on exit."""
    modes = {m: m.training for m in model.modules()}
    buffers = [(m, key, buf, buf.detach().clone()) for m in model.modules()
               for key, buf in m._buffers.items() if buf is not None]
    cuda = sorted({t.device.index or 0 for t in [*model.parameters(), *model.buffers()] if t.device.type == "cuda"})
    try:
        with torch.random.fork_rng(devices=cuda):  # dropout in training mode draws random numbers
            yield
    finally:
        with torch.no_grad():
            for module, key, buf, saved in buffers:
                module._buffers[key] = buf  # a forward may have reassigned it, or resized it (observers)
                if buf.shape != saved.shape:
                    buf.resize_(saved.shape)
                buf.copy_(saved)
        for module, mode in modes.items():
            module.training = mode


def untapped(model: nn.Module, paths: list[str], input_shape: tuple[int, ...], training: bool) -> list[str]:
    """The ``paths`` that give no single tensor in one forward of a float32 zero batch of 2 in that mode
    (a layer that runs only in the other mode, never, or returns a tuple); the model is left as it was."""
    from autokd.models.taps import FeatureTaps

    with _untouched(model):
        model.train(training)
        with FeatureTaps(model, paths) as taps, torch.no_grad():
            model(torch.zeros(2, *input_shape, dtype=torch.float32, device=_device_of(model)))
            return [p for p in paths if not isinstance(taps.outputs.get(p), torch.Tensor)]


def check_taps_train(model: nn.Module, paths: list[str], input_shape: tuple[int, ...], role: str = "student",
                     of: str = "") -> None:
    """Refuse ``paths`` (layers a loss reads in training) that give no single tensor in a training-mode
    forward (:func:`untapped`); ``of`` says whose pairs they are in the message."""
    bad = untapped(model, list(dict.fromkeys(paths)), tuple(input_shape), training=True) if paths else []
    if bad:
        raise AutokdError(f"{role} layer(s) {', '.join(map(repr, bad))}{of} give no single tensor in a training-mode "
                          f"forward pass (the layer runs only in eval mode, never, or returns a tuple); pair other layers")


def _device_of(model: nn.Module) -> torch.device:
    param = next(iter(model.parameters()), None)
    return param.device if param is not None else torch.device("cpu")


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

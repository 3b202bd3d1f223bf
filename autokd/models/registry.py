"""Build a model from its name in a config.

A model name takes one of three forms:

* a registry name (:data:`MODELS`): ``cnn1d``, ``mlp1d``, ``resnet8x4``, ``resnet32x4``,
  ``resnet20``, ``resnet56``, ``resnet110``, ``wrn_16_2``, ``wrn_40_2``;
* ``torchvision/<name>``: any torchvision classification model, always built with
  ``weights=None`` (autokd never downloads weights: load a checkpoint instead);
* ``package.module:callable``: a user's own model factory or class, imported with
  :mod:`importlib` and called with the config's kwargs (plus ``num_classes`` when its
  signature accepts it, and ``input_shape`` when it names that parameter). **This is the only
  place where config text becomes code**: only name modules you trust.

Registry builders take ``num_classes`` and ``input_shape`` (the per-sample shape, e.g.
``(1, 40)`` for MNIST-1D signals, ``(3, 32, 32)`` for CIFAR) and derive input
channels / features from it; their other keyword arguments are the kwargs a config may set.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable, Optional

from torch import nn

from autokd.errors import AutokdError, unknown
from autokd.models import cifar_resnet, mnist1d_nets, wrn

TORCHVISION_PREFIX = "torchvision/"


@dataclass(frozen=True)
class ModelEntry:
    """A registry model: ``fn(num_classes=..., input_shape=..., **kwargs) -> nn.Module``."""

    fn: Callable[..., nn.Module]
    family: str
    description: str
    default_input_shape: tuple[int, ...]


_SIGNAL = (1, 40)
_IMAGE = (3, 32, 32)

MODELS: dict[str, ModelEntry] = {
    "cnn1d": ModelEntry(mnist1d_nets.cnn1d, "mnist1d", "strided 1-D conv stages + GAP + fc", _SIGNAL),
    "mlp1d": ModelEntry(mnist1d_nets.mlp1d, "mnist1d", "MLP with Linear+ReLU hidden layers + fc", _SIGNAL),
    "resnet8x4": ModelEntry(cifar_resnet.resnet8x4, "cifar_resnet", "ResNet-8, filters [32,64,128,256]", _IMAGE),
    "resnet32x4": ModelEntry(cifar_resnet.resnet32x4, "cifar_resnet", "ResNet-32, filters [32,64,128,256]", _IMAGE),
    "resnet20": ModelEntry(cifar_resnet.resnet20, "cifar_resnet", "ResNet-20, filters [16,16,32,64]", _IMAGE),
    "resnet56": ModelEntry(cifar_resnet.resnet56, "cifar_resnet", "ResNet-56, filters [16,16,32,64]", _IMAGE),
    "resnet110": ModelEntry(cifar_resnet.resnet110, "cifar_resnet", "ResNet-110, filters [16,16,32,64]", _IMAGE),
    "wrn_16_2": ModelEntry(wrn.wrn_16_2, "wrn", "Wide ResNet 16-2", _IMAGE),
    "wrn_40_2": ModelEntry(wrn.wrn_40_2, "wrn", "Wide ResNet 40-2", _IMAGE),
}

# Builder parameters filled in by autokd, never by a config's kwargs.
_RESERVED = ("num_classes", "input_shape")


def list_models() -> list[str]:
    """The registry names (torchvision and ``module:callable`` names are not listed)."""
    return sorted(MODELS)


def build_model(
    name: str, kwargs: Optional[dict[str, Any]], num_classes: int, input_shape: tuple[int, ...]
) -> nn.Module:
    """Build the model ``name`` (see the module docstring for the name forms).

    ``kwargs`` are the architecture arguments from the config; ``num_classes`` and
    ``input_shape`` (per sample, without batch) come from the task's data. Raises
    :class:`AutokdError` for an unknown name, a bad kwarg or a model that cannot be built.
    """
    kwargs = dict(kwargs or {})
    input_shape = tuple(int(s) for s in input_shape)
    if not isinstance(name, str) or not name:
        raise AutokdError(f"model name must be a non-empty string, got {name!r}")
    for key in _RESERVED:
        if key in kwargs:
            raise AutokdError(f"model {name!r}: do not set {key!r} in model kwargs; it comes from the task's data")
    if name.startswith(TORCHVISION_PREFIX):
        return _build_torchvision(name[len(TORCHVISION_PREFIX) :], kwargs, num_classes, input_shape)
    if ":" in name:
        return _build_user(name, kwargs, num_classes, input_shape)
    if name not in MODELS:
        raise unknown("model", name, list_models() + ["torchvision/<name>", "package.module:callable"])
    fn = MODELS[name].fn
    allowed = [p for p in inspect.signature(fn).parameters if p not in _RESERVED]
    for key in kwargs:
        if key not in allowed:
            raise AutokdError(
                f"model {name!r} has no kwarg {key!r}; allowed: {', '.join(allowed) if allowed else '(none)'}"
            )
    try:
        return fn(num_classes=num_classes, input_shape=input_shape, **kwargs)
    except AutokdError:
        raise
    except Exception as exc:  # a bad kwarg value: TypeError, ValueError, ...
        raise AutokdError(f"cannot build model {name!r} with kwargs {kwargs}: {_one_line(exc)}") from exc


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _build_torchvision(tv_name: str, kwargs: dict, num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    import torchvision

    known = torchvision.models.list_models(module=torchvision.models)
    if tv_name not in known:
        raise unknown("torchvision classification model", tv_name, known)
    if kwargs.pop("weights", None) is not None:
        raise AutokdError(
            f"model 'torchvision/{tv_name}': autokd never downloads weights; "
            "drop the 'weights' kwarg and load a checkpoint instead"
        )
    if len(input_shape) != 3 or input_shape[0] != 3:
        raise AutokdError(
            f"model 'torchvision/{tv_name}' takes 3-channel images (3, H, W), got input shape {input_shape}"
        )
    try:
        return torchvision.models.get_model(tv_name, weights=None, num_classes=num_classes, **kwargs)
    except Exception as exc:
        raise AutokdError(
            f"cannot build model 'torchvision/{tv_name}' with kwargs {kwargs}: {_one_line(exc)}"
        ) from exc


def _build_user(spec: str, kwargs: dict, num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    """Import ``package.module:callable`` and call it; every failure is a one-line AutokdError."""
    module_name, _, attr_path = spec.partition(":")
    if not module_name or not attr_path or ":" in attr_path:
        raise AutokdError(f"model {spec!r}: a user model is written 'package.module:callable'")
    # A console script does not put the working directory on sys.path; users expect it there.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())
    try:
        obj = importlib.import_module(module_name)
    except Exception as exc:
        raise AutokdError(f"model {spec!r}: cannot import module {module_name!r}: {_one_line(exc)}") from exc
    for part in attr_path.split("."):
        if not hasattr(obj, part):
            raise AutokdError(f"model {spec!r}: module {module_name!r} has no attribute {attr_path!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise AutokdError(f"model {spec!r}: {attr_path!r} is not callable (got {type(obj).__name__})")

    call_kwargs = dict(kwargs)
    try:
        params = inspect.signature(obj).parameters
    except (TypeError, ValueError):  # some builtins have no signature
        params = {}
    takes_var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if "num_classes" in params or takes_var_kw:
        call_kwargs["num_classes"] = num_classes
    if "input_shape" in params:
        call_kwargs["input_shape"] = input_shape
    try:
        model = obj(**call_kwargs)
    except Exception as exc:
        raise AutokdError(f"model {spec!r}: calling it with {call_kwargs} failed: {_one_line(exc)}") from exc
    if not isinstance(model, nn.Module):
        raise AutokdError(f"model {spec!r}: returned {type(model).__name__}, not a torch.nn.Module")
    return model

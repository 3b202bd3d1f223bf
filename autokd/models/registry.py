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

Every model is first built on PyTorch's ``meta`` device (shapes only, no memory) to count its
parameters, so ``channels: 100000`` is refused at once instead of filling the memory; a user
callable is therefore called twice (a meta build that fails is ignored: the real build decides).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Optional

from torch import nn

from autokd.errors import AutokdError, short_repr, unknown
from autokd.models import cifar_resnet, mnist1d_nets, wrn
from autokd.user_code import named as _named, one_line as _one_line

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
# Larger than any model autokd could train here (a 2e9-parameter model needs 8 GB for its weights alone).
MAX_PARAMETERS = 2_000_000_000


def list_models() -> list[str]:
    """The registry names (torchvision and ``module:callable`` names are not listed)."""
    return sorted(MODELS)


def keyword_defaults(name: str) -> dict[str, Any]:
    """The default of each architecture keyword of the registry model ``name`` ({} for another name
    form, or a keyword without a default): what a config that leaves the keyword out gets."""
    if name not in MODELS:
        return {}
    params = inspect.signature(MODELS[name].fn).parameters
    return {key: p.default for key, p in params.items()
            if key not in _RESERVED and p.default is not inspect.Parameter.empty}


def build_model(
    name: str, kwargs: Optional[dict[str, Any]], num_classes: int, input_shape: tuple[int, ...]
) -> nn.Module:
    """Build the model ``name`` (see the module docstring for the name forms).

    ``kwargs`` are the architecture arguments from the config; ``num_classes`` and
    ``input_shape`` (per sample, without batch) come from the task's data. The model is built
    on the ``meta`` device first to count its parameters without allocating them: more than
    :data:`MAX_PARAMETERS` is refused. Raises :class:`AutokdError` for an unknown name, a bad
    kwarg, a model that cannot be built or one that is too large.
    """
    kwargs = dict(kwargs or {})
    input_shape = tuple(int(s) for s in input_shape)
    if not isinstance(name, str) or not name:
        raise AutokdError(f"model name must be a non-empty string, got {short_repr(name)}")
    for key in _RESERVED:
        if key in kwargs:
            raise AutokdError(f"model {_named(name)}: do not set {key!r} in model kwargs; it comes from the task's data")
    if name.startswith(TORCHVISION_PREFIX):
        make = _torchvision_maker(name[len(TORCHVISION_PREFIX) :], kwargs, num_classes, input_shape)
    elif ":" in name:
        make = _user_maker(name, kwargs, num_classes, input_shape)
    else:
        make = _registry_maker(name, kwargs, num_classes, input_shape)
    return _materialised(_build_bounded(name, make), input_shape)


def _materialised(model: nn.Module, input_shape: tuple[int, ...]) -> nn.Module:
    """``model`` with its lazy modules' (``nn.LazyLinear``, ...) parameters made by one dummy
    forward, as its first batch would make them: counting, layer pairs and quantization read them
    before any training."""
    from torch.nn.modules.lazy import LazyModuleMixin

    from autokd.models.taps import trace

    if any(isinstance(m, LazyModuleMixin) and m.has_uninitialized_params() for m in model.modules()):
        trace(model, input_shape)  # eval mode, no gradient, modes restored; a failing forward is named
    return model


def _registry_maker(name: str, kwargs: dict, num_classes: int, input_shape: tuple[int, ...]) -> Callable[[], nn.Module]:
    if name not in MODELS:
        raise unknown("model", name, list_models() + ["torchvision/<name>", "package.module:callable"])
    fn = MODELS[name].fn
    allowed = [p for p in inspect.signature(fn).parameters if p not in _RESERVED]
    for key in kwargs:
        if key not in allowed:
            raise AutokdError(
                f"model {name!r} has no kwarg {short_repr(key, 60)}; allowed: {', '.join(allowed) if allowed else '(none)'}"
            )

    def make() -> nn.Module:
        try:
            return fn(num_classes=num_classes, input_shape=input_shape, **kwargs)
        except AutokdError:
            raise
        except Exception as exc:  # a bad kwarg value: TypeError, ValueError, ...
            raise AutokdError(f"cannot build model {name!r} with kwargs {short_repr(kwargs)}: {_one_line(exc)}") from exc

    return make


def _build_bounded(name: str, make: Callable[[], nn.Module]) -> nn.Module:
    """``make()``, after a build on the meta device has shown the model is not too large."""
    count = meta_parameter_count(make)
    if count is not None and count > MAX_PARAMETERS:
        raise AutokdError(
            f"model {_named(name)} has {count:,} parameters; autokd builds models of at most "
            f"{MAX_PARAMETERS:,} (check its kwargs)"
        )
    return make()


def meta_parameter_count(make: Callable[[], nn.Module]) -> Optional[int]:
    """The parameter count of ``make()`` built on the meta device (no memory), or None when
    that build fails (some models need real tensors to be built; the normal build decides)."""
    import torch

    try:
        with torch.device("meta"):
            model = make()
        return sum(p.numel() for p in model.parameters())
    except (Exception, SystemExit):  # a user model may do anything on the meta device
        return None




def _torchvision_maker(tv_name: str, kwargs: dict, num_classes: int, input_shape: tuple[int, ...]):
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

    def make() -> nn.Module:
        try:
            return torchvision.models.get_model(tv_name, weights=None, num_classes=num_classes, **kwargs)
        except Exception as exc:
            raise AutokdError(
                f"cannot build model 'torchvision/{tv_name}' with kwargs {short_repr(kwargs)}: {_one_line(exc)}"
            ) from exc

    return make


def _user_maker(spec: str, kwargs: dict, num_classes: int, input_shape: tuple[int, ...]):
    """Import ``package.module:callable``; the returned builder calls it. Every failure, a
    ``sys.exit`` included, is a one-line AutokdError."""
    obj = _import_callable(spec)
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

    def make() -> nn.Module:
        try:
            model = obj(**call_kwargs)
        except (Exception, SystemExit) as exc:
            raise AutokdError(
                f"model {_named(spec)}: calling it with {short_repr(call_kwargs)} failed: {_one_line(exc)}"
            ) from None
        if not isinstance(model, nn.Module):
            raise AutokdError(f"model {_named(spec)}: returned {type(model).__name__}, not a torch.nn.Module")
        return model

    return make


def _import_callable(spec: str) -> Callable:
    from autokd.user_code import import_callable

    return import_callable(spec, "model")

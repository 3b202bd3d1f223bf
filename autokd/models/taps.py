"""Tap intermediate features by module path with forward hooks (models are never rewritten).

A path is a name from ``model.named_modules()`` (``"layer2"``, ``"stages.1"``, ...), or the
reserved :data:`EMBEDDING` (``"embedding"``): the penultimate features, i.e. the input of the
model's classifier (the last ``nn.Linear`` in ``named_modules()`` order), flattened to
``(B, D)``. ``"embedding"`` always means this, even for a model with a module of that name.

Tapped tensors are the modules' real outputs, with gradient. A later in-place op in the model
(torchvision's ``ReLU(inplace=True)`` after a BatchNorm, say) changes a tapped tensor too; the
models in this package use no in-place ops. When a module runs several times in one forward,
the last output wins.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Iterable, Optional

import torch
from torch import nn

from autokd.errors import AutokdError, did_you_mean, short_repr

EMBEDDING = "embedding"


def classifier_path(model: nn.Module) -> str:
    """The path of the model's classifier: its last ``nn.Linear`` in ``named_modules()`` order."""
    path = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            path = name
    if path is None:
        raise AutokdError(
            f"{type(model).__name__} has no nn.Linear classifier, so it has no {EMBEDDING!r} features; "
            "tap a module path instead"
        )
    return path


def tappable_paths(model: nn.Module) -> list[str]:
    """The paths worth tapping, as an error lists them: the named submodules but quantization's own
    (stubs, observers, fake quantizers, and what they hold), then ``embedding``. (:class:`FeatureTaps`
    accepts those internals too.)"""
    import torch.ao.quantization as tq

    internal = (tq.QuantStub, tq.DeQuantStub, tq.FakeQuantizeBase, tq.ObserverBase)
    paths, hidden = [], []
    for name, module in model.named_modules():
        if not name or name == EMBEDDING or any(name.startswith(h + ".") for h in hidden):
            continue
        if isinstance(module, internal):
            hidden.append(name)
        else:
            paths.append(name)
    return paths + [EMBEDDING]


class FeatureTaps:
    """Record the outputs of the modules at ``paths`` on every forward.

    >>> with FeatureTaps(model, ["layer2", "embedding"]) as taps:
    ...     logits = model(x)
    ...     feats = taps.outputs["layer2"]

    ``outputs[path]`` keeps the latest tensor (not detached). ``clear()`` forgets them,
    ``remove()`` (or leaving the ``with`` block) removes the hooks.
    """

    def __init__(self, model: nn.Module, paths: Iterable[str]):
        self.model = model
        self.paths = list(dict.fromkeys(paths))
        self.outputs: dict[str, Any] = {}
        self._handles: list = []
        modules = dict(model.named_modules())
        for path in self.paths:
            if path == EMBEDDING:
                clf = modules[classifier_path(model)]
                self._handles.append(clf.register_forward_pre_hook(self._pre_hook(path)))
            elif path and path in modules:
                self._handles.append(modules[path].register_forward_hook(self._hook(path)))
            else:
                self.remove()
                allowed = tappable_paths(model)
                listing = ", ".join(allowed[:40]) + (f", ... ({len(allowed)} in all: autokd layers lists them)"
                                                     if len(allowed) > 40 else "")
                raise AutokdError(
                    f"{type(model).__name__} has no layer {short_repr(path, 80)}{did_you_mean(path, allowed)}; "
                    f"tappable: {listing}"
                )

    def _hook(self, path: str):
        def hook(module, inputs, output):
            self.outputs[path] = output

        return hook

    def _pre_hook(self, path: str):
        def hook(module, inputs):
            self.outputs[path] = torch.flatten(inputs[0], 1)

        return hook

    def clear(self) -> None:
        """Forget the recorded tensors (keeps the hooks)."""
        self.outputs.clear()

    def remove(self) -> None:
        """Remove the hooks from the model."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def __enter__(self) -> "FeatureTaps":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


@dataclass(frozen=True)
class LayerInfo:
    """One tappable layer: its path, module class name and per-sample output shape (or None)."""

    path: str
    type_name: str
    output_shape: Optional[tuple[int, ...]]


def trace(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, tuple[Optional[tuple[int, ...]], int]]:
    """Run one dummy forward and return ``{path: (per-sample output shape or None, order)}``.

    ``order`` is the position at which the module's (last) call finished, -1 if it never ran.
    The forward uses a batch of 2 in eval mode without gradient; each module's training flag is
    restored afterwards.
    """
    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    x = torch.randn((2, *input_shape), generator=torch.Generator().manual_seed(0)).to(device, dtype)

    seen: dict[str, tuple[Optional[tuple[int, ...]], int]] = {}
    counter = itertools.count()

    def hook_for(path: str):
        def hook(module, inputs, output):
            shape = tuple(output.shape[1:]) if isinstance(output, torch.Tensor) else None
            seen[path] = (shape, next(counter))

        return hook

    named = [(name, m) for name, m in model.named_modules() if name]
    handles = [m.register_forward_hook(hook_for(name)) for name, m in named]
    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    except Exception as exc:  # the user's model cannot run on its input shape: say so, not a traceback
        text = " ".join(str(exc).split())[:300]
        raise AutokdError(f"a forward pass of {type(model).__name__} on a dummy batch of shape {tuple(x.shape)} "
                          f"failed: {type(exc).__name__}: {text}") from None
    finally:
        for handle in handles:
            handle.remove()
        for m, mode in modes.items():
            m.training = mode
    return {name: seen.get(name, (None, -1)) for name, _ in named}


def list_layers(model: nn.Module, input_shape: tuple[int, ...]) -> list[LayerInfo]:
    """Every named module with its per-sample output shape, then the ``embedding`` entry.

    Shapes come from one dummy forward (see :func:`trace`); modules that return something
    other than a tensor, or that did not run, get ``None``.
    """
    try:
        taps = FeatureTaps(model, [EMBEDDING])
    except AutokdError:  # no nn.Linear classifier: no embedding entry
        taps = None
    try:
        shapes = trace(model, tuple(input_shape))
    finally:
        if taps is not None:
            taps.remove()
    modules = dict(model.named_modules())
    layers = [LayerInfo(path, type(modules[path]).__name__, shape) for path, (shape, _) in shapes.items()]
    if taps is not None:
        emb = taps.outputs.get(EMBEDDING)
        shape = tuple(emb.shape[1:]) if isinstance(emb, torch.Tensor) else None
        owner = classifier_path(model) or f"the model itself ({type(model).__name__})"  # "": the model is a Linear
        layers.append(LayerInfo(EMBEDDING, f"input of {owner}", shape))
    return layers

"""Tap intermediate features by module path with forward hooks (models are never rewritten).

A path is a name from ``model.named_modules()`` (``"layer2"``, ``"stages.1"``, ...), or the
reserved :data:`EMBEDDING` (``"embedding"``): the penultimate features, i.e. the input of the
model's classifier, flattened to ``(B, D)``. The classifier is the ``nn.Linear`` that makes the
logits, found by execution on every forward: the last one called whose output is the model's
output (else the last whose output has its shape), wherever it is declared and whatever other
Linear layers (projections, auxiliary heads) run. ``"embedding"`` always means this, even for a
model with a module of that name.

Tapped tensors are the modules' real outputs, with gradient. A later in-place op in the model
(torchvision's ``ReLU(inplace=True)`` after a BatchNorm, say) changes a tapped tensor too; the
models in this package use no in-place ops. When a module runs several times in one forward,
the last output wins.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional

import torch
from torch import nn

from autokd.errors import AutokdError, did_you_mean, short_repr

EMBEDDING = "embedding"

# (path, input, output) of one call of a candidate layer
_Call = tuple[str, Any, Any]


def no_classifier_error(model: nn.Module) -> AutokdError:
    """The error for a model without an ``nn.Linear`` that makes its logits (so without ``embedding``)."""
    from autokd.losses import EMBEDDING_LOSSES

    return AutokdError(
        f"{type(model).__name__} has no nn.Linear classifier (no nn.Linear makes its logits), so it has no "
        f"{EMBEDDING!r} features: the relation losses ({', '.join(sorted(EMBEDDING_LOSSES))}) need the features "
        f"entering a Linear classifier; drop them from the space's relation_losses or the strategy's relations "
        f"(and {EMBEDDING!r} from any layer pair)"
    )


def classifier_hooks(model: nn.Module, found: Callable[[Optional[str], Any], None],
                     kinds: tuple[type, ...] = (nn.Linear,)) -> list:
    """Hooks that, after every forward of ``model``, call ``found(path, input)`` with the layer of
    ``kinds`` that made the output (see :func:`logits_call`) and its input, or ``found(None, None)``.
    Returns the hook handles (remove them when done)."""
    calls: list[_Call] = []

    def record(path: str):
        def hook(module, inputs, output):
            calls.append((path, inputs[0] if inputs else None, output))

        return hook

    def done(module, inputs, output):
        call = logits_call(calls, output)
        calls.clear()  # hold no tensor between forwards
        found(*(call[:2] if call is not None else (None, None)))

    handles = [m.register_forward_hook(record(path)) for path, m in model.named_modules() if isinstance(m, kinds)]
    handles.append(model.register_forward_pre_hook(lambda module, inputs: calls.clear()))
    handles.append(model.register_forward_hook(done))
    return handles


def logits_call(calls: list[_Call], output: Any) -> Optional[_Call]:
    """The call (in call order) that made a forward's ``output``: the last one whose output is
    ``output`` itself, else the last whose output has its shape (logits reshaped or scaled after
    the classifier); None when none does or ``output`` is no tensor."""
    if not isinstance(output, torch.Tensor):
        return None
    same = [c for c in calls if c[2] is output]
    shaped = [c for c in calls if isinstance(c[2], torch.Tensor) and c[2].shape == output.shape]
    return (same or shaped or [None])[-1]


def logits_layer(model: nn.Module, example: torch.Tensor, kinds: tuple[type, ...] = (nn.Linear,)) -> Optional[str]:
    """The path of the layer of ``kinds`` that makes the logits ("": the model itself), from one
    eval-mode forward of ``example`` without gradient; None when none does. Modes are restored."""
    found: list[Optional[str]] = [None]
    handles = classifier_hooks(model, lambda path, _x: found.__setitem__(0, path), kinds)
    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        with torch.no_grad():
            model(example)
    finally:
        for handle in handles:
            handle.remove()
        for m, mode in modes.items():
            m.training = mode
    return found[0]


def classifier_path(model: nn.Module, input_shape: Optional[tuple[int, ...]] = None) -> str:
    """The path of the model's classifier, the ``nn.Linear`` that makes its logits ("": the model is
    one), found by one dummy forward on ``input_shape`` (see :func:`logits_layer`). Without an input
    shape nothing runs and the last ``nn.Linear`` declared is taken (right for the usual layout)."""
    if input_shape is not None:
        path = logits_layer(model, _dummy_batch(model, input_shape))
    else:
        path = next((name for name, m in reversed(list(model.named_modules())) if isinstance(m, nn.Linear)), None)
    if path is None:
        raise no_classifier_error(model)
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
        self.classifier: Optional[str] = None  # the path of the classifier the last forward used ("": the model)
        self._handles: list = []
        modules = dict(model.named_modules())
        for path in self.paths:
            if path == EMBEDDING:
                if not any(isinstance(m, nn.Linear) for m in modules.values()):
                    self.remove()
                    raise no_classifier_error(model)
                self._handles.extend(classifier_hooks(model, self._embedding))
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

    def _embedding(self, path: Optional[str], inputs: Any) -> None:
        if path is None or not isinstance(inputs, torch.Tensor):
            raise no_classifier_error(self.model)
        self.classifier = path
        self.outputs[EMBEDDING] = torch.flatten(inputs, 1)

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
    x = _dummy_batch(model, input_shape)
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


def _dummy_batch(model: nn.Module, input_shape: tuple[int, ...]) -> torch.Tensor:
    """A fixed random batch of 2 on the model's device, in its parameters' dtype."""
    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    return torch.randn((2, *input_shape), generator=torch.Generator().manual_seed(0)).to(device, dtype)


def list_layers(model: nn.Module, input_shape: tuple[int, ...]) -> list[LayerInfo]:
    """Every named module with its per-sample output shape (but one named ``embedding``), then the
    ``embedding`` entry: the classifier's input (absent when no ``nn.Linear`` makes the logits).

    Shapes come from one dummy forward (see :func:`trace`); modules that return something
    other than a tensor, or that did not run, get ``None``.
    """
    found: list = [None, None]  # the classifier's path and input

    def keep(path: Optional[str], inputs: Any) -> None:
        found[:] = [path, inputs]

    handles = classifier_hooks(model, keep)
    try:
        shapes = trace(model, tuple(input_shape))
    finally:
        for handle in handles:
            handle.remove()
    modules = dict(model.named_modules())  # a module named embedding is not tapped by that name: left out
    layers = [LayerInfo(path, type(modules[path]).__name__, shape) for path, (shape, _) in shapes.items()
              if path != EMBEDDING]
    owner, emb = found
    if owner is not None:
        shape = tuple(emb.flatten(1).shape[1:]) if isinstance(emb, torch.Tensor) else None
        layers.append(LayerInfo(EMBEDDING, f"input of {owner or f'the model itself ({type(model).__name__})'}", shape))
    return layers

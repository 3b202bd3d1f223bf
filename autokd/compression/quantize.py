"""Quantization-aware training of a student, and its conversion to what it runs as.

Built on ``torch.ao.quantization``'s eager-mode tools (fake-quantize modules, ``prepare_qat``,
``convert``). Eager QAT is marked deprecated in torch 2.14, and the export-based (pt2e) flow it
points to now lives in the separate torchao package; eager mode is chosen because it ships with
torch, converts to real int8 CPU kernels, and leaves the model's module paths (which layer pairs
and feature taps name) as they were. See docs/compression.md.

Every ``Conv1d``/``Conv2d``/``Conv3d``/``Linear`` layer of the student but its classifier (see
:func:`layer_bits`) is replaced, at the same module path, by a :class:`FakeQuantLayer`: the input is
fake-quantized per tensor (affine, moving-average min/max), the weights per output channel
(symmetric), the output per tensor, with straight-through gradients. Everything between such
layers (batch norm, activations, pooling, residual adds) stays float, so any model made of these
layers can be quantized without rewriting its forward.

* 8 bits: :func:`deploy` converts each layer to a real int8 kernel (``torch.ao.nn.quantized``
  Conv1d/2d/3d and Linear, back-end ``torch.backends.quantized.engine``: x86/fbgemm on Intel and
  AMD CPUs, qnnpack on ARM) that quantizes its input, runs in int8 and dequantizes its output.
  The back-end's default QAT settings are used (on x86 activations use 7 bits, ``reduce_range``,
  so that the int16 accumulation of AVX2 kernels cannot overflow).
* 4 bits: torch has no int4 CPU kernels for these layers, so the deployed model is the
  fake-quantized one with its observers frozen (simulated: values on the 4-bit grid, float
  arithmetic). Its size is counted at half a byte a weight (the first layer's at one byte).
"""

from __future__ import annotations

import copy
import warnings
from contextlib import contextmanager
from typing import Iterator, Optional

import torch
from torch import nn
from torch.ao import quantization as tq
from torch.ao.nn import qat as nnqat
from torch.ao.nn import quantized as nnq

from autokd.user_code import one_line

QAT_LAYERS = {nn.Conv1d: nnqat.Conv1d, nn.Conv2d: nnqat.Conv2d, nn.Conv3d: nnqat.Conv3d, nn.Linear: nnqat.Linear}
INT8_LAYERS = {nnqat.Conv1d: nnq.Conv1d, nnqat.Conv2d: nnq.Conv2d, nnqat.Conv3d: nnq.Conv3d, nnqat.Linear: nnq.Linear,
               tq.QuantStub: nnq.Quantize, tq.DeQuantStub: nnq.DeQuantize}
REAL_BITS = (8,)  # bit widths converted to real integer kernels; others are simulated


class FakeQuantLayer(nn.Module):
    """One layer with fake-quantized input, weights and output (see the module docstring).

    Observers learn the ranges in training mode only: evaluation (validation) never moves them."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.quant = tq.QuantStub()
        self.layer = layer
        self.dequant = tq.DeQuantStub()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dequant(self.layer(self.quant(x)))

    def train(self, mode: bool = True) -> "FakeQuantLayer":
        super().train(mode)
        self.apply(tq.enable_observer if mode else tq.disable_observer)
        return self


def qconfig(bits: int) -> tq.QConfig:
    """The back-end's default QAT settings at 8 bits; the same scheme on the 4-bit grid otherwise."""
    if bits == 8:
        return tq.get_default_qat_qconfig(torch.backends.quantized.engine)
    levels = 2**bits
    activation = tq.FakeQuantize.with_args(observer=tq.MovingAverageMinMaxObserver, quant_min=0,
                                           quant_max=levels - 1, dtype=torch.quint8,
                                           qscheme=torch.per_tensor_affine)
    weight = tq.FakeQuantize.with_args(observer=tq.MovingAveragePerChannelMinMaxObserver, quant_min=-levels // 2,
                                       quant_max=levels // 2 - 1, dtype=torch.qint8,
                                       qscheme=torch.per_channel_symmetric)
    return tq.QConfig(activation=activation, weight=weight)


def quantizable_layers(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """(path, layer) of every layer QAT replaces, outermost first."""
    for path, module in model.named_modules():
        if type(module) in QAT_LAYERS:
            yield path, module


_SAID: set[str] = set()  # the layer lists already warned about


def _warn_subclasses_stay_float(model: nn.Module) -> None:
    """QAT swaps layers of exactly these classes: a subclass of Conv1d/2d/3d or Linear (a
    weight-standardised convolution with a forward of its own, attention's output projection, whose
    weights its attention module reads) stays float, and the user is told which."""
    kept = [(path, type(m).__name__) for path, m in model.named_modules()
            if isinstance(m, tuple(QAT_LAYERS)) and type(m) not in QAT_LAYERS]
    shown = ", ".join(f"{path} ({name})" for path, name in kept[:5]) + (f" and {len(kept) - 5} more"
                                                                     if len(kept) > 5 else "")
    if kept and shown not in _SAID:  # once a process: quiet()'s catch_warnings forgets what Python has shown
        _SAID.add(shown)
        warnings.warn(f"quantize: {len(kept)} layer(s) stay float: {shown}, subclasses of Conv/Linear (quantization "
                      f"swaps exact Conv1d/2d/3d and Linear layers only); their weights count at 32 bits",
                      RuntimeWarning, stacklevel=3)


def prepare(model: nn.Module, bits: int, example: Optional[torch.Tensor] = None) -> nn.Module:
    """``model`` (changed in place and returned) with its layers fake-quantized: see
    :func:`layer_bits` for which layer gets which width (``example``, one input batch, finds the
    classifier; without it the last layer registered is taken).

    The model must be in training mode for ``prepare_qat``; it is left in the mode it was in."""
    was_training = model.training
    plan = layer_bits(model, bits, example)
    layers = [(path, layer) for path, layer in quantizable_layers(model) if plan.get(path)]
    if not layers:
        raise ValueError("the student has no Conv1d, Conv2d, Conv3d or Linear layer to quantize besides its "
                         "classifier")
    _refuse_aliases(model, [path for path, _ in layers])
    _warn_subclasses_stay_float(model)
    if bits not in plan.values():
        kept = ", ".join(f"{path} at {plan[path]}" if plan[path] else f"{path} float" for path in plan)
        raise ValueError(f"no layer would be at {bits} bits: the classifier stays float and the first layer at 8 "
                         f"bits ({kept}), and the student has no other Conv1d, Conv2d, Conv3d or Linear layer; "
                         f"use bits 8")
    for path, layer in layers:
        wrapped = FakeQuantLayer(layer)
        wrapped.qconfig = qconfig(plan[path])
        _set_module(model, path, wrapped)
    model.train()
    with quiet():
        tq.prepare_qat(model, mapping=QAT_LAYERS, inplace=True)
    with torch.no_grad():  # observe the weights once: per-channel scales get their shapes before any eval forward
        for path, _layer in layers:
            qat_layer = model.get_submodule(path).layer
            qat_layer.weight_fake_quant(qat_layer.weight)
    model.train(was_training)
    return model


def layer_bits(model: nn.Module, bits: int, example: Optional[torch.Tensor] = None) -> dict[str, Optional[int]]:
    """Layer path -> bit width (None: kept float). The classifier (the layer whose outputs are the
    model's logits) stays float: quantizing logits to 256 levels (128 on x86) cost 2 points of KD
    accuracy on the default task, for 0.3 % of its weights. Below 8 bits the first layer, which sees
    the raw input, is quantized at 8 bits (as is usual for int4 networks: at 4 bits it cost 12 points).

    Both are found by one forward of ``example`` (see :func:`_roles`); without it, the first and last
    layers registered are taken."""
    layers = [path for path, _ in quantizable_layers(model)]
    if not layers:
        return {}
    first, classifier = _roles(model, example) if example is not None else (layers[0], layers[-1])
    plan: dict[str, Optional[int]] = {path: bits for path in layers}
    if classifier is not None:
        plan[classifier] = None
    if bits < 8 and first is not None and plan.get(first) is not None:
        plan[first] = 8
    return plan


def _roles(model: nn.Module, example: torch.Tensor) -> tuple[Optional[str], Optional[str]]:
    """(the first quantizable layer the forward calls, the one that makes the logits) by one eval-mode
    forward of ``example``. The classifier's output is the model's output (or has its shape: logits
    reshaped or scaled after it), else, for a convolution pooled into the logits, the last layer called
    when it has as many channels as there are logits; None when no layer makes them (``F.linear``
    on a parameter, say: then every layer is quantized and the logits stay float anyway)."""
    from autokd.models.taps import logits_call

    calls: list = []
    hooks = [m.register_forward_hook(lambda _m, _i, out, path=path: calls.append((path, None, out)))
             for path, m in quantizable_layers(model)]
    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        with torch.no_grad():
            output = model(example)
    finally:
        for hook in hooks:
            hook.remove()
        for m, mode in modes.items():
            m.training = mode
    if not calls:
        return None, None
    made = logits_call(calls, output)
    last = calls[-1][2]
    if made is None and _same_channels(last, output):
        made = calls[-1]
    return calls[0][0], made[0] if made is not None else None


def _same_channels(layer_out, output) -> bool:
    return (isinstance(layer_out, torch.Tensor) and isinstance(output, torch.Tensor) and layer_out.dim() > 2
            and output.dim() >= 2 and layer_out.shape[:2] == output.shape[:2])


def _refuse_aliases(model: nn.Module, paths: list[str]) -> None:
    """Quantization wraps a layer at one path: one module registered at two paths cannot be quantized."""
    seen: dict[int, str] = {}
    wrapped = {id(model.get_submodule(path)) for path in paths}
    for path, module in model.named_modules(remove_duplicate=False):
        if id(module) in wrapped and seen.setdefault(id(module), path) != path:
            raise ValueError(f"layer {seen[id(module)]} is also registered as {path} (one module at two paths), "
                             f"which quantization cannot wrap; give each use its own layer")


def bits_of(model: nn.Module) -> int | None:
    """The bit width a prepared model was fake-quantized at (its narrowest layer's; None: not quantized).
    (:func:`prepare` refuses a plan without a layer at the bits asked, so this is the bits asked.)"""
    widths = [bits_of_layer(m) for m in model.modules() if isinstance(m, FakeQuantLayer)]
    return min(widths) if widths else None


def deploy(model: nn.Module) -> nn.Module:
    """A copy of a prepared model as it runs after training: real int8 kernels at 8 bits,
    the frozen fake-quantized model otherwise (the model itself is left as it is)."""
    bits = bits_of(model)
    deployed = copy.deepcopy(model).eval()
    if bits in REAL_BITS:
        with quiet():
            tq.convert(deployed, mapping=INT8_LAYERS, inplace=True)
    return deployed


def check_deploys(model: nn.Module, example: torch.Tensor) -> None:
    """Deploy a copy of a prepared (untrained) ``model`` and run it on ``example`` on the CPU, as
    :func:`deploy` will after training: a layer QAT builds but the int8 kernels cannot take (a string
    ``padding``, a ``padding_mode`` other than zeros) is a ValueError naming it, before any training.
    The copy first runs ``example`` in training mode, so that its observers have ranges."""
    trial = copy.deepcopy(model).cpu()
    x = example.detach().cpu()
    inputs: dict[str, torch.Tensor] = {}
    hooks = [m.register_forward_pre_hook(lambda _m, args, path=path: inputs.setdefault(path, args[0]))
             for path, m in trial.named_modules() if isinstance(m, FakeQuantLayer)]
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):  # dropout here must not move the training's seed
            trial.train()(x)
    finally:
        for hook in hooks:
            hook.remove()
    bits = bits_of(trial)
    for path, layer_input in inputs.items() if bits in REAL_BITS else ():  # else nothing is converted
        layer = trial.get_submodule(path)
        _runs_deployed(layer, layer_input, f"layer {path} ({_described(layer.layer)}) trains quantized but cannot "
                                           f"be deployed at {bits} bits")
    _runs_deployed(trial, x, f"the quantized student trains but cannot run as deployed at {bits} bits")


def _runs_deployed(model: nn.Module, x: torch.Tensor, failure: str) -> None:
    """``model`` deployed runs on ``x``, else a ValueError: ``failure``, then what went wrong."""
    try:
        with torch.no_grad():
            deploy(model)(x)
    except Exception as exc:
        raise ValueError(f"{failure}: {one_line(exc)}") from None


def _described(layer: nn.Module) -> str:
    return f"{type(layer).__name__}({layer.extra_repr()})"


def quantized_weights(model: nn.Module) -> dict[str, int]:
    """Parameter name -> bits, for the weights a prepared model stores quantized."""
    out = {}
    for path, module in model.named_modules():
        if isinstance(module, FakeQuantLayer):
            out[f"{path}.layer.weight"] = bits_of_layer(module)
    return out


def bits_of_layer(layer: FakeQuantLayer) -> int:
    fake = layer.layer.weight_fake_quant
    return (fake.quant_max - fake.quant_min + 1).bit_length() - 1


@contextmanager
def quiet():
    """torch.ao's deprecation notices (eager QAT, quantized tensors, reduce_range) said once in the
    README instead of on every trial."""
    with warnings.catch_warnings():
        for message in (r"torch\.ao\.quantization is deprecated", r".*quantized tensor creation functions",
                        r"Please use quant_min and quant_max"):
            warnings.filterwarnings("ignore", message=message)
        yield


def _set_module(model: nn.Module, path: str, module: nn.Module) -> None:
    parent_path, _, name = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, name, module)

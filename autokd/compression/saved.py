"""A trained student on disk, and rebuilt from it for inference.

``save_student`` writes one ``torch.save`` file holding only plain data (strings, numbers, lists,
dicts and tensors), so it loads with ``torch.load(..., weights_only=True)``: the model's builder
name and kwargs, the data's class count and input shape, the compression steps, and the trained
state dict (a quantized student's fake-quantization state included; a pruned one's tensors at
their pruned shapes). ``load_student`` rebuilds the architecture, shrinks the pruned layers to
the saved shapes, re-applies quantization-aware training, loads the weights and returns the model
as deployed (int8 kernels for an 8-bit student), in eval mode, on the CPU::

    import autokd
    student = autokd.load_student("student.pt")
    logits = student(x)

A ``package.module:callable`` model is rebuilt by importing that module, as in training: load
files only from people you trust to run code on your machine.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Union

import torch
from torch import nn

FORMAT = "autokd-student/1"
MAX_SAMPLE_ELEMENTS = 2**24  # one sample's values (64 MB as float32), as ``autokd layers`` allows


class SavedStudentError(ValueError):
    """The file is not a saved autokd student (or not one this version reads)."""


def save_student(path: Union[str, Path], model: nn.Module, architecture: tuple[str, dict], num_classes: int,
                 input_shape, compression: dict, meta: dict) -> None:
    """Write ``model`` (trained, before deployment) with what rebuilds it."""
    name, kwargs = architecture
    payload = {"format": FORMAT, "model": name, "kwargs": dict(kwargs), "num_classes": int(num_classes),
               "input_shape": [int(s) for s in input_shape], "compression": dict(compression), "meta": dict(meta),
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    torch.save(payload, Path(path))


def read_saved(path: Union[str, Path]) -> dict:
    """The saved payload, checked (weights only: nothing in the file is executed)."""
    try:
        payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise SavedStudentError(f"{path} is not a readable autokd student file ({type(exc).__name__}: "
                                f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise SavedStudentError(f"{path} is not an autokd student file (format {FORMAT!r}); write one with "
                                f"autokd train --config FILE --save {Path(path).name}")
    for key, kind in _FIELDS.items():
        if not isinstance(payload.get(key), kind) or isinstance(payload.get(key), bool):
            raise SavedStudentError(f"{path} is a damaged autokd student file: its {key!r} is "
                                    f"{type(payload.get(key)).__name__ if key in payload else 'missing'}, "
                                    f"expected {_WHAT[kind]}")
    if not payload["state_dict"] or not all(isinstance(t, torch.Tensor) for t in payload["state_dict"].values()):
        raise SavedStudentError(f"{path} is a damaged autokd student file: its state_dict holds no weights")
    return payload


_FIELDS = {"model": str, "kwargs": dict, "num_classes": int, "input_shape": list, "compression": dict,
           "state_dict": dict}
_WHAT = {str: "a text", dict: "a mapping", int: "a whole number", list: "a list"}


def rebuild(payload: dict, deployed: bool = True) -> nn.Module:
    """The student in ``payload`` (from :func:`read_saved`), as deployed or as trained."""
    from autokd.compression import deploy
    from autokd.compression.prune import resize_like
    from autokd.compression.quantize import prepare
    from autokd.config.compression import Compression
    from autokd.config.parse import from_mapping
    from autokd.models.registry import build_model

    from autokd.errors import ConfigError

    try:
        compression = from_mapping(Compression, payload["compression"], "compression").validate("compression")
    except ConfigError as exc:
        raise SavedStudentError(f"a damaged autokd student file: {exc}") from None
    state, shape, classes = payload["state_dict"], tuple(payload["input_shape"]), payload["num_classes"]
    if not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape) or \
            math.prod(shape) > MAX_SAMPLE_ELEMENTS or classes < 1:
        raise SavedStudentError(f"a damaged autokd student file: input_shape {list(shape)} or num_classes {classes} "
                                f"is no model's (positive whole numbers, one sample at most {MAX_SAMPLE_ELEMENTS:,} "
                                f"values)")
    model = build_model(payload["model"], payload["kwargs"], classes, shape)
    if compression.prune is not None:  # pruned shapes first: quantization then wraps the resized layers
        resize_like(model, plain_names(model, state))
    if compression.quantize is not None:  # the same layer plan as in training (the classifier found by a forward)
        prepare(model, compression.quantize.bits, torch.zeros(2, *payload["input_shape"]))
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise SavedStudentError(f"the saved weights do not fit the model {payload['model']!r} rebuilt from the "
                                f"file: {' '.join(str(exc).split())[:300]}") from None
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros(2, *shape))
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, classes):
        raise SavedStudentError(f"a damaged autokd student file: the rebuilt model gives "
                                f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__} "
                                f"for 2 samples, not the file's {classes} classes")
    return deploy(model, compression).eval() if deployed else model


def plain_names(model: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with each fake-quantized layer's tensors also under the plain ``model``'s names: a
    layer quantization wrapped at ``P`` saves its weight as ``P.layer.weight``, the model not yet
    prepared has it at ``P.weight`` (so :func:`resize_like` sees a pruned and quantized layer's shapes)."""
    from autokd.compression.quantize import quantizable_layers

    view = dict(state)
    for path, module in quantizable_layers(model):
        prefix = f"{path}." if path else ""
        for name, _tensor in [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]:
            if prefix + name not in state and f"{prefix}layer.{name}" in state:
                view[prefix + name] = state[f"{prefix}layer.{name}"]
    return view


def load_student(path: Union[str, Path], deployed: bool = True) -> nn.Module:
    """Rebuild a student saved by ``autokd train --save`` (see the module docstring)."""
    return rebuild(read_saved(path), deployed)

"""What is shipped: a strategy's compression steps, as plain data.

A strategy's ``compression`` section may hold two steps, applied in this order:

* ``prune``: structured channel pruning by L1 importance, the channels really removed (the
  model gets smaller and faster). ``of: teacher`` is the prune-then-distill workflow: a copy of
  the trained teacher, with ``amount`` of its channels removed in every prunable layer, is the
  student's starting point, and distillation recovers its accuracy. ``of: student``: the
  student is first trained by the strategy, then pruned, then distilled again for
  ``recover_epochs`` epochs (default: the recipe's) to recover.
* ``quantize``: quantization-aware training of the student (fake-quantized weights per
  channel, activations per tensor, straight-through gradients) at ``bits`` 8 or 4, the teacher
  in full precision. After training the student is converted to what it runs as (real int8
  kernels on CPU for 8 bits; 4 bits is simulated, see :mod:`autokd.compression.quantize`).

An empty section (the default) ships the float student as trained; a strategy without
compression leaves the section out of its dict, so older configs read as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from autokd.config.parse import finite_float
from autokd.errors import ConfigError, short_repr

QUANTIZE_BITS = (8, 4)
PRUNE_SOURCES = ("teacher", "student")
MAX_PRUNE_AMOUNT = 0.9
MAX_RECOVER_EPOCHS = 100_000


@dataclass
class Quantize:
    """Quantization-aware training at ``bits`` (8 or 4)."""

    bits: int = 8

    def validate(self, where: str) -> "Quantize":
        if isinstance(self.bits, bool) or self.bits not in QUANTIZE_BITS:
            raise ConfigError(f"{where}.bits must be one of {', '.join(map(str, QUANTIZE_BITS))}, "
                              f"got {short_repr(self.bits)}")
        return self


@dataclass
class Prune:
    """Remove ``amount`` of the channels of every prunable layer of ``of`` (teacher or student)."""

    amount: float = 0.5
    of: str = "teacher"
    recover_epochs: Optional[int] = None  # of: student only; None: the recipe's epochs

    def validate(self, where: str) -> "Prune":
        amount = finite_float(self.amount, f"{where}.amount")
        if not 0 <= amount <= MAX_PRUNE_AMOUNT:
            raise ConfigError(f"{where}.amount must be in [0, {MAX_PRUNE_AMOUNT}] (the share of channels removed "
                              f"from each prunable layer), got {short_repr(self.amount)}")
        if self.of not in PRUNE_SOURCES:
            raise ConfigError(f"{where}.of must be one of {', '.join(PRUNE_SOURCES)}, got {short_repr(self.of)}")
        if self.recover_epochs is not None:
            if self.of != "student":
                raise ConfigError(f"{where}.recover_epochs applies only with of: student (a pruned teacher is "
                                  f"recovered by the strategy's own training); remove it")
            epochs = self.recover_epochs
            if isinstance(epochs, bool) or not isinstance(epochs, int) or not 1 <= epochs <= MAX_RECOVER_EPOCHS:
                raise ConfigError(f"{where}.recover_epochs must be a whole number from 1 to "
                                  f"{MAX_RECOVER_EPOCHS:,}, got {short_repr(epochs)}")
        return self

    def describe(self) -> str:
        return f"prune {self.of} {self.amount * 100:.4g}%"  # 42%, 42.4%: searched amounts stay apart


@dataclass
class Compression:
    """The compression steps of a strategy (none by default)."""

    prune: Optional[Prune] = None
    quantize: Optional[Quantize] = None

    @property
    def empty(self) -> bool:
        return self.prune is None and self.quantize is None

    def validate(self, where: str) -> "Compression":
        if self.prune is not None:
            self.prune.validate(f"{where}.prune")
        if self.quantize is not None:
            self.quantize.validate(f"{where}.quantize")
        return self

    def describe(self) -> str:
        parts = [self.prune.describe()] if self.prune is not None else []
        parts += [f"int{self.quantize.bits} QAT"] if self.quantize is not None else []
        return ", ".join(parts)


def compression_to_dict(compression: Compression) -> dict:
    """The section as YAML writes it: absent steps left out."""
    data = {}
    if compression.prune is not None:
        prune = {"amount": compression.prune.amount, "of": compression.prune.of}
        if compression.prune.recover_epochs is not None:
            prune["recover_epochs"] = compression.prune.recover_epochs
        data["prune"] = prune
    if compression.quantize is not None:
        data["quantize"] = {"bits": compression.quantize.bits}
    return data

"""A search space over distillation strategies, and its mapping to Optuna parameters.

The ``space`` section of a space file::

    space:
      temperature: {low: 1, high: 16, log: true}   # or a fixed number
      alpha: {low: 0, high: 1}
      logit_losses: [kd, dkd]
      pairs: auto                                  # or [{teacher: stages.1, student: stages.1}, ...]
      pair_losses: [none, fitnet, at, nst, sp]     # every pair picks one ('none' switches it off)
      relation_losses: [rkd, pkt, sp]              # each is switched on or off, with its own weight
      weight_scale: {low: 0.01, high: 10, log: true}
      lr: null                                     # or {low: 0.001, high: 0.05, log: true}

Loss weights are sampled as ``scale * default_weight`` of each loss (FitNets 100, AT 1000, SP 3000,
PKT 30000, ...), so one ``weight_scale`` range means the same for every loss. Parameter names and
choice lists are fixed for a study; a weight whose loss is off is simply not suggested.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field, replace
from typing import Any, Optional, Union

from autokd.config.parse import convert, from_mapping
from autokd.config.strategy import PairLoss, Recipe, RelationLoss, Strategy
from autokd.errors import ConfigError, did_you_mean
from autokd.losses import EMBEDDING_LOSSES, LOGIT_LOSSES, PAIR_LOSSES

NONE = "none"


@dataclass
class FloatRange:
    low: float
    high: float
    log: bool = False

    def check(self, where: str, positive: bool = False, upper: Optional[float] = None) -> "FloatRange":
        if self.low > self.high:
            raise ConfigError(f"{where}: empty range, low {self.low} > high {self.high}")
        if (positive or self.log) and self.low <= 0:
            raise ConfigError(f"{where}.low must be > 0{' on a log scale' if self.log else ''}, got {self.low}")
        if self.low < 0:
            raise ConfigError(f"{where}.low must be >= 0, got {self.low}")
        if upper is not None and self.high > upper:
            raise ConfigError(f"{where}.high must be <= {upper}, got {self.high}")
        return self

    def bins(self, n: int) -> list[float]:
        """``n`` values spread evenly over the range (on a log scale when ``log``)."""
        if n == 1 or self.low == self.high:
            return [self.low]
        if self.log:
            lo, hi = math.log(self.low), math.log(self.high)
            return [math.exp(lo + (hi - lo) * i / (n - 1)) for i in range(n)]
        return [self.low + (self.high - self.low) * i / (n - 1) for i in range(n)]


Knob = Union[float, FloatRange]


@dataclass
class PairSpec:
    teacher: str
    student: str


@dataclass
class SpaceSpec:
    temperature: Knob = field(default_factory=lambda: FloatRange(1.0, 16.0, log=True))
    alpha: Knob = field(default_factory=lambda: FloatRange(0.0, 1.0))
    logit_losses: list[str] = field(default_factory=lambda: ["kd", "dkd"])
    pairs: Union[str, list[PairSpec]] = "auto"
    pair_losses: list[str] = field(default_factory=lambda: [NONE, "fitnet", "at", "nst", "sp"])
    relation_losses: list[str] = field(default_factory=lambda: ["rkd", "pkt", "sp"])
    weight_scale: Knob = field(default_factory=lambda: FloatRange(0.01, 10.0, log=True))
    lr: Optional[Knob] = None
    # stop weak trials early at the grace period (half the proxy); off where early epochs rank
    # strategies unlike the end of the proxy (measure with benchmarks/proxy_fidelity.py)
    pruning: bool = True


def space_from_dict(data: Optional[dict], where: str = "space") -> SpaceSpec:
    """Parse and validate a ``space`` mapping (absent keys take the defaults above)."""
    data = dict(data or {})
    ranges = {}
    for key in ("temperature", "alpha", "weight_scale", "lr"):
        if isinstance(data.get(key), dict):
            ranges[key] = from_mapping(FloatRange, data.pop(key), f"{where}.{key}")
    pairs = data.pop("pairs", "auto")
    spec = from_mapping(SpaceSpec, data, where)
    for key, value in ranges.items():
        setattr(spec, key, value)
    if pairs != "auto":
        if not isinstance(pairs, list) or not pairs:
            raise ConfigError(f"{where}.pairs must be 'auto' or a non-empty list of {{teacher, student}} mappings")
        spec.pairs = [from_mapping(PairSpec, p, f"{where}.pairs[{i}]") for i, p in enumerate(pairs)]
        _check_distinct_pairs(spec.pairs, f"{where}.pairs")
    _check_knob(spec.temperature, f"{where}.temperature", positive=True)
    _check_knob(spec.alpha, f"{where}.alpha", upper=1.0)
    _check_knob(spec.weight_scale, f"{where}.weight_scale", positive=True)
    if spec.lr is not None:
        _check_knob(spec.lr, f"{where}.lr", positive=True)
    _check_choices(spec.logit_losses, LOGIT_LOSSES, f"{where}.logit_losses")
    _check_choices(spec.pair_losses, [NONE, *PAIR_LOSSES], f"{where}.pair_losses")
    _check_choices(spec.relation_losses, EMBEDDING_LOSSES, f"{where}.relation_losses", allow_empty=True)
    return spec


def _check_distinct_pairs(pairs: list[PairSpec], where: str) -> None:
    seen: dict[tuple[str, str], int] = {}
    for i, p in enumerate(pairs):
        if (p.teacher, p.student) in seen:
            raise ConfigError(f"{where}[{i}] repeats {where}[{seen[p.teacher, p.student]}] "
                              f"(teacher {p.teacher}, student {p.student}); list each layer pair once")
        seen[p.teacher, p.student] = i


def _check_knob(knob: Knob, where: str, positive: bool = False, upper: Optional[float] = None) -> None:
    if isinstance(knob, FloatRange):
        knob.check(where, positive=positive, upper=upper)
        return
    value = convert(float, knob, where)
    if positive and value <= 0 or value < 0 or (upper is not None and value > upper):
        allowed = "> 0" if positive else f"in [0, {upper}]" if upper is not None else ">= 0"
        raise ConfigError(f"{where} must be {allowed}, got {value}")


def _check_choices(choices: list[str], known, where: str, allow_empty: bool = False) -> None:
    if not choices and not allow_empty:
        raise ConfigError(f"{where} must list at least one of {', '.join(known)}")
    for name in choices:
        if name not in known:
            raise ConfigError(f"{where}: unknown loss {name!r}{did_you_mean(name, known)}; known: {', '.join(sorted(known))}")
    if len(set(choices)) != len(choices):
        raise ConfigError(f"{where} lists a loss twice: {choices}")


@dataclass
class Dimension:
    """One searched parameter: a categorical (``choices``) or a float range (``range``)."""

    name: str
    choices: Optional[list] = None
    range: Optional[FloatRange] = None


class SearchSpace:
    """A space bound to concrete layer pairs: suggests strategies and rebuilds them from params."""

    def __init__(self, spec: SpaceSpec, pairs: list[tuple[str, str]], base_recipe: Recipe, dkd_warmup: int = 1):
        self.spec = spec
        self.pairs = list(pairs)
        self.base_recipe = base_recipe
        self.dkd_warmup = dkd_warmup

    # --- the fixed list of parameters -------------------------------------------------
    def dimensions(self) -> list[Dimension]:
        """Every parameter the space can ask for, in a fixed order (conditional ones included)."""
        s = self.spec
        dims = []
        for name in ("temperature", "alpha"):
            if isinstance(getattr(s, name), FloatRange):
                dims.append(Dimension(name, range=getattr(s, name)))
        if len(s.logit_losses) > 1:
            dims.append(Dimension("logit_loss", choices=list(s.logit_losses)))
        for t, st in self.pairs:
            if len(s.pair_losses) > 1:
                dims.append(Dimension(pair_param(t, st, "loss"), choices=list(s.pair_losses)))
            if isinstance(s.weight_scale, FloatRange) and s.pair_losses != [NONE]:
                dims.append(Dimension(pair_param(t, st, "scale"), range=s.weight_scale))
        for loss in s.relation_losses:
            dims.append(Dimension(relation_param(loss, "on"), choices=[False, True]))
            if isinstance(s.weight_scale, FloatRange):
                dims.append(Dimension(relation_param(loss, "scale"), range=s.weight_scale))
        if isinstance(s.lr, FloatRange):
            dims.append(Dimension("lr", range=s.lr))
        return dims

    # --- Optuna -------------------------------------------------------------------------
    def suggest(self, trial) -> Strategy:
        """Ask an Optuna trial for every active parameter; return the strategy they make."""
        ranges = {d.name: d for d in self.dimensions()}

        def pick(name: str, default: Any) -> Any:
            dim = ranges.get(name)
            if dim is None:
                return default
            if dim.choices is not None:
                return trial.suggest_categorical(name, dim.choices)
            return trial.suggest_float(name, dim.range.low, dim.range.high, log=dim.range.log)

        return self._build(pick)

    def _build(self, pick) -> Strategy:
        s = self.spec
        fixed_scale = s.weight_scale if not isinstance(s.weight_scale, FloatRange) else 1.0
        temperature = pick("temperature", s.temperature)
        alpha = pick("alpha", s.alpha)
        logit_loss = pick("logit_loss", s.logit_losses[0])
        pairs = []
        for t, st in self.pairs:
            loss = pick(pair_param(t, st, "loss"), s.pair_losses[0])
            if loss == NONE:
                continue
            scale = pick(pair_param(t, st, "scale"), fixed_scale)
            pairs.append(PairLoss(teacher=t, student=st, loss=loss, weight=scale * PAIR_LOSSES[loss].default_weight))
        relations = []
        for loss in s.relation_losses:
            if pick(relation_param(loss, "on"), False):
                scale = pick(relation_param(loss, "scale"), fixed_scale)
                relations.append(RelationLoss(loss=loss, weight=scale * EMBEDDING_LOSSES[loss].default_weight))
        recipe = self.base_recipe
        lr = pick("lr", s.lr)
        if lr is not None:
            recipe = replace(recipe, lr=float(lr))
        logit_params = {"warmup": self.dkd_warmup} if logit_loss == "dkd" else {}
        return Strategy(
            temperature=float(temperature), alpha=float(alpha), logit_loss=logit_loss, logit_params=logit_params,
            pairs=pairs, relations=relations, recipe=replace(recipe),
        )

    def size(self, limit: int = 100_000) -> Optional[int]:
        """How many distinct strategies the space holds; None when it is continuous or too large to count.

        Counted by enumerating every choice and keeping the parameters each strategy really asks
        for (a weight whose loss is off is not asked, so it does not multiply the count)."""
        dims = self.dimensions()
        if any(d.choices is None for d in dims) or math.prod(len(d.choices) for d in dims) > limit:
            return None
        keys = set()
        for combo in itertools.product(*(d.choices for d in dims)):
            values, used = dict(zip((d.name for d in dims), combo)), {}

            def pick(name: str, default: Any) -> Any:
                if name not in values:
                    return default
                used[name] = values[name]
                return values[name]

            self._build(pick)
            keys.add(json.dumps(used, sort_keys=True, default=str))
        return len(keys)

    def teacher_paths(self) -> list[str]:
        """Every teacher feature any strategy of this space can need (for the teacher cache)."""
        from autokd.models.taps import EMBEDDING

        paths = list(dict.fromkeys(t for t, _ in self.pairs))
        return paths + ([EMBEDDING] if self.spec.relation_losses else [])


def pair_param(teacher: str, student: str, what: str) -> str:
    return f"pair[{teacher}->{student}].{what}" if teacher != student else f"pair[{teacher}].{what}"


def relation_param(loss: str, what: str) -> str:
    return f"relation[{loss}].{what}"

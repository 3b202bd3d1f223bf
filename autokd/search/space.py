"""The ``space`` section of a space file, as validated plain data::

    space:
      temperature: {low: 1, high: 16, log: true}   # or a fixed number
      alpha: {low: 0, high: 1}
      logit_losses: [kd, dkd, dist, ttm, wttm]     # their own parameters are searched too
      logit_standardization: [false, true]         # or a fixed true / false
      pairs: auto                                  # or search, {student: [...], teacher: [...]}, or a list
      pair_losses: [none, fitnet, at, nst, sp]     # every pair picks one ('none' switches it off)
      relation_losses: [rkd, pkt, sp]              # each is switched on or off, with its own weight
      weight_scale: {low: 0.01, high: 10, log: true}
      lr: null                                     # or {low: 0.001, high: 0.05, log: true}
      schemes: [single]                            # or more of single, born_again, mutual, online
      scheme_knobs: {}                             # per scheme: its knobs searched (see scheme_space)
      student: {}                                  # the student's kwargs searched, e.g. {channels: [32, 64]}
      quantize: none                               # or 8, 4, or a list such as [none, 8, 4]
      prune: null                                  # or {amount: ..., of: teacher | student}
      objectives: [accuracy]                       # or [accuracy, params | size | latency | macs, ...]
      constraints: {}                              # max_params, max_size_kb, max_latency_ms, max_macs

``pairs``: ``auto`` pairs the teacher's and student's stages of equal resolution; a list of
``{teacher, student}`` fixes the pairs; ``search`` lets the searcher choose, for each student
stage, which teacher stage it matches (any resolution) or none; ``{student: [...], teacher:
[...]}`` does the same over the layers listed. The last five keys say what is shipped and what
it is judged by (:mod:`autokd.search.shipped_space`). :mod:`autokd.search.strategy_space` turns a
validated space into parameters and strategies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Union

from autokd.config.parse import convert, from_mapping
from autokd.config.strategy import MAX_RATE, MAX_TEMPERATURE
from autokd.errors import ConfigError, did_you_mean, short_repr
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



Knob = Union[float, FloatRange]


@dataclass
class PairSpec:
    teacher: str
    student: str


@dataclass
class MatchSpec:
    """Layer search over listed layers: each student layer matches one of the teacher layers, or none."""

    student: list[str]
    teacher: list[str]


SEARCH = "search"


@dataclass
class SpaceSpec:
    temperature: Knob = field(default_factory=lambda: FloatRange(1.0, 16.0, log=True))
    alpha: Knob = field(default_factory=lambda: FloatRange(0.0, 1.0))
    logit_losses: list[str] = field(default_factory=lambda: ["kd", "dkd"])
    logit_standardization: Union[bool, list[bool]] = False
    pairs: Union[str, list[PairSpec], MatchSpec] = "auto"
    pair_losses: list[str] = field(default_factory=lambda: [NONE, "fitnet", "at", "nst", "sp"])
    relation_losses: list[str] = field(default_factory=lambda: ["rkd", "pkt", "sp"])
    weight_scale: Knob = field(default_factory=lambda: FloatRange(0.01, 10.0, log=True))
    lr: Optional[Knob] = None
    schemes: list[str] = field(default_factory=lambda: ["single"])
    scheme_knobs: dict = field(default_factory=dict)  # kind -> knob -> value, choices or FloatRange (parsed)
    # stop weak trials early at the grace period (half the proxy); off where early epochs rank
    # strategies unlike the end of the proxy (measure with benchmarks/proxy_fidelity.py)
    pruning: bool = True
    student: dict = field(default_factory=dict)  # kwarg -> fixed value, choices or FloatRange (parsed)
    quantize: Any = "none"  # a list of choices once parsed ("none", 8, 4)
    prune: Optional[dict] = None  # {amount: fixed, choices or FloatRange; of; recover_epochs} once parsed
    objectives: Any = field(default_factory=lambda: ["accuracy"])
    constraints: dict = field(default_factory=dict)

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1


def space_from_dict(data: Optional[dict], where: str = "space") -> SpaceSpec:
    """Parse and validate a ``space`` mapping (absent keys take the defaults above)."""
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping of settings (or left out for the defaults), got {short_repr(data)}")
    data = dict(data or {})
    ranges = {}
    for key in ("temperature", "alpha", "weight_scale", "lr"):
        if isinstance(data.get(key), dict):
            ranges[key] = from_mapping(FloatRange, data.pop(key), f"{where}.{key}")
    pairs = data.pop("pairs", "auto")
    spec = from_mapping(SpaceSpec, data, where)
    for key, value in ranges.items():
        setattr(spec, key, value)
    spec.pairs = _pairs_from(pairs, f"{where}.pairs")
    _check_standardization(spec.logit_standardization, f"{where}.logit_standardization")
    _check_knob(spec.temperature, f"{where}.temperature", positive=True, upper=MAX_TEMPERATURE)
    _check_knob(spec.alpha, f"{where}.alpha", upper=1.0)
    _check_knob(spec.weight_scale, f"{where}.weight_scale", positive=True)
    if spec.lr is not None:
        _check_knob(spec.lr, f"{where}.lr", positive=True, upper=MAX_RATE)
    _check_choices(spec.logit_losses, LOGIT_LOSSES, f"{where}.logit_losses")
    standardizes = spec.logit_standardization is True or (isinstance(spec.logit_standardization, list)
                                                           and True in spec.logit_standardization)
    takers = [name for name in LOGIT_LOSSES if LOGIT_LOSSES[name].standardizable]
    if standardizes and not any(name in takers for name in spec.logit_losses):
        raise ConfigError(f"{where}.logit_standardization applies to {', '.join(takers)}, and "
                          f"{where}.logit_losses lists none of them")
    _check_choices(spec.pair_losses, [NONE, *PAIR_LOSSES], f"{where}.pair_losses")
    _check_choices(spec.relation_losses, EMBEDDING_LOSSES, f"{where}.relation_losses", allow_empty=True)
    from autokd.search.scheme_space import parse_scheme_knobs  # (it imports this module)

    spec.scheme_knobs = parse_scheme_knobs(spec.schemes, spec.scheme_knobs, where)
    from autokd.search.shipped_space import parse_shipped  # (it imports this module)

    parse_shipped(spec, where)
    return spec


def _pairs_from(pairs, where: str) -> Union[str, list[PairSpec], MatchSpec]:
    if pairs in ("auto", SEARCH):
        return pairs
    if isinstance(pairs, dict):
        match = from_mapping(MatchSpec, pairs, where)
        for side in ("student", "teacher"):
            layers = getattr(match, side)
            if not layers or len(set(layers)) != len(layers):
                raise ConfigError(f"{where}.{side} must list one or more distinct layers, got {short_repr(layers)}")
        return match
    if not isinstance(pairs, list) or not pairs:
        raise ConfigError(f"{where} must be 'auto', 'search', {{student: [...], teacher: [...]}} or a non-empty list "
                          "of {teacher, student} mappings")
    listed = [from_mapping(PairSpec, p, f"{where}[{i}]") for i, p in enumerate(pairs)]
    _check_distinct_pairs(listed, where)
    return listed


def _check_standardization(value, where: str) -> None:
    if isinstance(value, list) and (not value or len(set(value)) != len(value)):
        raise ConfigError(f"{where} must be true, false or a list of both ([false, true]), got {short_repr(value)}")


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
        allowed = ("> 0" if positive else ">= 0") if upper is None else f"in {'(' if positive else '['}0, {upper:g}]"
        raise ConfigError(f"{where} must be {allowed}, got {value}")


def _check_choices(choices: list[str], known, where: str, allow_empty: bool = False) -> None:
    if not choices and not allow_empty:
        raise ConfigError(f"{where} must list at least one of {', '.join(known)}")
    for name in choices:
        if name not in known:
            raise ConfigError(f"{where}: unknown loss {name!r}{did_you_mean(name, known)}; known: {', '.join(sorted(known))}")
    if len(set(choices)) != len(choices):
        raise ConfigError(f"{where} lists a loss twice: {choices}")

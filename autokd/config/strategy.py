"""A distillation strategy as plain data.

Total loss of one batch::

    (1 - alpha) * CE(student, y)
    + alpha * LOGIT_LOSS(student, teacher; T, logit_params)        # kd, dkd, dist, ttm or wttm
    + sum_i pairs[i].weight * PAIR_LOSS_i(student layer, teacher layer)
    + sum_j relations[j].weight * EMBEDDING_LOSS_j(student embedding, teacher embedding)

With ``logit_standardization`` the logit loss sees both logits Z-scored per sample first
(Sun et al., CVPR 2024; only for the losses the registry marks ``standardizable``). The
``scheme`` says who teaches whom (one teacher, born-again generations, a cohort of peers; see
:mod:`autokd.config.schemes`); a strategy at the default ``single`` scheme leaves it out of its dict.
What is shipped: ``student`` (model kwargs over the task's student, e.g. ``{channels: 48}``) and
``compression`` (pruning, quantization-aware training; see :mod:`autokd.config.compression`),
both left out of the dict when empty.

A strategy round-trips YAML exactly: ``strategy_from_dict(strategy_to_dict(s)) == s``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Optional

from autokd.config.compression import Compression, compression_to_dict
from autokd.config.parse import finite_float, from_mapping, to_mapping
from autokd.config.schemes import MAX_SCHEME_TEMPERATURE, SCHEME_TYPES, Scheme, SingleScheme, scheme_from_dict
from autokd.errors import ConfigError, key_text, short_repr, unknown_at

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("cosine", "step", "constant")
MAX_EPOCHS = 100_000
MAX_BATCH_SIZE = 2**20
MAX_SEED = 2**32 - 1
MAX_TEMPERATURE = MAX_SCHEME_TEMPERATURE  # a softmax at T > 100 is flat; at ~1e154 T**2 overflows
MAX_RATE = 3.4e38  # lr and weight decay: torch's optimisers keep them as float32


@dataclass
class Recipe:
    """How a student (or a teacher) is trained."""

    epochs: int = 20
    optimizer: str = "adam"
    lr: float = 0.01
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only
    schedule: str = "cosine"
    milestones: list[int] = field(default_factory=list)  # step schedule: epochs where lr *= gamma
    gamma: float = 0.1
    batch_size: int = 128
    seed: int = 0

    def validate(self, where: str = "recipe") -> "Recipe":
        _check_count(self.epochs, 1, MAX_EPOCHS, f"{where}.epochs")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"{where}.optimizer {short_repr(self.optimizer)} is not one of {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"{where}.schedule {short_repr(self.schedule)} is not one of {', '.join(SCHEDULES)}")
        for name in ("lr", "weight_decay", "momentum", "gamma"):  # a Recipe built in code skips the parser's check
            finite_float(getattr(self, name), f"{where}.{name}")
        if not 0 < self.lr <= MAX_RATE:
            raise ConfigError(f"{where}.lr must be > 0 and at most {MAX_RATE:g} (a float32), got {self.lr}")
        if not 0 <= self.weight_decay <= MAX_RATE:
            raise ConfigError(f"{where}.weight_decay must be >= 0 and at most {MAX_RATE:g} (a float32), "
                              f"got {self.weight_decay}")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"{where}.momentum must be in [0, 1), got {self.momentum}")
        if not 0 < self.gamma <= 1:
            raise ConfigError(f"{where}.gamma must be in (0, 1], got {self.gamma}")
        _check_count(self.batch_size, 1, MAX_BATCH_SIZE, f"{where}.batch_size")
        for i, milestone in enumerate(self.milestones):
            _check_count(milestone, 1, MAX_EPOCHS, f"{where}.milestones[{i}]", what="an epoch")
        check_seed(self.seed, f"{where}.seed")
        return self

    def with_epochs(self, epochs: int) -> "Recipe":
        """This recipe at another length. A step schedule's milestones move with it, in proportion
        (150, 180, 210 of 240 epochs are 38, 45, 53 of 60): kept as they were, a shorter run (a proxy,
        ``--epochs``) never reached them and trained at a constant rate."""
        if epochs == self.epochs or not self.milestones:
            return replace(self, epochs=epochs)
        acting = [m for m in self.milestones if m < self.epochs]  # one at or past the end never lowered the rate
        if epochs == 1 or not acting:  # (and a 1-epoch run has no epoch after which it could drop)
            return replace(self, epochs=epochs, milestones=[])
        # kept before the last epoch, and twice where two land together (the rate falls as far in all)
        moved = sorted(min(epochs - 1, max(1, math.floor(m * epochs / self.epochs + 0.5))) for m in acting)
        return replace(self, epochs=epochs, milestones=moved)

    def check_schedule(self, where: str = "recipe", written: bool = True) -> None:
        """Warn about a schedule that does less than it says (checked where a user's file is read, not
        in a stored strategy, and not refused: a study made with it must stay usable): milestones
        without the step schedule or at or past the run's last epoch, and (when the recipe is
        ``written``, not derived at a shorter length) a step schedule without milestones."""
        import warnings

        problem = None
        late = [m for m in self.milestones if m >= self.epochs]
        if self.milestones and self.schedule != "step":
            problem = f"{where}.milestones apply to schedule: step, but the schedule is {self.schedule}: they are unused"
        elif written and self.schedule == "step" and not self.milestones:
            example = f"give milestones, e.g. [{self.epochs // 2}], or " if self.epochs > 1 else ""
            problem = f"{where}.schedule step without milestones never lowers the learning rate ({example}use schedule: constant)"
        elif late:
            problem = (f"{where}.milestones {late} are not before the run's last epoch ({self.epochs}): the learning "
                       f"rate never drops there (give epochs below {self.epochs})")
        if problem:
            warnings.warn(problem, RuntimeWarning, stacklevel=2)


def merge_recipe(base: "Recipe", overrides: dict) -> "Recipe":
    """``base`` with ``overrides`` (the keys a partial recipe sets). A new length without new
    milestones moves the base's with it (:meth:`Recipe.with_epochs`); another schedule without
    milestones drops them (they belong to the step schedule)."""
    if "epochs" in overrides and "milestones" not in overrides:
        base = base.with_epochs(overrides["epochs"])
    if overrides.get("schedule", "step") != "step" and "milestones" not in overrides:
        base = replace(base, milestones=[])
    return replace(base, **overrides)


def _check_count(value: int, low: int, high: int, where: str, what: str = "a whole number") -> None:
    """``value`` must be an int in [low, high]; the message names both bounds."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{where} must be {what} at least {low} and at most {high:,}, got {short_repr(value)}")


def check_seed(seed: int, where: str) -> None:
    """A seed is a whole number in [0, 2**32 - 1] (what every RNG autokd seeds accepts)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"{where} must be a whole number in [0, 2**32 - 1] (0 to {MAX_SEED}), got {short_repr(seed)}")


@dataclass
class PairLoss:
    """A loss on one teacher/student layer pair (layers named by module path)."""

    teacher: str
    student: str
    loss: str
    weight: float = 1.0
    params: dict = field(default_factory=dict)


@dataclass
class RelationLoss:
    """A relation loss on the penultimate (embedding) features of teacher and student."""

    loss: str
    weight: float = 1.0
    params: dict = field(default_factory=dict)


@dataclass
class Strategy:
    temperature: float = 4.0
    alpha: float = 0.9
    logit_loss: str = "kd"
    logit_params: dict = field(default_factory=dict)
    logit_standardization: bool = False
    pairs: list[PairLoss] = field(default_factory=list)
    relations: list[RelationLoss] = field(default_factory=list)
    recipe: Recipe = field(default_factory=Recipe)
    scheme: Scheme = field(default_factory=SingleScheme)
    student: dict = field(default_factory=dict)  # model kwargs over the task's student's
    compression: Compression = field(default_factory=Compression)

    @property
    def needs_teacher(self) -> bool:
        return self.alpha > 0 or bool(self.pairs) or bool(self.relations)

    def validate(self, where: str = "strategy") -> "Strategy":
        """Check ranges and loss names (layer paths are checked against the models elsewhere)."""
        from autokd.losses import EMBEDDING_LOSSES, LOGIT_LOSSES, PAIR_LOSSES

        finite_float(self.temperature, f"{where}.temperature")
        if not 0 < self.temperature <= MAX_TEMPERATURE:
            raise ConfigError(f"{where}.temperature must be > 0 and at most {MAX_TEMPERATURE:g}, got {self.temperature}")
        if not 0 <= self.alpha <= 1:
            raise ConfigError(f"{where}.alpha must be in [0, 1] (the KD weight; CE gets 1 - alpha), got {self.alpha}")
        if self.logit_loss not in LOGIT_LOSSES:
            raise unknown_at(f"{where}.logit_loss", self.logit_loss, LOGIT_LOSSES)
        _check_params(self.logit_params, LOGIT_LOSSES[self.logit_loss], f"{where}.logit_params")
        _check_standardization(self.logit_standardization, self.logit_loss, LOGIT_LOSSES, where)
        seen: dict = {}
        for i, pair in enumerate(self.pairs):
            at = f"{where}.pairs[{i}]"
            if pair.loss not in PAIR_LOSSES:
                raise unknown_at(f"{at}.loss", pair.loss, PAIR_LOSSES)
            _check_weight(pair.weight, at)
            _check_params(pair.params, PAIR_LOSSES[pair.loss], f"{at}.params")
            _check_once(seen, (pair.teacher, pair.student, pair.loss), i, at, "pairs",
                        f"the same teacher {short_repr(pair.teacher, 40)}, student {short_repr(pair.student, 40)} and loss {pair.loss!r}")
        seen = {}
        for i, rel in enumerate(self.relations):
            at = f"{where}.relations[{i}]"
            if rel.loss not in EMBEDDING_LOSSES:
                raise unknown_at(f"{at}.loss", rel.loss, EMBEDDING_LOSSES)
            _check_weight(rel.weight, at)
            _check_params(rel.params, EMBEDDING_LOSSES[rel.loss], f"{at}.params")
            _check_once(seen, rel.loss, i, at, "relations", f"the relation loss {rel.loss!r}")
        self.recipe.validate(f"{where}.recipe")
        if not isinstance(self.scheme, SCHEME_TYPES.get(getattr(self.scheme, "kind", None), ())):
            raise unknown_at(f"{where}.scheme.kind", getattr(self.scheme, "kind", self.scheme), SCHEME_TYPES)
        self.scheme.validate(f"{where}.scheme")
        self.compression.validate(f"{where}.compression")
        _check_shipped(self, where)
        return self

    def describe(self) -> str:
        """One readable line, e.g. ``dkd(beta=2) T=4 alpha=0.9 + fitnet(s.1<-t.1)x100 + rkd x1``
        (``kd+ls``: standardized; a loss's own parameters where the strategy sets them)."""
        logit = self.logit_loss + ("+ls" if self.logit_standardization else "")
        own = _params_text(self.logit_params, "(", ")")
        parts = ["ce" if self.alpha == 0 else f"{logit}{own} T={self.temperature:.3g} alpha={self.alpha:.3g}"]
        parts += [f"{p.loss}({p.student}<-{p.teacher}{_params_text(p.params, ', ')})x{p.weight:.3g}" for p in self.pairs]
        parts += [f"{r.loss}{_params_text(r.params, '(', ')')}x{r.weight:.3g}" for r in self.relations]
        text = "ce only" if parts == ["ce"] else " + ".join(parts)
        shipped = [f"student {_kwargs_text(self.student)}"] if self.student else []
        extras = [self.scheme.describe(), *shipped, self.compression.describe()]
        return ", ".join([text, *(e for e in extras if e)])


def _kwargs_text(kwargs: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in kwargs.items())


def _params_text(params: dict, lead: str = "", end: str = "") -> str:
    """A loss's own parameters as ``beta=2, warmup=5`` (numbers to 3 digits) between ``lead`` and
    ``end``; "" when none."""
    if not params:
        return ""
    shown = (f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
    return lead + ", ".join(shown) + end


def _check_shipped(strategy: Strategy, where: str) -> None:
    """The student section's keys are strings; a pruned teacher is the student, so it takes no kwargs."""
    for key in strategy.student:
        if not isinstance(key, str) or not key.isidentifier():
            raise ConfigError(f"{where}.student: {short_repr(key)} is not a keyword argument name")
    prune = strategy.compression.prune
    if prune is not None and prune.of == "teacher" and strategy.student:
        raise ConfigError(f"{where}.student sets the student's kwargs, but {where.rsplit(': ', 1)[-1]}.compression.prune.of is teacher "
                          f"(the student is the pruned teacher); remove one of them")
    if prune is not None and prune.of == "student" and getattr(strategy.scheme, "ensemble", False):
        raise ConfigError(f"{where}.compression.prune.of is student, which prunes one trained student, but "
                          f"{where.rsplit(': ', 1)[-1]}.scheme ships an ensemble of its generations (ensemble: true); "
                          f"set ensemble: false, or prune of: teacher")


def _check_standardization(on, logit_loss: str, losses: dict, where: str) -> None:
    """``logit_standardization`` is a bool, and true only with a logit loss that takes it."""
    if not isinstance(on, bool):
        raise ConfigError(f"{where}.logit_standardization must be true or false, got {short_repr(on)}")
    if on and not losses[logit_loss].standardizable:
        takes = ", ".join(name for name, info in losses.items() if info.standardizable)
        raise ConfigError(f"{where}.logit_standardization is true but its logit_loss {logit_loss!r} does not "
                          f"take standardized logits; set it false or use one of {takes}")


def _check_once(seen: dict, key, index: int, where: str, kind: str, what: str) -> None:
    """Each entry of a list once: a repeat names its index (``where``) and the first one's."""
    try:
        first = seen.setdefault(key, index)
    except TypeError:  # an unhashable layer path: the models' check reports it
        return
    if first != index:
        raise ConfigError(f"{where} repeats {kind}[{first}] ({what}); list each once, with its weight")


def _check_weight(weight: float, where: str) -> None:
    if not weight >= 0 or weight == float("inf"):
        raise ConfigError(f"{where}.weight must be a finite number >= 0, got {weight}")


def _check_params(params: dict, info, where: str) -> None:
    for key, value in params.items():
        if key == "temperature" and info.level == "logit":
            raise ConfigError(f"{where}.temperature: set the strategy's temperature instead")
        if key not in info.params:
            allowed = ", ".join(k for k in info.params if not (k == "temperature" and info.level == "logit")) or "none"
            raise ConfigError(f"{where}.{key_text(key)}: unknown parameter for loss {info.name!r}; allowed: {allowed}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}.{key} must be a number, got {short_repr(value)}")
        number = finite_float(value, f"{where}.{key}")
        if key in info.limits:
            low, high, whole = info.limits[key]
            if not low <= number <= high or (whole and not number.is_integer()):
                raise ConfigError(f"{where}.{key} must be {'a whole number' if whole else 'a number'} "
                                  f"from {low:,g} to {high:,g}, got {short_repr(value)}")


def strategy_from_dict(data: dict, base_recipe: Optional[Recipe] = None, where: str = "strategy") -> Strategy:
    """Parse and validate a strategy mapping.

    ``recipe`` may be partial (or absent): its keys override ``base_recipe`` (the task's
    full-length recipe), so a config only states what differs.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping, got {short_repr(data, 60)}")
    data = dict(data)
    recipe_data = data.pop("recipe", None)
    scheme_data = data.pop("scheme", None)
    compression_data = data.pop("compression", None)
    strategy = from_mapping(Strategy, data, where)
    if compression_data is not None:
        strategy.compression = from_mapping(Compression, compression_data, f"{where}.compression")
    if scheme_data is not None:
        strategy.scheme = scheme_from_dict(scheme_data, f"{where}.scheme")
    base = base_recipe or Recipe()
    if recipe_data is not None:
        overrides = from_mapping(_PartialRecipe, recipe_data, f"{where}.recipe")
        base = merge_recipe(base, {k: v for k, v in to_mapping(overrides).items() if v is not None})
    strategy.recipe = replace(base)
    from autokd.losses import LOGIT_LOSSES

    info = LOGIT_LOSSES.get(strategy.logit_loss)
    if info is not None:  # a param that follows the length, left out: a share of this recipe (DKD's warm-up)
        strategy.logit_params = dict(strategy.logit_params)  # the config's own keys keep their order
        for name, value in info.length_defaults(strategy.recipe.epochs).items():
            strategy.logit_params.setdefault(name, value)
    return strategy.validate(where)


def strategy_to_dict(strategy: Strategy) -> dict:
    data = to_mapping(strategy)
    if isinstance(strategy.scheme, SingleScheme):
        del data["scheme"]  # the default: configs and stored strategies read as before schemes existed
    if not strategy.student:
        del data["student"]
    data["compression"] = compression_to_dict(strategy.compression)
    if not data["compression"]:
        del data["compression"]
    return data


@dataclass
class _PartialRecipe:
    """A recipe whose every field is optional (for overrides)."""

    epochs: Optional[int] = None
    optimizer: Optional[str] = None
    lr: Optional[float] = None
    weight_decay: Optional[float] = None
    momentum: Optional[float] = None
    schedule: Optional[str] = None
    milestones: Optional[list[int]] = None
    gamma: Optional[float] = None
    batch_size: Optional[int] = None
    seed: Optional[int] = None


def recipe_from_dict(data: dict, base: Optional[Recipe] = None, where: str = "recipe") -> Recipe:
    overrides = from_mapping(_PartialRecipe, data, where)
    return merge_recipe(base or Recipe(), {k: v for k, v in to_mapping(overrides).items() if v is not None}).validate(where)


CE_ONLY = Strategy(alpha=0.0)

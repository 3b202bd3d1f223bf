"""A space bound to the task's layers: its parameters, and the strategy each set of values makes.

Parameter names and choice lists are fixed for a study. Each part of a strategy has its
parameters listed (:meth:`SearchSpace.dimensions`, conditional ones included) next to the code
that reads them (the ``_build_*`` methods); a parameter whose part is off is not asked for.

- logits: ``temperature``, ``alpha``, ``logit_loss``, ``logit_standardization`` (only asked for a
  loss that supports it) and ``logit[LOSS].PARAM`` for the loss's own parameters (the ranges
  of its registry entry's ``searched``);
- fixed pairs (``pairs: auto`` or a list): ``pair[T->S].loss`` and ``.scale``;
- layer search (``pairs: search``): ``match[S].teacher`` (a teacher layer or none), ``.loss``, ``.scale``;
- relations: ``relation[LOSS].on`` and ``.scale``; ``lr``;
- schemes: ``scheme`` and ``scheme[KIND].KNOB`` (:mod:`autokd.search.scheme_space`);
- what is shipped: ``student.KWARG``, ``quantize``, ``prune.amount`` (:mod:`autokd.search.shipped_space`).

Loss weights are ``scale x`` each loss's published default weight.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional

from autokd.config.strategy import PairLoss, Recipe, RelationLoss, Strategy
from autokd.losses import EMBEDDING_LOSSES, LOGIT_LOSSES, PAIR_LOSSES
from autokd.search.scheme_space import build_scheme, scheme_dimensions
from autokd.search.shipped_space import build_shipped, shipped_dimensions
from autokd.search.space import NONE, FloatRange, SpaceSpec

Pick = Callable[[str, Any], Any]


@dataclass
class Dimension:
    """One searched parameter: a categorical (``choices``) or a float range (``range``)."""

    name: str
    choices: Optional[list] = None
    range: Optional[FloatRange] = None


def pair_param(teacher: str, student: str, what: str) -> str:
    return f"pair[{teacher}->{student}].{what}" if teacher != student else f"pair[{teacher}].{what}"


def match_param(student: str, what: str) -> str:
    return f"match[{student}].{what}"


def relation_param(loss: str, what: str) -> str:
    return f"relation[{loss}].{what}"


def logit_param(loss: str, param: str) -> str:
    return f"logit[{loss}].{param}"


def dkd_warmup_epochs(epochs: int) -> int:
    """DKD warms up over 1/12 of training, as the shipped dkd baseline (20 of mdistiller's 240 epochs)."""
    from autokd.losses import LOGIT_LOSSES

    return LOGIT_LOSSES["dkd"].length_defaults(epochs)["warmup"]


class SearchSpace:
    """A space bound to concrete layers.

    ``pairs``: the (teacher, student) layer pairs of ``pairs: auto`` or a listed set; with
    layer search they are still the task's equal-resolution pairs (baselines are placed on
    them), and ``matches`` lists each student layer with the teacher layers it may match.
    """

    def __init__(self, spec: SpaceSpec, pairs: list[tuple[str, str]], base_recipe: Recipe, dkd_warmup: int = 1,
                 matches: Optional[list[tuple[str, list[str]]]] = None):
        self.spec = spec
        self.pairs = list(pairs)
        self.matches = matches
        self.base_recipe = base_recipe
        self.dkd_warmup = dkd_warmup

    def at_proxy(self, recipe: Recipe) -> "SearchSpace":
        """The same bound space searched with another proxy recipe (DKD's warm-up follows its length)."""
        return SearchSpace(self.spec, self.pairs, recipe, dkd_warmup_epochs(recipe.epochs), self.matches)

    # --- the parameters ---------------------------------------------------------------
    def dimensions(self) -> list[Dimension]:
        """Every parameter the space can ask for, in a fixed order (conditional ones included)."""
        s = self.spec
        dims = [Dimension(name, range=getattr(s, name)) for name in ("temperature", "alpha")
                if isinstance(getattr(s, name), FloatRange)]
        dims += self._logit_dims() + (self._match_dims() if self.matches is not None else self._pair_dims())
        for loss in s.relation_losses:
            dims.append(Dimension(relation_param(loss, "on"), choices=[False, True]))
            dims += self._scale_dim(relation_param(loss, "scale"))
        if isinstance(s.lr, FloatRange):
            dims.append(Dimension("lr", range=s.lr))
        return dims + scheme_dimensions(s.schemes, s.scheme_knobs) + shipped_dimensions(s)

    def _scale_dim(self, name: str) -> list[Dimension]:
        scale = self.spec.weight_scale
        return [Dimension(name, range=scale)] if isinstance(scale, FloatRange) else []

    def _logit_dims(self) -> list[Dimension]:
        s = self.spec
        dims = [Dimension("logit_loss", choices=list(s.logit_losses))] if len(s.logit_losses) > 1 else []
        if self._standardization_choices() is not None:
            dims.append(Dimension("logit_standardization", choices=[False, True]))
        for loss in s.logit_losses:
            for param, (low, high, log) in LOGIT_LOSSES[loss].searched.items():
                dims.append(Dimension(logit_param(loss, param), range=FloatRange(low, high, log)))
        return dims

    def _standardization_choices(self) -> Optional[list[bool]]:
        """[False, True] when the space searches standardization and some loss supports it."""
        s = self.spec
        searched = isinstance(s.logit_standardization, list) and len(s.logit_standardization) > 1
        return [False, True] if searched and any(LOGIT_LOSSES[n].standardizable for n in s.logit_losses) else None

    def _pair_dims(self) -> list[Dimension]:
        s, dims = self.spec, []
        for t, st in self.pairs:
            if len(s.pair_losses) > 1:
                dims.append(Dimension(pair_param(t, st, "loss"), choices=list(s.pair_losses)))
            if s.pair_losses != [NONE]:
                dims += self._scale_dim(pair_param(t, st, "scale"))
        return dims

    def _match_dims(self) -> list[Dimension]:
        losses, dims = self._match_losses(), []
        for student, teachers in self.matches:
            dims.append(Dimension(match_param(student, "teacher"), choices=[NONE, *teachers]))
            if len(losses) > 1:
                dims.append(Dimension(match_param(student, "loss"), choices=losses))
            dims += self._scale_dim(match_param(student, "scale"))
        return dims

    def _match_losses(self) -> list[str]:
        return [loss for loss in self.spec.pair_losses if loss != NONE]

    # --- Optuna -------------------------------------------------------------------------
    def suggest(self, trial) -> Strategy:
        """Ask an Optuna trial for every active parameter; return the strategy they make."""
        dims = {d.name: d for d in self.dimensions()}

        def pick(name: str, default: Any) -> Any:
            dim = dims.get(name)
            if dim is None:
                return default
            if dim.choices is not None:
                return trial.suggest_categorical(name, dim.choices)
            return trial.suggest_float(name, dim.range.low, dim.range.high, log=dim.range.log)

        return self.build(pick)

    def build(self, pick: Pick) -> Strategy:
        """The strategy whose parameters ``pick(name, default)`` answers (only active ones are asked)."""
        s = self.spec
        temperature, alpha = float(pick("temperature", s.temperature)), float(pick("alpha", s.alpha))
        logit_loss, standardize, logit_params = self._build_logit(pick)
        pairs = self._build_matches(pick) if self.matches is not None else self._build_pairs(pick)
        recipe = self.base_recipe
        lr = pick("lr", s.lr)
        if lr is not None:
            recipe = replace(recipe, lr=float(lr))
        student, compression = build_shipped(s, pick)
        return Strategy(temperature=temperature, alpha=alpha, logit_loss=logit_loss, logit_params=logit_params,
                        logit_standardization=standardize, pairs=pairs, relations=self._build_relations(pick),
                        recipe=replace(recipe), scheme=build_scheme(s.schemes, s.scheme_knobs, pick),
                        student=student, compression=compression)

    def _build_logit(self, pick: Pick) -> tuple[str, bool, dict]:
        s = self.spec
        loss = pick("logit_loss", s.logit_losses[0])
        info = LOGIT_LOSSES[loss]
        fixed = s.logit_standardization if isinstance(s.logit_standardization, bool) else s.logit_standardization[0]
        standardize = bool(pick("logit_standardization", fixed)) if info.standardizable else False
        params = {p: float(pick(logit_param(loss, p), info.params[p])) for p in info.searched}
        if "warmup" in info.params:
            params["warmup"] = self.dkd_warmup
        return loss, standardize, params

    def _fixed_scale(self) -> float:
        scale = self.spec.weight_scale
        return 1.0 if isinstance(scale, FloatRange) else float(scale)

    def _build_pairs(self, pick: Pick) -> list[PairLoss]:
        pairs = []
        for t, st in self.pairs:
            loss = pick(pair_param(t, st, "loss"), self.spec.pair_losses[0])
            if loss != NONE:
                scale = pick(pair_param(t, st, "scale"), self._fixed_scale())
                pairs.append(PairLoss(teacher=t, student=st, loss=loss, weight=scale * PAIR_LOSSES[loss].default_weight))
        return pairs

    def _build_matches(self, pick: Pick) -> list[PairLoss]:
        pairs = []
        for student, teachers in self.matches:
            teacher = pick(match_param(student, "teacher"), NONE)
            if teacher == NONE:
                continue
            loss = pick(match_param(student, "loss"), self._match_losses()[0])
            scale = pick(match_param(student, "scale"), self._fixed_scale())
            pairs.append(PairLoss(teacher=teacher, student=student, loss=loss,
                                  weight=scale * PAIR_LOSSES[loss].default_weight))
        return pairs

    def _build_relations(self, pick: Pick) -> list[RelationLoss]:
        relations = []
        for loss in self.spec.relation_losses:
            if pick(relation_param(loss, "on"), False):
                scale = pick(relation_param(loss, "scale"), self._fixed_scale())
                relations.append(RelationLoss(loss=loss, weight=scale * EMBEDDING_LOSSES[loss].default_weight))
        return relations

    # --- what the space holds -----------------------------------------------------------
    def size(self, limit: int = 100_000) -> Optional[int]:
        """How many distinct strategies the space holds; None when it is continuous or too large to count.

        Counted by enumerating every choice and keeping the parameters each strategy really asks
        for (a weight whose loss is off is not asked, so it does not multiply the count)."""
        dims = self.dimensions()
        options = [d.choices if d.choices is not None else [d.range.low] if d.range.low == d.range.high else None
                   for d in dims]  # a range of one value (low == high) is one choice, not a continuum
        if any(o is None for o in options) or math.prod(len(o) for o in options) > limit:
            return None
        keys = set()
        for combo in itertools.product(*options):
            values, used = dict(zip((d.name for d in dims), combo)), {}

            def pick(name: str, default: Any) -> Any:
                if name not in values:
                    return default
                used[name] = values[name]
                return values[name]

            self.build(pick)
            keys.add(json.dumps(used, sort_keys=True, default=str))
        return len(keys)

    def teacher_paths(self) -> list[str]:
        """Every teacher feature any strategy of this space can need (for the teacher cache)."""
        from autokd.models.taps import EMBEDDING

        if self.matches is not None:
            paths = [t for _, teachers in self.matches for t in teachers]
        else:
            paths = [t for t, _ in self.pairs]
        return list(dict.fromkeys(paths)) + ([EMBEDDING] if self.spec.relation_losses else [])

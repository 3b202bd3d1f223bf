"""Who teaches whom: a strategy's distillation scheme, as plain data.

A scheme is a mapping with a ``kind`` and that kind's knobs; each kind is one dataclass below,
registered in :data:`SCHEME_TYPES`. The strategy's own terms (``alpha``, the logit loss, pairs,
relations) keep their meaning in every scheme: they are what the shipped student learns from its
teacher; the scheme adds who that teacher is and who else trains alongside.

* ``single``: one frozen teacher, one student (the default).
* ``born_again``: ``generations`` students of the student's architecture in a row; generation 1
  distils from the teacher, generation g from generation g-1 (frozen), each with the strategy
  (a layer pair then matches the same layer of the previous generation). The result is the last
  generation, or with ``ensemble`` the average of all generations' logits.
* ``mutual`` (deep mutual learning): the student trains together with ``peers`` peers (the
  student's architecture, or ``peer_model``); every member adds ``weight`` x T^2 x the mean KL
  from each other member's detached, softened prediction at ``temperature``. With alpha 0 and no
  pairs or relations no pretrained teacher is used at all.
* ``online`` (KDCL-style online distillation): like ``mutual``, but each member distils from the
  cohort's ensemble (the mean of all members' logits, detached).
* ``assistant`` (TAKD, Mirzadeh et al., AAAI 2020): a teacher assistant (``model`` with
  ``kwargs``, e.g. a width between teacher and student) first distils from the teacher with the
  strategy's logit term; the student then distils from the assistant with the whole strategy (its
  pairs name the assistant's layers). With ``teacher_weight`` > 0 the student also learns the
  teacher's logits, that weight times the logit term (DGKD, Son et al., ICCV 2021).
* ``ensemble`` (multi-teacher): the task's ``teacher`` and its ``teachers`` teach together; the
  logit term's target is their logits combined with ``weights`` (``equal``, ``confidence``: per
  sample, CA-MKD style, or one number per teacher); pairs and relations use ``feature_teacher``
  (0: the task's teacher, i: ``teachers[i-1]``).

The training side of each kind lives in ``autokd.training.schemes``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

from autokd.config.parse import finite_float, from_mapping
from autokd.errors import ConfigError, short_repr, unknown_at

MAX_GENERATIONS = 5
MAX_PEERS = 4
MAX_SCHEME_TEMPERATURE = 100.0


@dataclass
class SingleScheme:
    """One frozen teacher, one student."""

    kind: str = "single"

    def validate(self, where: str) -> "SingleScheme":
        return self

    def describe(self) -> str:
        return ""


@dataclass
class BornAgainScheme:
    """Born-again networks: ``generations`` students in a row, each taught by the one before."""

    kind: str = "born_again"
    generations: int = 2
    ensemble: bool = False  # the result: the mean of all generations' logits instead of the last

    def validate(self, where: str) -> "BornAgainScheme":
        _check_count(self.generations, 1, MAX_GENERATIONS, f"{where}.generations")  # (1 trains what single does)
        return self

    def describe(self) -> str:
        if self.generations == 1:  # kept readable for studies that searched it: one student from the teacher
            return "born-again x1 (= single)"
        return f"born-again x{self.generations}" + (" (ensemble)" if self.ensemble else "")


@dataclass
class CohortScheme:
    """The student and ``peers`` peers trained together, each also learning from the others."""

    kind: str = "mutual"
    peers: int = 1
    temperature: float = 1.0  # of the peer terms (the strategy's temperature is its teacher term's)
    weight: float = 1.0  # of the peer terms
    peer_model: Optional[str] = None  # None: the student's architecture
    peer_kwargs: dict = field(default_factory=dict)

    def validate(self, where: str) -> "CohortScheme":
        _check_count(self.peers, 1, MAX_PEERS, f"{where}.peers")
        finite_float(self.temperature, f"{where}.temperature")
        if not 0 < self.temperature <= MAX_SCHEME_TEMPERATURE:
            raise ConfigError(f"{where}.temperature must be > 0 and at most {MAX_SCHEME_TEMPERATURE:g}, "
                              f"got {self.temperature}")
        finite_float(self.weight, f"{where}.weight")
        if not self.weight >= 0:
            raise ConfigError(f"{where}.weight must be a finite number >= 0, got {self.weight}")
        if self.peer_model is not None and not self.peer_model.strip():
            raise ConfigError(f"{where}.peer_model is empty; name a model (registry name or module:callable) or leave it out")
        if self.peer_model is None and self.peer_kwargs:
            raise ConfigError(f"{where}.peer_kwargs is set but peer_model is not (the peers are the student's "
                              f"architecture); set peer_model or remove peer_kwargs")
        return self

    def describe(self) -> str:
        target = "peers" if self.kind == "mutual" else "ensemble"
        model = f" {self.peer_model}" if self.peer_model else ""
        if self.peer_kwargs:  # (set only with peer_model)
            model += f"({', '.join(f'{k}={v}' for k, v in self.peer_kwargs.items())})"
        return f"{self.kind} {self.peers} peer(s){model} (KL to {target} T={self.temperature:.3g} x{self.weight:.3g})"


@dataclass
class AssistantScheme:
    """A teacher assistant between teacher and student."""

    kind: str = "assistant"
    model: str = ""  # the assistant's model: a registry name or module:callable (required)
    kwargs: dict = field(default_factory=dict)
    teacher_weight: float = 0.0  # > 0: the student also learns the teacher's logits (DGKD)

    def validate(self, where: str) -> "AssistantScheme":
        if not isinstance(self.model, str) or not self.model.strip():
            raise ConfigError(f"{where}.model is missing: name the assistant's model (a registry name such as "
                              f"cnn1d, or module:callable) and its kwargs")
        finite_float(self.teacher_weight, f"{where}.teacher_weight")
        if not self.teacher_weight >= 0:
            raise ConfigError(f"{where}.teacher_weight must be a finite number >= 0, got {self.teacher_weight}")
        return self

    def describe(self) -> str:
        size = ", ".join(f"{k}={v}" for k, v in self.kwargs.items())
        guide = f" + teacher x{self.teacher_weight:.3g}" if self.teacher_weight else ""
        return f"assistant {self.model}{f'({size})' if size else ''}{guide}"


ENSEMBLE_WEIGHTS = ("equal", "confidence")


@dataclass
class EnsembleScheme:
    """Several teachers at once: the task's teacher and its ``teachers``."""

    kind: str = "ensemble"
    weights: Union[str, list[float]] = "equal"  # equal | confidence | one number >= 0 per teacher
    feature_teacher: int = 0  # whose layers the pairs and relations use (0: the task's teacher)

    def validate(self, where: str) -> "EnsembleScheme":
        if isinstance(self.weights, str):
            if self.weights not in ENSEMBLE_WEIGHTS:
                raise ConfigError(f"{where}.weights must be {' or '.join(ENSEMBLE_WEIGHTS)} or a list of numbers "
                                  f"(one per teacher), got {short_repr(self.weights)}")
        else:
            for i, w in enumerate(self.weights):
                finite_float(w, f"{where}.weights[{i}]")
                if w < 0:
                    raise ConfigError(f"{where}.weights[{i}] must be >= 0, got {w}")
            if len(self.weights) < 2 or not sum(self.weights) > 0:
                raise ConfigError(f"{where}.weights must list one number >= 0 per teacher (2 or more), not all 0; "
                                  f"got {short_repr(self.weights)}")
        if isinstance(self.feature_teacher, bool) or not isinstance(self.feature_teacher, int) or self.feature_teacher < 0:
            raise ConfigError(f"{where}.feature_teacher must be a whole number >= 0 (0: the task's teacher, i: "
                              f"task.teachers[i-1]), got {short_repr(self.feature_teacher)}")
        return self

    def misfit(self, count: int) -> Optional[str]:
        """Why this scheme cannot run with ``count`` teachers (the task's teacher and its teachers), or None."""
        if count < 2:
            return ("the task has one teacher and the ensemble scheme needs more: list them under task.teachers "
                    "(each like task.teacher: model, kwargs, recipe or checkpoint)")
        if not isinstance(self.weights, str) and len(self.weights) != count:
            return (f"weights lists {len(self.weights)} numbers for {count} teachers (task.teacher and "
                    f"{count - 1} in task.teachers); give one per teacher")
        if self.feature_teacher >= count:
            return (f"feature_teacher {self.feature_teacher} names no teacher: the task has {count} (0: task.teacher, "
                    f"1 to {count - 1}: task.teachers)")
        return None

    def describe(self) -> str:
        weights = self.weights if isinstance(self.weights, str) else "/".join(f"{w:.3g}" for w in self.weights)
        return f"ensemble of teachers ({weights})" + (f", features of teacher {self.feature_teacher}"
                                                      if self.feature_teacher else "")


Scheme = Union[SingleScheme, BornAgainScheme, CohortScheme, AssistantScheme, EnsembleScheme]

# kind -> the dataclass that holds its knobs (and the kind's default ``kind`` field)
SCHEME_TYPES: dict[str, type] = {
    "single": SingleScheme,
    "born_again": BornAgainScheme,
    "mutual": CohortScheme,
    "online": CohortScheme,
    "assistant": AssistantScheme,
    "ensemble": EnsembleScheme,
}


def scheme_from_dict(data, where: str = "strategy.scheme") -> Scheme:
    """Parse and validate a scheme mapping (``kind`` defaults to ``single``)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping with a 'kind' ({', '.join(SCHEME_TYPES)}), got {short_repr(data, 60)}")
    kind = data.get("kind", "single")
    if not isinstance(kind, str) or kind not in SCHEME_TYPES:
        raise unknown_at(f"{where}.kind", kind, SCHEME_TYPES)
    scheme = from_mapping(SCHEME_TYPES[kind], {**data, "kind": kind}, where)
    return scheme.validate(where)


def _check_count(value, low: int, high: int, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{where} must be a whole number from {low} to {high}, got {short_repr(value)}")

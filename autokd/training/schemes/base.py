"""What every scheme is given (the prepared task, the strategy, how the run is watched), and the
wrapper that lets a scheme add models around the student's Distiller."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Collection, Iterator, Optional

from torch import nn

from autokd.config.strategy import Recipe, Strategy
from autokd.training.distiller import ClosedOnExit, Distiller
from autokd.training.fit import EpochStats
from autokd.training.teacher_cache import TeacherCache


@dataclass
class SchemeJob:
    """One training run of a strategy under its scheme.

    ``teacher_cache``: the task teacher's outputs (possibly a superset of what is needed);
    ``on_epoch`` and ``validate_at`` apply to the stage that trains the shipped student (the last
    one); ``say`` hears one line per earlier stage (a born-again generation)."""

    prepared: object  # autokd.training.run.PreparedTask
    strategy: Strategy
    recipe: Recipe
    teacher_cache: Optional[TeacherCache] = None
    on_epoch: Optional[Callable[[EpochStats], None]] = None
    validate_at: Optional[Collection[int]] = None
    say: Callable[[str], None] = lambda _text: None


def counting_cost(on_epoch: Optional[Callable[[EpochStats], None]], earlier: int = 0,
                  models: int = 1) -> Optional[Callable[[EpochStats], None]]:
    """``on_epoch`` seeing the whole run's cost in ``steps``: the steps of ``earlier`` stages plus
    the current stage's, which trains ``models`` models at once."""
    if on_epoch is None:
        return None
    return lambda stats: on_epoch(replace(stats, steps=earlier + stats.steps * models))


class WrappedDistiller(ClosedOnExit, nn.Module):
    """A student's :class:`Distiller` with more around it (peers, a guiding teacher, several
    teachers), trained by the same ``fit``: it answers what ``fit`` and the teacher cache read
    (the shipped student, the strategy, the feature teacher and its paths) from the Distiller.
    Subclasses write ``forward``; their extra models are trained only if they add them to
    :meth:`trainable_parameters`."""

    def __init__(self, distiller: Distiller):
        super().__init__()
        self.distiller = distiller

    @property
    def student(self) -> nn.Module:
        return self.distiller.student

    @property
    def strategy(self) -> Strategy:
        return self.distiller.strategy

    @property
    def teacher(self) -> Optional[nn.Module]:
        return self.distiller.teacher

    @property
    def teacher_paths(self) -> list[str]:
        return self.distiller.teacher_paths

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        yield from self.distiller.trainable_parameters()

    def close(self) -> None:
        self.distiller.close()

    def train(self, mode: bool = True) -> "WrappedDistiller":
        super().train(mode)
        self.distiller.train(mode)  # keeps the frozen teacher in eval mode
        return self

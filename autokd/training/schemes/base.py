"""What every scheme is given: the prepared task, the strategy, and how the run is watched."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Collection, Optional

from autokd.config.strategy import Recipe, Strategy
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

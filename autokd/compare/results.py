"""The plain data a comparison produces (what the report renders)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

FOUND = "found"
BASELINE = "baseline"
REFERENCE = "reference"  # the teacher: not retrained, its accuracy is a line on the plots


@dataclass
class RunRecord:
    """One full-length training run of one strategy with one seed."""

    strategy: str  # name, e.g. "trial 17" or "kd"
    kind: str  # FOUND or BASELINE
    seed: int
    val_acc: float
    test_acc: float
    seconds: float
    key: str  # what the run is reused by: hash of (task, strategy, recipe, seed)


@dataclass
class StrategySummary:
    name: str
    kind: str
    description: str  # one readable line (Strategy.describe())
    n: int
    test_mean: float
    test_sd: float
    test_se: float
    val_mean: float
    gap_closed: Optional[float]  # (acc - student) / (teacher - student), None for the student itself
    proxy_val: Optional[float] = None  # found strategies: the search's proxy validation accuracy
    trial_number: Optional[int] = None


@dataclass
class PairedComparison:
    """Best found strategy against the best baseline, paired by seed."""

    found: str
    baseline: str
    n: int
    diff_mean: float
    diff_sd: float
    diff_se: float
    t: Optional[float]
    p_value: Optional[float]


@dataclass
class Fidelity:
    """Spearman correlation of the proxy validation ranking with the full-length test ranking."""

    rho: Optional[float]
    p_value: Optional[float]
    n: int


@dataclass
class Comparison:
    study_name: str
    task_name: str
    teacher: dict  # model, kwargs, parameters, val_acc, test_acc
    student: dict  # model, kwargs, parameters
    search: dict  # sampler, budget, counts by state, wall_seconds, cpu_seconds, proxy_epochs
    recipe: dict  # the full-length recipe every strategy was retrained with
    seeds: list[int]
    summaries: list[StrategySummary]
    runs: list[RunRecord]
    paired: Optional[PairedComparison]
    fidelity: Fidelity
    exported: str  # the best found strategy as the config `autokd export` writes
    history: list[tuple[int, str, Optional[float]]] = field(default_factory=list)  # (trial number, state, value)
    importances: dict = field(default_factory=dict)

"""The plain data a comparison produces (what the report renders)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:  # annotations only: this module stays free of heavy imports
    from autokd.config.strategy import Recipe
    from autokd.search.ledger import TrialCounts

FOUND = "found"
BASELINE = "baseline"
PROXY = "proxy"  # a run at the search's proxy length (for proxy fidelity), kept in proxy_runs.jsonl
OK = "ok"
FAILED = "failed"


@dataclass
class RunRecord:
    """One full-length training run of one strategy with one seed (a line of ``runs.jsonl``)."""

    strategy: str  # name, e.g. "trial 17" or "kd"
    kind: str  # FOUND or BASELINE
    seed: int
    val_acc: Optional[float]  # None when the run failed
    test_acc: Optional[float]
    seconds: float
    key: str  # what the run is reused by: hash of (task, strategy, recipe, seed)
    state: str = OK  # OK, or FAILED (training diverged); lines written before states existed are OK
    reason: Optional[str] = None  # why it failed
    steps: Optional[int] = None  # training steps of every model the scheme trained (None: run before costs were kept)
    footprint: Optional[dict] = None  # the student's params, size_bytes, macs, latency_ms (None: not recorded)
    curve: Optional[dict] = None  # autokd calibrate: {"epoch": [val_acc, seconds]} of the epochs validated before the end

    @property
    def ok(self) -> bool:
        return self.state == OK


@dataclass
class StrategySummary:
    """One distinct strategy over its runs; the statistics are over its ok runs."""

    name: str  # "trial 4", "kd", or "trial 4 = kd" for a found strategy that is a baseline
    kind: str  # FOUND or BASELINE
    description: str  # one readable line (Strategy.describe())
    n: int  # ok runs
    failed: int  # failed runs
    test_mean: Optional[float]  # None when every run failed
    test_sd: Optional[float]
    test_se: Optional[float]
    val_mean: Optional[float]
    gap_closed: Optional[float]  # (acc - student) / (teacher - student), None for the student itself
    proxy_val: Optional[float] = None  # found strategies: the search's proxy validation accuracy
    trial_number: Optional[int] = None
    baselines: list[str] = field(default_factory=list)  # the baselines this very strategy is
    steps_mean: Optional[float] = None  # cost of one run in training steps (None: not recorded)
    seconds_mean: Optional[float] = None  # wall time of one run
    params: Optional[int] = None  # the shipped student's parameters (None: no run recorded its footprint)
    size_kib: Optional[float] = None  # its size as deployed
    latency_ms: Optional[float] = None  # median over the runs of its batch-1 CPU latency


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
    """Spearman correlation of the proxy validation ranking with the full-length test ranking,
    over every compared strategy with both (found ones: their trial's value; baselines: a proxy
    run by compare), with a bootstrap 95 % interval and the spread of the proxy values."""

    rho: Optional[float]
    p_value: Optional[float]
    n: int
    ci_low: Optional[float] = None
    ci_high: Optional[float] = None
    proxy_range: Optional[float] = None  # max - min of the proxy values (points): too close to rank when small


@dataclass
class ModelSummary:
    """The teacher or the student: model, size and (teacher: measured; student: CE-only mean) accuracy."""

    model: str
    kwargs: dict
    parameters: Optional[int]
    val_acc: Optional[float] = None
    test_acc: Optional[float] = None


@dataclass
class SearchSummary:
    """How the study was searched and what it cost."""

    sampler: str
    budget: int
    counts: TrialCounts
    wall_seconds: float  # first trial start to last trial end
    cpu_seconds: float  # sum of trial durations (one CPU each)
    workers: Optional[int]  # None: automatic (the CPU count)
    proxy_epochs: int
    space: str  # where the space came from


@dataclass
class HistoryPoint:
    """One finished trial of the search (interrupted ones left out)."""

    number: int
    state: str  # COMPLETE, PRUNED or FAIL
    value: Optional[float]


@dataclass
class Comparison:
    study_name: str
    task_name: str
    teacher: ModelSummary
    student: ModelSummary
    search: SearchSummary
    recipe: Recipe  # the full-length recipe every strategy was retrained with (its seed replaced by ``seeds``)
    seeds: list[int]
    summaries: list[StrategySummary]
    runs: list[RunRecord]
    paired: Optional[PairedComparison]
    fidelity: Fidelity
    exported: str  # the best found strategy as the config `autokd export` writes
    history: list[HistoryPoint] = field(default_factory=list)
    importances: dict[str, float] = field(default_factory=dict)

"""What a calibration measured, as plain data, and the pure functions that judge it: Spearman's rho
of each proxy length (and of its pruning rung) against full-length test accuracy, with bootstrap
intervals; the seed noise of the ground truth; the recommended proxy.

Rho is computed twice: over every strategy, and over the **better half** (full-length truth at or
above the median). A few poor strategies (a harmful loss weight) are easy to rank and lift rho over
all of them, while a search needs the proxy to order the good ones; so a length is recommended
only when both clear the threshold (the better half once it holds enough strategies to judge).

A run whose training diverged counts as 0 % in the ranking it is in (a search never ranks such a
trial high, and a strategy that diverges at full length is the worst choice), and is counted.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Optional

from autokd.compare.results import Fidelity
from autokd.compare.stats import spearman


@dataclass
class StrategyResult:
    name: str
    kind: str  # sampled or baseline
    description: str
    full_test: list[Optional[float]]  # per full-length seed; None: the run diverged
    full_val: list[Optional[float]]
    proxy_val: dict[int, Optional[float]]  # proxy length -> validation accuracy at its end
    rung_val: dict[int, Optional[float]]  # proxy length -> validation accuracy at its pruning rung
    proxy_seconds: dict[int, float]  # proxy length -> seconds of one such trial

    @property
    def truth(self) -> float:
        """Mean full-length test accuracy over the seeds, a diverged run as 0 %."""
        return statistics.fmean(_zero(v) for v in self.full_test)


@dataclass
class LengthRow:
    epochs: int
    fidelity: Fidelity  # proxy validation at the end against full-length test
    rung: Optional[int]  # where a search with pruning first stops trials (None: no rung)
    rung_fidelity: Optional[Fidelity]  # validation at the rung against full-length test
    seconds: float  # one proxy trial, median over the strategies
    diverged: int  # strategies whose proxy run diverged
    top_fidelity: Optional[Fidelity] = None  # the same over the better half (full-length truth >= median)
    top_rung_fidelity: Optional[Fidelity] = None

    def judged(self) -> list[Optional[Fidelity]]:
        """What must clear the threshold: rho over all, and over the better half once it can be judged."""
        return [self.fidelity] + ([self.top_fidelity] if _enough(self.top_fidelity) else [])

    def judged_rung(self) -> list[Optional[Fidelity]]:
        return [self.rung_fidelity] + ([self.top_rung_fidelity] if _enough(self.top_rung_fidelity) else [])


@dataclass
class Recommendation:
    epochs: Optional[int]  # None: no measured length ranks well enough
    rho: Optional[float]
    pruning_safe: Optional[bool]  # rho at the rung clears the threshold too
    text: str  # one or two sentences that say what was found
    milestones: Optional[list[int]] = None  # the proxy's own step milestones at that length (None: none to write)


@dataclass
class Calibration:
    task: str
    source: str  # the space file (or shipped name) calibrated
    full_epochs: int
    current_proxy: int  # the space's proxy length today
    proxy_seed: int
    full_seeds: list[int]
    threshold: float
    by_curve: bool  # shorter lengths read from one run's validation curve (the schedule allows it)
    strategies: list[StrategyResult]
    rows: list[LengthRow]
    val_fidelity: Fidelity  # full-length validation vs full-length test (the best a proxy can do)
    seed_fidelity: Optional[Fidelity]  # full-length test, first seed vs second (how repeatable the truth is)
    seed_sd: Optional[float]  # pooled standard deviation of full-length test over seeds (points)
    full_diverged: int  # full-length runs that diverged
    full_seconds: float  # one full-length run, median
    recommendation: Recommendation
    left_out: list[str] = field(default_factory=list)  # baselines the task cannot take


MIN_JUDGED = 5  # strategies in the better half before its rho counts (its bootstrap interval needs 5)


def _enough(fid: Optional[Fidelity]) -> bool:
    return fid is not None and fid.n >= MIN_JUDGED


def _zero(value: Optional[float]) -> float:
    return 0.0 if value is None else value


def better_half(strategies: list[StrategyResult]) -> list[StrategyResult]:
    """The strategies whose full-length truth is at or above the median."""
    if not strategies:
        return []
    middle = statistics.median(s.truth for s in strategies)
    return [s for s in strategies if s.truth >= middle]


def _rho_at(strategies: list[StrategyResult], e: int, rung: Optional[int]) -> tuple[Fidelity, Optional[Fidelity]]:
    truth = [s.truth for s in strategies]
    end = spearman([_zero(s.proxy_val[e]) for s in strategies], truth)
    return end, spearman([_zero(s.rung_val[e]) for s in strategies], truth) if rung else None


def length_rows(strategies: list[StrategyResult], lengths: list[int], rungs: dict[int, Optional[int]]) -> list[LengthRow]:
    top = better_half(strategies)
    rows = []
    for e in lengths:
        (end, at_rung), (top_end, top_rung) = _rho_at(strategies, e, rungs[e]), _rho_at(top, e, rungs[e])
        rows.append(LengthRow(e, end, rungs[e], at_rung, statistics.median(s.proxy_seconds[e] for s in strategies),
                              sum(s.proxy_val[e] is None for s in strategies), top_end, top_rung))
    return rows


def seed_noise(strategies: list[StrategyResult]) -> tuple[Optional[float], Optional[Fidelity]]:
    """Pooled sd of full-length test accuracy over seeds (strategies with two or more runs that did
    not diverge), and rho of the first seed's ranking against the second's."""
    variances = [statistics.variance(ok) for s in strategies if len(ok := [v for v in s.full_test if v is not None]) > 1]
    sd = math.sqrt(statistics.fmean(variances)) if variances else None
    if not strategies or len(strategies[0].full_test) < 2:
        return sd, None
    return sd, spearman([_zero(s.full_test[0]) for s in strategies], [_zero(s.full_test[1]) for s in strategies])


def recommend(rows: list[LengthRow], threshold: float, current: int) -> Recommendation:
    """The shortest length from which every longer measured length ranks with rho >= ``threshold``
    over all strategies and over the better half (a single lucky length below a failing one is not
    trusted); pruning at half of it is safe when the rung's rho clears the threshold the same way."""
    def clears(fids: list[Optional[Fidelity]]) -> bool:
        return all(f is not None and f.rho is not None and f.rho >= threshold for f in fids)

    chosen = None
    for row in reversed(rows):
        if not clears(row.judged()):
            break
        chosen = row
    if chosen is None:
        best = max(rows, key=lambda r: -2.0 if r.fidelity.rho is None else r.fidelity.rho)
        best_text = "none could be computed" if best.fidelity.rho is None else \
            f"the best is {best.epochs} epochs at rho {best.fidelity.rho:.2f}"
        judged = ("over all strategies and over the better half" if _enough(best.top_fidelity) else
                  "over all strategies; too few strategies to judge the better half alone")
        return Recommendation(None, None, None,
                              f"No measured proxy length ranks strategies like full training with rho >= {threshold} "
                              f"({judged}) at it and every longer length ({best_text}). Measure longer lengths "
                              "(--lengths), or search with a proxy as long as the full recipe.")
    safe = chosen.rung is not None and clears(chosen.judged_rung())
    rung_text = ("it has no rung (one epoch)" if chosen.rung is None else
                 f"its rung, epoch {chosen.rung}, ranks with rho {_both(chosen.rung_fidelity, chosen.top_rung_fidelity)}")
    interval = chosen.fidelity
    low = f" (95 % interval {interval.ci_low:.2f} to {interval.ci_high:.2f})" if interval.ci_low is not None else ""
    half = (f", {_rho(chosen.top_fidelity)} over the better half" if _enough(chosen.top_fidelity) else
            " (too few strategies to judge the better half alone)")
    change = "the proxy the space uses today" if chosen.epochs == current else f"the space uses {current} today"
    text = (f"Recommended proxy: {chosen.epochs} epochs, rho {interval.rho:.2f}{low} against full-length test{half}; "
            f"{change}. Pruning at half the proxy is {'safe' if safe else 'not safe'}: {rung_text}.")
    return Recommendation(chosen.epochs, interval.rho, safe, text)


def _rho(fid: Optional[Fidelity]) -> str:
    """Rho in a sentence: with fewer than 3 strategies, or all of them level, it is not defined."""
    if fid is None or fid.rho is None:
        return "not defined"
    return f"{fid.rho:.2f}"


def _both(fid: Optional[Fidelity], top: Optional[Fidelity]) -> str:
    return _rho(fid) + (f" ({_rho(top)} over the better half)" if _enough(top) else "")

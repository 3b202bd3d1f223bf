"""Statistics of a comparison: pure functions of lists of accuracies."""

from __future__ import annotations

import math
import statistics
from typing import Optional, Sequence

from autokd.compare.results import Fidelity, PairedComparison


def mean_sd_se(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean, sample standard deviation and standard error (sd and se 0 for one value)."""
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return mean, sd, sd / math.sqrt(len(values))


def gap_closed(acc: float, student: float, teacher: float) -> Optional[float]:
    """Share of the teacher-student gap an accuracy closes (1 = as good as the teacher)."""
    gap = teacher - student
    return None if abs(gap) < 1e-12 else (acc - student) / gap


def paired(found: str, a: dict[int, float], baseline: str, b: dict[int, float]) -> Optional[PairedComparison]:
    """Paired comparison over the seeds both have: mean difference a - b, its se, t and two-sided p."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    diffs = [a[s] - b[s] for s in seeds]
    mean, sd, se = mean_sd_se(diffs)
    t = p = None
    if len(diffs) > 1:
        if se > 0:
            from scipy import stats

            t = mean / se
            p = float(2 * stats.t.sf(abs(t), df=len(diffs) - 1))
        else:  # identical differences on every seed
            t, p = (math.copysign(math.inf, mean), 0.0) if mean != 0 else (0.0, 1.0)
    return PairedComparison(found, baseline, len(diffs), mean, sd, se, t, p)


BOOTSTRAP = 2000


def spearman(x: Sequence[float], y: Sequence[float], seed: int = 0) -> Fidelity:
    """Spearman's rho of two rankings (None with fewer than 3 points or a constant input), with a
    percentile bootstrap 95 % interval over the points (None with fewer than 5)."""
    spread = (max(x) - min(x)) if x else None
    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return Fidelity(None, None, len(x), proxy_range=spread)
    import numpy as np
    from scipy import stats

    result = stats.spearmanr(x, y)
    low = high = None
    if len(x) >= 5:
        rng, xs, ys, draws = np.random.default_rng(seed), np.asarray(x), np.asarray(y), []
        for _ in range(BOOTSTRAP):
            pick = rng.integers(0, len(xs), len(xs))
            if len(set(xs[pick])) > 1 and len(set(ys[pick])) > 1:
                draws.append(stats.spearmanr(xs[pick], ys[pick]).statistic)
        if draws:
            low, high = (float(v) for v in np.percentile(draws, [2.5, 97.5]))
    return Fidelity(float(result.statistic), float(result.pvalue), len(x), low, high, spread)

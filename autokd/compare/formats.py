"""How a comparison's numbers and verdicts read, in the printed table and the report.

Accuracies are percentages, as everywhere in autokd: test mean ± sd ``91.20 ± 0.30``; se
``0.17``; gap closed ``63.2%`` (the fraction times 100, one decimal); a missing value ``—``.
"""

from __future__ import annotations

import math
from typing import Optional

from autokd.compare.results import Fidelity, PairedComparison
from autokd.formatting import format_seconds

DASH = "—"


def finite(x) -> bool:
    """A real number that is not NaN or infinite (bools are not numbers here)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def fmt_acc(x, missing: str = DASH) -> str:
    return f"{x:.2f}" if finite(x) else missing


def fmt_mean_sd(mean, sd, missing: str = DASH) -> str:
    if not finite(mean):
        return missing
    return f"{mean:.2f} ± {sd:.2f}" if finite(sd) else f"{mean:.2f}"


def fmt_gap(fraction, missing: str = DASH) -> str:
    return f"{100.0 * fraction:.1f}%" if finite(fraction) else missing


def fmt_p(p, missing: str = DASH) -> str:
    """``0.034``, ``0.41``, ``< 0.001``."""
    if not finite(p):
        return missing
    if p < 0.001:
        return "< 0.001"
    return f"{p:.3f}" if p < 0.1 else f"{p:.2f}"


def fmt_params(n) -> str:
    if not finite(n):
        return "? parameters"
    if n >= 1e6:
        return f"{n / 1e6:.2f}M parameters"
    return f"{n / 1e3:.1f}k parameters" if n >= 1e3 else f"{int(n)} parameters"


def fmt_value(v) -> str:
    """A config value on one line: ``epochs=20, lr=0.01, milestones=[]``."""
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, dict):
        return ", ".join(f"{k}={fmt_value(x)}" for k, x in v.items()) or "{}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(fmt_value(x) for x in v) + "]"
    return str(v)


def fmt_seconds(s) -> str:
    return format_seconds(s) if finite(s) else DASH


def fmt_cost(steps, seconds) -> str:
    """One run's cost: training steps (thousands from 1,000) and wall time, e.g. ``23.4k steps, 41s``, ``40 steps, 2s``."""
    parts = []
    if finite(steps):
        parts.append(f"{steps / 1000:.1f}k steps" if steps >= 1000 else f"{steps:.0f} steps")
    if finite(seconds):
        parts.append(format_seconds(seconds))
    return ", ".join(parts) or DASH


def fmt_runs(n: int, failed: int) -> str:
    """Runs behind a summary: ``5``, or ``4 (1 failed)``."""
    return f"{n} ({failed} failed)" if failed else str(n)


def plural(n: int, word: str, many: Optional[str] = None) -> str:
    return f"{n} {word if n == 1 else many or word + 's'}"


def paired_sentence(p: Optional[PairedComparison]) -> Optional[str]:
    """A plain verdict on the best found strategy against the best baseline, in standard errors."""
    if p is None:
        return None
    d, se = p.diff_mean, p.diff_se
    if not finite(d):
        return f"{p.found} vs {p.baseline}: no paired difference could be computed."
    if p.n < 2 or not finite(se):
        return (f"{p.found} vs {p.baseline}: {d:+.1f} points, but with a single paired seed there is no "
                f"standard error, so this does not show that either is better.")
    if se <= 0:  # the same difference on every seed
        if d == 0:
            return f"{p.found} and {p.baseline} tie on every one of the {p.n} seeds."
        verb = "beats" if d > 0 else "does not beat"
        return (f"{p.found} {verb} {p.baseline}: {abs(d):.1f} points {'better' if d > 0 else 'worse'} on every one "
                f"of the {p.n} seeds alike (no seed-to-seed spread).")
    k = d / se
    if d > 0 and k >= 2:
        return f"{p.found} beats {p.baseline} by {d:.1f} points ({k:.1f} standard errors)."
    if d < 0 and k <= -2:
        return f"{p.found} does not beat {p.baseline}: it is {-d:.1f} points worse ({-k:.1f} standard errors)."
    return f"{p.found} does not beat {p.baseline} (difference {d:+.1f} points, within 2 standard errors: {k:+.1f})."


TOO_CLOSE = 0.5  # points: proxy values closer than this are within seed noise on small tasks


def fidelity_sentence(f: Fidelity) -> str:
    if not finite(f.rho):
        return (f"Not enough points to judge the proxy (n = {f.n}; Spearman's rho needs at least 3 strategies "
                f"with a proxy value and a full-length result, with distinct values).")
    if f.proxy_range is not None and f.proxy_range < TOO_CLOSE:
        return (f"Spearman ρ = {f.rho:.2f}, but the {f.n} proxy values lie within {f.proxy_range:.2f} points of "
                f"each other, too close to rank: this figure cannot judge the proxy.")
    r = f.rho
    if r >= 0.7:
        verdict = "the short proxy runs rank strategies much as full-length training does"
    elif r >= 0.3:
        verdict = "the proxy ranking agrees only moderately with full-length training"
    elif r > -0.3:
        verdict = "the proxy ranking says little about the full-length ranking"
    else:
        verdict = "the proxy ranking tends to reverse the full-length ranking"
    small = f" With only {f.n} strategies this estimate is rough." if f.n < 8 else ""
    interval = (f" (95 % bootstrap interval {f.ci_low:.2f} to {f.ci_high:.2f} over {f.n} strategies)"
                if finite(f.ci_low) and finite(f.ci_high) else "")
    return f"Spearman ρ = {r:.2f}{interval}: {verdict}.{small}"


def model_line(model: str, kwargs: dict) -> str:
    """``cnn1d(channels=64)``."""
    return model + (f"({fmt_value(kwargs)})" if kwargs else "")

"""The plots of ``autokd compare``: one small function per figure, plain data in, a PNG out.

Every function draws on a bare :class:`matplotlib.figure.Figure` (no ``pyplot``), which renders
with the Agg canvas whatever backend the caller's process uses: nothing here needs a display or
changes global matplotlib state. Matplotlib is imported inside the functions so importing this
module stays cheap. Accuracies are percentages (0-100), as everywhere in autokd.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional, Sequence

FOUND_COLOR = "#e07b22"  # found strategies (orange)
BASELINE_COLOR = "#4c72b0"  # hand-tuned baselines (blue)
TEACHER_COLOR = "#2a9d4b"
STUDENT_COLOR = "#777777"
PRUNED_COLOR = "#9a9a9a"
FAILED_COLOR = "#c0392b"
DPI = 150


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    return fig, fig.add_subplot()


def _style(ax) -> None:
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    ax.tick_params(labelsize=9)


def _save(fig, path: Path) -> Path:
    path = Path(path)
    fig.savefig(path, format="png", dpi=DPI)
    return path


def _finite(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def _state(state: str) -> str:
    s = str(state).upper()
    if s.startswith("TRIALSTATE."):
        s = s[len("TRIALSTATE."):]
    return {"FAILED": "FAIL", "COMPLETED": "COMPLETE"}.get(s, s)


def optimization_history(history: Sequence[tuple[int, str, Optional[float]]], path: Path) -> Path:
    """Trials of the search: complete ones as dots, pruned as grey crosses (at their last reported
    value when they have one), failed as red ticks along the bottom; the best-so-far step line over
    the complete trials. The legend counts every state."""
    fig, ax = _figure(8.0, 4.2)
    _style(ax)
    by_state: dict[str, list[tuple[int, Optional[float]]]] = {}
    for number, state, value in history:
        by_state.setdefault(_state(state), []).append((int(number), value if _finite(value) else None))

    complete = sorted((n, v) for n, v in by_state.get("COMPLETE", []) if v is not None)
    pruned = by_state.get("PRUNED", [])
    failed = by_state.get("FAIL", [])
    others = {s: t for s, t in by_state.items() if s not in ("COMPLETE", "PRUNED", "FAIL")}

    if complete:
        xs, ys = zip(*complete)
        ax.scatter(xs, ys, s=24, color=BASELINE_COLOR, edgecolors="white", linewidths=0.6, zorder=4,
                   label=f"complete ({len(by_state.get('COMPLETE', []))})")
        best_x, best_y, best = [], [], -math.inf
        for n, v in complete:
            if v > best:
                best = v
            best_x.append(n)
            best_y.append(best)
        last = max(int(t[0]) for t in history)
        best_x.append(max(last, best_x[-1]))
        best_y.append(best)
        ax.step(best_x, best_y, where="post", color=FOUND_COLOR, linewidth=1.8, alpha=0.9, zorder=3,
                label=f"best so far ({best:.2f}%)")
    pruned_vals = [(n, v) for n, v in pruned if v is not None]
    if pruned:
        if pruned_vals:
            xs, ys = zip(*pruned_vals)
            ax.scatter(xs, ys, s=22, marker="x", color=PRUNED_COLOR, linewidths=1.2, zorder=2,
                       label=f"pruned ({len(pruned)}), at last reported value")
        else:
            ax.plot([], [], linestyle="none", marker="x", color=PRUNED_COLOR, label=f"pruned ({len(pruned)})")
    if failed:
        # no value: a tick on the x axis at the trial's number
        ax.scatter([n for n, _ in failed], [0.0] * len(failed), marker="|", s=120, color=FAILED_COLOR,
                   transform=ax.get_xaxis_transform(), clip_on=False, zorder=5,
                   label=f"failed ({len(failed)}), no value")
    for state, trials in sorted(others.items()):
        ax.plot([], [], linestyle="none", label=f"{state.lower()} ({len(trials)})")

    if not history:
        ax.text(0.5, 0.5, "no trials", transform=ax.transAxes, ha="center", va="center", color="#666")
    elif not complete and not pruned_vals:
        ax.text(0.5, 0.5, "no trial reported a value", transform=ax.transAxes, ha="center", va="center",
                color="#666")
    numbers = [int(t[0]) for t in history]
    if numbers:  # a little room at both ends, even with one or two trials
        pad = max(0.5, 0.02 * (max(numbers) - min(numbers)))
        ax.set_xlim(min(numbers) - pad, max(numbers) + pad)
    values = [v for _, v in complete] + [v for _, v in pruned_vals]
    if values:  # at least two points of accuracy on the y axis, the dots clear of the frame
        lo, hi = min(values), max(values)
        span = max(hi - lo, 2.0)
        mid = (lo + hi) / 2 if hi - lo < 2.0 else None
        if mid is not None:
            lo, hi = mid - span / 2, mid + span / 2
        ax.set_ylim(lo - 0.06 * span, hi + 0.06 * span)
    ax.set_xlabel("trial number")
    ax.set_ylabel("proxy validation accuracy (%)")
    ax.set_title("Search history", fontsize=11)
    ax.grid(True, axis="y", alpha=0.3)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    if not values:
        ax.set_yticks([])
    if history:
        fig.legend(fontsize=8, loc="outside lower center", ncol=4, frameon=False)
    return _save(fig, path)


def importances(values: dict[str, float], path: Path, top: int = 15) -> Path:
    """Horizontal bars of parameter importances, the most important at the top (at most ``top``)."""
    items = sorted(((str(k), float(v)) for k, v in values.items()), key=lambda kv: -kv[1])[:top]
    height = 1.2 + 0.38 * max(len(items), 1)
    fig, ax = _figure(7.5, height)
    _style(ax)
    names = [k for k, _ in items][::-1]
    vals = [v for _, v in items][::-1]
    bars = ax.barh(names, vals, color=BASELINE_COLOR, height=0.65)
    hi = max(vals, default=1.0) or 1.0
    for bar, v in zip(bars, vals):
        ax.text(bar.get_width() + hi * 0.01, bar.get_y() + bar.get_height() / 2, f"{v:.3f}",
                va="center", ha="left", fontsize=8)
    ax.set_xlim(0, hi * 1.15)
    ax.set_xlabel("importance (Optuna's default evaluator; sums to 1)")
    ax.set_title("Parameter importances in the search", fontsize=11)
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    return _save(fig, path)


def comparison(bars: Sequence[tuple[str, str, float, float]], path: Path, teacher: Optional[float] = None,
               student: Optional[float] = None, n_seeds: Optional[int] = None) -> Path:
    """Horizontal bars of each strategy's test mean with sd error bars, best at the top.

    ``bars``: (name, kind, mean, sd) with kind "found" or "baseline". Found strategies are orange,
    baselines blue. Vertical lines mark the teacher's test accuracy and the student-only baseline.
    The accuracy axis is zoomed to the data (bars do not start at 0)."""
    from matplotlib.patches import Patch
    from matplotlib.lines import Line2D

    rows = sorted(bars, key=lambda b: (b[2] if _finite(b[2]) else -math.inf))  # ascending: best drawn last = top
    fig, ax = _figure(8.0, 1.4 + 0.42 * max(len(rows), 1))
    _style(ax)
    names = [r[0] for r in rows]
    means = [r[2] if _finite(r[2]) else float("nan") for r in rows]
    sds = [r[3] if _finite(r[3]) else 0.0 for r in rows]
    colors = [FOUND_COLOR if r[1] == "found" else BASELINE_COLOR for r in rows]
    y = list(range(len(rows)))

    lows = [m - s for m, s in zip(means, sds) if math.isfinite(m)]
    highs = [m + s for m, s in zip(means, sds) if math.isfinite(m)]
    refs = [v for v in (teacher, student) if _finite(v)]
    lo = min(lows + refs, default=0.0)
    hi = max(highs + refs, default=100.0)
    span = max(hi - lo, 0.5)
    left = max(0.0, lo - 0.15 * span)
    # room right of the longest bar for its "mean ± sd" label; a little past the reference lines
    right = max(max(highs, default=hi) + 0.24 * span, max(refs, default=hi) + 0.05 * span)

    ax.barh(y, [m - left if math.isfinite(m) else 0 for m in means], left=left, color=colors, height=0.62,
            xerr=sds, error_kw={"ecolor": "#333", "elinewidth": 1, "capsize": 3}, zorder=2)
    for yi, m, s in zip(y, means, sds):
        if math.isfinite(m):
            ax.text(m + s + span * 0.02, yi, f"{m:.2f} ± {s:.2f}", va="center", ha="left", fontsize=8, zorder=3)
    handles = [Patch(color=FOUND_COLOR, label="found by the search"), Patch(color=BASELINE_COLOR, label="baseline")]
    if _finite(teacher):
        ax.axvline(teacher, color=TEACHER_COLOR, linestyle="--", linewidth=1.4, zorder=1)
        handles.append(Line2D([], [], color=TEACHER_COLOR, linestyle="--", label=f"teacher ({teacher:.2f}%)"))
    if _finite(student):
        ax.axvline(student, color=STUDENT_COLOR, linestyle=":", linewidth=1.6, zorder=1)
        handles.append(Line2D([], [], color=STUDENT_COLOR, linestyle=":", label=f"student only, CE ({student:.2f}%)"))
    ax.set_yticks(y, names)
    ax.set_xlim(left, right)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    seeds = f" over {n_seeds} seed{'s' if n_seeds != 1 else ''}" if n_seeds else ""
    ax.set_xlabel(f"test accuracy (%): mean, error bars ± 1 sd{seeds}")
    ax.set_title("Full-length retraining: found strategies vs baselines", fontsize=11)
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    fig.legend(handles=handles, fontsize=8, loc="outside lower center", ncol=min(len(handles), 4), frameon=False)
    return _save(fig, path)


def proxy_vs_full(points: Sequence[tuple[str, float, float, float]], path: Path, rho: Optional[float] = None,
                  p_value: Optional[float] = None, n: Optional[int] = None) -> Path:
    """Scatter of proxy validation accuracy (x) against full-length test mean (y, ± sd) of the found
    strategies, each labelled with its name; the title gives Spearman's rho."""
    fig, ax = _figure(7.0, 4.8)
    _style(ax)
    pts = [(str(nm), float(x), float(y), float(s) if _finite(s) else 0.0) for nm, x, y, s in points
           if _finite(x) and _finite(y)]
    if pts:
        xs = [p[1] for p in pts]
        ys = [p[2] for p in pts]
        ax.errorbar(xs, ys, yerr=[p[3] for p in pts], fmt="o", color=FOUND_COLOR, ecolor="#999", elinewidth=1,
                    capsize=2, markersize=6, zorder=3)
        # alternate label sides so neighbours overlap less
        order = sorted(range(len(pts)), key=lambda i: (xs[i], ys[i]))
        for k, i in enumerate(order):
            dx, dy = (7, 5) if k % 2 == 0 else (7, -11)
            ax.annotate(pts[i][0], (xs[i], ys[i]), xytext=(dx, dy), textcoords="offset points", fontsize=8,
                        color="#333")
        for lim, vals, right in ((ax.set_xlim, xs, 1.8), (ax.set_ylim, [p[2] + p[3] for p in pts] + [p[2] - p[3] for p in pts], 1.0)):
            lo, hi = min(vals), max(vals)
            pad = max(hi - lo, 0.5) * 0.12
            lim(lo - pad, hi + pad * right)  # a little more room on the right for the labels
    else:
        ax.text(0.5, 0.5, "no found strategy has a proxy value", transform=ax.transAxes, ha="center",
                va="center", color="#666")
    if _finite(rho):
        stat = f"Spearman ρ = {rho:.2f}"
        if _finite(p_value):
            stat += f" (p = {format_p(p_value)}, n = {n})" if n is not None else f" (p = {format_p(p_value)})"
        elif n is not None:
            stat += f" (n = {n})"
    else:
        stat = f"Spearman ρ: not enough points (n = {n if n is not None else len(pts)})"
    ax.set_title(f"Proxy ranking vs full-length ranking\n{stat}", fontsize=11)
    ax.set_xlabel("proxy validation accuracy in the search (%)")
    ax.set_ylabel("full-length test accuracy (%), mean ± sd")
    ax.grid(True, alpha=0.3)
    return _save(fig, path)


def format_p(p: float) -> str:
    """``0.034``, ``0.41``, ``< 0.001``."""
    if p < 0.001:
        return "< 0.001"
    return f"{p:.3f}" if p < 0.1 else f"{p:.2f}"

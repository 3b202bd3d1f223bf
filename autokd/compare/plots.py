"""The plots of ``autokd compare``: one small function per figure, the comparison's data in, a PNG out.

Every function draws on a bare :class:`matplotlib.figure.Figure` (no ``pyplot``), which renders
with the Agg canvas whatever backend the caller's process uses: nothing here needs a display or
changes global matplotlib state. Matplotlib is imported inside the functions so importing this
module stays cheap. Accuracies are percentages (0-100), as everywhere in autokd. A PNG is
written atomically; a write that fails (read-only folder, full disk) is one AutokdError line.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from autokd.compare.formats import finite, fmt_p
from autokd.compare.results import FOUND, Comparison, Fidelity, HistoryPoint, StrategySummary
from autokd.errors import AutokdError
from autokd.outputs import write_atomic

FOUND_COLOR = "#e07b22"  # found strategies (orange)
BASELINE_COLOR = "#4c72b0"  # hand-tuned baselines (blue)
TEACHER_COLOR = "#2a9d4b"
STUDENT_COLOR = "#777777"
PRUNED_COLOR = "#9a9a9a"
FAILED_COLOR = "#c0392b"
DPI = 150

# file name -> (caption, width in the HTML report in pixels)
FIGURES = {
    "optimization_history.png": ("Search history: proxy validation accuracy of every trial and the best so far.", 820),
    "importances.png": ("Parameter importances of the search space (Optuna's default evaluator).", 680),
    "comparison.png": ("Full-length test accuracy of every strategy (mean ± 1 sd over the seeds); found strategies "
                       "in orange, baselines in blue.", 820),
    "cost.png": ("Full-length test accuracy (mean ± se) against one run's cost in training steps: what a scheme's "
                 "extra models and stages buy.", 720),
    "size.png": ("Full-length test accuracy (mean ± se) against the student's size as deployed (KiB, log scale): "
                 "found strategies in orange, baselines (at the task's student and at each searched student) in "
                 "blue.", 720),
    "proxy_vs_full.png": ("Does the short proxy run rank strategies like full-length training? Proxy validation "
                          "accuracy (found strategies: their trial's; baselines: a proxy run by compare) against "
                          "full-length test accuracy of every compared strategy.", 660),
}


@dataclass
class Figures:
    """The plots that were drawn (file name -> path) and, for those that were not, why not."""

    drawn: dict[str, Path] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)


def draw_all(c: Comparison, out_dir: Path) -> Figures:
    """Every plot of the report that the comparison has data for; a plot that cannot be drawn
    becomes a note (a failed write is still an error)."""
    figures = Figures()

    def attempt(name: str, draw) -> None:
        try:
            figures.drawn[name] = draw(out_dir / name)
        except AutokdError:
            raise
        except Exception as e:  # a broken plot must not cost the whole report
            warnings.warn(f"autokd compare: could not draw {name}: {e!r}", RuntimeWarning, stacklevel=3)
            figures.notes[name] = f"The plot {name} could not be drawn ({type(e).__name__}: {e})."

    if c.history:
        attempt("optimization_history.png", lambda path: optimization_history(c.history, path))
    else:
        figures.notes["optimization_history.png"] = "No search history was recorded, so there is no history plot."
    if c.importances:
        attempt("importances.png", lambda path: importances(c.importances, path))
    else:
        figures.notes["importances.png"] = ("No parameter importances: Optuna could not compute them (too few "
                                            "complete trials, or parameters that never varied), so there is no "
                                            "importances plot.")
    bars = [s for s in c.summaries if s.test_mean is not None]
    if bars:
        attempt("comparison.png", lambda path: comparison(bars, path, c.teacher.test_acc, c.student.test_acc,
                                                          len(c.seeds)))
    costed = [s for s in bars if finite(s.steps_mean)]
    if costed:
        attempt("cost.png", lambda path: cost(costed, path))
    else:
        figures.notes["cost.png"] = "No run recorded its cost (runs stored by an older autokd), so there is no cost plot."
    sized = [s for s in bars if finite(s.size_kib)]
    if len({round(s.size_kib, 3) for s in sized}) > 1:  # only when the compared students differ in size
        attempt("size.png", lambda path: size_tradeoff(sized, path))
    points = [s for s in c.summaries if finite(s.proxy_val) and finite(s.test_mean)]
    if points:
        attempt("proxy_vs_full.png", lambda path: proxy_vs_full(points, path, c.fidelity))
    else:
        figures.notes["proxy_vs_full.png"] = "No strategy has a proxy value, so there is no proxy-vs-full plot."
    return figures


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    return fig, fig.add_subplot()


def _style(ax) -> None:
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    ax.tick_params(labelsize=9)


def _save(fig, path: Path) -> Path:
    return write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI), f"the plot {Path(path).name}")


def optimization_history(history: Sequence[HistoryPoint], path: Path) -> Path:
    """Trials of the search: complete ones as dots, pruned as grey crosses (at their last reported
    value when they have one), failed as red ticks along the bottom; the best-so-far step line over
    the complete trials. The legend counts every state."""
    from matplotlib.ticker import MaxNLocator

    fig, ax = _figure(8.0, 4.2)
    _style(ax)
    by_state: dict[str, list[tuple[int, Optional[float]]]] = {}
    for h in history:
        by_state.setdefault(h.state, []).append((h.number, h.value if finite(h.value) else None))
    complete = sorted((n, v) for n, v in by_state.get("COMPLETE", []) if v is not None)
    if complete:
        _complete_and_best(ax, complete, len(by_state["COMPLETE"]), max(h.number for h in history))
    pruned = [(n, v) for n, v in by_state.get("PRUNED", []) if v is not None]
    _pruned_and_failed(ax, by_state)
    if not history:
        ax.text(0.5, 0.5, "no trials", transform=ax.transAxes, ha="center", va="center", color="#666")
    elif not complete and not pruned:
        ax.text(0.5, 0.5, "no trial reported a value", transform=ax.transAxes, ha="center", va="center",
                color="#666")
    numbers = [h.number for h in history]
    if numbers:  # a little room at both ends, even with one or two trials
        pad = max(0.5, 0.02 * (max(numbers) - min(numbers)))
        ax.set_xlim(min(numbers) - pad, max(numbers) + pad)
    values = [v for _, v in complete + pruned]
    if values:  # at least two points of accuracy on the y axis, the dots clear of the frame
        lo, hi = min(values), max(values)
        span = max(hi - lo, 2.0)
        if hi - lo < 2.0:
            lo, hi = (lo + hi) / 2 - span / 2, (lo + hi) / 2 + span / 2
        ax.set_ylim(lo - 0.06 * span, hi + 0.06 * span)
    else:
        ax.set_yticks([])
    ax.set_xlabel("trial number")
    ax.set_ylabel("proxy validation accuracy (%)")
    ax.set_title("Search history", fontsize=11)
    ax.grid(True, axis="y", alpha=0.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    if history:
        fig.legend(fontsize=8, loc="outside lower center", ncol=4, frameon=False)
    return _save(fig, path)


def _complete_and_best(ax, complete: list[tuple[int, float]], count: int, last: int) -> None:
    """Complete trials as dots and the best-so-far step line, carried on to the ``last`` trial."""
    xs, ys = zip(*complete)
    ax.scatter(xs, ys, s=24, color=BASELINE_COLOR, edgecolors="white", linewidths=0.6, zorder=4,
               label=f"complete ({count})")
    best_x, best_y, best = [], [], -math.inf
    for n, v in complete:
        best = max(best, v)
        best_x.append(n)
        best_y.append(best)
    best_x.append(max(last, best_x[-1]))
    best_y.append(best)
    ax.step(best_x, best_y, where="post", color=FOUND_COLOR, linewidth=1.8, alpha=0.9, zorder=3,
            label=f"best so far ({best:.2f}%)")


def _pruned_and_failed(ax, by_state: dict[str, list[tuple[int, Optional[float]]]]) -> None:
    pruned = by_state.get("PRUNED", [])
    with_value = [(n, v) for n, v in pruned if v is not None]
    if with_value:
        xs, ys = zip(*with_value)
        ax.scatter(xs, ys, s=22, marker="x", color=PRUNED_COLOR, linewidths=1.2, zorder=2,
                   label=f"pruned ({len(pruned)}), at last reported value")
    elif pruned:
        ax.plot([], [], linestyle="none", marker="x", color=PRUNED_COLOR, label=f"pruned ({len(pruned)})")
    failed = by_state.get("FAIL", [])
    if failed:  # no value: a tick on the x axis at the trial's number
        ax.scatter([n for n, _ in failed], [0.0] * len(failed), marker="|", s=120, color=FAILED_COLOR,
                   transform=ax.get_xaxis_transform(), clip_on=False, zorder=5,
                   label=f"failed ({len(failed)}), no value")
    for state, trials in sorted(by_state.items()):
        if state not in ("COMPLETE", "PRUNED", "FAIL"):
            ax.plot([], [], linestyle="none", label=f"{state.lower()} ({len(trials)})")


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


def comparison(rows: Sequence[StrategySummary], path: Path, teacher: Optional[float] = None,
               student: Optional[float] = None, n_seeds: Optional[int] = None) -> Path:
    """Horizontal bars of each strategy's test mean with sd error bars, best at the top.

    Found strategies are orange, baselines blue. Vertical lines mark the teacher's test accuracy
    and the student trained alone. The accuracy axis is zoomed to the data (bars do not start at 0)."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    rows = sorted((s for s in rows if finite(s.test_mean)), key=lambda s: s.test_mean)  # best drawn last = top
    fig, ax = _figure(8.0, 1.4 + 0.42 * max(len(rows), 1))
    _style(ax)
    means = [s.test_mean for s in rows]
    sds = [s.test_sd if finite(s.test_sd) else 0.0 for s in rows]
    y = list(range(len(rows)))
    refs = [v for v in (teacher, student) if finite(v)]
    lo = min([m - s for m, s in zip(means, sds)] + refs, default=0.0)
    hi = max([m + s for m, s in zip(means, sds)] + refs, default=100.0)
    span = max(hi - lo, 0.5)
    left = max(0.0, lo - 0.15 * span)
    # room right of the longest bar for its "mean ± sd" label; a little past the reference lines
    right = max(max((m + s for m, s in zip(means, sds)), default=hi) + 0.24 * span, max(refs, default=hi) + 0.05 * span)

    ax.barh(y, [m - left for m in means], left=left, height=0.62, zorder=2,
            color=[FOUND_COLOR if s.kind == FOUND else BASELINE_COLOR for s in rows],
            xerr=sds, error_kw={"ecolor": "#333", "elinewidth": 1, "capsize": 3})
    for yi, m, sd in zip(y, means, sds):
        ax.text(m + sd + span * 0.02, yi, f"{m:.2f} ± {sd:.2f}", va="center", ha="left", fontsize=8, zorder=3)
    handles = [Patch(color=FOUND_COLOR, label="found by the search"), Patch(color=BASELINE_COLOR, label="baseline")]
    if finite(teacher):
        ax.axvline(teacher, color=TEACHER_COLOR, linestyle="--", linewidth=1.4, zorder=1)
        handles.append(Line2D([], [], color=TEACHER_COLOR, linestyle="--", label=f"teacher ({teacher:.2f}%)"))
    if finite(student):
        ax.axvline(student, color=STUDENT_COLOR, linestyle=":", linewidth=1.6, zorder=1)
        handles.append(Line2D([], [], color=STUDENT_COLOR, linestyle=":", label=f"student only, CE ({student:.2f}%)"))
    ax.set_yticks(y, [s.name for s in rows])
    ax.set_xlim(left, right)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    seeds = f" over {n_seeds} seed{'s' if n_seeds != 1 else ''}" if n_seeds else ""
    ax.set_xlabel(f"test accuracy (%): mean, error bars ± 1 sd{seeds}")
    ax.set_title("Full-length retraining: found strategies vs baselines", fontsize=11)
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    fig.legend(handles=handles, fontsize=8, loc="outside lower center", ncol=min(len(handles), 4), frameon=False)
    return _save(fig, path)


def _accuracy_against(rows: Sequence[StrategySummary], x_of, path: Path, xlabel: str, title: str,
                      log: bool = False, fontsize: int = 8) -> Path:
    """Test accuracy (mean ± se) against ``x_of(row)``, each strategy labelled and coloured by kind."""
    fig, ax = _figure(7.5, 4.6)
    _style(ax)
    for s in rows:
        color = FOUND_COLOR if s.kind == FOUND else BASELINE_COLOR
        se = s.test_se if finite(s.test_se) else 0.0
        ax.errorbar(x_of(s), s.test_mean, yerr=se, fmt="o", color=color, ecolor="#333", capsize=3, zorder=3)
        ax.annotate(s.name, (x_of(s), s.test_mean), textcoords="offset points", xytext=(5, 4), fontsize=fontsize)
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy (%), mean ± se")
    ax.set_title(title, fontsize=11)
    ax.grid(True, alpha=0.3)
    return _save(fig, path)


def cost(rows: Sequence[StrategySummary], path: Path) -> Path:
    """Test accuracy (mean ± se) against one run's cost in training steps, each strategy labelled."""
    return _accuracy_against(rows, lambda s: s.steps_mean / 1000, path,
                             "cost of one run (thousands of training steps: batches x models trained)",
                             "Accuracy against cost")


def size_tradeoff(rows: Sequence[StrategySummary], path: Path) -> Path:
    """Test accuracy (mean ± se) against the deployed size, each strategy labelled."""
    return _accuracy_against(rows, lambda s: s.size_kib, path, "student size as deployed (KiB, log scale)",
                             "Accuracy against size", log=True, fontsize=7)


def proxy_vs_full(points: Sequence[StrategySummary], path: Path, fidelity: Fidelity) -> Path:
    """Scatter of proxy validation accuracy (x) against full-length test mean (y, ± sd) of every
    strategy with both (found in orange, baselines in blue), each labelled; the title gives rho."""
    fig, ax = _figure(7.0, 4.8)
    _style(ax)
    pts = [(s.name, s.proxy_val, s.test_mean, s.test_sd if finite(s.test_sd) else 0.0, s.kind) for s in points
           if finite(s.proxy_val) and finite(s.test_mean)]
    if pts:
        xs = [p[1] for p in pts]
        ys = [p[2] for p in pts]
        for kind, color in ((FOUND, FOUND_COLOR), ("baseline", BASELINE_COLOR)):
            mine = [p for p in pts if p[4] == kind]
            if mine:
                ax.errorbar([p[1] for p in mine], [p[2] for p in mine], yerr=[p[3] for p in mine], fmt="o",
                            color=color, ecolor="#999", elinewidth=1, capsize=2, markersize=6, zorder=3)
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
        ax.text(0.5, 0.5, "no strategy has a proxy value", transform=ax.transAxes, ha="center",
                va="center", color="#666")
    ax.set_title(f"Proxy ranking vs full-length ranking\n{_rho_text(fidelity)}", fontsize=11)
    ax.set_xlabel("proxy validation accuracy (%): the search's trial, or compare's proxy run")
    ax.set_ylabel("full-length test accuracy (%), mean ± sd")
    ax.grid(True, alpha=0.3)
    return _save(fig, path)


def _rho_text(f: Fidelity) -> str:
    if not finite(f.rho):
        return f"Spearman ρ: not enough points (n = {f.n})"
    return f"Spearman ρ = {f.rho:.2f}" + (f" (p = {fmt_p(f.p_value)}, n = {f.n})" if finite(f.p_value) else f" (n = {f.n})")

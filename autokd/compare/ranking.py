"""The order a comparison is shown in, and the plain-text table ``autokd compare`` prints.

Strategies are ranked by full-length test mean, best first (ties: by name); a strategy whose
runs all failed has no mean and no rank, and comes last. The rows highlighted as "best found"
and "best baseline" are the two strategies of the paired comparison (falling back to the
top-ranked found strategy and baseline when there is none).
"""

from __future__ import annotations

from typing import Optional

from autokd.compare.formats import fmt_acc, fmt_gap, fmt_mean_sd, fmt_runs, plural
from autokd.compare.results import BASELINE, FOUND, Comparison, StrategySummary


def by_test_mean(c: Comparison) -> list[StrategySummary]:
    """The compared strategies, best test mean first; those with no test value (every run failed) last."""
    return sorted(c.summaries, key=lambda s: (s.test_mean is None, -(s.test_mean or 0.0), s.name))


def rank_numbers(rows: list[StrategySummary]) -> list[Optional[int]]:
    return [i + 1 if s.test_mean is not None else None for i, s in enumerate(rows)]


def highlighted(c: Comparison) -> tuple[Optional[str], Optional[str]]:
    """Names of the best found strategy and the best baseline."""
    if c.paired is not None:
        return c.paired.found, c.paired.baseline
    rows = [s for s in by_test_mean(c) if s.test_mean is not None]
    return (next((s.name for s in rows if s.kind == FOUND), None),
            next((s.name for s in rows if s.kind == BASELINE), None))


def test_cell(s: StrategySummary, missing: str) -> str:
    """``91.20 ± 0.30``, or ``failed`` for a strategy whose every run failed."""
    return "failed" if s.test_mean is None and s.failed else fmt_mean_sd(s.test_mean, s.test_sd, missing)


def format_table(c: Comparison) -> str:
    """The comparison table ``autokd compare`` prints: rank order, aligned columns."""
    rows = by_test_mean(c)
    if not rows:
        return "no strategies were compared"
    header = ["rank", "strategy", "kind", "runs", "test mean ± sd", "se", "gap closed", "proxy val"]
    body = [[str(r) if r is not None else "-", s.name, s.kind, fmt_runs(s.n, s.failed), test_cell(s, "-"),
             fmt_acc(s.test_se, "-"), fmt_gap(s.gap_closed, "-"), fmt_acc(s.proxy_val, "-")]
            for r, s in zip(rank_numbers(rows), rows)]
    widths = [max(len(line[i]) for line in [header] + body) for i in range(len(header))]
    left = {1, 2, 3}  # strategy, kind, runs

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    failed = sum(s.failed for s in rows)
    lines = [line(header)] + [line(b) for b in body]
    lines.append(f"test accuracy (%) over {plural(len(c.seeds), 'seed')}; gap closed = (acc - student) / "
                 f"(teacher - student)" + (f"; {plural(failed, 'run')} failed (see the report)" if failed else ""))
    return "\n".join(lines)

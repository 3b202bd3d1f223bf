"""From finished runs to a :class:`Comparison`: statistics per strategy over its ok runs, the
paired verdict, proxy fidelity, and the search's own record."""

from __future__ import annotations

import math
import statistics
from typing import Optional

from autokd.compare.plan import Contender
from autokd.compare.results import (
    BASELINE, Comparison, HistoryPoint, ModelSummary, PairedComparison, RunRecord, SearchSummary,
    StrategySummary,
)
from autokd.compare.stats import gap_closed, mean_sd_se, paired, spearman
from autokd.config.strategy import Recipe


def trains_alone(strategy, own: dict) -> bool:
    """Whether ``strategy`` is the task's student trained alone, with cross-entropy only (the zero of
    "gap closed"): no KD term (alpha 0), no pair or relation losses, one model (the single scheme),
    and the task's own student (``own``: its kwargs) uncompressed. Found by what it is, not by name."""
    return (not strategy.needs_teacher and strategy.scheme.kind == "single" and strategy.compression.empty
            and {**own, **strategy.student} == own)


def student_alone(contenders: list[Contender], own: dict) -> Optional[Contender]:
    """The compared strategy that trains the student alone (a baseline before a found one), if any."""
    alone = [c for c in contenders if trains_alone(c.strategy, own)]
    return min(alone, key=lambda c: c.kind != BASELINE, default=None)


def summarise(study, settings, prepared, contenders: list[Contender], runs: list[RunRecord], recipe: Recipe,
              seeds: list[int]) -> Comparison:
    """The comparison of ``contenders`` (the first is the search's winner) from their ``runs``."""
    from autokd.search.export import export_config
    from autokd.search.leaderboard import importances

    task, info = prepared.task, prepared.teacher_info
    summaries = strategy_summaries(contenders, runs, info.test_acc, task.student.kwargs)
    alone = student_alone(contenders, task.student.kwargs)
    student = next((s for s in summaries if alone is not None and s.name == alone.name), None)
    ranked_both = [s for s in summaries if s.test_mean is not None and s.proxy_val is not None]
    return Comparison(
        study_name=study.study_name,
        task_name=task.name,
        teacher=ModelSummary(task.teacher.model, task.teacher.kwargs, _params(prepared.teacher), info.val_acc,
                             info.test_acc),
        student=ModelSummary(task.student.model, task.student.kwargs, _student_params(prepared),
                             student.val_mean if student else None, student.test_mean if student else None),
        search=_search_summary(study, settings, task.recipes.proxy.epochs),
        recipe=recipe,
        seeds=seeds,
        summaries=summaries,
        runs=runs,
        paired=paired_with_best_baseline(contenders[0].name, summaries, runs),
        fidelity=spearman([s.proxy_val for s in ranked_both], [s.test_mean for s in ranked_both]),
        exported=export_config(study, 1),
        history=_history(study),
        importances=importances(study),
    )


def strategy_summaries(contenders: list[Contender], runs: list[RunRecord], teacher_test: float,
                       own: dict) -> list[StrategySummary]:
    """One summary per contender, best test mean first (strategies whose runs all failed last); the
    gap closed is measured from the strategy that trains the student alone (``own``: the task's
    student kwargs; see :func:`trains_alone`)."""
    by_name: dict[str, list[RunRecord]] = {}
    for r in runs:
        by_name.setdefault(r.strategy, []).append(r)
    student = student_alone(contenders, own)
    student_ok = [r.test_acc for r in by_name.get(student.name, []) if r.ok] if student else []
    student_mean = mean_sd_se(student_ok)[0] if student_ok else None
    summaries = [_summary(c, by_name.get(c.name, []), None if c is student else student_mean, teacher_test)
                 for c in contenders]
    summaries.sort(key=lambda s: -s.test_mean if s.test_mean is not None else math.inf)
    return summaries


def _median_known(values) -> Optional[float]:
    """The median of the values that are known (a latency that could not be measured is None)."""
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def _summary(c: Contender, runs: list[RunRecord], student_mean: Optional[float], teacher_test: float) -> StrategySummary:
    ok = [r for r in runs if r.ok]
    test_mean = test_sd = test_se = val_mean = gap = None
    if ok:
        test_mean, test_sd, test_se = mean_sd_se([r.test_acc for r in ok])
        if len(ok) == 1:  # one run has no spread to show (0.00 would read as a measured one)
            test_sd = test_se = None
        val_mean = mean_sd_se([r.val_acc for r in ok])[0]
        if student_mean is not None:
            gap = gap_closed(test_mean, student_mean, teacher_test)
    steps = [r.steps for r in ok if r.steps is not None]
    sized = [r.footprint for r in ok if r.footprint]
    return StrategySummary(c.name, c.kind, c.description, len(ok), len(runs) - len(ok), test_mean, test_sd, test_se,
                           val_mean, gap, c.proxy_val, c.trial_number, list(c.baselines),
                           statistics.fmean(steps) if steps else None,
                           statistics.fmean(r.seconds for r in ok) if ok else None,
                           sized[0]["params"] if sized else None, sized[0]["size_bytes"] / 1024 if sized else None,
                           _median_known(f["latency_ms"] for f in sized))


def paired_with_best_baseline(winner: str, summaries: list[StrategySummary], runs: list[RunRecord]
                              ) -> Optional[PairedComparison]:
    """The winner against the baseline with the highest test mean, over the seeds both have ok."""
    best = min((s for s in summaries if s.kind == BASELINE and s.test_mean is not None),
               key=lambda s: (-s.test_mean, s.name), default=None)  # ties: by name, as the ranking lists them
    if best is None:
        return None

    def ok_by_seed(name: str) -> dict[int, float]:
        return {r.seed: r.test_acc for r in runs if r.strategy == name and r.ok}

    return paired(winner, ok_by_seed(winner), best.name, ok_by_seed(best.name))


def _search_summary(study, settings, proxy_epochs: int) -> SearchSummary:
    from autokd.search.ledger import counts

    trials = study.get_trials(deepcopy=False)
    starts = [t.datetime_start for t in trials if t.datetime_start]
    ends = [t.datetime_complete for t in trials if t.datetime_complete]
    wall = (max(ends) - min(starts)).total_seconds() if starts and ends else 0.0  # includes pauses between sessions
    cpu = sum((t.datetime_complete - t.datetime_start).total_seconds() for t in trials
              if t.datetime_start and t.datetime_complete)  # each trial ran on one CPU
    return SearchSummary(settings.sampler, settings.budget, counts(study), wall, cpu, settings.workers, proxy_epochs,
                         settings.space_source)


def _history(study) -> list[HistoryPoint]:
    """The finished trials that count (void ones, such as interrupted trials, left out)."""
    from autokd.search.ledger import is_void

    return [HistoryPoint(t.number, t.state.name, t.values[0] if t.values else None) for t in study.get_trials(deepcopy=False)
            if t.state.is_finished() and not is_void(t)]


def _params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _student_params(prepared) -> int:
    from autokd.models.registry import build_model

    data, spec = prepared.data, prepared.task.student
    return _params(build_model(spec.model, spec.kwargs, data.num_classes, data.input_shape))

"""``autokd calibrate``: how well proxies of several lengths rank strategies like full training,
on the user's own task, and which proxy to search with.

The runs are planned in :mod:`autokd.calibrate.plan`, executed like compare's (Ray tasks, or in
this process) and kept in ``OUT/runs.jsonl``: an interrupted calibration resumes, and a second one
with more strategies, seeds or lengths only adds the new runs. The figures are computed in
:mod:`autokd.calibrate.analysis`, the report written by :mod:`autokd.calibrate.report`.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from autokd.calibrate.analysis import Calibration, StrategyResult, length_rows, recommend, seed_noise
from autokd.calibrate.plan import (
    BASELINE, MIN_STRATEGIES, Plan, baseline_candidates, check_lengths, default_lengths, distinct_candidates, make_plan,
    rung_of, sampled_candidates,
)
from autokd.compare.execute import JobResult, run_and_keep
from autokd.compare.outfolder import CALIBRATE_FILES, check_out_folder
from autokd.compare.results import RunRecord
from autokd.compare.store import RunStore
from autokd.errors import AutokdError
from autokd.outputs import make_folder

Say = Callable[[str], None]
Status = Callable[[str, bool], None]
NO_BASELINES = "none"


@dataclass
class CalibrateRequest:
    out_dir: Path  # the report folder; runs are kept in OUT/runs.jsonl
    lengths: Optional[list[int]] = None  # proxy lengths in epochs (None: default_lengths)
    strategies: int = 16  # drawn from the space
    sampler_seed: int = 0
    seeds: int = 2  # full-length seeds per strategy (two measure the seed noise)
    baselines_path: Optional[str] = None  # a file or a shipped set (None: the shipped baselines); "none": none
    threshold: float = 0.7
    workers: Optional[int] = None
    address: Optional[str] = None
    device: str = "auto"


def check_request(request: CalibrateRequest) -> None:
    """The flags that can be wrong, before anything is read or trained."""
    from autokd.compare.compare import check_run_flags

    if not -1.0 <= request.threshold <= 1.0 or math.isnan(request.threshold):
        raise AutokdError(f"--threshold must be a Spearman rho in [-1, 1], got {request.threshold}")
    check_run_flags(request.workers, request.address, request.device)


def run_calibrate(space_file, request: CalibrateRequest, say: Say = print,
                  status: Status = lambda _t, _f: None) -> Calibration:
    """Train what :func:`plan` asks (runs in OUT/runs.jsonl are reused) and judge the proxies."""
    from autokd.training.run import prepare_task

    check_request(request)
    task = space_file.task
    plan, left_out = build_plan(space_file, request)
    if left_out:
        say(f"baselines left out (this task cannot take them): {', '.join(left_out)}")
    check_out_folder(request.out_dir, CALIBRATE_FILES, "the calibration")  # before any training; created below
    store = RunStore(request.out_dir / "runs.jsonl")
    _drop_incomplete(store, plan.jobs)
    store.warn_unreadable(say)
    todo = [j for j in plan.jobs if j.key not in store]
    say(f"calibrate {task.name}: {len(plan.candidates)} strategies x ({len(plan.full_seeds)} full-length runs of "
        f"{task.recipes.full.epochs} epochs + proxies of {', '.join(map(str, plan.lengths))} epochs"
        f"{', read from one run' if not plan.anneals else ''}) = {len(plan.jobs)} runs ({len(plan.jobs) - len(todo)} "
        "already done)")
    if todo:
        prepared = prepare_task(task, request.device, progress=say)
        _check_baselines(prepared, plan)
        if any(j.strategy.scheme.kind == "ensemble" for j in todo):  # loaded once here, not in every run
            from autokd.training.extra_teachers import extra_teachers

            extra_teachers(prepared, say)
        make_folder(request.out_dir, "the calibration")  # the set-up succeeded: only now is the folder made
        _execute(prepared, todo, store, request, status)
    return judge(space_file, plan, store, request.threshold, left_out)


def build_plan(space_file, request: CalibrateRequest) -> tuple[Plan, list[str]]:
    task = space_file.task
    full = task.recipes.full.epochs
    lengths = check_lengths(request.lengths, full) if request.lengths else default_lengths(full, task.recipes.proxy.epochs)
    from autokd.search.binding import bind_space

    searched = bind_space(space_file)  # builds the models and checks the space: once
    candidates = sampled_candidates(space_file, lengths, request.strategies, request.sampler_seed, searched)
    left_out: list[str] = []
    if request.baselines_path != NO_BASELINES:
        baselines, left_out = baseline_candidates(space_file, lengths, request.baselines_path, searched.pairs)
        candidates += baselines
    candidates = distinct_candidates(candidates, task)  # one strategy under two names is one point
    if len(candidates) < MIN_STRATEGIES:
        raise AutokdError(f"a calibration ranks {len(candidates)} distinct strategies; Spearman's rho needs at least "
                          f"{MIN_STRATEGIES}: raise --strategies")
    return make_plan(space_file, candidates, lengths, request.seeds), left_out


def _drop_incomplete(store: RunStore, jobs) -> None:
    """A stored ok run that lacks a validated epoch its job asks for (a curve point deleted by hand) is
    treated as a line that is not a run: counted, and trained again."""
    for job in jobs:
        record = store.runs.get(job.key)
        wanted = {str(e) for e in job.validate_at} | ({str(job.strategy.recipe.epochs)} if job.validate_at else set())
        if record is not None and record.ok and not wanted <= set(record.curve or {}):
            del store.runs[job.key]
            store.unreadable += 1


def _check_baselines(prepared, plan: Plan) -> None:
    """Every baseline fits the task's models (its student's kwargs, its scheme's models), before any run."""
    from autokd.compare.plan import check_baseline

    for c in plan.candidates:
        if c.kind == BASELINE:
            check_baseline(prepared, c.name, c.full)


def _execute(prepared, todo, store: RunStore, request: CalibrateRequest, status: Status) -> None:
    def describe(result: JobResult) -> str:
        j, o = result.job, result.outcome
        return f"{j.name} {j.kind} {j.strategy.recipe.epochs} ep " + (f"failed ({o.reason})" if o.reason else
                                                                      f"val {o.val_acc:.2f}%")

    run_and_keep(prepared, todo, lambda _job: store, request.workers, request.address, status, describe)


def _at(record: RunRecord, epoch: int, last: int) -> Optional[float]:
    """A run's validation accuracy after ``epoch`` (its end, or a point of its curve); None: diverged."""
    if not record.ok:
        return None
    return record.val_acc if epoch == last else record.curve[str(epoch)][0]


def _seconds(record: RunRecord, epoch: int, last: int) -> float:
    """What a trial of ``epoch`` epochs costs: the run's own time, or (read from a longer run's
    curve) its set-up plus the training time up to that epoch."""
    if epoch == last or not record.curve:
        return record.seconds
    return record.seconds - record.curve[str(last)][1] + record.curve[str(epoch)][1]


def collect(plan: Plan, store: RunStore) -> list[StrategyResult]:
    out = []
    for c in plan.candidates:
        full = [store.runs[plan.full_keys[(c.name, s)]] for s in plan.full_seeds]
        proxy_val, rung_val, seconds = {}, {}, {}
        for e in plan.lengths:
            reading = plan.readings[(c.name, e)]
            record = store.runs[reading.key]
            proxy_val[e] = _at(record, reading.epoch, reading.length)
            rung_val[e] = _at(record, reading.rung, reading.length) if reading.rung else None
            seconds[e] = _seconds(record, reading.epoch, reading.length)
        out.append(StrategyResult(c.name, c.kind, c.description, [r.test_acc if r.ok else None for r in full],
                                  [r.val_acc if r.ok else None for r in full], proxy_val, rung_val, seconds))
    return out


def judge(space_file, plan: Plan, store: RunStore, threshold: float, left_out: list[str]) -> Calibration:
    from autokd.compare.stats import spearman

    results = collect(plan, store)
    rows = length_rows(results, plan.lengths, {e: rung_of(e) for e in plan.lengths})
    sd, seed_fid = seed_noise(results)
    full_runs = [store.runs[k] for k in plan.full_keys.values()]
    task = space_file.task
    recommendation = recommend(rows, threshold, task.recipes.proxy.epochs)
    if recommendation.epochs is not None:  # what a space must write to train the length measured
        recommendation.milestones = task.recipes.proxy_milestones(recommendation.epochs)
    return Calibration(
        task.name, space_file.source, task.recipes.full.epochs, task.recipes.proxy.epochs, plan.proxy_seed,
        plan.full_seeds, threshold, not plan.anneals, results, rows,
        spearman([statistics.fmean(v or 0.0 for v in s.full_val) for s in results], [s.truth for s in results]),
        seed_fid, sd, sum(not r.ok for r in full_runs), statistics.median(r.seconds for r in full_runs),
        recommendation, left_out)

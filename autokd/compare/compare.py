"""``autokd compare``: retrain a study's top strategies and the hand-tuned baselines at full
length over several seeds, evaluate on the test split, and summarise.

The search's winner is its rank-1 strategy by proxy *validation* accuracy (chosen without
looking at test); the best baseline is the baseline with the highest test mean, which favours
the baselines, so a win over it is a conservative claim. Each distinct strategy is retrained
once per seed (see :mod:`autokd.compare.plan`). A run whose training diverges is recorded as
failed, with its reason, and the others go on; like every finished run it is kept in
``runs.jsonl`` and reused by the next compare.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from autokd.config.baselines import baselines_that_adapt
from autokd.compare.execute import JobResult, run_and_keep, seed_list
from autokd.compare.outfolder import COMPARE_FILES, check_out_folder
from autokd.compare.plan import (
    as_job, by_unique_name, fitting, found_contenders, jobs_for, proxy_jobs_for, shipped_baselines, spread, with_baselines,
)
from autokd.compare.results import PROXY, Comparison
from autokd.compare.store import RunStore
from autokd.compare.summary import summarise
from autokd.errors import AutokdError
from autokd.outputs import make_folder

Say = Callable[[str], None]
Status = Callable[[str, bool], None]


@dataclass
class CompareRequest:
    out_dir: Path  # the report folder; finished runs are kept in OUT/runs.jsonl
    top_k: int = 3  # distinct found strategies
    seeds: int = 5  # per strategy: the recipe's seed, +1, ...
    epochs: Optional[int] = None  # full length (default: the task's full recipe)
    baselines_path: Optional[str] = None  # default: the shipped baselines
    workers: Optional[int] = None  # Ray tasks at once (None: every CPU); 0: one by one in this process
    address: Optional[str] = None  # a Ray cluster to join
    device: str = "auto"


def run_compare(study, request: CompareRequest, say: Say = print, status: Status = lambda _t, _f: None) -> Comparison:
    """Retrain the study's best ``top_k`` distinct strategies and the baselines (runs already in
    OUT/runs.jsonl are reused) and summarise them; the report is written by :func:`write_report`."""
    from autokd.search.binding import bind_space
    from autokd.search.leaderboard import front, judging, ranked
    from autokd.search.space_file import space_file_from_text
    from autokd.search.study import check_same_data, check_same_teacher, read_settings
    from autokd.training.run import prepare_task

    check_run_flags(request.workers, request.address, request.device)
    settings = read_settings(study)
    space_file = space_file_from_text(settings.space_text, settings.space_source)
    task = space_file.task
    recipe = task.recipes.full if request.epochs is None else task.recipes.full.with_epochs(request.epochs)
    rules = judging(study)
    entries = spread(front(study, rules), request.top_k) if rules.multi_objective else ranked(study, rules)
    if not entries:
        raise AutokdError(f"study {study.study_name!r} has no complete (and feasible) trial yet; nothing to compare")
    found = found_contenders(entries, space_file, request.epochs, request.top_k)
    if rules.multi_objective:
        say(f"multi-objective study: {len(found)} point(s) of its Pareto front, spread over it (--top-k {request.top_k})")
    baselines, left_out = baselines_that_adapt(request.baselines_path, bind_space(space_file).pairs, recipe, task)
    if left_out:
        say(f"baselines left out (this task cannot take them: no layer pairs, one teacher, or no assistant size "
            f"between teacher and student): {', '.join(left_out)}")
    generated = shipped_baselines(found, baselines, task.student.kwargs)  # again at each searched student
    baselines = baselines + generated
    contenders = with_baselines(found, baselines, task)
    seeds = seed_list(recipe.seed, request.seeds)
    jobs = jobs_for(contenders, seeds, task)
    check_out_folder(request.out_dir, COMPARE_FILES, "the compare report")  # before any training; created below
    store = RunStore(request.out_dir / "runs.jsonl")
    proxy_store = RunStore(request.out_dir / "proxy_runs.jsonl")
    for kept in (store, proxy_store):
        kept.warn_unreadable(say)
    todo = [j for j in jobs if j.key not in store]
    say(f"compare {study.study_name!r}: {len(found)} found + {len(baselines)} baselines = {len(contenders)} distinct "
        f"strategies x {request.seeds} seeds at {recipe.epochs} epochs = {len(jobs)} runs "
        f"({len(jobs) - len(todo)} already done), and one {task.recipes.proxy.epochs}-epoch proxy run of each "
        f"baseline for proxy fidelity")
    prepared = prepare_task(task, request.device, progress=say)  # a diverging teacher is an AutokdError
    check_same_teacher(study, prepared.teacher_info)  # the teacher the study was searched with
    check_same_data(study, prepared.data.fingerprint)  # the data its trials (the proxy values) were scored on
    contenders, unfit = fitting(prepared, contenders, {b.name for b in generated})
    if unfit:
        say(f"baselines left out at a searched student size (they do not fit that student): {', '.join(unfit)}")
        jobs = jobs_for(contenders, seeds, task)
        todo = [j for j in jobs if j.key not in store]
    if any(j.strategy.scheme.kind == "ensemble" for j in todo):  # loaded once here, not in every run
        from autokd.training.extra_teachers import extra_teachers

        check_same_teacher(study, prepared.teacher_info, [info for _, info in extra_teachers(prepared, say)])
    proxy_jobs = proxy_jobs_for(contenders, task.recipes.proxy, task)
    proxy_todo = [j for j in proxy_jobs if j.key not in proxy_store]
    make_folder(request.out_dir, "the compare report")  # the set-up succeeded: only now is the folder made
    if todo or proxy_todo:
        _execute(prepared, todo + proxy_todo, {PROXY: proxy_store}, store, request, status)
    _set_proxy_values(contenders, proxy_jobs, proxy_store)
    runs = [as_job(store.runs[j.key], j) for j in jobs]
    return summarise(study, settings, prepared, contenders, runs, recipe, seeds)


def _set_proxy_values(contenders, proxy_jobs, proxy_store: RunStore) -> None:
    """A baseline's proxy value: its proxy run's validation accuracy (None when that run failed)."""
    by_name = by_unique_name(contenders)
    for job in proxy_jobs:
        record = proxy_store.runs[job.key]
        by_name[job.name].proxy_val = record.val_acc if record.ok else None


def check_run_flags(workers: Optional[int], address: Optional[str], device: str) -> None:
    """``--workers``, ``--address`` and ``--device``, before anything is read or trained."""
    import os

    from autokd.search.settings import check_workers
    from autokd.training.run import resolve_device

    check_workers(workers, address)
    resolve_device(device)
    address = address or os.environ.get("RAY_ADDRESS")
    if workers != 0 and address:
        from autokd.search.ray_backend import check_address

        check_address(address)


def _execute(prepared, todo, stores: dict, store: RunStore, request: CompareRequest, status: Status) -> None:
    """Run ``todo``; each result is kept in the store of its job's kind (``stores``), else ``store``."""
    def describe(result: JobResult) -> str:
        j, o = result.job, result.outcome  # a proxy run is read by its validation accuracy, as a trial is
        if o.reason:
            return f"{j.name} seed {j.strategy.recipe.seed} failed ({o.reason})"
        value = f"proxy val {o.val_acc:.2f}%" if j.kind == PROXY else f"test {o.test_acc:.2f}%"
        return f"{j.name} seed {j.strategy.recipe.seed} {value}"

    run_and_keep(prepared, todo, lambda job: stores.get(job.kind, store), request.workers, request.address, status,
                 describe)

"""``autokd compare``: retrain a study's top strategies and the hand-tuned baselines at full
length over several seeds, evaluate on the test split, and summarise.

The search's winner is its rank-1 strategy by proxy *validation* accuracy (chosen without
looking at test); the best baseline is the baseline with the highest test mean, which favours
the baselines, so a win over it is a conservative claim.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable, Optional

from autokd.compare.baselines import load_baselines
from autokd.compare.execute import Job, JobResult, run_jobs, with_seed
from autokd.compare.results import BASELINE, FOUND, Comparison, RunRecord, StrategySummary
from autokd.compare.stats import gap_closed, mean_sd_se, paired, spearman
from autokd.compare.store import RunStore, run_key
from autokd.config.parse import to_mapping
from autokd.errors import AutokdError
from autokd.search.driver import bind_space, check_workers
from autokd.search.export import export_config, full_length_strategy
from autokd.search.leaderboard import importances, ranked
from autokd.search.space_file import space_file_from_text
from autokd.search.study import counts, read_settings

Say = Callable[[str], None]


def run_compare(
    study,
    out_dir: Path,
    top_k: int = 3,
    seeds: int = 5,
    epochs: Optional[int] = None,
    baselines_path: Optional[str] = None,
    workers: int = 1,
    address: Optional[str] = None,
    device: str = "auto",
    say: Say = print,
    status: Callable[[str, bool], None] = lambda _t, _f: None,
) -> Comparison:
    from autokd.training.run import prepare_task

    from autokd.training.run import resolve_device

    check_workers(workers, address)
    resolve_device(device)
    settings = read_settings(study)
    space_file = space_file_from_text(settings.space_text, settings.space_source)
    task = space_file.task
    space = bind_space(space_file)
    recipe = task.recipes.full if epochs is None else replace(task.recipes.full, epochs=epochs)
    entries = ranked(study)
    if not entries:
        raise AutokdError(f"study {study.study_name!r} has no complete trial yet; nothing to compare")
    found = [(f"trial {e.number}", e, full_length_strategy(space_file, e.strategy, epochs)) for e in entries[:top_k]]
    baselines = load_baselines(baselines_path, space.pairs, recipe)
    seed_list = [recipe.seed + i for i in range(seeds)]

    jobs = [Job(name, FOUND, with_seed(s, seed), run_key(task, with_seed(s, seed), seed))
            for name, _, s in found for seed in seed_list]
    jobs += [Job(b.name, BASELINE, with_seed(b.strategy, seed), run_key(task, with_seed(b.strategy, seed), seed))
             for b in baselines for seed in seed_list]
    store = RunStore(Path(out_dir) / "runs.jsonl")
    todo = [j for j in jobs if j.key not in store]
    say(f"compare {study.study_name!r}: {len(found)} found + {len(baselines)} baselines x {seeds} seeds "
        f"at {recipe.epochs} epochs = {len(jobs)} runs ({len(jobs) - len(todo)} already done)")
    prepared = prepare_task(task, device, progress=say)
    if todo:
        _execute(prepared, todo, store, workers, address, say, status)
    records = [store.runs[j.key] for j in jobs]
    return summarise(study, settings, space_file, prepared, found, baselines, records, recipe, seed_list)


def _execute(prepared, todo: list[Job], store: RunStore, workers: int, address, say: Say, status) -> None:
    import time

    from autokd.formatting import format_seconds

    start, done = time.monotonic(), 0

    def on_done(result: JobResult) -> None:
        nonlocal done
        j = result.job
        store.add(RunRecord(j.name, j.kind, j.strategy.recipe.seed, result.val_acc, result.test_acc, result.seconds, j.key))
        done += 1
        elapsed = time.monotonic() - start
        status(f"runs {done}/{len(todo)}  last: {j.name} seed {j.strategy.recipe.seed} test {result.test_acc:.2f}%  "
               f"elapsed {format_seconds(elapsed)}  eta {format_seconds(elapsed / done * (len(todo) - done))}", True)

    run_jobs(prepared, todo, workers, on_done, address)


def summarise(study, settings, space_file, prepared, found, baselines, records, recipe, seed_list) -> Comparison:
    teacher_test = prepared.teacher_info.test_acc
    by_name: dict[str, list[RunRecord]] = {}
    for r in records:
        by_name.setdefault(r.strategy, []).append(r)
    student_runs = by_name.get("student")
    student_mean = mean_sd_se([r.test_acc for r in student_runs])[0] if student_runs else None
    descriptions = {name: s.describe() for name, _, s in found} | {b.name: b.description for b in baselines}
    proxies = {name: (e.value, e.number) for name, e, _ in found}
    summaries = []
    for name, runs in by_name.items():
        test_mean, test_sd, test_se = mean_sd_se([r.test_acc for r in runs])
        gap = gap_closed(test_mean, student_mean, teacher_test) if student_mean is not None and name != "student" else None
        proxy, number = proxies.get(name, (None, None))
        summaries.append(StrategySummary(
            name, runs[0].kind, descriptions[name], len(runs), test_mean, test_sd, test_se,
            mean_sd_se([r.val_acc for r in runs])[0], gap, proxy, number))
    summaries.sort(key=lambda s: -s.test_mean)
    per_seed = {name: {r.seed: r.test_acc for r in runs} for name, runs in by_name.items()}
    winner = found[0][0]
    best_baseline = max((s for s in summaries if s.kind == BASELINE), key=lambda s: s.test_mean, default=None)
    comparison_paired = paired(winner, per_seed[winner], best_baseline.name, per_seed[best_baseline.name]) if best_baseline else None
    found_summaries = [s for s in summaries if s.kind == FOUND]
    fidelity = spearman([s.proxy_val for s in found_summaries], [s.test_mean for s in found_summaries])
    c = counts(study)
    wall = _search_wall_seconds(study)
    task = space_file.task
    return Comparison(
        study_name=study.study_name,
        task_name=task.name,
        teacher={"model": task.teacher.model, "kwargs": task.teacher.kwargs, "parameters": _params(prepared.teacher),
                 "val_acc": prepared.teacher_info.val_acc, "test_acc": teacher_test},
        student={"model": task.student.model, "kwargs": task.student.kwargs, "parameters": _student_params(prepared)},
        search={"sampler": settings.sampler, "budget": settings.budget, "counts": c, "wall_seconds": wall,
                "cpu_seconds": _trial_seconds(study), "workers": settings.workers,
                "proxy_epochs": task.recipes.proxy.epochs, "space": settings.space_source},
        recipe=to_mapping(recipe),
        seeds=seed_list,
        summaries=summaries,
        runs=records,
        paired=comparison_paired,
        fidelity=fidelity,
        exported=export_config(study, 1),
        history=[(t.number, t.state.name, t.value) for t in study.get_trials(deepcopy=False)
                 if t.state.is_finished() and not t.user_attrs.get("interrupted")],
        importances=importances(study),
    )


def _params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _student_params(prepared) -> int:
    from autokd.models.registry import build_model

    data, spec = prepared.data, prepared.task.student
    return _params(build_model(spec.model, spec.kwargs, data.num_classes, data.input_shape))


def _search_wall_seconds(study) -> float:
    """First trial start to last trial end (includes pauses between sessions of a resumed study)."""
    starts = [t.datetime_start for t in study.get_trials(deepcopy=False) if t.datetime_start]
    ends = [t.datetime_complete for t in study.get_trials(deepcopy=False) if t.datetime_complete]
    return (max(ends) - min(starts)).total_seconds() if starts and ends else 0.0


def _trial_seconds(study) -> float:
    """CPU time of the search: each trial ran on one CPU, so the sum of trial durations."""
    return sum((t.datetime_complete - t.datetime_start).total_seconds() for t in study.get_trials(deepcopy=False)
               if t.datetime_start and t.datetime_complete)

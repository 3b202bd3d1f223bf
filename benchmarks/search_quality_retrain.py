"""Retraining for search_quality.py: each study's winner at full length over seeds (with every
baseline, trained once), and the proxy-length check of winners and baselines over seeds."""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict
from pathlib import Path
from typing import Optional

from common import fmt


def retrain(study, out_dir: Path, seeds: int, baselines: Optional[str], workers: int, say) -> dict:
    """``run_compare`` with top_k=1 on one study; the winner's and every baseline's ok runs, by seed.

    All studies share one run store, read back by key (task, strategy, recipe, seed): a winner that
    another study found too (TPE and random share their first start-up trials for a seed), or that
    is a baseline, is trained once and read under each name.
    """
    from autokd.config.baselines import load_baselines
    from autokd.compare.compare import CompareRequest, run_compare
    from autokd.compare.execute import with_seed
    from autokd.compare.store import RunStore, run_key
    from autokd.search.binding import bind_space
    from autokd.search.export import full_length_strategy
    from autokd.search.leaderboard import ranked
    from autokd.search.space_file import space_file_from_text
    from autokd.search.study import read_settings

    t0 = time.perf_counter()
    request = CompareRequest(out_dir, top_k=1, seeds=seeds, baselines_path=baselines, workers=workers)
    comparison = run_compare(study, request, say=say, status=lambda text, force: say(text) if force else None)
    wall = time.perf_counter() - t0
    settings = read_settings(study)
    space_file = space_file_from_text(settings.space_text, settings.space_source)
    task, recipe = space_file.task, space_file.task.recipes.full
    store = RunStore(out_dir / "runs.jsonl")
    winner = ranked(study)[0]
    strategy = full_length_strategy(space_file, winner.strategy)

    def runs_of(strat) -> dict[int, dict]:  # failed runs (training diverged) are left out
        records = {seed: store.runs[run_key(task, with_seed(strat, seed), seed)] for seed in comparison.seeds}
        return {seed: {"val": r.val_acc, "test": r.test_acc, "seconds": r.seconds} for seed, r in records.items() if r.ok}

    bases = load_baselines(baselines, bind_space(space_file).pairs, recipe)
    return {
        "compare_wall_s": wall,
        "seeds": comparison.seeds,
        "recipe_epochs": recipe.epochs,
        "teacher": asdict(comparison.teacher),
        "winner": {"trial": winner.number, "proxy_val": winner.value, "strategy": winner.strategy,
                   "description": strategy.describe(), "runs": runs_of(strategy)},
        "baselines": {b.name: {"description": b.description, "runs": runs_of(b.strategy)} for b in bases},
    }


def proxy_runs(studies: dict, storage: Path, work: Path, seeds: int, baselines: Optional[str], workers: int, say) -> dict:
    """Every winner and every baseline trained at the PROXY length (the search's recipe) over ``seeds``
    seeds, validation accuracy: how the proxy ranks them, and how much of a winner's proxy score was the
    luck of seed 0 (a winner is the best of many noisy proxy runs). Kept in WORK/compare/proxy_runs.jsonl."""
    from autokd.config.baselines import load_baselines
    from autokd.compare.execute import Job, with_seed
    from autokd.compare.store import RunStore, run_key
    from autokd.config.strategy import strategy_from_dict
    from autokd.search.binding import bind_space
    from autokd.search.space_file import space_file_from_text
    from autokd.search.storage import open_storage
    from autokd.search.study import load_existing_study, read_settings
    from search_quality_analysis import mss

    t0 = time.perf_counter()
    settings = read_settings(load_existing_study(next(iter(studies)), open_storage(str(storage))))
    space_file = space_file_from_text(settings.space_text, settings.space_source)
    task, space = space_file.task, bind_space(space_file)
    proxy = space.base_recipe
    seed_list = [proxy.seed + i for i in range(seeds)]
    named = {f"winner of {name}": ("found", strategy_from_dict(st["retrain"]["winner"]["strategy"]))
             for name, st in studies.items()}  # a trial's stored strategy carries the proxy recipe
    named |= {b.name: ("baseline", b.strategy) for b in load_baselines(baselines, space.pairs, proxy)}
    jobs = {(label, seed): Job(label, kind, with_seed(s, seed), run_key(task, with_seed(s, seed), seed))
            for label, (kind, s) in named.items() for seed in seed_list}
    store = RunStore(work / "compare" / "proxy_runs.jsonl")
    todo = list({j.key: j for j in jobs.values() if j.key not in store}.values())
    say(f"proxy-length check: {len(named)} strategies x {seeds} seeds at {proxy.epochs} epochs = {len(jobs)} runs "
        f"({len(jobs) - len(todo)} already done)")
    if todo:
        _run_into(store, task, todo, workers, say)
    out = {}
    for label, (kind, _) in named.items():
        records = {seed: store.runs[jobs[(label, seed)].key] for seed in seed_list}
        out[label] = {"kind": kind, "val_by_seed": {seed: r.val_acc for seed, r in records.items() if r.ok}}
        if out[label]["val_by_seed"]:
            out[label].update(mss(list(out[label]["val_by_seed"].values())))
    return {"epochs": proxy.epochs, "seeds": seed_list, "strategies": out, "wall_s": time.perf_counter() - t0}


def _run_into(store, task, todo: list, workers: int, say) -> None:
    """Run ``todo`` (compare jobs) and keep each result in ``store``, failed runs with their reason."""
    from autokd.compare.execute import run_jobs
    from autokd.compare.results import FAILED, OK, RunRecord
    from autokd.training.run import prepare_task

    prepared = prepare_task(task, "auto", progress=say)
    done = 0

    def on_done(result) -> None:
        nonlocal done
        j, o = result.job, result.outcome
        store.add(RunRecord(j.name, j.kind, j.strategy.recipe.seed, o.val_acc, o.test_acc, o.seconds, j.key,
                            FAILED if o.reason else OK, o.reason))
        done += 1
        say(f"proxy runs {done}/{len(todo)}: {j.name} seed {j.strategy.recipe.seed} "
            + (f"failed ({o.reason})" if o.reason else f"val {o.val_acc:.2f}%"))

    run_jobs(prepared, todo, workers, on_done)


def retrain_winners(args, studies: dict, work: Path, storage: Path) -> None:
    """Top-1 of every study plus the baselines, one shared run store (baselines trained once)."""
    from autokd.search.storage import open_storage
    from autokd.search.study import load_existing_study

    for i, (name, st) in enumerate(studies.items(), 1):
        if "retrain" in st:  # imported with its retraining
            continue
        print(f"[{i}/{len(studies)}] retrain the winner of {name} (+ baselines, reused once trained) ...", flush=True)
        study = load_existing_study(name, open_storage(str(storage)))
        st["retrain"] = retrain(study, work / "compare", args.seeds, args.baselines, args.workers,
                                say=lambda text: print(f"    {text}", flush=True))
        w = st["retrain"]["winner"]
        tests = [r["test"] for r in w["runs"].values()]
        print(f"    winner trial {w['trial']} (proxy val {w['proxy_val']:.2f}%): test "
              f"{fmt(statistics.fmean(tests) if tests else None)}%  ({st['retrain']['compare_wall_s']:.0f} s)", flush=True)

"""Does the search find better strategies than random search and the hand-tuned baselines?

Three samplers (TPE, random search, PPO) each run R independent searches (--repeats, default 3;
repeat r uses sampler seed r) of B trials (--budget, default 100) on the same space (--space,
default the shipped ``default``), each its own study in one benchmark SQLite storage, through the
real CLI (``python -m autokd.cli.main search ...`` as a subprocess, Ray Tune with --workers trials
at once, pruning on as shipped). The space file is read once at the start and saved in the work
folder; every search uses that copy, so a space file edited while the benchmark runs cannot mix
two spaces into one benchmark.

1. Anytime curves: best proxy validation accuracy so far against the trial number (the k-th
   finished trial in the order the trials were asked for; pruned and failed trials count as trials
   but have no value), per sampler: median over repeats with the min-max band.
2. Sample efficiency: for each TPE and PPO repeat, the number of trials it needed to reach random
   search's best-of-B (the bar: the median over the random repeats of their best-of-B; also against
   each random repeat's own best-of-B); median over repeats, "never" if not reached within B.
3. Retraining the winners: each study's rank-1 strategy (by proxy validation accuracy, chosen
   without looking at test) retrained at the task's full length over S seeds (--seeds, default 5)
   and evaluated on the TEST split, with every shipped baseline (CE-only among them) over the same
   seeds: ``autokd.compare.run_compare(study, top_k=1)`` on each study, all sharing one run store
   (``runs.jsonl``) so the baselines are trained once and reused. Paired differences over seeds
   (``autokd.compare.stats.paired``): each winner vs the best hand-tuned baseline (highest test
   mean, CE-only excluded; this favours the baselines) and vs CE-only, in points and in standard
   errors of the paired difference.

Targets (from the issue): TPE's winner beats the best hand-tuned baseline by >= 1.5 points and
CE-only by >= 5 points, each difference > 2 standard errors; TPE reaches random search's
best-of-100 within 40 trials.

    .venv/bin/python benchmarks/search_quality.py                          # 9 searches + retraining, ~20-40 min
    .venv/bin/python benchmarks/search_quality.py --budget 10 --repeats 1 --seeds 2   # smoke run, a few minutes

Writes reports/benchmarks/search_quality.{json,md} and search_quality_anytime.png,
search_quality_winners.png (--out-dir, --name). Studies, logs and the run store go to --work-dir
(default reports/benchmarks/search_quality_work/, git-ignored); its previous contents are replaced
unless --keep is given (then finished studies and runs are reused).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command_line, end_session, load_average, machine_info, machine_text, rho  # noqa: E402  (shared with the other benchmark scripts)
REPO = Path(__file__).resolve().parents[1]
SAMPLERS = ("tpe", "random", "ppo")
TARGET_VS_BASELINE = 1.5  # points of test accuracy, TPE's winner over the best hand-tuned baseline
TARGET_VS_CE = 5.0  # points, TPE's winner over CE-only
TARGET_SE = 2.0  # each difference more than this many standard errors of the paired difference
TARGET_TRIALS_FRACTION = 0.4  # TPE reaches random's best-of-B within 40 % of B (40 of 100)
CE_ONLY = "student"  # the shipped baseline that is cross-entropy only


def parse_args(argv: Optional[Iterable[str]] = None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--budget", type=int, default=100, help="trials per search (B)")
    p.add_argument("--repeats", type=int, default=3, help="independent searches per sampler (R); repeat r uses seed r")
    p.add_argument("--seeds", type=int, default=5, help="full-length seeds per retrained strategy (S)")
    p.add_argument("--samplers", nargs="+", default=list(SAMPLERS), choices=SAMPLERS)
    p.add_argument("--space", default="default", help="shipped space name or a space YAML file")
    p.add_argument("--baselines", default=None, help="baselines YAML (default: the shipped baselines.yaml)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="trials (and retraining runs) at once, one CPU each (default: the CPU count)")
    p.add_argument("--no-pruning", action="store_true", help="pass --no-pruning to the searches")
    p.add_argument("--proxy-seeds", type=int, default=3,
                   help="diagnostics: winners and baselines re-run at the PROXY length over this many seeds "
                        "(seed 0 = what the search saw); 0 skips it")
    p.add_argument("--work-dir", type=Path, default=REPO / "reports" / "benchmarks" / "search_quality_work",
                   help="studies, search logs and the retraining run store (git-ignored by default)")
    p.add_argument("--keep", action="store_true",
                   help="reuse the studies and runs already in --work-dir (default: start afresh)")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds before one search is stopped")
    p.add_argument("--note", action="append", default=[],
                   help="a line for the report's notes (e.g. about an earlier, interrupted invocation); repeatable")
    p.add_argument("--out-dir", type=Path, default=REPO / "reports" / "benchmarks")
    p.add_argument("--name", default="search_quality", help="report file stem")
    args = p.parse_args(argv)
    if args.budget < 1 or args.repeats < 1 or args.seeds < 1:
        p.error("--budget, --repeats and --seeds must be >= 1")
    args.samplers = list(dict.fromkeys(args.samplers))
    return args


# ----------------------------------------------------------------------------- machine and processes


# ----------------------------------------------------------------------------- searches


def search_command(space_path: Path, storage: Path, sampler: str, seed: int, budget: int, workers: int,
                   pruning: bool) -> list[str]:
    args = ["search", "--space", str(space_path), "--budget", str(budget), "--sampler", sampler,
            "--seed", str(seed), "--name", study_name(sampler, seed), "--storage", str(storage),
            "--workers", str(workers)]
    return args + ([] if pruning else ["--no-pruning"])


def study_name(sampler: str, seed: int) -> str:
    return f"{sampler}-r{seed}"


def run_search_cli(cli_args: list[str], log_path: Path, timeout: float) -> dict:
    """Run ``autokd search`` as a subprocess; its output goes to ``log_path``."""
    cmd = [sys.executable, "-m", "autokd.cli.main", *cli_args]
    load_before = load_average()
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    timed_out = False
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            proc.send_signal(signal.SIGTERM)  # autokd's clean path: running trials re-queued, Ray shut down
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        except BaseException:  # Ctrl-C on the benchmark: leave nothing behind
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            finally:
                end_session(proc.pid)
            raise
    wall = time.perf_counter() - t0
    time.sleep(1.0)
    left = len(end_session(proc.pid))  # normally nothing: the CLI shuts its own Ray down
    return {"returncode": proc.returncode, "timed_out": timed_out, "wall_s": wall, "started": started,
            "load_before": load_before, "load_after": load_average(), "processes_left": left,
            "output_tail": log_path.read_text()[-2000:]}


def read_trials(study) -> list[dict]:
    """Every trial of a study, by number: state, value, timestamps, params, how far it trained."""
    from autokd.search.study import FAIL_REASON_ATTR, INTERRUPTED_ATTR

    out = []
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        out.append({
            "number": t.number,
            "state": t.state.name,
            "interrupted": bool(t.user_attrs.get(INTERRUPTED_ATTR)),
            "value": t.value,
            "datetime_start": t.datetime_start.isoformat() if t.datetime_start else None,
            "datetime_complete": t.datetime_complete.isoformat() if t.datetime_complete else None,
            "epochs_reported": max(t.intermediate_values) if t.intermediate_values else 0,
            "last_intermediate": t.intermediate_values[max(t.intermediate_values)] if t.intermediate_values else None,
            "intermediate": {int(k): v for k, v in sorted(t.intermediate_values.items())},
            "params": t.params,
            "fail_reason": t.user_attrs.get(FAIL_REASON_ATTR),
            "ppo_action": t.system_attrs.get("ppo_action"),
        })
    return out


def counted(trials: list[dict]) -> list[dict]:
    """The trials that count toward the budget (finished, not interrupted), in the order they were asked."""
    return [t for t in trials if t["state"] in ("COMPLETE", "PRUNED", "FAIL") and not t["interrupted"]]


def best_so_far(trials: list[dict], budget: int) -> list[Optional[float]]:
    """Best validation accuracy among the first k counted trials, k = 1..budget (None before any is complete)."""
    out, best = [], None
    for t in counted(trials)[:budget]:
        if t["state"] == "COMPLETE" and t["value"] is not None:
            best = t["value"] if best is None else max(best, t["value"])
        out.append(best)
    return out


def trials_to_reach(curve: list[Optional[float]], bar: float) -> Optional[int]:
    """The first k (1-based) with best-so-far >= bar; None if never within the curve."""
    for k, v in enumerate(curve, 1):
        if v is not None and v >= bar - 1e-9:
            return k
    return None


def median_trials(values: list[Optional[int]]) -> Optional[float]:
    """Median of trials-to-reach, "never" (None) counting as infinitely many."""
    m = statistics.median([math.inf if v is None else v for v in values])
    return None if math.isinf(m) else m


def search_wall_from_trials(trials: list[dict]) -> Optional[float]:
    starts = [datetime.datetime.fromisoformat(t["datetime_start"]) for t in trials if t["datetime_start"]]
    ends = [datetime.datetime.fromisoformat(t["datetime_complete"]) for t in trials if t["datetime_complete"]]
    return (max(ends) - min(starts)).total_seconds() if starts and ends else None


# ----------------------------------------------------------------------------- retraining


def retrain(study, out_dir: Path, seeds: int, baselines: Optional[str], workers: int, say) -> dict:
    """``run_compare`` with top_k=1 on one study; the winner's and every baseline's runs, by seed.

    The runs are read back from the shared run store by key (task, strategy, recipe, seed), so a
    winner that another study found too (TPE and random share their first startup trials for a
    seed) is trained once and read under this study's name.
    """
    from autokd.compare.compare import run_compare
    from autokd.compare.execute import with_seed
    from autokd.compare.baselines import load_baselines
    from autokd.compare.store import RunStore, run_key
    from autokd.search.driver import bind_space
    from autokd.search.export import full_length_strategy
    from autokd.search.leaderboard import ranked
    from autokd.search.space_file import space_file_from_text
    from autokd.search.study import read_settings

    t0 = time.perf_counter()
    comparison, note = None, None
    try:
        comparison = run_compare(study, out_dir, top_k=1, seeds=seeds, baselines_path=baselines, workers=workers,
                                 say=say, status=lambda text, force: say(text) if force else None)
    except KeyError as exc:  # summarising a run the store holds under another study's trial name
        note = f"run_compare's summary failed ({exc!r}); runs read from the store"
    wall = time.perf_counter() - t0

    settings = read_settings(study)
    space_file = space_file_from_text(settings.space_text, settings.space_source)
    task = space_file.task
    recipe = task.recipes.full
    seed_list = [recipe.seed + i for i in range(seeds)]
    store = RunStore(out_dir / "runs.jsonl")
    winner = ranked(study)[0]
    strategy = full_length_strategy(space_file, winner.strategy)

    def runs_of(strat) -> dict[int, dict]:
        out = {}
        for seed in seed_list:
            rec = store.runs[run_key(task, with_seed(strat, seed), seed)]
            out[seed] = {"val": rec.val_acc, "test": rec.test_acc, "seconds": rec.seconds}
        return out

    bases = load_baselines(baselines, bind_space(space_file).pairs, recipe)
    return {
        "compare_wall_s": wall,
        "note": note,
        "seeds": seed_list,
        "recipe_epochs": recipe.epochs,
        "teacher": comparison.teacher if comparison else None,
        "winner": {"trial": winner.number, "proxy_val": winner.value, "strategy": winner.strategy,
                   "description": strategy.describe(), "runs": runs_of(strategy)},
        "baselines": {b.name: {"description": b.description, "runs": runs_of(b.strategy)} for b in bases},
    }


# ----------------------------------------------------------------------------- statistics


def mss(values: list[float]) -> dict:
    from autokd.compare.stats import mean_sd_se

    m, sd, se = mean_sd_se(values)
    return {"mean": m, "sd": sd, "se": se, "n": len(values)}


def paired_dict(a: dict[int, float], b: dict[int, float]) -> dict:
    from autokd.compare.stats import paired

    p = paired("a", a, "b", b)
    return {"diff": p.diff_mean, "sd": p.diff_sd, "se": p.diff_se, "t": p.t, "p": p.p_value, "n": p.n}


def tests_by_seed(runs: dict) -> dict[int, float]:
    return {int(seed): r["test"] for seed, r in runs.items()}


def analyse_retraining(studies: dict, samplers: list[str]) -> dict:
    """Per strategy summaries, the best hand-tuned baseline, per-repeat and per-sampler paired differences."""
    first = next(iter(studies.values()))["retrain"]
    baselines = {name: {**mss([r["test"] for r in b["runs"].values()]),
                        "val_mean": statistics.fmean(r["val"] for r in b["runs"].values()),
                        "description": b["description"], "test_by_seed": tests_by_seed(b["runs"])}
                 for name, b in first["baselines"].items()}
    hand = {n: b for n, b in baselines.items() if n != CE_ONLY}
    best = max(hand, key=lambda n: hand[n]["mean"]) if hand else None
    ce = baselines.get(CE_ONLY)
    out = {"baselines": baselines, "best_baseline": best, "per_sampler": {}}
    for sampler in samplers:
        reps = []
        for name, s in studies.items():
            if s["sampler"] != sampler:
                continue
            w = s["retrain"]["winner"]
            tests = tests_by_seed(w["runs"])
            rep = {"study": name, "seed": s["seed"], "trial": w["trial"], "proxy_val": w["proxy_val"],
                   "description": w["description"], **mss(list(tests.values())),
                   "val_mean": statistics.fmean(r["val"] for r in w["runs"].values()), "test_by_seed": tests}
            if best:
                rep["vs_best"] = paired_dict(tests, baselines[best]["test_by_seed"])
            if ce:
                rep["vs_ce"] = paired_dict(tests, ce["test_by_seed"])
            reps.append(rep)
        if not reps:
            continue
        # the repeat-averaged winner, paired by seed: mean over repeats of each seed's test accuracy
        seeds = sorted(set.intersection(*(set(r["test_by_seed"]) for r in reps)))
        avg = {sd: statistics.fmean(r["test_by_seed"][sd] for r in reps) for sd in seeds}
        means = [r["mean"] for r in reps]
        out["per_sampler"][sampler] = {
            "repeats": reps,
            "winners_test_mean": statistics.fmean(means),
            "winners_test_min": min(means),
            "winners_test_max": max(means),
            "winners_test_sd_over_repeats": statistics.stdev(means) if len(means) > 1 else 0.0,
            "vs_best": paired_dict(avg, baselines[best]["test_by_seed"]) if best else None,
            "vs_ce": paired_dict(avg, ce["test_by_seed"]) if ce else None,
        }
    return out


def analyse_search(studies: dict, samplers: list[str], budget: int) -> dict:
    curves = {s: {n: st["curve"] for n, st in studies.items() if st["sampler"] == s} for s in samplers}
    out = {"curves": {}, "random_bar": None, "efficiency": {}}
    for sampler, by_study in curves.items():
        ks = range(1, budget + 1)
        med, lo, hi = [], [], []
        for k in ks:
            vals = [c[k - 1] for c in by_study.values() if len(c) >= k and c[k - 1] is not None]
            med.append(statistics.median(vals) if vals else None)
            lo.append(min(vals) if vals else None)
            hi.append(max(vals) if vals else None)
        out["curves"][sampler] = {"median": med, "min": lo, "max": hi,
                                  "best_of_budget": {n: (c[-1] if c else None) for n, c in by_study.items()}}
    if "random" not in curves or not curves["random"]:
        return out
    random_best = {n: c[-1] for n, c in curves["random"].items() if c and c[-1] is not None}
    if not random_best:
        return out
    bar = statistics.median(random_best.values())
    out["random_bar"] = bar
    out["random_best"] = random_best
    for sampler, by_study in curves.items():
        per = {}
        for name, c in by_study.items():
            per[name] = {"to_bar": trials_to_reach(c, bar),
                         "to_each_random": {rn: trials_to_reach(c, rb) for rn, rb in random_best.items()}}
        out["efficiency"][sampler] = {
            "per_repeat": per,
            "median_to_bar": median_trials([p["to_bar"] for p in per.values()]),
            "median_to_each_random": {rn: median_trials([p["to_each_random"][rn] for p in per.values()])
                                      for rn in random_best},
            "reached": sum(p["to_bar"] is not None for p in per.values()),
        }
    return out


def verdicts(report: dict) -> list[dict]:
    out = []
    budget = report["settings"]["budget"]
    ret, eff = report["retraining"], report["search"]["efficiency"]
    tpe = ret["per_sampler"].get("tpe")
    best = ret["best_baseline"]
    if tpe and best:
        for key, other, target in (("vs_best", f"the best hand-tuned baseline ({best})", TARGET_VS_BASELINE),
                                   ("vs_ce", "CE-only", TARGET_VS_CE)):
            d = tpe[key]
            if d is None:
                continue
            t = d["t"] if d["t"] is not None else 0.0
            ok = d["diff"] >= target and t > TARGET_SE
            per_repeat = [f"{r[key]['diff']:+.2f} pts / {r[key]['t'] or 0.0:+.1f} SE" for r in tpe["repeats"]]
            reps_ok = sum(r[key]["diff"] >= target and (r[key]["t"] or 0.0) > TARGET_SE for r in tpe["repeats"])
            out.append({
                "target": f"TPE's winner beats {other} by >= {target} points, difference > {TARGET_SE:g} SE",
                "met": ok,
                "evidence": f"winners' test mean over {len(tpe['repeats'])} repeat(s) {tpe['winners_test_mean']:.2f}% "
                            f"vs {ret['baselines'][CE_ONLY if key == 'vs_ce' else best]['mean']:.2f}%: "
                            f"{d['diff']:+.2f} points, se {d['se']:.2f}, {t:+.1f} SE (paired over {d['n']} seeds, "
                            f"repeat-averaged winner); repeats meeting it on their own: {reps_ok}/{len(tpe['repeats'])} "
                            f"({', '.join(per_repeat)})",
            })
    if "tpe" in eff:
        limit = TARGET_TRIALS_FRACTION * budget
        m = eff["tpe"]["median_to_bar"]
        ok = m is not None and m <= limit
        per = eff["tpe"]["per_repeat"]
        out.append({
            "target": f"TPE reaches random search's best-of-{budget} within {limit:g} trials",
            "met": ok,
            "evidence": f"bar {report['search']['random_bar']:.2f}% (median of random's best-of-{budget}: "
                        f"{', '.join(f'{v:.2f}%' for v in report['search']['random_best'].values())}); TPE median "
                        f"{fmt_trials(m)} trials (repeats: {', '.join(fmt_trials(p['to_bar']) for p in per.values())})",
        })
    return out


# ----------------------------------------------------------------------------- diagnostics


def proxy_runs(studies: dict, storage: Path, work: Path, seeds: int, baselines: Optional[str], workers: int, say) -> dict:
    """Every winner and every baseline trained at the PROXY length (the search's recipe) over ``seeds``
    seeds, validation accuracy: how the proxy ranks them, and how much of a winner's proxy score was the
    luck of seed 0 (a winner is the best of many noisy proxy runs). Kept in WORK/compare/proxy_runs.jsonl."""
    from autokd.compare.baselines import load_baselines
    from autokd.compare.execute import Job, run_jobs, with_seed
    from autokd.compare.results import RunRecord
    from autokd.compare.store import RunStore, run_key
    from autokd.config.strategy import strategy_from_dict
    from autokd.search.driver import bind_space
    from autokd.search.space_file import space_file_from_text
    from autokd.search.storage import open_storage
    from autokd.search.study import load_existing_study, read_settings
    from autokd.training.run import prepare_task

    t0 = time.perf_counter()
    settings = read_settings(load_existing_study(next(iter(studies)), open_storage(str(storage))))
    space_file = space_file_from_text(settings.space_text, settings.space_source)
    task, space = space_file.task, bind_space(space_file)
    proxy = space.base_recipe
    seed_list = [proxy.seed + i for i in range(seeds)]
    named = {f"winner of {name}": ("found", strategy_from_dict(st["retrain"]["winner"]["strategy"]))
             for name, st in studies.items()}  # a trial's stored strategy carries the proxy recipe
    named |= {b.name: ("baseline", b.strategy) for b in load_baselines(baselines, space.pairs, proxy)}
    jobs = {}
    for label, (kind, strategy) in named.items():
        for seed in seed_list:
            s = with_seed(strategy, seed)
            jobs[(label, seed)] = Job(label, kind, s, run_key(task, s, seed))
    store = RunStore(work / "compare" / "proxy_runs.jsonl")
    todo = list({j.key: j for j in jobs.values() if j.key not in store}.values())
    say(f"proxy-length check: {len(named)} strategies x {seeds} seeds at {proxy.epochs} epochs = {len(jobs)} runs "
        f"({len(jobs) - len(todo)} already done)")
    if todo:
        prepared = prepare_task(task, "auto", progress=say)
        done = 0

        def on_done(result) -> None:
            nonlocal done
            j = result.job
            store.add(RunRecord(j.name, j.kind, j.strategy.recipe.seed, result.val_acc, result.test_acc, result.seconds, j.key))
            done += 1
            say(f"proxy runs {done}/{len(todo)}: {j.name} seed {j.strategy.recipe.seed} val {result.val_acc:.2f}%")

        run_jobs(prepared, todo, workers, on_done)
    out = {label: {"kind": kind, "val_by_seed": {seed: store.runs[jobs[(label, seed)].key].val_acc for seed in seed_list}}
           for label, (kind, _) in named.items()}
    for d in out.values():
        d.update(mss(list(d["val_by_seed"].values())))
    return {"epochs": proxy.epochs, "seeds": seed_list, "strategies": out, "wall_s": time.perf_counter() - t0}


def pruning_text(report: dict) -> str:
    """Whether the searches pruned: --no-pruning, or the space's own `pruning: false`, turns it off."""
    from autokd.search.space_file import space_file_from_text

    if report["settings"]["no_pruning"]:
        return "off (--no-pruning)"
    space = space_file_from_text(report["space"]["text"], report["space"]["source"])
    return "on (as the space ships)" if space.space.pruning else "off (the space's `pruning: false`)"


def diagnostics(report: dict) -> dict:
    """Evidence for why a target is missed: proxy vs full length, pruning, selection luck, PPO, seed noise."""
    from autokd.search.pruning import grace_period

    proxy_epochs = report["task"]["proxy_epochs"]
    grace = grace_period(proxy_epochs)
    out = {"per_study": {}}
    for name, st in report["studies"].items():
        trials = counted(st["trials"])
        complete = [t for t in trials if t["state"] == "COMPLETE"]
        early = [(t["intermediate"].get(grace), t["value"]) for t in complete if t["intermediate"].get(grace) is not None]
        vals = sorted((t["value"] for t in complete), reverse=True)
        d = {
            "pruned_share": sum(t["state"] == "PRUNED" for t in trials) / max(1, len(trials)),
            "failed_share": sum(t["state"] == "FAIL" for t in trials) / max(1, len(trials)),
            # how well the value at the grace epoch (where ASHA first cuts) predicts the final proxy value
            "rho_grace_vs_final": rho([a for a, _ in early], [b for _, b in early]),
            "grace_epoch": grace,
            "top5_proxy_val": vals[:5],
            "median_complete_val": statistics.median(vals) if vals else None,
        }
        if st["sampler"] == "ppo":
            actions = [tuple(t["ppo_action"]) for t in trials if t.get("ppo_action")]
            last = actions[-25:]
            d["ppo_updates"] = len(actions) // 8  # PPOSampler n_steps = 8: one update per 8 finished trials
            d["ppo_distinct_actions_last25"] = len(set(last))
            d["ppo_mode_share_last25"] = max(last.count(a) for a in set(last)) / len(last) if last else None
        out["per_study"][name] = d
    ret = report["retraining"]
    pc = report.get("proxy_check")
    if pc:
        rows = []
        for label, p in pc["strategies"].items():
            if p["kind"] == "found":
                study = label.removeprefix("winner of ")
                reps = [r for s in ret["per_sampler"].values() for r in s["repeats"] if r["study"] == study]
                if not reps:
                    continue
                r = reps[0]
                rows.append({"name": label, "kind": "found", "proxy_val_search": r["proxy_val"],
                             "proxy_val_mean": p["mean"], "proxy_val_se": p["se"], "full_val": r["val_mean"],
                             "test_mean": r["mean"], "test_se": r["se"]})
            else:
                b = ret["baselines"][label]
                rows.append({"name": label, "kind": "baseline", "proxy_val_search": None, "proxy_val_mean": p["mean"],
                             "proxy_val_se": p["se"], "full_val": b["val_mean"], "test_mean": b["mean"], "test_se": b["se"]})
        out["proxy_vs_full"] = rows
        out["rho_proxy_val_vs_full_test"] = rho([r["proxy_val_mean"] for r in rows], [r["test_mean"] for r in rows])
        found = [r for r in rows if r["kind"] == "found"]
        out["winners_selection_optimism"] = (statistics.fmean(r["proxy_val_search"] - r["proxy_val_mean"] for r in found)
                                             if found else None)
    # seed noise at full length: the paired sd a winner-vs-baseline difference has, and the smallest
    # difference that S seeds can show at 2 SE with it
    sds = [r["vs_best"]["sd"] for s in ret["per_sampler"].values() for r in s["repeats"] if r.get("vs_best")]
    n = report["settings"]["seeds"]
    out["paired_sd_median"] = statistics.median(sds) if sds else None
    out["min_detectable_at_2se"] = 2 * out["paired_sd_median"] / math.sqrt(n) if sds and n > 1 else None
    out["baseline_seed_sd"] = {k: b["sd"] for k, b in ret["baselines"].items()}
    return out


def diagnostics_lines(report: dict) -> list[str]:
    dg = report.get("diagnostics")
    if not dg:
        return []
    lines = ["## Diagnostics (why a target may be missed)", "",
             f"Searches: share of trials pruned, Spearman's rho between a complete trial's validation accuracy at "
             f"epoch {next(iter(dg['per_study'].values()))['grace_epoch']} (where ASHA first cuts) and at the end of "
             "the proxy, the best five proxy values, the median complete trial; PPO: policy updates and how "
             "concentrated its last 25 actions were.", "",
             "| study | pruned | failed | rho(grace epoch, final) | top-5 proxy val | median complete | PPO updates | "
             "PPO distinct actions / mode share (last 25) |", "|---|---:|---:|---:|---|---:|---:|---:|"]
    for name, d in dg["per_study"].items():
        ppo = (f"{d['ppo_updates']} | {d['ppo_distinct_actions_last25']} / {fmt(d['ppo_mode_share_last25'])}"
               if "ppo_updates" in d else "- | -")
        lines.append(f"| {name} | {d['pruned_share']:.0%} | {d['failed_share']:.0%} | {fmt(d['rho_grace_vs_final'])} | "
                     f"{', '.join(f'{v:.2f}' for v in d['top5_proxy_val'])} | {fmt(d['median_complete_val'])} | {ppo} |")
    if dg.get("proxy_vs_full"):
        pc = report["proxy_check"]
        lines += ["", f"Proxy length ({pc['epochs']} epochs, validation, seeds {pc['seeds'][0]}..{pc['seeds'][-1]}; seed "
                  f"{pc['seeds'][0]} is the search's own run) against full length ({report['task']['full_epochs']} epochs). "
                  f"Spearman's rho between proxy validation (seed mean) and full-length test over these strategies: "
                  f"**{fmt(dg['rho_proxy_val_vs_full_test'])}**. Winners' proxy value in the search minus their seed-mean "
                  f"proxy value (selection optimism): {fmt(dg['winners_selection_optimism'], '+.2f')} points.", "",
                  "| strategy | proxy val in the search | proxy val, mean ± se over seeds | full-length val | full-length test ± se |",
                  "|---|---:|---:|---:|---:|"]
        for r in sorted(dg["proxy_vs_full"], key=lambda r: -r["proxy_val_mean"]):
            lines.append(f"| {r['name']} | {fmt(r['proxy_val_search'])} | {r['proxy_val_mean']:.2f} ± {r['proxy_val_se']:.2f} | "
                         f"{r['full_val']:.2f} | {r['test_mean']:.2f} ± {r['test_se']:.2f} |")
    if dg.get("min_detectable_at_2se") is not None:
        lines += ["", f"Seed noise at full length: median sd over seeds of a winner-minus-best-baseline difference "
                  f"{dg['paired_sd_median']:.2f} points, so with {report['settings']['seeds']} seeds a difference must be at "
                  f"least {dg['min_detectable_at_2se']:.2f} points to reach 2 SE. Seed sd of each baseline's test accuracy: "
                  + ", ".join(f"{k} {v:.2f}" for k, v in sorted(dg["baseline_seed_sd"].items(), key=lambda kv: kv[1])) + "."]
    return lines + [""]


# ----------------------------------------------------------------------------- report


def fmt(v, spec=".2f"):
    return "-" if v is None else format(v, spec)


def fmt_trials(v):
    if v is None:
        return "never"
    return f"{v:g}"


def verdict_word(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def plot_anytime(path: Path, report: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budget = report["settings"]["budget"]
    colors = {"tpe": "tab:blue", "random": "tab:gray", "ppo": "tab:orange"}
    fig, ax = plt.subplots(figsize=(8, 4.8))
    ks = list(range(1, budget + 1))
    for sampler, c in report["search"]["curves"].items():
        pts = [(k, m, lo, hi) for k, m, lo, hi in zip(ks, c["median"], c["min"], c["max"]) if m is not None]
        if not pts:
            continue
        k, m, lo, hi = zip(*pts)
        n = len(c["best_of_budget"])
        ax.step(k, m, where="post", color=colors[sampler], label=f"{sampler} (median of {n})")
        ax.fill_between(k, lo, hi, step="post", color=colors[sampler], alpha=0.18)
    bar = report["search"]["random_bar"]
    if bar is not None:
        ax.axhline(bar, color="k", ls="--", lw=0.8, label=f"random's best-of-{budget} (median) {bar:.2f}%")
    ax.axvline(TARGET_TRIALS_FRACTION * budget, color="tab:red", ls=":", lw=0.8,
               label=f"target: {TARGET_TRIALS_FRACTION * budget:g} trials")
    ax.set_xlabel("trial (k-th finished trial, in the order asked)")
    ax.set_ylabel("best proxy validation accuracy so far (%)")
    ax.set_title(f"Anytime performance, {report['task']['name']}: median and min-max over repeats")
    vals = [v for c in report["search"]["curves"].values() for v in c["min"][min(9, budget - 1):] if v is not None]
    if vals:
        top = max(v for c in report["search"]["curves"].values() for v in c["max"] if v is not None)
        ax.set_ylim(min(vals) - 1.0, top + 0.5)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_winners(path: Path, report: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ret = report["retraining"]
    colors = {"tpe": "tab:blue", "random": "tab:gray", "ppo": "tab:orange"}
    fig, ax = plt.subplots(figsize=(8, 4.8))
    for i, (sampler, s) in enumerate(ret["per_sampler"].items()):
        n = len(s["repeats"])
        for j, r in enumerate(s["repeats"]):
            x = i + (j - (n - 1) / 2) * 0.12
            ax.errorbar(x, r["mean"], yerr=r["se"], fmt="o", color=colors[sampler], capsize=3)
        ax.hlines(s["winners_test_mean"], i - 0.3, i + 0.3, color=colors[sampler], lw=2)
    refs = [(ret["best_baseline"], "tab:green", f"best hand-tuned baseline ({ret['best_baseline']})"),
            (CE_ONLY, "tab:red", "CE-only")]
    for name, color, label in refs:
        b = ret["baselines"].get(name)
        if b:
            ax.axhline(b["mean"], color=color, ls="--", lw=1, label=f"{label} {b['mean']:.2f}% ± {b['se']:.2f}")
            ax.axhspan(b["mean"] - b["se"], b["mean"] + b["se"], color=color, alpha=0.12)
    ax.set_xticks(range(len(ret["per_sampler"])), [f"{s} winners" for s in ret["per_sampler"]])
    ax.set_ylabel(f"test accuracy at full length (%), mean ± se over {report['settings']['seeds']} seeds")
    teacher = report["task"].get("teacher_test")
    ax.set_title("Each repeat's winner retrained (dots, mean ± se) and the winners' mean (bar)"
                 + (f"\nteacher test {teacher:.2f}% (off the scale)" if teacher is not None else ""), fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def search_tables(report: dict) -> list[str]:
    budget = report["settings"]["budget"]
    se = report["search"]
    lines = [f"| study | exit | wall s | trials complete / pruned / failed / interrupted | best-of-{budget} val | "
             f"best at trial | trials to random's bar | winner trial | load before -> after |",
             "|---|---:|---:|---|---:|---:|---:|---:|---|"]
    for name, s in report["studies"].items():
        c = s["counts"]
        eff = se["efficiency"].get(s["sampler"], {}).get("per_repeat", {}).get(name, {})
        best_at = trials_to_reach(s["curve"], s["curve"][-1]) if s["curve"] and s["curve"][-1] is not None else None
        lines.append(f"| {name} | {s['run']['returncode']} | {s['run']['wall_s']:.0f} | {c['complete']} / {c['pruned']} / "
                     f"{c['failed']} / {c['interrupted']} | {fmt(s['curve'][-1] if s['curve'] else None)} | "
                     f"{fmt_trials(best_at)} | {fmt_trials(eff.get('to_bar')) if eff else '-'} | "
                     f"{s['retrain']['winner']['trial'] if s.get('retrain') else '-'} | "
                     f"{s['run']['load_before']} -> {s['run']['load_after']} |")
    return lines


def efficiency_table(report: dict) -> list[str]:
    se = report["search"]
    if se["random_bar"] is None:
        return ["(no random search: no bar to reach)"]
    budget = report["settings"]["budget"]
    rn = list(se["random_best"])
    lines = [f"| sampler | median trials to the bar ({se['random_bar']:.2f}%) | per repeat | reached | "
             + " | ".join(f"median trials to {n}'s best ({se['random_best'][n]:.2f}%)" for n in rn) + " |",
             "|---|---:|---|---:|" + "---:|" * len(rn)]
    for sampler, e in se["efficiency"].items():
        per = ", ".join(fmt_trials(p["to_bar"]) for p in e["per_repeat"].values())
        note = " (reference: random's own repeats)" if sampler == "random" else ""
        lines.append(f"| {sampler}{note} | {fmt_trials(e['median_to_bar'])} | {per} | {e['reached']}/{len(e['per_repeat'])} | "
                     + " | ".join(fmt_trials(e["median_to_each_random"][n]) for n in rn) + " |")
    lines.append("")
    lines.append("Anytime curve, median best-so-far at trial k (min-max over repeats):")
    lines.append("")
    ks = [k for k in (5, 10, 20, 30, 40, 50, 60, 80, 100, 150, 200) if k <= budget] or [budget]
    if budget not in ks:
        ks.append(budget)
    lines.append("| sampler | " + " | ".join(f"k={k}" for k in ks) + " |")
    lines.append("|---|" + "---:|" * len(ks))
    for sampler, c in se["curves"].items():
        cells = [f"{fmt(c['median'][k - 1])} ({fmt(c['min'][k - 1])}-{fmt(c['max'][k - 1])})" for k in ks]
        lines.append(f"| {sampler} | " + " | ".join(cells) + " |")
    return lines


def retraining_tables(report: dict) -> list[str]:
    ret = report["retraining"]
    best = ret["best_baseline"]
    lines = ["| sampler | winners' test mean (mean of repeats) | min-max over repeats | vs best baseline: pts, se, SE | "
             "vs CE-only: pts, se, SE |", "|---|---:|---:|---:|---:|"]
    for sampler, s in ret["per_sampler"].items():
        b, c = s["vs_best"], s["vs_ce"]
        lines.append(f"| {sampler} | {s['winners_test_mean']:.2f}% | {s['winners_test_min']:.2f}-{s['winners_test_max']:.2f} | "
                     f"{b['diff']:+.2f}, {b['se']:.2f}, {fmt(b['t'], '+.1f')} | {c['diff']:+.2f}, {c['se']:.2f}, {fmt(c['t'], '+.1f')} |")
    lines += ["", "Each repeat's winner (rank 1 by proxy validation) retrained over the seeds:", "",
              "| study | trial | proxy val | full-length val (mean) | test mean ± se (sd) | vs best baseline: pts ± se (SE) | "
              "vs CE-only: pts ± se (SE) | strategy |", "|---|---:|---:|---:|---:|---:|---:|---|"]
    for sampler, s in ret["per_sampler"].items():
        for r in s["repeats"]:
            b, c = r["vs_best"], r["vs_ce"]
            lines.append(f"| {r['study']} | {r['trial']} | {r['proxy_val']:.2f} | {r['val_mean']:.2f} | "
                         f"{r['mean']:.2f} ± {r['se']:.2f} ({r['sd']:.2f}) | {b['diff']:+.2f} ± {b['se']:.2f} ({fmt(b['t'], '+.1f')}) | "
                         f"{c['diff']:+.2f} ± {c['se']:.2f} ({fmt(c['t'], '+.1f')}) | {r['description']} |")
    lines += ["", f"Baselines (trained once, shared by every study), same seeds; best hand-tuned = **{best}**:", "",
              "| baseline | test mean ± se (sd) | full-length val (mean) | description |", "|---|---:|---:|---|"]
    for name, b in sorted(ret["baselines"].items(), key=lambda kv: -kv[1]["mean"]):
        mark = " (best hand-tuned)" if name == best else (" (CE-only)" if name == CE_ONLY else "")
        lines.append(f"| {name}{mark} | {b['mean']:.2f} ± {b['se']:.2f} ({b['sd']:.2f}) | {b['val_mean']:.2f} | {b['description']} |")
    return lines


METHOD = """\
- **Searches.** For each sampler and repeat r = 0..R-1: `python -m autokd.cli.main search --space SPACE
  --budget B --sampler S --seed r --name S-rR --storage WORK/studies.db --workers W` (the real CLI in a
  subprocess; Ray Tune, W trials at once, ASHA pruning as shipped unless `--no-pruning`). Searches run one
  at a time, interleaved (repeat 0 of every sampler, then repeat 1, ...) with the sampler order rotated, so
  load on the shared machine hits all samplers alike. SPACE is a copy of the space file taken at the start
  (its SHA-256 is below), so all searches and retrainings use one space even if the file is edited meanwhile.
- **Anytime curve.** From each study's trials (number, state, value, start/complete times, all in the JSON):
  the trials that count toward the budget (complete, pruned, failed; interrupted ones excluded) in trial-number
  order (= the order they were asked for); best-so-far at k = the best validation accuracy (at the proxy
  length) among the complete trials of the first k. Median over repeats, band = min-max.
- **Sample efficiency.** Bar = median over the random repeats of their best-of-B. For each repeat, the first k
  whose best-so-far reaches the bar; median over repeats, "never" counting as infinitely many. Also against
  each random repeat's own best-of-B. Random's own row is for reference (one of its repeats defines the bar).
  Note: for the same seed, Optuna's TPE draws its startup trials (the first 10) with the same random stream
  as RandomSampler, so tpe-rN and random-rN begin with the same strategies.
- **Retraining.** `autokd.compare.run_compare(study, WORK/compare, top_k=1, seeds=S)` on each study, one
  shared run store `WORK/compare/runs.jsonl` (runs keyed by task, strategy, recipe and seed), so the baselines
  are trained once and every later study reuses them. Full-length recipe of the task, seeds = recipe seed +
  0..S-1, test accuracy. Paired differences over seeds (`autokd.compare.stats.paired`), in points and in
  standard errors of the paired difference (= the paired t statistic). The per-sampler row pairs the
  repeat-averaged winner (per seed, the mean over repeats of the winners' test accuracy) with the baseline.
  The best hand-tuned baseline is the one with the highest test mean (CE-only excluded), which favours the
  baselines."""


def write_markdown(path: Path, report: dict) -> None:
    m, s = report["machine"], report["settings"]
    lines = [
        "# Search quality: TPE, random search and PPO against each other and the hand-tuned baselines",
        "",
        f"Date {report['date']}. Machine: {machine_text(m, ('torch', 'ray', 'optuna', 'stable_baselines3'))}. Load average (1/5/15 min) at start {report['load_average_at_start']}, "
        f"at end {report['load_average_at_end']} (above {m['cpu_count']} = other work was competing for the CPUs; "
        "it slows the searches down but does not change what they measure). "
        f"Total run time {report['total_s'] / 60:.1f} min (searches {report['search_total_s'] / 60:.1f} min, "
        f"retraining {report['retrain_total_s'] / 60:.1f} min, proxy-length check {report['proxy_check_total_s'] / 60:.1f} min).",
        "",
        f"Command: `{report['command']}` (from the repository root)",
        "",
        f"Task `{report['task']['name']}` from space `{s['space']}` (SHA-256 {report['space']['sha256'][:16]}...; "
        f"proxy {report['task']['proxy_epochs']} epochs, full length {report['task']['full_epochs']} epochs; teacher test "
        f"{fmt(report['task'].get('teacher_test'))}%). Settings: budget B = {s['budget']}, repeats R = {s['repeats']}, "
        f"seeds S = {s['seeds']}, samplers {', '.join(s['samplers'])}, workers W = {s['workers']}, "
        f"pruning {pruning_text(report)}."
        + (f" **The space file changed during the run** (now {report['space']['sha256_at_end'][:16]}...); "
           "the benchmark used the copy taken at the start." if report["space"]["changed_during_run"] else ""),
        "",
        "## Targets",
        "",
    ]
    lines += [f"- {v['target']}: **{verdict_word(v['met'])}** -- {v['evidence']}" for v in report["verdicts"]]
    lines += ["", "## Retraining the winners (full length, test accuracy)", "", *retraining_tables(report), "",
              f"![winners]({report['plots']['winners']})", "",
              "## Search: anytime curves and sample efficiency", "",
              f"![anytime curves]({report['plots']['anytime']})", "", *efficiency_table(report), "",
              *diagnostics_lines(report),
              "## Every search", "", *search_tables(report), "",
              "Commands (WORK = the work folder, " + f"`{report['work_dir']}`):", ""]
    lines += [f"- `{st['command']}`" for st in report["studies"].values()]
    lines += ["", "## What was measured", "", METHOD, ""]
    if report.get("notes"):
        lines += ["## Notes", "", *[f"- {n}" for n in report["notes"]], ""]
    path.write_text("\n".join(lines))


# ----------------------------------------------------------------------------- main


def prepare_work_dir(work: Path, keep: bool) -> None:
    """The benchmark's own files in the work folder; without --keep, the previous run's are removed."""
    work.mkdir(parents=True, exist_ok=True)
    if keep:
        return
    for name in ("studies.db", "space.yaml", "searches.json"):
        (work / name).unlink(missing_ok=True)
    for name in ("compare", "logs"):
        shutil.rmtree(work / name, ignore_errors=True)


def load_saved_runs(work: Path) -> dict:
    path = work / "searches.json"
    return json.loads(path.read_text()) if path.exists() else {}


def save_run(work: Path, name: str, run: dict) -> None:
    """Keep each search's record (wall time, load) in the work folder, for --keep."""
    runs = load_saved_runs(work)
    runs[name] = run
    (work / "searches.json").write_text(json.dumps(runs, indent=1))


def finished(storage: Path, name: str) -> int:
    from autokd.search.storage import open_storage
    from autokd.search.study import counts, load_existing_study, study_names

    store = open_storage(str(storage))
    return counts(load_existing_study(name, store))["finished"] if name in study_names(store) else 0


def main(argv: Optional[Iterable[str]] = None) -> None:
    args = parse_args(argv)
    import optuna

    from autokd.search.space_file import load_space_file
    from autokd.search.storage import open_storage
    from autokd.search.study import counts, load_existing_study

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    t_start = time.perf_counter()
    work = args.work_dir.resolve()
    prepare_work_dir(work, args.keep)
    (work / "logs").mkdir(exist_ok=True)
    args.out_dir.mkdir(parents=True, exist_ok=True)

    # The space, read now and frozen for this benchmark.
    space_file = load_space_file(args.space)
    space_path = work / "space.yaml"
    if not (args.keep and space_path.exists() and space_path.read_text() == space_file.text):
        space_path.write_text(space_file.text)
    space_sha = hashlib.sha256(space_file.text.encode()).hexdigest()
    storage = work / "studies.db"
    task = space_file.task

    report = {
        "benchmark": "search_quality",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command_line(),
        "machine": machine_info(),
        "load_average_at_start": load_average(),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "work_dir": str(work.relative_to(REPO)) if work.is_relative_to(REPO) else str(work),
        "space": {"source": space_file.source, "sha256": space_sha, "text": space_file.text},
        "task": {"name": task.name, "proxy_epochs": task.recipes.proxy.epochs, "full_epochs": task.recipes.full.epochs},
        "targets": {"vs_best_baseline_points": TARGET_VS_BASELINE, "vs_ce_points": TARGET_VS_CE,
                    "standard_errors": TARGET_SE, "trials_fraction_of_budget": TARGET_TRIALS_FRACTION},
        "method": METHOD,
        "notes": list(args.note),
    }
    print(f"space {space_file.source} (sha {space_sha[:12]}), task {task.name}: proxy {task.recipes.proxy.epochs} "
          f"epochs, full {task.recipes.full.epochs}; work folder {work}; load {report['load_average_at_start']}", flush=True)

    previous = args.out_dir / f"{args.name}.json"
    if args.keep and previous.exists():  # the invocation whose searches and runs --keep reuses
        try:
            prev = json.loads(previous.read_text())
            report["earlier_run"] = {k: prev.get(k) for k in ("date", "command", "total_s", "search_total_s",
                                                               "retrain_total_s", "load_average_at_start",
                                                               "load_average_at_end", "earlier_run")}
        except (ValueError, OSError):
            pass

    # 1. Searches, interleaved by repeat with the sampler order rotated.
    studies: dict[str, dict] = {}
    plan = []
    for r in range(args.repeats):
        k = r % len(args.samplers)
        plan += [(s, r) for s in args.samplers[k:] + args.samplers[:k]]
    t_search = time.perf_counter()
    reused: list[str] = []
    for i, (sampler, seed) in enumerate(plan, 1):
        name = study_name(sampler, seed)
        cli_args = search_command(space_path, storage, sampler, seed, args.budget, args.workers, not args.no_pruning)
        shown = [("WORK/" + str(Path(a).relative_to(work))) if a.startswith(str(work)) else a for a in cli_args]
        saved = load_saved_runs(work).get(name)
        if args.keep and saved and saved["returncode"] == 0 and finished(storage, name) >= args.budget:
            print(f"[{i}/{len(plan)}] search {name}: done in an earlier run (--keep), its record reused", flush=True)
            run = saved
            reused.append(name)
        else:
            print(f"[{i}/{len(plan)}] search {name} ...", flush=True)
            run = run_search_cli(cli_args, work / "logs" / f"{name}.log", args.timeout)
            save_run(work, name, run)
        study = load_existing_study(name, open_storage(str(storage)))
        trials = read_trials(study)
        c = counts(study)
        studies[name] = {"sampler": sampler, "seed": seed, "command": shlex.join(["python", "-m", "autokd.cli.main", *shown]),
                         "run": run, "counts": c, "trials": trials, "curve": best_so_far(trials, args.budget),
                         "trial_span_s": search_wall_from_trials(trials)}
        if run["returncode"] != 0 or c["finished"] < args.budget:
            report["notes"].append(f"search {name} exited {run['returncode']} with {c['finished']}/{args.budget} trials "
                                   f"(log: {work / 'logs' / (name + '.log')})")
        curve = studies[name]["curve"]
        print(f"    {run['wall_s']:.0f} s, exit {run['returncode']}, {c['complete']} complete / {c['pruned']} pruned / "
              f"{c['failed']} failed, best {fmt(curve[-1] if curve else None)}%, load {run['load_after']}", flush=True)
        if c["complete"] == 0:
            sys.exit(f"search {name} has no complete trial; see {work / 'logs' / (name + '.log')}:\n{run['output_tail']}")
    report["search_total_s"] = time.perf_counter() - t_search
    if reused:
        report["notes"].append(f"--keep: searches {', '.join(reused)} were run by an earlier invocation (their wall "
                               f"times and loads are from it); finished retraining runs were read from the run store. "
                               f"The run times in the header are this invocation's."
                               + (f" The earlier invocation ({report['earlier_run']['date']}, `{report['earlier_run']['command']}`) "
                                  f"took {report['earlier_run']['total_s'] / 60:.1f} min: searches "
                                  f"{report['earlier_run']['search_total_s'] / 60:.1f} min, retraining "
                                  f"{report['earlier_run']['retrain_total_s'] / 60:.1f} min; load average "
                                  f"{report['earlier_run']['load_average_at_start']} at its start, "
                                  f"{report['earlier_run']['load_average_at_end']} at its end."
                                  if report.get("earlier_run") and report["earlier_run"].get("total_s") else ""))

    # 2. Retraining: top-1 of every study plus the baselines, one shared run store.
    t_retrain = time.perf_counter()
    for i, (name, st) in enumerate(studies.items(), 1):
        print(f"[{i}/{len(studies)}] retrain the winner of {name} (+ baselines, reused once trained) ...", flush=True)
        study = load_existing_study(name, open_storage(str(storage)))
        st["retrain"] = retrain(study, work / "compare", args.seeds, args.baselines, args.workers,
                                say=lambda text: print(f"    {text}", flush=True))
        if st["retrain"]["note"]:
            report["notes"].append(f"{name}: {st['retrain']['note']}")
        w = st["retrain"]["winner"]
        print(f"    winner trial {w['trial']} (proxy val {w['proxy_val']:.2f}%): test "
              f"{statistics.fmean(r['test'] for r in w['runs'].values()):.2f}%  ({st['retrain']['compare_wall_s']:.0f} s)",
              flush=True)
    report["retrain_total_s"] = time.perf_counter() - t_retrain
    teacher = next((s["retrain"]["teacher"] for s in studies.values() if s["retrain"]["teacher"]), None)
    report["task"]["teacher_test"] = teacher["test_acc"] if teacher else None
    report["task"]["teacher"] = teacher

    # 3. Diagnostics: winners and baselines at the proxy length over seeds.
    t_proxy = time.perf_counter()
    if args.proxy_seeds > 0:
        print(f"proxy-length check ({args.proxy_seeds} seeds) ...", flush=True)
        report["proxy_check"] = proxy_runs(studies, storage, work, args.proxy_seeds, args.baselines, args.workers,
                                           say=lambda text: print(f"    {text}", flush=True))
    report["proxy_check_total_s"] = time.perf_counter() - t_proxy

    # 4. Analysis and report.
    report["studies"] = studies
    report["search"] = analyse_search(studies, args.samplers, args.budget)
    report["retraining"] = analyse_retraining(studies, args.samplers)
    report["verdicts"] = verdicts(report)
    report["diagnostics"] = diagnostics(report)
    sha_end = hashlib.sha256(load_space_file(args.space).text.encode()).hexdigest()
    report["space"].update({"sha256_at_end": sha_end, "changed_during_run": sha_end != space_sha})
    report["load_average_at_end"] = load_average()
    report["total_s"] = time.perf_counter() - t_start
    report["plots"] = {"anytime": f"{args.name}_anytime.png", "winners": f"{args.name}_winners.png"}
    plot_anytime(args.out_dir / report["plots"]["anytime"], report)
    plot_winners(args.out_dir / report["plots"]["winners"], report)
    (args.out_dir / f"{args.name}.json").write_text(json.dumps(report, indent=1, default=str))
    md = args.out_dir / f"{args.name}.md"
    write_markdown(md, report)

    print()
    print("\n".join(retraining_tables(report)))
    print()
    print("\n".join(efficiency_table(report)))
    print()
    for v in report["verdicts"]:
        print(f"{v['target']}: {verdict_word(v['met'])} -- {v['evidence']}")
    for n in report["notes"]:
        print(f"note: {n}")
    print(f"\ntotal {report['total_s'] / 60:.1f} min; wrote {args.out_dir / (args.name + '.json')}, {md} and the plots")


if __name__ == "__main__":
    main()

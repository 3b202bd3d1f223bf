"""Does the search find better strategies than random search and the hand-tuned baselines?

Four samplers (TPE, random search, PPO, evolution = NSGA-II) each run R independent searches (--repeats, default 3;
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
best-of-100 within 20 trials, PPO within 40.

    .venv/bin/python benchmarks/search_quality.py                          # 12 searches + retraining, about 2 hours on 2 cores
    .venv/bin/python benchmarks/search_quality.py --budget 10 --repeats 1 --seeds 2   # smoke run, a few minutes

Writes reports/benchmarks/search_quality.{json,md} and search_quality_anytime.png,
search_quality_winners.png (--out-dir, --name). Studies, logs and the run store go to --work-dir
(default reports/benchmarks/search_quality_work/, git-ignored); its previous contents are replaced
unless --keep is given (then finished studies and runs are reused). --import-report takes the
searches of an earlier report instead of running them again, so repeats can be added in a later
sitting (see search_quality_reuse.py).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Iterable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import end_session, fmt, load_average, markdown, new_report, write_markdown  # noqa: E402
from search_quality_analysis import (  # noqa: E402
    TARGET_SE, TARGET_TRIALS_FRACTION, TARGET_VS_BASELINE, TARGET_VS_CE, analyse_retraining, analyse_search,
    best_so_far, diagnostics, search_wall_from_trials, verdicts,
)
from search_quality_report import (  # noqa: E402
    METHOD, efficiency_table, plot_anytime, plot_winners, report_blocks, retraining_tables, verdict_word,
)
from search_quality_retrain import proxy_runs, retrain_winners  # noqa: E402
from search_quality_reuse import (  # noqa: E402
    earlier_invocation, import_note, import_report, keep_note, load_saved_runs, prepare_work_dir, save_run,
    seed_run_store,
)

REPO = Path(__file__).resolve().parents[1]
from autokd.search.settings import SAMPLERS  # noqa: E402  (tpe, random, ppo, evolution)


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
    p.add_argument("--warm-start", action="store_true",
                   help="pass --warm-start baselines to the searches this invocation runs (the baselines the space "
                        "can express are each study's first trials, counted in the budget)")
    p.add_argument("--proxy-seeds", type=int, default=3,
                   help="diagnostics: winners and baselines re-run at the PROXY length over this many seeds "
                        "(seed 0 = what the search saw); 0 skips it")
    p.add_argument("--work-dir", type=Path, default=REPO / "reports" / "benchmarks" / "search_quality_work",
                   help="studies, search logs and the retraining run store (git-ignored by default)")
    p.add_argument("--keep", action="store_true",
                   help="reuse the studies and runs already in --work-dir (default: start afresh)")
    p.add_argument("--import-report", type=Path, default=None, metavar="JSON",
                   help="an earlier report of this benchmark: its searches that this one plans are taken with their "
                        "retraining instead of being run again (same space, budget, seeds, baselines, pruning)")
    p.add_argument("--rerun", nargs="+", default=[], choices=SAMPLERS, metavar="SAMPLER",
                   help="with --import-report: run these samplers' searches again (e.g. after changing one)")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds before one search is stopped")
    p.add_argument("--note", action="append", default=[],
                   help="a line for the report's notes (e.g. about an earlier, interrupted invocation); repeatable")
    p.add_argument("--out-dir", type=Path, default=REPO / "reports" / "benchmarks")
    p.add_argument("--name", default="search_quality", help="report file stem")
    args = p.parse_args(argv)
    if args.budget < 1 or args.repeats < 1 or args.seeds < 1:
        p.error("--budget, --repeats and --seeds must be >= 1")
    if args.rerun and not args.import_report:
        p.error("--rerun needs --import-report (without it every search runs)")
    args.samplers = list(dict.fromkeys(args.samplers))
    return args


def search_command(space_path: Path, storage: Path, sampler: str, seed: int, budget: int, workers: int,
                   pruning: bool, warm_start: bool = False) -> list[str]:
    args = ["search", "--space", str(space_path), "--budget", str(budget), "--sampler", sampler,
            "--seed", str(seed), "--name", study_name(sampler, seed), "--storage", str(storage),
            "--workers", str(workers)]
    return args + ([] if pruning else ["--no-pruning"]) + (["--warm-start", "baselines"] if warm_start else [])


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
    """Every trial of a study, by number: state, value, timestamps, params, how far it trained.

    ``void``: a trial that does not count toward the budget (interrupted, a duplicate, ...)."""
    from autokd.search.ledger import FAIL_REASON_ATTR, is_void

    out = []
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        out.append({
            "number": t.number,
            "state": t.state.name,
            "void": is_void(t),
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


def finished(storage: Path, name: str) -> int:
    from autokd.search.ledger import counts
    from autokd.search.storage import open_storage
    from autokd.search.study import load_existing_study, study_names

    store = open_storage(str(storage))
    return counts(load_existing_study(name, store)).finished if name in study_names(store) else 0


def start_report(args, space_file, work: Path) -> dict:
    """The report's header: settings, machine, the space (frozen), the targets; the earlier run with --keep."""
    task = space_file.task
    report = new_report(
        "search_quality",
        settings={k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        work_dir=str(work.relative_to(REPO)) if work.is_relative_to(REPO) else str(work),
        space={"source": space_file.source, "sha256": hashlib.sha256(space_file.text.encode()).hexdigest(),
               "text": space_file.text},
        task={"name": task.name, "proxy_epochs": task.recipes.proxy.epochs, "full_epochs": task.recipes.full.epochs},
        targets={"vs_best_baseline_points": TARGET_VS_BASELINE, "vs_ce_points": TARGET_VS_CE,
                 "standard_errors": TARGET_SE, "trials_fraction_of_budget": TARGET_TRIALS_FRACTION},
        method=METHOD,
        notes=list(args.note),
    )
    if args.keep:  # the invocation whose searches and runs --keep reuses
        report["earlier_run"] = earlier_invocation(work)
    return report


def search_plan(args) -> list[tuple[str, int]]:
    """(sampler, seed) in running order: interleaved by repeat, the sampler order rotated."""
    return [(s, r) for r in range(args.repeats)
            for s in args.samplers[r % len(args.samplers):] + args.samplers[:r % len(args.samplers)]]


def run_searches(args, work: Path, space_path: Path, storage: Path, report: dict,
                 imported: dict[str, dict]) -> dict[str, dict]:
    """Every planned search (``imported`` ones are taken as they are); the record of each."""
    from autokd.search.ledger import counts
    from autokd.search.storage import open_storage
    from autokd.search.study import load_existing_study

    studies: dict[str, dict] = {}
    plan = search_plan(args)
    for i, (sampler, seed) in enumerate(plan, 1):
        name = study_name(sampler, seed)
        if name in imported:
            print(f"[{i}/{len(plan)}] search {name}: imported from {imported[name]['imported_from']['report']}", flush=True)
            studies[name] = imported[name]
            continue
        cli_args = search_command(space_path, storage, sampler, seed, args.budget, args.workers, not args.no_pruning,
                                  args.warm_start)
        shown = [("WORK/" + str(Path(a).relative_to(work))) if a.startswith(str(work)) else a for a in cli_args]
        saved = load_saved_runs(work).get(name)
        if args.keep and saved and saved["returncode"] == 0 and finished(storage, name) >= args.budget:
            print(f"[{i}/{len(plan)}] search {name}: done in an earlier run (--keep), its record reused", flush=True)
            run = {**saved, "reused": True}
        else:
            print(f"[{i}/{len(plan)}] search {name} ...", flush=True)
            run = run_search_cli(cli_args, work / "logs" / f"{name}.log", args.timeout)
            save_run(work, name, run)
        study = load_existing_study(name, open_storage(str(storage)))
        trials, c = read_trials(study), counts(study)
        studies[name] = {"sampler": sampler, "seed": seed, "command": shlex.join(["python", "-m", "autokd.cli.main", *shown]),
                         "run": run, "counts": {**asdict(c), "finished": c.finished}, "trials": trials,
                         "curve": best_so_far(trials, args.budget), "trial_span_s": search_wall_from_trials(trials)}
        if run["returncode"] != 0 or c.finished < args.budget:
            report["notes"].append(f"search {name} exited {run['returncode']} with {c.finished}/{args.budget} trials "
                                   f"(log: {work / 'logs' / (name + '.log')})")
        curve = studies[name]["curve"]
        print(f"    {run['wall_s']:.0f} s, exit {run['returncode']}, {c.complete} complete / {c.pruned} pruned / "
              f"{c.failed} failed, best {fmt(curve[-1] if curve else None)}%, load {run['load_after']}", flush=True)
        if c.complete == 0:
            sys.exit(f"search {name} has no complete trial; see {work / 'logs' / (name + '.log')}:\n{run['output_tail']}")
    return studies


def main(argv: Optional[Iterable[str]] = None) -> None:
    args = parse_args(argv)
    import optuna

    from autokd.search.space_file import load_space_file

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    t_start = time.perf_counter()
    work = args.work_dir.resolve()
    prepare_work_dir(work, args.keep)
    (work / "logs").mkdir(exist_ok=True)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    space_file = load_space_file(args.space)  # read now and frozen for this benchmark
    space_path = work / "space.yaml"
    if not (args.keep and space_path.exists() and space_path.read_text() == space_file.text):
        space_path.write_text(space_file.text)
    storage = work / "studies.db"
    report = start_report(args, space_file, work)
    imported = {}
    if args.import_report:
        imported = import_report(args.import_report, args, report["space"]["sha256"],
                                 [study_name(s, r) for s, r in search_plan(args) if s not in args.rerun])
    task = space_file.task
    print(f"space {space_file.source} (sha {report['space']['sha256'][:12]}), task {task.name}: proxy "
          f"{task.recipes.proxy.epochs} epochs, full {task.recipes.full.epochs}; work folder {work}; load "
          f"{report['load_average_at_start']}", flush=True)

    t = time.perf_counter()
    studies = run_searches(args, work, space_path, storage, report, imported)
    report["search_total_s"] = time.perf_counter() - t
    reused = [name for name, st in studies.items() if st["run"].get("reused") and name not in imported]
    if reused:
        report["notes"].append(keep_note(report.get("earlier_run") or {}, reused))
    if imported:
        report["notes"].append(import_note(imported))
    if imported:
        written = seed_run_store(imported, work / "compare" / "runs.jsonl", space_path, args.baselines)
        report["notes"].append(f"--import-report: {written} baseline run(s) of the imported report were written into "
                               "the run store and read back by the retraining, not trained again")
    t = time.perf_counter()
    retrain_winners(args, studies, work, storage)
    report["retrain_total_s"] = time.perf_counter() - t
    report["task"]["teacher"] = next(iter(studies.values()))["retrain"]["teacher"]
    report["task"]["teacher_test"] = report["task"]["teacher"]["test_acc"]
    t = time.perf_counter()
    if args.proxy_seeds > 0:  # diagnostics: winners and baselines at the proxy length over seeds
        print(f"proxy-length check ({args.proxy_seeds} seeds) ...", flush=True)
        report["proxy_check"] = proxy_runs(studies, storage, work, args.proxy_seeds, args.baselines, args.workers,
                                           say=lambda text: print(f"    {text}", flush=True))
    report["proxy_check_total_s"] = time.perf_counter() - t
    finish(args, report, studies, t_start)


def finish(args, report: dict, studies: dict, t_start: float) -> None:
    """Analyse, plot, write the JSON and the Markdown report, print the headline tables."""
    from autokd.search.space_file import load_space_file

    report["studies"] = studies
    report["search"] = analyse_search(studies, args.samplers, args.budget)
    report["retraining"] = analyse_retraining(studies, args.samplers)
    report["verdicts"] = verdicts(report)
    report["diagnostics"] = diagnostics(report)
    sha_end = hashlib.sha256(load_space_file(args.space).text.encode()).hexdigest()
    report["space"].update({"sha256_at_end": sha_end, "changed_during_run": sha_end != report["space"]["sha256"]})
    report["load_average_at_end"] = load_average()
    report["total_s"] = time.perf_counter() - t_start
    report["plots"] = {"anytime": f"{args.name}_anytime.png", "winners": f"{args.name}_winners.png"}
    plot_anytime(args.out_dir / report["plots"]["anytime"], report)
    plot_winners(args.out_dir / report["plots"]["winners"], report)
    (args.out_dir / f"{args.name}.json").write_text(json.dumps(report, indent=1, default=str))
    md = args.out_dir / f"{args.name}.md"
    write_markdown(md, report_blocks(report))
    print("\n" + markdown(retraining_tables(report) + efficiency_table(report)))
    for v in report["verdicts"]:
        print(f"{v['target']}: {verdict_word(v['met'])} -- {v['evidence']}")
    for n in report["notes"]:
        print(f"note: {n}")
    print(f"\ntotal {report['total_s'] / 60:.1f} min; wrote {args.out_dir / (args.name + '.json')}, {md} and the plots")


if __name__ == "__main__":
    main()

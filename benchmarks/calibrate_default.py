"""Is the default task a good testbed: stable across seeds, room to distil, detectable effects?

For the task of a space file (default: the shipped ``default``), train the teacher (or load it from
the cache), then train the student at full length (``task.recipes.full``) with cross-entropy only
and with every shipped hand-tuned baseline (``search_spaces/baselines.yaml``, adapted to the
space's layer pairs), over seeds 0 .. --seeds-1 (the seed is the recipe's: student init and batch
order; the data split is fixed). Reports, per strategy: test accuracy mean, sample sd, standard
error, and the difference from CE-only paired by seed (mean, its standard error, and the
difference in standard errors, i.e. the paired t statistic). Then the calibration targets:

  1. seed sd of the student at full length <= 0.7 points (test accuracy) for CE-only and for the
     --sd-check baselines (default: the logit-KD ones and the FitNets hint);
  2. teacher test - CE-only test >= 10 points, and at least one baseline beats CE-only by more than
     3 standard errors of the paired difference.

    .venv/bin/python benchmarks/calibrate_default.py                      # 12 strategies x 5 seeds
    .venv/bin/python benchmarks/calibrate_default.py --seeds 8 --workers 2
    .venv/bin/python benchmarks/calibrate_default.py --space my_space.yaml --only student kd fitnet

Each run uses torch.set_num_threads(1); --workers (default 2) processes run in parallel. Accuracy is
what is measured, so other work on the CPUs only slows the script down.

Writes reports/benchmarks/calibrate_default.json and reports/benchmarks/calibrate_default.md
(--out-dir elsewhere).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime
import json
import math
import multiprocessing
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable, Optional

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402  (shared with the other benchmark scripts)
    command_line, command_paragraph, fmt, load_average, machine_info, run_paragraph, markdown, write_markdown,
)

from autokd.compare.stats import mean_sd_se  # noqa: E402
from autokd.document import BulletList, Heading, Paragraph, inline_markup, simple_table  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TARGET_SD = 0.7  # points of test accuracy, seed sd at full length
TARGET_GAP = 10.0  # points, teacher test - CE-only test
TARGET_SE = 3.0  # a baseline differs from CE-only by more than this many SE of the paired difference
SD_CHECK_DEFAULT = ("student", "kd", "kd_mild", "fitnet")


# ----------------------------------------------------------------------------- shared machinery
# (proxy_fidelity.py imports these: one worker pool that loads the task once per process)

_WORKER: dict = {}


def load_space(ref: str):
    """(SpaceFile, bound SearchSpace) of a shipped space name or a YAML path."""
    from autokd.search.binding import bind_space
    from autokd.search.space_file import load_space_file

    space_file = load_space_file(ref)
    return space_file, bind_space(space_file)


def prepare(ref: str, say: Callable[[str], None] = lambda _m: None):
    """The prepared task (data + teacher, trained and cached on first use) and its teacher cache."""
    from autokd.training.run import prepare_task
    from autokd.training.students import teacher_cache_for

    space_file, space = load_space(ref)
    prepared = prepare_task(space_file.task, "cpu", progress=say)
    cache = teacher_cache_for(prepared, space.teacher_paths())
    return space_file, space, prepared, cache


def _init_worker(ref: str, threads: int) -> None:
    torch.set_num_threads(threads)
    _, _, prepared, cache = prepare(ref)
    _WORKER.update(prepared=prepared, cache=cache)


def _train(job: tuple) -> dict:
    """One run: job = (key, strategy, recipe, evaluate_test). Diverged runs come back failed.

    A full-length run (evaluate_test) validates once, at the end, like ``autokd compare``; a proxy
    run validates where a search trial does (the pruning rung and the end)."""
    from autokd.search.pruning import report_epochs
    from autokd.training.fit import TrainingFailed
    from autokd.training.run import train_strategy

    key, strategy, recipe, evaluate_test = job
    start = time.perf_counter()
    try:
        result = train_strategy(_WORKER["prepared"], strategy, recipe=recipe, teacher_cache=_WORKER["cache"],
                                evaluate_test=evaluate_test,
                                validate_at=() if evaluate_test else report_epochs(recipe.epochs))
    except TrainingFailed as exc:
        return {"key": key, "failed": True, "reason": str(exc), "val_acc": None, "test_acc": None,
                "seconds": time.perf_counter() - start}
    except Exception as exc:  # a loss that raises on some strategy: a failed run, not a crash
        return {"key": key, "failed": True, "reason": f"{type(exc).__name__}: {exc}", "val_acc": None,
                "test_acc": None, "seconds": time.perf_counter() - start}
    return {"key": key, "failed": False, "reason": None, "val_acc": result.val_acc, "test_acc": result.test_acc,
            "seconds": result.seconds}


def run_jobs(ref: str, jobs: list[tuple], workers: int, threads: int = 1) -> dict:
    """Run ``jobs`` (see :func:`_train`) in ``workers`` processes (0: in this one); results by key."""
    results = {}
    done = 0
    start = time.perf_counter()

    def note(res):
        nonlocal done
        done += 1
        results[res["key"]] = res
        if done % 10 == 0 or done == len(jobs):
            print(f"  {done}/{len(jobs)} runs, {time.perf_counter() - start:.0f}s", flush=True)

    if workers == 0:
        _init_worker(ref, threads)
        for job in jobs:
            note(_train(job))
        return results
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(ref, threads)) as pool:
        for res in pool.map(_train, jobs, chunksize=1):
            note(res)
    return results


def task_summary(space_file) -> dict:
    """The task's settings that matter for calibration, as plain data."""
    from autokd.config.parse import to_mapping

    t = space_file.task
    return {
        "name": t.name,
        "data": to_mapping(t.data),
        "teacher": {"model": t.teacher.model, "kwargs": t.teacher.kwargs, "recipe": to_mapping(t.teacher.recipe)},
        "student": {"model": t.student.model, "kwargs": t.student.kwargs},
        "full": to_mapping(t.recipes.full),
        "proxy": to_mapping(t.recipes.proxy),
    }


def task_line(summary: dict) -> str:
    d, f = summary["data"], summary["full"]
    return (f"`{summary['name']}`: MNIST-1D {d['num_samples']} samples (test fraction {d['test_fraction']}), "
            f"val {d['val_size']}, student train_size {d['train_size']}; teacher {summary['teacher']['model']} "
            f"{summary['teacher']['kwargs']} ({summary['teacher']['recipe']['epochs']} epochs "
            f"{summary['teacher']['recipe']['optimizer']} lr {summary['teacher']['recipe']['lr']}); student "
            f"{summary['student']['model']} {summary['student']['kwargs']}; full recipe {f['epochs']} epochs "
            f"{f['optimizer']} lr {f['lr']} wd {f['weight_decay']} {f['schedule']} batch {f['batch_size']}; "
            f"proxy {summary['proxy']['epochs']} epochs")


# ----------------------------------------------------------------------------- calibration


def parse_args(argv: Optional[Iterable[str]] = None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--space", default="default", help="shipped space name or a space YAML file (its task is used)")
    p.add_argument("--baselines", default=None, help="baselines YAML (default: the shipped baselines.yaml)")
    p.add_argument("--only", nargs="+", default=None, help="run only these baselines (names; 'student' is CE-only)")
    p.add_argument("--seeds", type=int, default=5, help="seeds 0 .. N-1 per strategy (>= 5 for the targets)")
    p.add_argument("--sd-check", nargs="+", default=list(SD_CHECK_DEFAULT),
                   help="strategies whose seed sd must be <= %.1f (target 1)" % TARGET_SD)
    p.add_argument("--workers", type=int, default=2, help="worker processes (0: in this process)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    p.add_argument("--out-dir", type=Path, default=REPO / "reports" / "benchmarks")
    p.add_argument("--name", default="calibrate_default", help="report file stem")
    return p.parse_args(argv)


def summarize(baselines, runs: dict, seeds: list[int]) -> list[dict]:
    """Per-strategy test statistics and the paired difference from CE-only (``student``)."""
    ce = {s: runs[("student", s)]["test_acc"] for s in seeds if ("student", s) in runs
          and not runs[("student", s)]["failed"]}
    rows = []
    for b in baselines:
        accs = {s: runs[(b.name, s)]["test_acc"] for s in seeds if not runs[(b.name, s)]["failed"]}
        vals = [runs[(b.name, s)]["val_acc"] for s in seeds if not runs[(b.name, s)]["failed"]]
        failed = len(seeds) - len(accs)
        row = {"name": b.name, "description": b.description, "n": len(accs), "failed": failed,
               "test": [accs.get(s) for s in seeds], "val": [runs[(b.name, s)]["val_acc"] for s in seeds],
               "seconds_mean": statistics.fmean(runs[(b.name, s)]["seconds"] for s in seeds)}
        if accs:
            row["test_mean"], row["test_sd"], row["test_se"] = mean_sd_se(list(accs.values()))
            row["val_mean"] = statistics.fmean(vals)
        common = sorted(set(accs) & set(ce))
        if b.name != "student" and len(common) > 1:
            diffs = [accs[s] - ce[s] for s in common]
            d_mean, d_sd, d_se = mean_sd_se(diffs)
            row.update(diff_mean=d_mean, diff_sd=d_sd, diff_se=d_se,
                       diff_in_se=(d_mean / d_se) if d_se > 0 else math.copysign(math.inf, d_mean) if d_mean else 0.0)
        rows.append(row)
    return rows


def checks(rows: list[dict], teacher_test: float, sd_names: list[str]) -> list[dict]:
    by = {r["name"]: r for r in rows}
    out = []
    sd_rows = [by[n] for n in sd_names if n in by]
    worst = max(sd_rows, key=lambda r: r.get("test_sd", math.inf)) if sd_rows else None
    ok = bool(sd_rows) and all(r["failed"] == 0 and r.get("test_sd", math.inf) <= TARGET_SD for r in sd_rows)
    out.append({"target": f"1. seed sd <= {TARGET_SD} for {', '.join(r['name'] for r in sd_rows)}", "pass": ok,
                "detail": ", ".join(f"{r['name']} {r.get('test_sd', float('nan')):.2f}" for r in sd_rows)
                + (f" (worst {worst['name']})" if worst else "")})
    all_sd = [r for r in rows if "test_sd" in r]
    n_ok = sum(r["test_sd"] <= TARGET_SD for r in all_sd)
    out.append({"target": f"1b. (information) strategies with seed sd <= {TARGET_SD}", "pass": None,
                "detail": f"{n_ok} of {len(all_sd)}; largest {max(all_sd, key=lambda r: r['test_sd'])['name']} "
                          f"{max(r['test_sd'] for r in all_sd):.2f}" if all_sd else "none"})
    ce = by.get("student")
    gap = teacher_test - ce["test_mean"] if ce and "test_mean" in ce else float("nan")
    out.append({"target": f"2a. teacher - CE-only >= {TARGET_GAP} points", "pass": gap >= TARGET_GAP,
                "detail": f"teacher {teacher_test:.2f} - CE-only {ce.get('test_mean', float('nan')):.2f} = {gap:.2f}"
                if ce else "no CE-only run"})
    diffs = [r for r in rows if "diff_in_se" in r]
    best = max(diffs, key=lambda r: r["diff_in_se"]) if diffs else None
    out.append({"target": f"2b. a baseline beats CE-only by > {TARGET_SE} SE (paired by seed)",
                "pass": bool(best) and best["diff_in_se"] > TARGET_SE,
                "detail": (f"best {best['name']}: {best['diff_mean']:+.2f} points, SE {best['diff_se']:.2f}, "
                           f"{best['diff_in_se']:+.1f} SE; beating by > {TARGET_SE} SE: "
                           + (", ".join(r["name"] for r in diffs if r["diff_in_se"] > TARGET_SE) or "none")
                           + f"; worse by > {TARGET_SE} SE: "
                           + (", ".join(r["name"] for r in diffs if r["diff_in_se"] < -TARGET_SE) or "none"))
                if best else "no paired differences"})
    return out


def table(rows: list[dict]):
    header = ["strategy", "n", "test mean", "sd", "se", "val mean", "vs CE (paired)", "SE of diff", "diff / SE",
              "s / run", "per-seed test"]
    body = []
    for r in rows:
        failed = f" ({r['failed']} failed)" if r["failed"] else ""
        body.append([r["name"], f"{r['n']}{failed}", fmt(r.get("test_mean")), fmt(r.get("test_sd")),
                     fmt(r.get("test_se")), fmt(r.get("val_mean")), fmt(r.get("diff_mean"), "+.2f"),
                     fmt(r.get("diff_se")), fmt(r.get("diff_in_se"), "+.1f"), f"{r['seconds_mean']:.1f}",
                     " ".join(fmt(a, ".1f") if a is not None else "fail" for a in r["test"])])
    return simple_table(header, body, "lrrrrrrrrrl")


def check_lines(results: list[dict]) -> list[str]:
    def word(v):
        return "PASS" if v else "INFO" if v is None else "FAIL"

    return [f"{word(c['pass'])}  {c['target']}: {c['detail']}" for c in results]


def report_blocks(report: dict) -> list:
    return [
        Heading("Default task calibration", 1),
        Paragraph(inline_markup(f"Task {task_line(report['task'])}.")),
        run_paragraph(report),
        command_paragraph(report["command"]),
        Paragraph(f"Teacher ({report['teacher']['source']}): val {report['teacher']['val_acc']:.2f} %, "
                  f"test {report['teacher']['test_acc']:.2f} %."),
        Paragraph(f"Every strategy trained at full length ({report['task']['full']['epochs']} epochs) with seeds "
                  f"{report['seeds']}; test accuracy in %. 'vs CE' is the mean over seeds of (strategy - CE-only) on "
                  "the same seed; 'diff / SE' is that mean over its standard error (the paired t statistic)."),
        table(report["rows"]),
        Heading("Checks"),
        BulletList(check_lines(report["checks"])),
    ]


def main(argv: Optional[Iterable[str]] = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    from autokd.config.baselines import load_baselines

    load_start = load_average()
    wall = time.perf_counter()
    space_file, space, prepared, _ = prepare(args.space, say=lambda msg: print(f"[prepare] {msg}", flush=True))
    summary = task_summary(space_file)
    print(f"task {task_line(summary)}")
    recipe = space_file.task.recipes.full
    baselines = load_baselines(args.baselines, space.pairs, recipe)
    if args.only:
        unknown = set(args.only) - {b.name for b in baselines}
        if unknown:
            raise SystemExit(f"unknown baseline(s) {sorted(unknown)}; known: {[b.name for b in baselines]}")
        keep = set(args.only) | {"student"}  # CE-only is the reference of every difference
        baselines = [b for b in baselines if b.name in keep]
    seeds = list(range(args.seeds))
    jobs = [((b.name, s), b.strategy, replace(recipe, seed=s), True) for s in seeds for b in baselines]
    runs = run_jobs(args.space, jobs, args.workers, args.threads)
    rows = summarize(baselines, runs, seeds)
    info = prepared.teacher_info
    results = checks(rows, info.test_acc, args.sd_check)
    report = {
        "benchmark": "calibrate_default",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command_line(),
        "machine": machine_info(),
        "workers": args.workers,
        "threads": args.threads,
        "load_average_at_start": load_start,
        "load_average_at_end": load_average(),
        "wall_s": time.perf_counter() - wall,
        "space": args.space,
        "task": summary,
        "teacher": {"source": info.source, "val_acc": info.val_acc, "test_acc": info.test_acc},
        "seeds": seeds,
        "targets": {"sd": TARGET_SD, "gap": TARGET_GAP, "se": TARGET_SE, "sd_check": args.sd_check},
        "rows": rows,
        "checks": results,
        "failures": {f"{k[0]} seed {k[1]}": r["reason"] for k, r in runs.items() if r["failed"]},
    }
    print()
    print(markdown([table(rows)]))
    print()
    print(f"teacher ({info.source}): val {info.val_acc:.2f}  test {info.test_acc:.2f}")
    print("\n".join(check_lines(results)))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / f"{args.name}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    write_markdown(args.out_dir / f"{args.name}.md", report_blocks(report))
    print(f"\nwrote {args.out_dir / (args.name + '.json')} and {args.out_dir / (args.name + '.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

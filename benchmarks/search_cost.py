"""What does a search cost: Ray Tune's dispatch overhead, throughput, and `autokd search --budget 100`?

Runs the real CLI (``python -m autokd.cli.main search ...``) as subprocesses, each with a fresh
temporary ``--storage`` file; ``AUTOKD_CACHE`` is left as the user's, so data and teacher come
from the cache (an untimed warm-up run first makes sure they exist). Three questions:

1. Ray Tune's overhead against the in-process run. The SAME trials (``--sampler random --seed 0
   --no-pruning``: every variant asks the same strategies and runs each to the end) with
   ``--workers 0`` (in this process, no Ray) and ``--workers 1`` (one Ray Tune trial at a time),
   budget N. For each run we time the whole command, and, from the study's timestamps, the trial
   loop (first trial start -> last trial complete), so start-up (imports, teacher load, ``ray.init``)
   and tear-down (``ray.shutdown``, leaderboard) are shown apart from the per-trial dispatch cost.
   Both back-ends train a trial on one torch thread, so the difference is Ray's own. (``--variants
   ... w0t1`` adds ``--workers 0`` under OMP_NUM_THREADS=1: the thread-matched baseline for autokd
   versions whose in-process trials used every core.)
2. Throughput: trials per minute with ``--workers 0``, ``1`` and ``2`` on those same trials.
3. The headline: ``autokd search --budget 100`` with default settings (TPE, default workers,
   pruning as the default space sets it: off): wall time and trials by state.

Variants of 1-2 are repeated --repeats times, interleaved in rounds (each round runs every variant
once, in an order rotated from round to round), so machine noise hits all of them alike; we report
medians and min-max spreads. The load average is recorded before and after every run.

Targets (from the issue): Ray Tune's overhead at most 10 % of wall time against the in-process
run; ``autokd search --budget 100`` within 10 minutes on a 2-core machine.

    .venv/bin/python benchmarks/search_cost.py                    # ~15 min on an idle 2-core machine
    .venv/bin/python benchmarks/search_cost.py --budget 10 --repeats 1 --headline-budget 0   # quick look

Writes reports/benchmarks/search_cost.json, search_cost.md and search_cost.png (wall time split, throughput).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402  (shared with the other benchmark scripts)
    end_session, load_average, markdown, new_report, session_processes, write_markdown,
)
from search_cost_analysis import med, overheads, ray_costs, same_trials, spread, summarize  # noqa: E402
from search_cost_report import (  # noqa: E402
    METHOD, overhead_table, plot, report_blocks, variant_table, verdict_lines,
)

REPO = Path(__file__).resolve().parents[1]
TARGET_OVERHEAD = 0.10  # Ray Tune's overhead, as a fraction of the in-process wall time
TARGET_HEADLINE_S = 600.0  # autokd search --budget 100 on this machine
LINGER_S = 10.0  # after the CLI exits, how long its Ray processes may take to go before we call them left behind

# name -> (--workers value, extra environment, description)
VARIANTS = {
    "w0": (0, {}, "--workers 0: in-process, no Ray"),
    # opt-in: before autokd set one torch thread for in-process trials itself, this was the thread-matched baseline
    "w0t1": (0, {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
             "--workers 0 with OMP_NUM_THREADS=1 (also 1 thread in start-up)"),
    "w1": (1, {}, "--workers 1: one Ray Tune trial at a time"),
    "w2": (2, {}, "--workers 2: two Ray Tune trials at a time"),
}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--budget", type=int, default=30, help="trials per run of the overhead/throughput variants")
    p.add_argument("--repeats", type=int, default=2, help="interleaved rounds of the overhead/throughput variants")
    p.add_argument("--variants", nargs="+", default=["w0", "w1", "w2"], choices=list(VARIANTS),
                   help="which variants to run; w0t1 = --workers 0 with OMP_NUM_THREADS=1 (a thread-matched "
                        "baseline for autokd versions whose in-process trials used every core)")
    p.add_argument("--space", default="default", help="search space (shipped name or YAML file)")
    p.add_argument("--headline-budget", type=int, default=100, help="budget of the headline run; 0 skips it")
    p.add_argument("--headline-repeats", type=int, default=1, help="how many headline runs")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds before a run is stopped")
    p.add_argument("--out-dir", type=Path, default=REPO / "reports" / "benchmarks")
    return p.parse_args()


# ----------------------------------------------------------------------------- processes


def ray_processes() -> list[tuple[int, str]]:
    """(pid, command line) of every raylet / gcs_server / Ray worker on this machine, anyone's (like pgrep -f raylet)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if re.search(r"raylet|gcs_server|ray::|ray/_private/|ray/dashboard|ray/autoscaler", cmd):
            out.append((int(entry.name), cmd))
    return sorted(out)


def stop_run(proc: subprocess.Popen, grace: float = 30.0) -> None:
    """SIGTERM the CLI (autokd's clean path: trials re-queued, Ray shut down), then end its session."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    end_session(proc.pid)


def run_cli(args: list[str], env_extra: dict, timeout: float) -> dict:
    """Run ``autokd`` with ``args``; wall time, exit code, output tail, and what it left running."""
    cmd = [sys.executable, "-m", "autokd.cli.main", *args]
    env = {**os.environ, **env_extra}
    load_before = load_average()
    launched = time.time()
    start = time.perf_counter()
    timed_out = False
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            stop_run(proc)
        except BaseException:  # Ctrl-C on the benchmark: leave nothing behind
            stop_run(proc)
            raise
        wall = time.perf_counter() - start
        exited = time.time()
        log.seek(0)
        output = log.read()
    # The CLI shuts its own Ray down; its workers may take a moment to go. What is still there after
    # LINGER_S was left behind: record it and end it (it is this run's, by its session).
    at_exit = session_processes(proc.pid)
    gone_after = 0.0
    while session_processes(proc.pid) and gone_after < LINGER_S:
        time.sleep(0.2)
        gone_after = time.time() - exited
    leftover = end_session(proc.pid)
    return {
        "command": shlex.join(["python", "-m", "autokd.cli.main", *args]),
        "env": env_extra,
        "returncode": proc.returncode,
        "timed_out": timed_out,
        "wall_s": wall,
        "launched_at": launched,
        "exited_at": exited,
        "load_before": load_before,
        "load_after": load_average(),
        "cli_elapsed_s": progress_elapsed(output),
        "output_tail": output[-3000:],
        "processes_at_exit": at_exit,  # alive the moment the CLI exited
        "processes_gone_after_s": None if leftover else (gone_after if at_exit else 0.0),
        "processes_left": leftover,  # still alive LINGER_S after the exit: ended by the benchmark
    }


def progress_elapsed(output: str):
    """The ``elapsed`` of the CLI's last progress line, in seconds (None if absent)."""
    found = re.findall(r"trials \d+/\d+ .*?elapsed (\d+h\d+m|\d+m\d+s|\d+s)", output)
    if not found:
        return None
    m = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", found[-1])
    h, mnt, s = (int(x) if x else 0 for x in m.groups())
    return 3600 * h + 60 * mnt + s


# ----------------------------------------------------------------------------- studies


def read_study(storage_path: Path, launched: float, exited: float) -> dict:
    """Trial timings and states from the study the run wrote (the only study in its storage)."""
    import optuna

    from autokd.search.ledger import tally

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{storage_path}"
    names = optuna.get_all_study_names(url)
    study = optuna.load_study(study_name=names[0], storage=url)
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    states = {k: v for k, v in asdict(tally(trials)).items() if v}  # complete, pruned, failed, void, ...
    timed = [t for t in trials if t.datetime_start and t.datetime_complete]
    starts = [t.datetime_start.timestamp() for t in timed]  # naive local times, like time.time()
    ends = [t.datetime_complete.timestamp() for t in timed]
    out = {"study": names[0], "trials": len(trials), "states": states,
           "params": [json.dumps(t.params, sort_keys=True) for t in trials],
           "values": [t.value for t in trials]}
    if not timed:
        return out
    first, last = min(starts), max(ends)
    by_start = sorted(zip(starts, ends))
    out.update({
        "startup_s": first - launched,  # CLI launch -> first trial asked
        "loop_s": last - first,  # first trial asked -> last trial told
        "teardown_s": exited - last,  # last trial told -> CLI exit
        "trial_s": [e - s for s, e in zip(starts, ends)],  # ask -> tell, by trial number
        # between one trial's tell and the next trial's ask (one at a time only; negative = overlap)
        "gap_s": [by_start[i + 1][0] - by_start[i][1] for i in range(len(by_start) - 1)],
    })
    return out


# ----------------------------------------------------------------------------- runs


def search_args(space: str, budget: int, storage: Path, workers=None, random_no_prune: bool = True) -> list[str]:
    args = ["search", "--space", space, "--budget", str(budget), "--storage", str(storage)]
    if random_no_prune:
        args += ["--sampler", "random", "--seed", "0", "--no-pruning"]
    if workers is not None:
        args += ["--workers", str(workers)]
    return args


def one_run(label: str, args_for, env: dict, timeout: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="autokd-bench-") as tmp:
        storage = Path(tmp) / "study.db"
        res = run_cli(args_for(storage), env, timeout)
        res["command"] = res["command"].replace(str(storage), "TMP/study.db")
        res["variant"] = label
        if res["returncode"] == 0 or storage.exists():
            try:
                res.update(read_study(storage, res["launched_at"], res["exited_at"]))
            except Exception as exc:  # a run that failed before creating its study
                res["study_error"] = f"{type(exc).__name__}: {exc}"
    return res


def warm_up(args) -> list[dict]:
    """Untimed: make sure data and teacher are cached and the OS file cache holds torch and Ray."""
    out = []
    for workers in (0, 1):
        res = one_run(f"warm-up w{workers}", lambda s, w=workers: search_args(args.space, 2, s, w), {}, args.timeout)
        out.append({k: res.get(k) for k in ("variant", "command", "returncode", "wall_s")})
        if res["returncode"] != 0:
            sys.exit(f"warm-up failed (exit {res['returncode']}):\n{res['output_tail']}")
    return out


def say_run(i: int, total: int, res: dict) -> None:
    loop = res.get("loop_s")
    loop_text = f"loop {loop:6.1f} s  startup {res['startup_s']:5.1f} s  teardown {res['teardown_s']:4.1f} s" \
        if loop is not None else "no trial timings"
    print(f"[{i}/{total}] {res['variant']:<5} wall {res['wall_s']:6.1f} s  {loop_text}  "
          f"states {res.get('states')}  load {res['load_before'][0]:.2f}->{res['load_after'][0]:.2f}"
          + ("" if res["returncode"] == 0 else f"  EXIT {res['returncode']}"), flush=True)


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # run_cli then stops the running CLI (and its Ray) before the benchmark exits


def main() -> None:
    args = parse_args()
    # Ctrl-C and SIGTERM both take the clean path, also when started in the background (where SIGINT is ignored)
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    report = new_report(
        "search_cost",
        ray_processes_at_start=ray_processes(),
        settings={k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        targets={"ray_overhead_max": TARGET_OVERHEAD, "headline_max_s": TARGET_HEADLINE_S},
        variants={name: {"workers": w, "env": env, "description": d} for name, (w, env, d) in VARIANTS.items()},
        linger_s=LINGER_S,
        method=METHOD,
    )
    print(f"load average at start {report['load_average_at_start']}; warm-up (untimed) ...", flush=True)
    report["warm_up"] = warm_up(args)
    runs = overhead_runs(args)
    report["runs"] = runs
    report["variant_commands"] = {r["variant"]: r["command"] for r in runs}
    report["same_trials"] = same_trials(runs)
    report["summary"] = summarize(runs, args.budget)
    report["overhead"] = {
        f"{ray} vs {base}": overheads(runs, base, ray)
        for base, ray in (("w0", "w1"), ("w0t1", "w1"), ("w0", "w2"), ("w0t1", "w2"))
        if base in args.variants and ray in args.variants
    }
    report["headline"] = headline_runs(args) if args.headline_budget > 0 else None
    base = "w0" if "w0" in args.variants else "w0t1"
    costs = ray_costs(report["summary"], base, "w1", args.budget)
    report["ray_costs_w1"] = {**costs, "base": base} if costs else None
    report["verdicts"] = verdict_lines(report)
    all_runs = runs + (report["headline"]["runs"] if report["headline"] else [])
    report["leftover_summary"] = leftover_summary(all_runs)
    report["ray_processes_at_end"] = ray_processes()
    report["load_average_at_end"] = load_average()
    report["total_s"] = time.perf_counter() - t0
    write_results(args.out_dir, report)


def overhead_runs(args) -> list[dict]:
    """The overhead variants, --repeats rounds, each round in an order rotated from the last."""
    runs = []
    total = args.repeats * len(args.variants)
    for rnd in range(args.repeats):
        for name in args.variants[rnd % len(args.variants):] + args.variants[:rnd % len(args.variants)]:
            workers, env, _ = VARIANTS[name]
            res = one_run(name, lambda s, w=workers: search_args(args.space, args.budget, s, w), env, args.timeout)
            res["round"] = rnd
            runs.append(res)
            say_run(len(runs), total, res)
    return runs


def headline_runs(args) -> dict:
    """``autokd search --budget N`` with the default settings, --headline-repeats times."""
    runs = []
    for i in range(args.headline_repeats):
        res = one_run("head", lambda s: search_args(args.space, args.headline_budget, s, None, random_no_prune=False),
                      {}, args.timeout)
        res["round"] = i
        runs.append(res)
        say_run(i + 1, args.headline_repeats, res)
    walls = [r["wall_s"] for r in runs]
    return {"budget": args.headline_budget, "command": runs[0]["command"], "runs": runs,
            "wall_s": {"median": med(walls), "min": spread(walls)[0], "max": spread(walls)[1]}}


def leftover_summary(runs: list[dict]) -> str:
    left = [(r["variant"], r.get("round"), p) for r in runs for p in r["processes_left"]]
    slow = [r for r in runs if r["processes_at_exit"] and not r["processes_left"]]
    text = (f"none left running (nothing of any run's session was alive {LINGER_S:.0f} s after its CLI exited)"
            if not left else
            f"{len(left)} process(es) still alive {LINGER_S:.0f} s after their CLI exited, ended by the benchmark: "
            + "; ".join(f"{v} round {i}: pid {pid} {cmd[:80]!r}" for v, i, (pid, cmd) in left))
    if slow:
        text += (f"; in {len(slow)} of {len(runs)} runs some Ray processes outlived the CLI briefly and exited on "
                 f"their own within {max(r['processes_gone_after_s'] for r in slow):.1f} s")
    return text


def write_results(out_dir: Path, report: dict) -> None:
    """The JSON, the plot and the Markdown report; the headline numbers on the console."""
    (out_dir / "search_cost.json").write_text(json.dumps(report, indent=1, default=str))
    if report["summary"]:
        plot(out_dir / "search_cost.png", report)
    write_markdown(out_dir / "search_cost.md", report_blocks(report))
    print("\n" + markdown([variant_table(report["summary"], report["variants"]), overhead_table(report["overhead"])]))
    if report["headline"]:
        print(f"headline: {report['headline']['command']}: " + ", ".join(
            f"{r['wall_s']:.0f} s {r.get('states')}" for r in report["headline"]["runs"]))
    print("\n".join(report["verdicts"]))
    print(f"identical trials in every overhead run: {report['same_trials']}")
    print(f"processes left behind by the runs: {report['leftover_summary']}")
    print(f"Ray processes on the machine (anyone's) at the start: {len(report['ray_processes_at_start'])}, "
          f"at the end: {len(report['ray_processes_at_end'])} {[pid for pid, _ in report['ray_processes_at_end']]}")
    print(f"load average at start {report['load_average_at_start']}, at end {report['load_average_at_end']}; "
          f"total {report['total_s'] / 60:.1f} min")
    print(f"wrote {out_dir / 'search_cost.json'}, {out_dir / 'search_cost.md'} and {out_dir / 'search_cost.png'}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted: the running search was stopped and its Ray shut down; no results written")

"""The report of ``search_cost.py``: its tables, verdicts and plot, and the Markdown document.

A pure function of the benchmark's record (plain data, as saved in its JSON), built from blocks of
:mod:`autokd.document` so the same tables print on the console and go into the report.
"""

from __future__ import annotations

from pathlib import Path

from common import command_paragraph, fmt, machine_text

from autokd.document import BulletList, Code, Figure, Heading, Paragraph, inline_markup, simple_table


def rng(d, spec=".1f"):
    return f"{fmt(d['median'], spec)} ({fmt(d['min'], spec)}-{fmt(d['max'], spec)})"


def pct(v):
    return "-" if v is None else f"{100 * v:+.1f} %"


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def judged(o: dict, limit: float) -> str:
    """MET / NOT MET on the median of rounds, flagged when the rounds fall on both sides of the target."""
    d = o["wall_s"]
    text = verdict(d["median_of_rounds"] <= limit)
    if d["min"] <= limit < d["max"]:
        text += f" (uncertain: the rounds fall on both sides of the {limit:.0%} line)"
    return text


def variant_table(summary: dict, variants: dict):
    rows = [[f"{name}: {variants[name]['description']}", rng(s["wall_s"]), rng(s["startup_s"]), rng(s["loop_s"]),
             rng(s["teardown_s"]), rng(s["trials_per_min_loop"]), rng(s["trials_per_min_wall"]),
             rng(s["median_trial_s"], ".2f"), rng(s["median_gap_s"], ".3f")] for name, s in summary.items()]
    return simple_table(["variant", "wall s", "start-up s", "trial loop s", "tear-down s", "trials/min (loop)",
                         "trials/min (wall)", "median trial s", "median gap s"], rows, "lrrrrrrrr")


def overhead_table(over: dict):
    names = {"wall_s": "whole command", "loop_s": "trial loop", "startup_s": "start-up", "teardown_s": "tear-down"}
    rows = [[label, names[key], f"{pct(d['median_of_rounds'])} ({pct(d['min'])} .. {pct(d['max'])})",
             pct(d["of_medians"]), f"{d['extra_s_median']:+.1f}"]
            for label, o in over.items() if o is not None for key, d in o.items()]
    return simple_table(["comparison", "time", "overhead, median of rounds (min-max)", "overhead of medians",
                         "extra s (medians)"], rows, "llrrr")


def run_table(runs: list[dict]):
    rows = [[str(r.get("round", "-")), r["variant"], str(r["returncode"]), f"{r['wall_s']:.1f}",
             fmt(r.get("startup_s"), ".1f"), fmt(r.get("loop_s"), ".1f"), fmt(r.get("teardown_s"), ".1f"),
             fmt(sum(r.get("trial_s", [])) or None, ".1f"), str(r.get("states")),
             f"{r['load_before']} -> {r['load_after']}"] for r in runs]
    return simple_table(["round", "variant", "exit", "wall s", "start-up s", "loop s", "tear-down s",
                         "sum of trials s", "states", "load before -> after"], rows, "rlrrrrrrll")


def plot(path: Path, report: dict) -> None:
    """Left: each variant's wall time split into start-up, trial loop and tear-down (medians; the
    min-max of the whole command as an error bar). Right: trials per minute of the trial loop."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = report["summary"]
    names = list(summary)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4))
    bottom = [0.0] * len(names)
    for part, color in (("startup_s", "#bbbbbb"), ("loop_s", "#4c72b0"), ("teardown_s", "#dd8452")):
        vals = [summary[n][part]["median"] for n in names]
        ax.bar(names, vals, bottom=bottom, color=color, label=part[:-2].replace("_", " "))
        bottom = [b + v for b, v in zip(bottom, vals)]
    walls = [summary[n]["wall_s"] for n in names]
    ax.errorbar(names, [w["median"] for w in walls], fmt="none", ecolor="black", capsize=4,
                yerr=[[w["median"] - w["min"] for w in walls], [w["max"] - w["median"] for w in walls]])
    over = (report.get("overhead") or {}).get("w1 vs w0")
    title = f"{report['settings']['budget']} identical trials per run"
    if over:
        title += f"; Ray (w1) vs in-process (w0): {over['wall_s']['median_of_rounds'] * 100:+.1f} % wall"
    ax.set_title(title, fontsize=9)
    ax.set_ylabel("seconds (median over rounds)")
    ax.legend(fontsize=8)
    tpm = [summary[n]["trials_per_min_loop"] for n in names]
    bx.bar(names, [t["median"] for t in tpm], color="#55a868",
           yerr=[[t["median"] - t["min"] for t in tpm], [t["max"] - t["median"] for t in tpm]], capsize=4)
    bx.set_ylabel("trials per minute (trial loop)")
    bx.set_title("Throughput", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def report_blocks(report: dict) -> list:
    m, s = report["machine"], report["settings"]
    blocks = [
        Heading(["Search cost: Ray Tune's overhead, throughput, ", Code("autokd search --budget 100")], 1),
        Paragraph(f"Date {report['date']}. Machine: {machine_text(m, ('torch', 'ray', 'optuna'))}. Load average "
                  f"(1/5/15 min) at start {report['load_average_at_start']}, at end {report['load_average_at_end']} "
                  "(above 2 = more runnable threads than cores: other work was competing). "
                  f"Total run time {report['total_s'] / 60:.1f} min."),
        command_paragraph(report["command"]),
        *([Figure("search_cost.png", "wall time and throughput")] if report["summary"] else []),
        Heading("What was measured"), Paragraph(inline_markup(report["method"])),
        Heading("Targets"), BulletList([inline_markup(v) for v in report["verdicts"]]),
        Heading(["Overhead and throughput (", str(s["budget"]), " trials, ",
                 Code("--sampler random --seed 0 --no-pruning"), f", {s['repeats']} interleaved rounds; median (min-max))"]),
        Paragraph(f"Identical trials in every run (same parameters by trial number): {report['same_trials']}."),
        variant_table(report["summary"], report["variants"]),
        Paragraph("Overhead = (Ray time - in-process time) / in-process time, per round, and on the medians:"),
        overhead_table(report["overhead"]),
        Paragraph("Commands (TMP = a fresh temporary folder per run):"),
        BulletList([[f"{name}: ", Code("".join(f"{k}={v} " for k, v in report["variants"][name]["env"].items()) + cmd)]
                    for name, cmd in report["variant_commands"].items()]),
    ]
    h = report.get("headline")
    if h:
        blocks += headline_blocks(h, m["cpu_count"])
    return blocks + [
        Heading("Every run"), run_table(report["runs"] + (h["runs"] if h else [])),
        Paragraph(f"Processes left behind by the runs (each run leads its own session; anything of it alive "
                  f"{report['linger_s']:.0f} s after the CLI exited): {report['leftover_summary']}. Ray processes on the machine "
                  f"(anyone's) at the start: {len(report['ray_processes_at_start'])}, at the end: "
                  f"{len(report['ray_processes_at_end'])}."),
    ]


def headline_blocks(h: dict, cpus: int) -> list:
    rows = []
    for i, r in enumerate(h["runs"]):
        st = r.get("states") or {}
        rows.append([str(i), f"{r['wall_s']:.1f}", f"{r['wall_s'] / 60:.2f}", fmt(r.get("startup_s"), ".1f"),
                     fmt(r.get("loop_s"), ".1f"), f"{60 * r.get('trials', 0) / r['wall_s']:.1f}"]
                    + [str(st.get(k, 0)) for k in ("complete", "pruned", "failed", "void")])
    return [
        Heading([Code(f"autokd search --budget {h['budget']}"), ", default settings"]),
        Paragraph(["Command: ", Code(h["command"]), f" (default space, TPE, workers = CPU count = {cpus}, pruning on)"]),
        simple_table(["run", "wall s", "wall min", "start-up s", "trial loop s", "trials/min (wall)", "complete",
                      "pruned", "failed", "void (interrupted, not counted)"], rows,
                     "rrrrrrrrrr"),
    ]


METHOD = (
    "Every run is the real CLI, `python -m autokd.cli.main search ...`, in a subprocess with a fresh temporary "
    "SQLite `--storage`; data and teacher come from `AUTOKD_CACHE` (an untimed warm-up run of each back-end "
    "comes first). *Wall* = launch to exit of the command. From the study's own timestamps (Optuna's "
    "`datetime_start` is set when the trial is asked for, `datetime_complete` when its result is told): "
    "*start-up* = launch -> first trial asked (Python imports, data and teacher load, teacher-output cache, "
    "and for Ray `import ray`, `ray.init`, Tuner set-up, `tune.with_parameters` upload); *trial loop* = "
    "first trial asked -> last trial told (for Ray this includes starting the first actor, which happens after "
    "trial 0 is asked); *tear-down* = last trial told -> exit (`ray.shutdown`, leaderboard). "
    "*Trial* = ask -> tell of one trial (in Ray this includes handing the trial to an actor and its results "
    "coming back); *gap* = one trial's tell -> the next trial's ask (one-at-a-time variants only). The overhead "
    "variants run the same trials (`--sampler random --seed 0 --no-pruning`), interleaved in rounds with the "
    "order rotated each round. Both back-ends train each trial on one torch thread (`--workers 0` sets it "
    "for its trials, a Ray trial sets it in its actor), so w1 vs w0 is Ray's own cost. (Opt-in variant `w0t1`: "
    "`--workers 0` with OMP_NUM_THREADS=1, the thread-matched baseline for older autokd versions whose "
    "in-process trials used every core.)"
)



def verdict_lines(report: dict) -> list[str]:
    """The targets, met or not, with the evidence (Markdown-style marks for ``inline_markup``)."""
    out, over, headline = [], report["overhead"], report["headline"]
    limit = report["targets"]["ray_overhead_max"]
    o = over.get("w1 vs w0")
    if o:
        out.append(f"Target \"Ray Tune's overhead at most {limit:.0%} of wall time against the in-process run\": "
                   f"**{judged(o, limit)}** -- `--workers 1` vs `--workers 0` whole command "
                   f"{pct(o['wall_s']['median_of_rounds'])} (rounds {pct(o['wall_s']['min'])} .. {pct(o['wall_s']['max'])}); "
                   f"trial loop only {pct(o['loop_s']['median_of_rounds'])}.")
    o = over.get("w1 vs w0t1")
    if o:
        out.append(f"Same target against the thread-matched in-process run (`--workers 0`, OMP_NUM_THREADS=1): "
                   f"**{judged(o, limit)}** -- whole command {pct(o['wall_s']['median_of_rounds'])} (rounds "
                   f"{pct(o['wall_s']['min'])} .. {pct(o['wall_s']['max'])}); trial loop only "
                   f"{pct(o['loop_s']['median_of_rounds'])}.")
    if headline:
        w = headline["wall_s"]["median"]
        ok = w <= report["targets"]["headline_max_s"] and all(r["returncode"] == 0 for r in headline["runs"])
        out.append(f"Target \"`autokd search --budget {headline['budget']}` within 10 minutes on this 2-core machine\": "
                   f"**{verdict(ok)}** -- {w:.0f} s = {w / 60:.1f} min (median of {len(headline['runs'])} run(s)).")
    costs = report["ray_costs_w1"]
    if costs:
        out.append(f"Ray's cost split (w1 against {costs['base']}, medians): fixed per command {costs['fixed_s']:+.1f} s "
                   "(start-up + tear-down: `import ray`, `ray.init`, Tuner set-up, `ray.shutdown`); per trial "
                   f"{costs['per_trial_s']:+.3f} s (trial-loop difference / N; it includes the first actor's start, which "
                   f"happens after trial 0 is asked) on a mean in-process trial (loop / N) of {costs['base_trial_s']:.2f} s "
                   f"({pct(costs['per_trial_fraction'])}).")
    return out

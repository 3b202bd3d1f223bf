"""The report of ``search_quality.py``: its tables and plots, and the Markdown document.

Reads the benchmark's record (plain data, as saved in its JSON) and builds blocks of
:mod:`autokd.document`, so the same tables print on the console and go into the report.
"""

from __future__ import annotations

from pathlib import Path

from common import command_paragraph, fmt, machine_text
from search_quality_analysis import CE_ONLY, TARGET_TRIALS_FRACTION, fmt_trials, pruning_text, trials_to_reach

from autokd.document import BulletList, Code, Figure, Heading, Paragraph, Strong, inline_markup, simple_table


def verdict_word(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def plot_anytime(path: Path, report: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budget = report["settings"]["budget"]
    colors = {"tpe": "tab:blue", "random": "tab:gray", "ppo": "tab:orange", "evolution": "tab:green"}
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
    for sampler, fraction in TARGET_TRIALS_FRACTION.items():
        ax.axvline(fraction * budget, color=colors.get(sampler, "tab:red"), ls=":", lw=0.8,
                   label=f"{sampler} target: {fraction * budget:g} trials")
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
    colors = {"tpe": "tab:blue", "random": "tab:gray", "ppo": "tab:orange", "evolution": "tab:green"}
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


def search_tables(report: dict) -> list:
    budget, se = report["settings"]["budget"], report["search"]
    rows = []
    for name, s in report["studies"].items():
        c = s["counts"]
        eff = se["efficiency"].get(s["sampler"], {}).get("per_repeat", {}).get(name, {})
        best_at = trials_to_reach(s["curve"], s["curve"][-1]) if s["curve"] and s["curve"][-1] is not None else None
        rows.append([name, str(s["run"]["returncode"]), f"{s['run']['wall_s']:.0f}",
                     f"{c['complete']} / {c['pruned']} / {c['failed']} / {c['void']}",
                     fmt(s["curve"][-1] if s["curve"] else None), fmt_trials(best_at),
                     fmt_trials(eff.get("to_bar")) if eff else "-",
                     str(s["retrain"]["winner"]["trial"]) if s.get("retrain") else "-",
                     f"{s['run']['load_before']} -> {s['run']['load_after']}"])
    return [simple_table(["study", "exit", "wall s", "trials complete / pruned / failed / void", f"best-of-{budget} val",
                          "best at trial", "trials to random's bar", "winner trial", "load before -> after"],
                         rows, "lrrlrrrrl")]


def efficiency_table(report: dict) -> list:
    se = report["search"]
    if se["random_bar"] is None:
        return [Paragraph("(no random search: no bar to reach)")]
    budget = report["settings"]["budget"]
    rn = list(se["random_best"])
    rows = [[sampler + (" (reference: random's own repeats)" if sampler == "random" else ""),
             fmt_trials(e["median_to_bar"]), ", ".join(fmt_trials(p["to_bar"]) for p in e["per_repeat"].values()),
             f"{e['reached']}/{len(e['per_repeat'])}"] + [fmt_trials(e["median_to_each_random"][n]) for n in rn]
            for sampler, e in se["efficiency"].items()]
    ks = [k for k in (5, 10, 20, 30, 40, 50, 60, 80, 100, 150, 200) if k <= budget] or [budget]
    if budget not in ks:
        ks.append(budget)
    curves = [[sampler] + [f"{fmt(c['median'][k - 1])} ({fmt(c['min'][k - 1])}-{fmt(c['max'][k - 1])})" for k in ks]
              for sampler, c in se["curves"].items()]
    return [
        simple_table(["sampler", f"median trials to the bar ({se['random_bar']:.2f}%)", "per repeat", "reached"]
                     + [f"median trials to {n}'s best ({se['random_best'][n]:.2f}%)" for n in rn], rows,
                     "lrlr" + "r" * len(rn)),
        Paragraph("Anytime curve, median best-so-far at trial k (min-max over repeats):"),
        simple_table(["sampler"] + [f"k={k}" for k in ks], curves, "l" + "r" * len(ks)),
    ]


def retraining_tables(report: dict) -> list:
    ret = report["retraining"]
    best = ret["best_baseline"]
    samplers = [[sampler, f"{s['winners_test_mean']:.2f}%", f"{s['winners_test_min']:.2f}-{s['winners_test_max']:.2f}",
                 _diff(s["vs_best"]), _diff(s["vs_ce"])] for sampler, s in ret["per_sampler"].items()]
    repeats = [[r["study"], str(r["trial"]), f"{r['proxy_val']:.2f}", f"{r['val_mean']:.2f}",
                f"{r['mean']:.2f} ± {r['se']:.2f} ({r['sd']:.2f})", _diff_pm(r["vs_best"]), _diff_pm(r["vs_ce"]),
                r["description"]] for s in ret["per_sampler"].values() for r in s["repeats"]]
    baselines = [[name + (" (best hand-tuned)" if name == best else " (CE-only)" if name == CE_ONLY else ""),
                  f"{b['mean']:.2f} ± {b['se']:.2f} ({b['sd']:.2f})", f"{b['val_mean']:.2f}", b["description"]]
                 for name, b in sorted(ret["baselines"].items(), key=lambda kv: -kv[1]["mean"])]
    return [
        simple_table(["sampler", "winners' test mean (mean of repeats)", "min-max over repeats",
                      "vs best baseline: pts, se, SE", "vs CE-only: pts, se, SE"], samplers, "lrrrr"),
        Paragraph("Each repeat's winner (rank 1 by proxy validation) retrained over the seeds:"),
        simple_table(["study", "trial", "proxy val", "full-length val (mean)", "test mean ± se (sd)",
                      "vs best baseline: pts ± se (SE)", "vs CE-only: pts ± se (SE)", "strategy"], repeats, "lrrrrrrl"),
        Paragraph(["Baselines (trained once, shared by every study), same seeds; best hand-tuned = ", Strong(str(best)),
                   ":"]),
        simple_table(["baseline", "test mean ± se (sd)", "full-length val (mean)", "description"], baselines, "lrrl"),
    ]


def _diff(d: dict) -> str:
    return f"{d['diff']:+.2f}, {d['se']:.2f}, {fmt(d['t'], '+.1f')}"


def _diff_pm(d: dict) -> str:
    return f"{d['diff']:+.2f} ± {d['se']:.2f} ({fmt(d['t'], '+.1f')})"


def diagnostics_blocks(report: dict) -> list:
    dg = report.get("diagnostics")
    if not dg:
        return []
    grace = next(iter(dg["per_study"].values()))["grace_epoch"]
    rows = [[name, f"{d['pruned_share']:.0%}", f"{d['failed_share']:.0%}", fmt(d["rho_grace_vs_final"]),
             ", ".join(f"{v:.2f}" for v in d["top5_proxy_val"]), fmt(d["median_complete_val"])]
            + ([str(d["ppo_updates"]), f"{d['ppo_distinct_actions_last25']} / {fmt(d['ppo_mode_share_last25'])}"]
               if "ppo_updates" in d else ["-", "-"]) for name, d in dg["per_study"].items()]
    blocks = [
        Heading("Diagnostics (why a target may be missed)"),
        Paragraph(f"Searches: share of trials pruned, Spearman's rho between a complete trial's validation accuracy at "
                  f"epoch {grace} (where ASHA first cuts) and at the end of the proxy, the best five proxy values, the "
                  "median complete trial; PPO: policy updates and how concentrated its last 25 actions were."),
        simple_table(["study", "pruned", "failed", "rho(grace epoch, final)", "top-5 proxy val", "median complete",
                      "PPO updates", "PPO distinct actions / mode share (last 25)"], rows, "lrrrlrrr"),
    ]
    if dg.get("proxy_vs_full"):
        pc = report["proxy_check"]
        rows = [[r["name"], fmt(r["proxy_val_search"]), f"{r['proxy_val_mean']:.2f} ± {r['proxy_val_se']:.2f}",
                 f"{r['full_val']:.2f}", f"{r['test_mean']:.2f} ± {r['test_se']:.2f}"]
                for r in sorted(dg["proxy_vs_full"], key=lambda r: -r["proxy_val_mean"])]
        blocks += [
            Paragraph([f"Proxy length ({pc['epochs']} epochs, validation, seeds {pc['seeds'][0]}..{pc['seeds'][-1]}; "
                       f"seed {pc['seeds'][0]} is the search's own run) against full length "
                       f"({report['task']['full_epochs']} epochs). Spearman's rho between proxy validation (seed mean) "
                       "and full-length test over these strategies: ", Strong(fmt(dg["rho_proxy_val_vs_full_test"])),
                       ". Winners' proxy value in the search minus their seed-mean proxy value (selection optimism): "
                       f"{fmt(dg['winners_selection_optimism'], '+.2f')} points."]),
            simple_table(["strategy", "proxy val in the search", "proxy val, mean ± se over seeds", "full-length val",
                          "full-length test ± se"], rows, "lrrrr"),
        ]
    if dg.get("min_detectable_at_2se") is not None:
        sds = ", ".join(f"{k} {v:.2f}" for k, v in sorted(dg["baseline_seed_sd"].items(), key=lambda kv: kv[1]))
        blocks.append(Paragraph(
            f"Seed noise at full length: median sd over seeds of a winner-minus-best-baseline difference "
            f"{dg['paired_sd_median']:.2f} points, so with {report['settings']['seeds']} seeds a difference must be at "
            f"least {dg['min_detectable_at_2se']:.2f} points to reach 2 SE. Seed sd of each baseline's test accuracy: "
            f"{sds}."))
    return blocks


METHOD = [
    ("Searches.", "For each sampler and repeat r = 0..R-1: `python -m autokd.cli.main search --space SPACE --budget B "
     "--sampler S --seed r --name S-rR --storage WORK/studies.db --workers W` (the real CLI in a subprocess; Ray Tune, "
     "W trials at once, ASHA pruning as shipped unless `--no-pruning`). Searches run one at a time, interleaved "
     "(repeat 0 of every sampler, then repeat 1, ...) with the sampler order rotated, so load on the shared machine "
     "hits all samplers alike. SPACE is a copy of the space file taken at the start (its SHA-256 is below), so all "
     "searches and retrainings use one space even if the file is edited meanwhile."),
    ("Anytime curve.", "From each study's trials (number, state, value, start/complete times, all in the JSON): the "
     "trials that count toward the budget (complete, pruned, failed; void ones, such as interrupted trials, "
     "excluded) in trial-number order (= the order they were asked for); best-so-far at k = the best validation "
     "accuracy (at the proxy length) among the complete trials of the first k. Median over repeats, band = min-max."),
    ("Sample efficiency.", "Bar = median over the random repeats of their best-of-B. For each repeat, the first k "
     "whose best-so-far reaches the bar; median over repeats, \"never\" counting as infinitely many. Also against "
     "each random repeat's own best-of-B. Random's own row is for reference (one of its repeats defines the bar). "
     "Note: for the same seed, Optuna's TPE draws its startup trials (the first 10) with the same random stream as "
     "RandomSampler, so tpe-rN and random-rN begin with the same strategies."),
    ("Retraining.", "`autokd.compare.run_compare(study, WORK/compare, top_k=1, seeds=S)` on each study, one shared "
     "run store `WORK/compare/runs.jsonl` (runs keyed by task, strategy, recipe and seed), so the baselines are "
     "trained once and every later study reuses them. Full-length recipe of the task, seeds = recipe seed + 0..S-1, "
     "test accuracy; a run whose training diverged is left out of the statistics. Paired differences over seeds "
     "(`autokd.compare.stats.paired`), in points and in standard errors of the paired difference (= the paired t "
     "statistic). The per-sampler row pairs the repeat-averaged winner (per seed, the mean over repeats of the "
     "winners' test accuracy) with the baseline. The best hand-tuned baseline is the one with the highest test "
     "mean (CE-only excluded), which favours the baselines."),
]


def report_blocks(report: dict) -> list:
    m, s, space = report["machine"], report["settings"], report["space"]
    changed = (f" The space file changed during the run (now {space['sha256_at_end'][:16]}...); the benchmark used "
               "the copy taken at the start." if space["changed_during_run"] else "")
    return [
        Heading("Search quality: TPE, random search, PPO and evolution against each other and the hand-tuned baselines", 1),
        Paragraph(f"Date {report['date']}. Machine: {machine_text(m, ('torch', 'ray', 'optuna', 'stable_baselines3'))}. "
                  f"Load average (1/5/15 min) at start {report['load_average_at_start']}, at end "
                  f"{report['load_average_at_end']} (above {m['cpu_count']} = other work was competing for the CPUs; it "
                  "slows the searches down but does not change what they measure). Total run time "
                  f"{report['total_s'] / 60:.1f} min (searches {report['search_total_s'] / 60:.1f} min, retraining "
                  f"{report['retrain_total_s'] / 60:.1f} min, proxy-length check "
                  f"{report['proxy_check_total_s'] / 60:.1f} min)."),
        command_paragraph(report["command"]),
        Paragraph(["Task ", Code(report["task"]["name"]), " from space ", Code(s["space"]),
                   f" (SHA-256 {space['sha256'][:16]}...; proxy {report['task']['proxy_epochs']} epochs, full length "
                   f"{report['task']['full_epochs']} epochs; teacher test {fmt(report['task'].get('teacher_test'))}%). "
                   f"Settings: budget B = {s['budget']}, repeats R = {s['repeats']}, seeds S = {s['seeds']}, samplers "
                   f"{', '.join(s['samplers'])}, workers W = {s['workers']}, pruning {pruning_text(report)}.",
                   Strong(changed) if changed else ""]),
        Heading("Targets"),
        BulletList([[f"{v['target']}: ", Strong(verdict_word(v["met"])), f" -- {v['evidence']}"]
                    for v in report["verdicts"]]),
        Heading("Retraining the winners (full length, test accuracy)"), *retraining_tables(report),
        Figure(report["plots"]["winners"], "winners"),
        Heading("Search: anytime curves and sample efficiency"),
        Figure(report["plots"]["anytime"], "anytime curves"), *efficiency_table(report),
        *diagnostics_blocks(report),
        Heading("Every search"), *search_tables(report),
        Paragraph(["Commands (WORK = the work folder, ", Code(report["work_dir"]), "):"]),
        BulletList([Code(st["command"]) for st in report["studies"].values()]),
        Heading("What was measured"),
        BulletList([[Strong(lead), " "] + inline_markup(text) for lead, text in METHOD]),
        *([Heading("Notes"), BulletList([inline_markup(n) for n in report["notes"]])] if report.get("notes") else []),
    ]

"""The statistics of ``search_quality.py``: anytime curves, sample efficiency, the retrained
winners against the baselines, the verdicts on the targets, and the diagnostics behind them.

Pure functions of the benchmark's record (plain data, as saved in its JSON).
"""

from __future__ import annotations

import datetime
import math
import statistics
from typing import Optional

from common import rho

from autokd.search.samplers.ppo import PPOSettings

TARGET_VS_BASELINE = 1.5  # points of test accuracy, TPE's winner over the best hand-tuned baseline
TARGET_VS_CE = 5.0  # points, TPE's winner over CE-only
TARGET_SE = 2.0  # each difference more than this many standard errors of the paired difference
# each sampler reaches random's best-of-B within this share of B (TPE 20 of 100, PPO 40 of 100)
TARGET_TRIALS_FRACTION = {"tpe": 0.2, "ppo": 0.4}
CE_ONLY = "student"  # the shipped baseline that is cross-entropy only


def fmt_trials(v) -> str:
    """Trials to reach a bar: ``19``, or ``never``."""
    return "never" if v is None else f"{v:g}"


# ----------------------------------------------------------------------------- search


def counted(trials: list[dict]) -> list[dict]:
    """The trials that count toward the budget (finished, not interrupted), in the order they were asked."""
    return [t for t in trials if t["state"] in ("COMPLETE", "PRUNED", "FAIL") and not t["void"]]


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


# ----------------------------------------------------------------------------- retraining


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
    for sampler, fraction in TARGET_TRIALS_FRACTION.items():
        if sampler not in eff:
            continue
        limit = fraction * budget
        m = eff[sampler]["median_to_bar"]
        per = eff[sampler]["per_repeat"]
        out.append({
            "target": f"{sampler.upper()} reaches random search's best-of-{budget} within {limit:g} trials",
            "met": m is not None and m <= limit,
            "evidence": f"bar {report['search']['random_bar']:.2f}% (median of random's best-of-{budget}: "
                        f"{', '.join(f'{v:.2f}%' for v in report['search']['random_best'].values())}); {sampler} median "
                        f"{fmt_trials(m)} trials (repeats: {', '.join(fmt_trials(p['to_bar']) for p in per.values())})",
        })
    return out


# ----------------------------------------------------------------------------- diagnostics


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
            d["ppo_updates"] = len(actions) // PPOSettings().n_steps  # one update per n_steps finished trials
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


"""The statistics of search_cost.py: medians and ranges over repeats, Ray's overhead per round,
its split into a fixed part per command and a part per trial."""

from __future__ import annotations

import statistics


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def spread(values):
    values = [v for v in values if v is not None]
    return (min(values), max(values)) if values else (None, None)


def summarize(runs: list[dict], budget: int) -> dict:
    """Per variant: medians and min-max over repeats of the run-level numbers."""
    out = {}
    for name in dict.fromkeys(r["variant"] for r in runs):
        rs = [r for r in runs if r["variant"] == name]
        fields = {
            "wall_s": [r["wall_s"] for r in rs],
            "startup_s": [r.get("startup_s") for r in rs],
            "loop_s": [r.get("loop_s") for r in rs],
            "teardown_s": [r.get("teardown_s") for r in rs],
            "trials_per_min_loop": [60 * r["trials"] / r["loop_s"] if r.get("loop_s") else None for r in rs],
            "trials_per_min_wall": [60 * r.get("trials", 0) / r["wall_s"] for r in rs],
            "median_trial_s": [med(r.get("trial_s", [])) for r in rs],
            "median_gap_s": [med(r.get("gap_s", [])) for r in rs],
            "sum_trial_s": [sum(r.get("trial_s", [])) or None for r in rs],
        }
        out[name] = {k: {"median": med(v), "min": spread(v)[0], "max": spread(v)[1], "values": v}
                     for k, v in fields.items()}
        out[name]["states"] = [r.get("states") for r in rs]
        out[name]["all_ok"] = all(r["returncode"] == 0 and r.get("trials") == budget for r in rs)
    return out


def overheads(runs: list[dict], base: str, ray: str) -> dict | None:
    """(ray - base) / base for whole-command and trial-loop times, per round and on the medians."""
    by = {(r["variant"], r["round"]): r for r in runs}
    rounds = sorted({r["round"] for r in runs})
    out = {}
    for key in ("wall_s", "loop_s", "startup_s", "teardown_s"):
        pairs = [(by[(base, i)].get(key), by[(ray, i)].get(key)) for i in rounds if (base, i) in by and (ray, i) in by]
        pairs = [(b, r) for b, r in pairs if b and r is not None]
        if not pairs:
            return None
        per_round = [(r - b) / b for b, r in pairs]
        mb, mr = med([b for b, _ in pairs]), med([r for _, r in pairs])
        out[key] = {"per_round": per_round, "median_of_rounds": med(per_round), "min": min(per_round),
                    "max": max(per_round), "of_medians": (mr - mb) / mb, "extra_s_median": mr - mb}
    return out


def ray_costs(summary: dict, base: str, ray: str, budget: int) -> dict | None:
    """Ray's cost split into a fixed part per command (start-up + tear-down) and a part per trial (loop / N)."""
    if base not in summary or ray not in summary:
        return None
    b, r = summary[base], summary[ray]
    try:
        fixed = (r["startup_s"]["median"] + r["teardown_s"]["median"]) - (b["startup_s"]["median"] + b["teardown_s"]["median"])
        per_trial = (r["loop_s"]["median"] - b["loop_s"]["median"]) / budget
        base_trial = b["loop_s"]["median"] / budget
    except TypeError:
        return None
    return {"fixed_s": fixed, "per_trial_s": per_trial, "base_trial_s": base_trial,
            "per_trial_fraction": per_trial / base_trial}


def same_trials(runs: list[dict]) -> bool:
    params = [r.get("params") for r in runs]
    return all(p == params[0] for p in params) and params[0] is not None

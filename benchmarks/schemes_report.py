"""schemes.py's analysis (baselines against KD, proxy fidelity, the equal-compute cut), plot and report."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from common import command_paragraph, dated_paragraph, fmt

from autokd.compare.stats import mean_sd_se, paired, spearman
from autokd.document import Heading, Paragraph, simple_table

REFERENCE = "kd"


def _runs(result: dict) -> dict[int, dict]:
    return {int(r["seed"]): r for r in result["runs"]}


def summarise(results: dict[str, dict], reference: Optional[dict]) -> dict[str, dict]:
    """Per strategy: test mean, sd, se, cost per run, and the paired difference with the reference (kd)."""
    ref = {seed: r["test_acc"] for seed, r in _runs(reference).items()} if reference else {}
    out = {}
    for name, result in results.items():
        runs = _runs(result)
        mean, sd, se = mean_sd_se([r["test_acc"] for r in runs.values()])
        steps = [r.get("steps") for r in runs.values() if r.get("steps") is not None]
        pair = paired(name, {s: r["test_acc"] for s, r in runs.items()}, REFERENCE, ref) if ref else None
        out[name] = {"test_mean": mean, "test_sd": sd, "test_se": se, "n": len(runs),
                     "steps": sum(steps) / len(steps) if steps else None,
                     "seconds": sum(r["seconds"] for r in runs.values()) / len(runs),
                     "vs_kd": None if pair is None else {"diff": pair.diff_mean, "se": pair.diff_se, "p": pair.p_value}}
    return out


def equal_compute(searches: dict[str, list[dict]]) -> dict:
    """Cumulative training steps of each search, the cut at the smaller total, the best trial within it."""
    totals = {n: sum(t["steps"] or 0 for t in ts) for n, ts in searches.items()}
    cut = min(totals.values()) if totals else 0
    curves, best = {}, {}
    for name, trials in searches.items():
        spent, top, so_far, curve, within = 0, None, None, [], 0
        for t in trials:
            spent += t["steps"] or 0
            if t["state"] == "COMPLETE" and t["value"] is not None:
                so_far = t["value"] if so_far is None else max(so_far, t["value"])  # the curve runs past the cut
                if spent <= cut and (top is None or t["value"] > top["value"]):
                    top = t
            within += spent <= cut
            curve.append([spent, so_far])
        curves[name] = curve
        if top is not None:
            best[name] = {"number": top["number"], "value": top["value"], "strategy": top["strategy"],
                          "trials_within_cut": within}
    return {"total_steps": totals, "cut_steps": cut, "curves": curves, "best": best}


def analyse(report: dict) -> dict:
    bases = report.get("baselines", {})
    out = {**equal_compute(report.get("searches", {})), "baselines": summarise(bases, bases.get(REFERENCE))}
    proxy = {n.removesuffix("-proxy"): r["runs"][0]["val_acc"] for n, r in report.get("baselines_proxy", {}).items()}
    names = [n for n in out["baselines"] if n in proxy]
    fid = spearman([proxy[n] for n in names], [out["baselines"][n]["test_mean"] for n in names])
    out["fidelity"] = {"rho": fid.rho, "p": fid.p_value, "n": fid.n, "proxy_val": proxy}
    if report.get("winners"):
        out["winners"] = summarise(report["winners"], bases.get(REFERENCE))
    return out


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a = report["analysis"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6))
    for table, color in ((a["baselines"], "#1f77b4"), (a.get("winners", {}), "#ff7f0e")):
        for name, s in table.items():
            if s["steps"] is not None:
                left.errorbar(s["steps"] / 1000, s["test_mean"], yerr=s["test_se"], fmt="o", color=color, capsize=3)
                left.annotate(name, (s["steps"] / 1000, s["test_mean"]), textcoords="offset points", xytext=(4, 4),
                              fontsize=8)
    left.set_xlabel("cost of one run (thousands of training steps)")
    left.set_ylabel("test accuracy (%), mean ± se")
    left.set_title("Scheme baselines (blue) and search winners (orange)", fontsize=10)
    left.grid(True, alpha=0.3)
    for name, curve in a["curves"].items():
        xs = [c[0] / 1000 for c in curve if c[1] is not None]
        right.plot(xs, [c[1] for c in curve if c[1] is not None], label=name)
    right.axvline(a["cut_steps"] / 1000, color="#555", linestyle="--", linewidth=1, label="equal-compute cut")
    right.set_xlabel("training steps spent by the search (thousands)")
    right.set_ylabel("best proxy validation accuracy so far (%)")
    right.set_title("Searches at equal compute", fontsize=10)
    right.grid(True, alpha=0.3)
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _row(name: str, s: dict, description: str = "") -> list[str]:
    vs = s["vs_kd"]
    return [name, f"{fmt(s['test_mean'])} ± {fmt(s['test_se'])}", str(s["n"]),
            fmt(s["steps"] / 1000, ".1f") + "k" if s["steps"] is not None else "-", fmt(s["seconds"], ".0f"),
            "-" if vs is None or name == REFERENCE else f"{vs['diff']:+.2f} (se {vs['se']:.2f})", description]


def _teacher_text(teacher: dict) -> str:
    kwargs = ", ".join(f"{k}={v}" for k, v in (teacher.get("kwargs") or {}).items())
    return f"{teacher['model']}({kwargs}) seed {(teacher.get('recipe') or {}).get('seed', 0)}"


def report_blocks(report: dict) -> list:
    a, desc = report["analysis"], report.get("descriptions", {})
    headers = ["strategy", "test % (mean ± se)", "seeds", "steps/run", "s/run", "vs kd, paired (points)", "what"]
    blocks = [Heading("Distillation schemes: what they buy, at what cost", 1), dated_paragraph(report),
              command_paragraph(report["command"]),
              Paragraph(f"Task {report['task']['name']}, teachers: " + ", ".join(_teacher_text(t) for t in
                        [report['task']['teacher'], *report['task']['teachers']])
                        + f"; full length {report['full_epochs']} epochs, proxy {report['proxy_epochs']}."),
              Heading("Scheme baselines against one-teacher KD", 2),
              simple_table(headers, [_row(n, s, desc.get(n, "")) for n, s in a["baselines"].items()], "lrrrrrl")]
    fid = a["fidelity"]
    blocks += [Heading("Proxy fidelity of the multi-stage schemes", 2),
               Paragraph(f"Spearman's rho between the baselines' proxy validation accuracy (seed 0, "
                         f"{report['proxy_epochs']} epochs) and their full-length test mean: "
                         f"{fmt(fid['rho'])} (p {fmt(fid['p'], '.3f')}, n {fid['n']}).")]
    blocks += [Heading("A search with schemes against one without, at equal compute", 2),
               Paragraph("Total training steps: " + ", ".join(f"{n} {v / 1000:.1f}k" for n, v in a["total_steps"].items())
                         + f"; both cut at {a['cut_steps'] / 1000:.1f}k steps. Best within the cut: "
                         + "; ".join(f"{n}: trial {b['number']} (proxy val {fmt(b['value'])}%, "
                                     f"{b['trials_within_cut']} trials within the cut)" for n, b in a["best"].items()))]
    if a.get("winners"):
        blocks.append(simple_table(headers, [_row(n, s) for n, s in a["winners"].items()], "lrrrrrl"))
    blocks.append(Paragraph(f"Plot: {report['plot']}. Total {report['total_s'] / 60:.1f} min."))
    blocks += [Paragraph(f"Note: {note}") for note in report.get("notes", [])]
    return blocks

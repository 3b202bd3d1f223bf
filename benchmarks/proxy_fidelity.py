"""Does the search's short proxy rank strategies like full-length training does, and how short can it be?

Strategies: N (--strategies, default 24) drawn from the space with Optuna's RandomSampler (seeded,
through ``space.suggest(trial)``, exactly as a random search would ask them), plus every shipped
hand-tuned baseline (CE-only included). Each strategy is trained

  * at full length (``task.recipes.full``): its TEST accuracy is the ground truth, averaged over
    seeds 0 .. --seeds-1;
  * at every proxy length E in --proxy-epochs: the proxy recipe (``task.recipes.proxy``, which is the
    full recipe unless the space overrides keys) with ``epochs = E`` -- so a cosine schedule anneals
    over the E epochs -- with seed 0, like a search trial; its VALIDATION accuracy is what the search
    would rank on.

For each proxy length: Spearman's rho (scipy.stats.spearmanr) between proxy validation accuracy and
full-length test accuracy over all strategies, and the time of one proxy trial (median over the
strategies, 1 torch thread; validation at the pruning rung and the end, as in a search trial). A strategy
whose run diverges counts as 0 % accuracy in the ranking it is in (how many did is reported). Two
reference rows bound what any proxy can reach: full-length VALIDATION vs full-length test (same runs),
and with --seeds 2, full-length test of seed 0 vs seed 1 (how reproducible the ground truth is).

Target (from the issue): rho >= 0.7 at the proxy length the search uses.

    .venv/bin/python benchmarks/proxy_fidelity.py                  # 24 + 12 strategies, ~10-20 min on 2 busy cores
    .venv/bin/python benchmarks/proxy_fidelity.py --seeds 2 --proxy-epochs 1 2 3 5 8 10

Writes reports/benchmarks/proxy_fidelity.{json,md,png} (--out-dir elsewhere).
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Optional

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from calibrate_default import prepare, run_jobs, task_line, task_summary  # noqa: E402  (its worker pool)
from common import (  # noqa: E402
    command_line, command_paragraph, load_average, machine_info, run_paragraph, rho, write_markdown,
)

from autokd.document import Figure, Heading, Paragraph, Strong, inline_markup, simple_table  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TARGET_RHO = 0.7


def parse_args(argv: Optional[Iterable[str]] = None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--space", default="default", help="shipped space name or a space YAML file")
    p.add_argument("--baselines", default=None, help="baselines YAML (default: the shipped baselines.yaml)")
    p.add_argument("--no-baselines", action="store_true", help="only the sampled strategies")
    p.add_argument("--strategies", type=int, default=24, help="strategies sampled from the space")
    p.add_argument("--sampler-seed", type=int, default=0, help="seed of Optuna's RandomSampler")
    p.add_argument("--proxy-epochs", type=int, nargs="+", default=[1, 2, 3, 5, 8, 10],
                   help="proxy lengths to measure (the proxy recipe with this many epochs)")
    p.add_argument("--seeds", type=int, default=1, help="full-length seeds per strategy (proxy: seed 0 only)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (0: in this process)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    p.add_argument("--out-dir", type=Path, default=REPO / "reports" / "benchmarks")
    p.add_argument("--name", default="proxy_fidelity", help="report file stem")
    return p.parse_args(argv)


def sample_strategies(space, n: int, seed: int) -> list[tuple[str, str, dict, object]]:
    """(name, kind, params, strategy) of ``n`` strategies drawn by Optuna's RandomSampler."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for i in range(n):
        trial = study.ask()
        strategy = space.suggest(trial)
        out.append((f"random {i}", "random", dict(trial.params), strategy))
        study.tell(trial, 0.0)
    return out


def describe(strategy) -> str:
    parts = []
    if strategy.alpha > 0:
        parts.append(f"{strategy.logit_loss} a={strategy.alpha:.2f} T={strategy.temperature:.1f}")
    for p in strategy.pairs:
        parts.append(f"{p.loss}@{p.student} x{p.weight:.3g}")
    for r in strategy.relations:
        parts.append(f"{r.loss} x{r.weight:.3g}")
    return ", ".join(parts) or "CE only"


def acc(run: dict, field: str) -> float:
    """A run's accuracy, 0 for a failed (diverged) run."""
    return 0.0 if run["failed"] else run[field]


def plot(path: Path, rows: list[dict], ceiling: Optional[float], chosen: Optional[int]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epochs"] for r in rows]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4))
    ax.plot(epochs, [r["rho"] if r["rho"] is not None else float("nan") for r in rows], "o-", label="proxy val vs full test")
    ax.axhline(TARGET_RHO, color="red", ls="--", label=f"target {TARGET_RHO}")
    if ceiling is not None:
        ax.axhline(ceiling, color="grey", ls=":", label=f"full val vs full test ({ceiling:.2f})")
    if chosen is not None:
        ax.axvline(chosen, color="green", alpha=0.5, lw=2, label=f"task proxy: {chosen} epochs")
    ax.set_xlabel("proxy epochs")
    ax.set_ylabel("Spearman rho")
    ax.set_ylim(min(0.0, *(r["rho"] or 0 for r in rows)) - 0.05, 1.0)
    ax.set_xticks(epochs)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Proxy fidelity")
    bx.plot(epochs, [r["seconds_median"] for r in rows], "o-")
    bx.set_xlabel("proxy epochs")
    bx.set_ylabel("seconds per proxy trial (median, 1 thread)")
    bx.set_xticks(epochs)
    bx.set_ylim(bottom=0)
    bx.set_title("Proxy cost")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def report_blocks(report: dict) -> list:
    m, chosen = report["machine"], report["chosen_rho"]
    if chosen is None:
        target = ["not measured (add it to --proxy-epochs)."]
    else:
        target = [Strong("MET" if chosen >= TARGET_RHO else "NOT MET"), f" (rho {chosen:.3f})."]
    rows = [[str(r["epochs"]), f"{r['rho']:.3f}" if r["rho"] is not None else "-",
             f"{r['p_value']:.2g}" if r["p_value"] is not None else "-", str(r["failed"]),
             f"{r['seconds_median']:.2f}", f"{r['seconds_mean']:.2f}"] for r in report["rows"]]
    epochs = report["proxy_epochs"]
    strategies = [[s["name"], s["what"], f"{s['full_test_mean']:.2f}"] + [f"{s['proxy_val'][str(e)]:.1f}" for e in epochs]
                  for s in report["strategies"]]
    references = "; ".join(f"{k}: rho {v:.3f}" if v is not None else f"{k}: -" for k, v in report["references"].items())
    return [
        Heading("Proxy fidelity", 1),
        Paragraph(inline_markup(f"Task {task_line(report['task'])}.")),
        run_paragraph(report, ' (times per trial grow with it)'),
        command_paragraph(report["command"]),
        Paragraph(f"{report['n_random']} strategies from the space (RandomSampler seed {report['sampler_seed']}) + "
                  f"{report['n_baselines']} shipped baselines = {len(report['strategies'])} strategies. Full length: "
                  f"{report['task']['full']['epochs']} epochs, test accuracy, mean over seeds {report['seeds']}. Proxy: "
                  "the proxy recipe with E epochs (cosine over E), seed 0, validation accuracy. Diverged runs count as 0 %."),
        Paragraph(["Target: ", Strong(f"Spearman rho >= {TARGET_RHO}"),
                   f" at the task's proxy length ({report['task']['proxy']['epochs']} epochs): "] + target),
        simple_table(["proxy epochs", "Spearman rho", "p-value", "diverged", "s / proxy trial (median)", "s (mean)"],
                     rows, "rrrrrr"),
        Paragraph(f"References (what no proxy can beat much): {references}. Full-length runs diverged: "
                  f"{report['full_failed']} of {len(report['strategies']) * len(report['seeds'])}."),
        Figure(f"{report['name']}.png", "rho against proxy epochs"),
        Heading("Strategies"),
        simple_table(["strategy", "what", "full test (mean)"] + [f"proxy {e} val" for e in epochs], strategies,
                     "llr" + "r" * len(epochs)),
    ]


def strategy_entries(args, space, recipes: dict) -> list[tuple[str, str, str, dict]]:
    """(name, kind, description, {recipe key: strategy}) of every strategy measured: baselines are
    re-adapted per recipe (DKD's warm-up is a fraction of the run); sampled ones are the same at every length."""
    from autokd.config.baselines import load_baselines

    entries = [(name, kind, describe(strategy), {k: strategy for k in recipes})
               for name, kind, _, strategy in sample_strategies(space, args.strategies, args.sampler_seed)]
    if not args.no_baselines:
        per_recipe = {k: {b.name: b for b in load_baselines(args.baselines, space.pairs, r)} for k, r in recipes.items()}
        entries += [(name, "baseline", describe(b.strategy), {k: per_recipe[k][name].strategy for k in recipes})
                    for name, b in per_recipe["full"].items()]
    return entries


def per_strategy(entries, runs: dict, seeds: list[int], epochs: list[int]) -> list[dict]:
    out = []
    for name, kind, what, _ in entries:
        full_runs = [runs[(name, "full", s)] for s in seeds]
        out.append({
            "name": name, "kind": kind, "what": what,
            "full_test": [acc(r, "test_acc") for r in full_runs],
            "full_test_mean": statistics.fmean(acc(r, "test_acc") for r in full_runs),
            "full_val_mean": statistics.fmean(acc(r, "val_acc") for r in full_runs),
            "full_failed": sum(r["failed"] for r in full_runs),
            "proxy_val": {str(e): acc(runs[(name, e, 0)], "val_acc") for e in epochs},
            "proxy_failed": {str(e): runs[(name, e, 0)]["failed"] for e in epochs},
            "proxy_seconds": {str(e): runs[(name, e, 0)]["seconds"] for e in epochs},
        })
    return out


def rank_rows(strategies: list[dict], epochs: list[int]) -> list[dict]:
    """Per proxy length: Spearman's rho (and p) of proxy validation against full-length test, and the cost."""
    from autokd.compare.stats import spearman

    truth = [s["full_test_mean"] for s in strategies]
    rows = []
    for e in epochs:
        fid = spearman([s["proxy_val"][str(e)] for s in strategies], truth)
        secs = [s["proxy_seconds"][str(e)] for s in strategies]
        rows.append({"epochs": e, "rho": fid.rho, "p_value": fid.p_value,
                     "failed": sum(s["proxy_failed"][str(e)] for s in strategies),
                     "seconds_median": statistics.median(secs), "seconds_mean": statistics.fmean(secs)})
    return rows


def print_summary(report: dict) -> None:
    print("\nproxy epochs | rho    | diverged | s/trial (median)")
    for r in report["rows"]:
        rho_text = f"{r['rho']:.3f}" if r["rho"] is not None else "  -  "
        print(f"{r['epochs']:>12} | {rho_text:>6} | {r['failed']:>8} | {r['seconds_median']:.2f}")
    for k, v in report["references"].items():
        print(f"reference {k}: rho {v:.3f}" if v is not None else f"reference {k}: -")
    print(f"full-length runs diverged: {report['full_failed']}")
    chosen, chosen_rho = report["chosen_epochs"], report["chosen_rho"]
    if chosen_rho is not None:
        print(f"{'PASS' if chosen_rho >= TARGET_RHO else 'FAIL'}  3. rho >= {TARGET_RHO} at the task's proxy "
              f"({chosen} epochs): {chosen_rho:.3f}")


def main(argv: Optional[Iterable[str]] = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    load_start = load_average()
    wall = time.perf_counter()
    space_file, space, prepared, _ = prepare(args.space, say=lambda msg: print(f"[prepare] {msg}", flush=True))
    summary = task_summary(space_file)
    print(f"task {task_line(summary)}")
    full, proxy = space_file.task.recipes.full, space_file.task.recipes.proxy
    recipes = {"full": full, **{e: replace(proxy, epochs=e) for e in args.proxy_epochs}}
    entries = strategy_entries(args, space, recipes)
    seeds = list(range(args.seeds))
    jobs = [((name, "full", s), by_recipe["full"], replace(full, seed=s), True) for name, _, _, by_recipe in entries
            for s in seeds]
    jobs += [((name, e, 0), by_recipe[e], replace(recipes[e], seed=0), False) for name, _, _, by_recipe in entries
             for e in args.proxy_epochs]
    runs = run_jobs(args.space, jobs, args.workers, args.threads)
    strategies = per_strategy(entries, runs, seeds, args.proxy_epochs)
    rows = rank_rows(strategies, args.proxy_epochs)
    truth = [s["full_test_mean"] for s in strategies]
    references = {"full-length val vs full-length test": rho([s["full_val_mean"] for s in strategies], truth)}
    if len(seeds) > 1:
        references["full test seed 0 vs seed 1"] = rho([s["full_test"][0] for s in strategies],
                                                       [s["full_test"][1] for s in strategies])
    report = {
        "benchmark": "proxy_fidelity", "name": args.name,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command_line(), "machine": machine_info(), "workers": args.workers, "threads": args.threads,
        "load_average_at_start": load_start, "load_average_at_end": load_average(),
        "wall_s": time.perf_counter() - wall, "space": args.space, "task": summary,
        "teacher": {"val_acc": prepared.teacher_info.val_acc, "test_acc": prepared.teacher_info.test_acc},
        "sampler_seed": args.sampler_seed, "n_random": args.strategies,
        "n_baselines": sum(1 for e in entries if e[1] == "baseline"),
        "seeds": seeds, "proxy_epochs": args.proxy_epochs, "target_rho": TARGET_RHO,
        "rows": rows, "references": references, "chosen_epochs": proxy.epochs,
        "chosen_rho": next((r["rho"] for r in rows if r["epochs"] == proxy.epochs), None),
        "full_failed": sum(s["full_failed"] for s in strategies), "strategies": strategies,
        "failures": {f"{k[0]} {k[1]} seed {k[2]}": r["reason"] for k, r in runs.items() if r["failed"]},
    }
    print_summary(report)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / f"{args.name}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    write_markdown(args.out_dir / f"{args.name}.md", report_blocks(report))
    plot(args.out_dir / f"{args.name}.png", rows, references["full-length val vs full-length test"], proxy.epochs)
    print(f"\nwrote {args.out_dir}/{args.name}.{{json,md,png}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

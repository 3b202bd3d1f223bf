"""Does confirming the leaders (``--confirm K``) change the exported winner, and is it better?

Each repeat is one TPE search of the default space (``--budget``, sampler seed = repeat) with
``--confirm K``: the same study gives both winners, rank 1 by the single proxy value (what a
search without ``--confirm`` exports) and rank 1 by the confirmed mean. Where they differ, both
are retrained at the task's full recipe over --seeds seeds (test accuracy, paired by seed).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/confirm.py     # about 30 min on 2 cores

Writes reports/benchmarks/confirm.{json,md}; work files go to --work-dir (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Iterable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command_paragraph, dated_paragraph, fmt, new_report, write_report  # noqa: E402
from schemes import cli, fresh_work_dir, train_configs  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv: Optional[Iterable[str]] = None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--space", default="default")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--budget", type=int, default=100)
    p.add_argument("--confirm", type=int, default=5, help="K: the leaders confirmed in each search")
    p.add_argument("--seeds", type=int, default=5, help="full-length seeds per winner")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--reuse", action="store_true",
                   help="keep --work-dir: reuse its finished searches and full-length runs, run only what is missing")
    p.add_argument("--work-dir", type=Path, default=REPO / "reports" / "benchmarks" / "confirm_work")
    p.add_argument("--out-dir", type=Path, default=REPO / "reports" / "benchmarks")
    return p.parse_args(argv)


def one_search(work: Path, repeat: int, args) -> dict:
    """The search with confirmation; both winners and the confirmed leaders."""
    import optuna

    from autokd.search.confirm import confirmed
    from autokd.search.leaderboard import complete_entries, ranked
    from autokd.search.storage import open_storage

    name, storage = f"confirm-{repeat}", work / "studies.db"
    run = {"wall_s": None}
    if not (args.reuse and (work / "logs" / f"search-{repeat}.log").is_file()):
        run = cli("search", "--space", args.space, "--budget", args.budget, "--sampler", "tpe", "--seed", repeat,
                  "--confirm", args.confirm, "--name", name, "--storage", storage, "--workers", args.workers,
                  log=work / "logs" / f"search-{repeat}.log")
    study = optuna.load_study(study_name=name, storage=open_storage(str(storage), create=False))
    by_value = min(complete_entries(study), key=lambda e: (-e.value, e.number))
    by_mean = ranked(study)[0]
    state = confirmed(study)
    return {"name": name, "wall_s": run["wall_s"], "by_value": by_value.number, "by_mean": by_mean.number,
            "noise": state["noise"], "confirmed": {str(k): v for k, v in state["trials"].items()}}


def retrain(work: Path, searches: list[dict], args) -> dict:
    """Full-length runs of each distinct winner (config as ``autokd export --trial N`` writes it)."""
    import yaml

    from autokd.search.export import export_config
    from autokd.search.storage import open_storage
    from autokd.search.study import load_existing_study

    configs = {}
    for s in searches:
        study = load_existing_study(s["name"], open_storage(str(work / "studies.db"), create=False))
        for number in {s["by_value"], s["by_mean"]}:
            configs[f"{s['name']}-trial{number}"] = yaml.safe_load(export_config(study, trial=number))
    done = {name: json.loads((work / "runs" / f"{name}-full.json").read_text()) for name in configs
            if args.reuse and (work / "runs" / f"{name}-full.json").is_file()}
    return {**done, **train_configs(work, {k: v for k, v in configs.items() if k not in done}, args.seeds, None,
                                    args.workers)}


def paired_diff(a: dict, b: dict) -> Optional[float]:
    ta = {r["seed"]: r["test_acc"] for r in a["runs"]}
    tb = {r["seed"]: r["test_acc"] for r in b["runs"]}
    seeds = sorted(set(ta) & set(tb))
    return statistics.fmean(ta[s] - tb[s] for s in seeds) if seeds else None


def report_blocks(report: dict) -> list:
    from autokd.document import Heading, Paragraph, simple_table

    rows, diffs = [], []
    for s in report["searches"]:
        value = report["runs"][f"{s['name']}-trial{s['by_value']}"]
        mean = report["runs"][f"{s['name']}-trial{s['by_mean']}"]
        c = s["confirmed"].get(str(s["by_value"]), {})
        differ = s["by_value"] != s["by_mean"]
        diff = paired_diff(mean, value) if differ else 0.0
        diffs.append(diff)
        rows.append([s["name"], str(s["by_value"]), fmt(c.get("values", [None])[0]), fmt(c.get("mean")),
                     str(s["by_mean"]), "yes" if differ else "no",
                     f"{fmt(value['test_mean'])} ± {fmt(value['test_sd'])}", f"{fmt(mean['test_mean'])} ± {fmt(mean['test_sd'])}",
                     fmt(diff), fmt(s["noise"])])
    changed = sum(s["by_value"] != s["by_mean"] for s in report["searches"])
    return [
        Heading("Confirming the leaders (--confirm) on the default task", 1),
        dated_paragraph(report),
        Paragraph(f"{len(report['searches'])} TPE searches of {report['budget']} trials with --confirm "
                  f"{report['confirm']} (2 more proxy seeds for each of the top {report['confirm']}). The winner by "
                  f"single proxy value is what a search without --confirm exports; the winner by confirmed mean is "
                  f"what it exports with. Full-length test accuracy over {report['seeds']} seeds (mean ± sd); the "
                  f"difference is paired by seed (confirmed minus unconfirmed)."),
        simple_table(["search", "winner by value", "its value", "its confirmed mean", "winner by mean", "differs",
                      "test (by value)", "test (by mean)", "diff", "proxy seed sd"], rows),
        Paragraph(f"The exported winner changed in {changed} of {len(report['searches'])} searches; mean paired "
                  f"difference over all searches {fmt(statistics.fmean(d for d in diffs if d is not None))} points."),
        command_paragraph(report["command"]),
    ]


def main(argv: Optional[Iterable[str]] = None) -> None:
    args = parse_args(argv)
    t_start = time.perf_counter()
    work = args.work_dir.resolve() if args.reuse else fresh_work_dir(args.work_dir)
    report = new_report("confirm", budget=args.budget, confirm=args.confirm, seeds=args.seeds)
    report["searches"] = []
    for repeat in range(args.repeats):
        print(f"search {repeat + 1}/{args.repeats} ...", flush=True)
        report["searches"].append(one_search(work, repeat, args))
    print("retraining the winners ...", flush=True)
    report["runs"] = retrain(work, report["searches"], args)
    report["total_s"] = time.perf_counter() - t_start
    write_report(args.out_dir, "confirm", report, report_blocks)
    print(f"total {report['total_s'] / 60:.1f} min")


if __name__ == "__main__":
    main()

"""Compression-aware distillation on the default task: quantization, pruning, and a student search.

Three experiments, every student at the task's full recipe over --seeds seeds (``autokd train``):

1. **Quantization**: the float student and int8 / int4 quantization-aware students, each trained
   with cross-entropy only and with KD (T=4, alpha=0.9). The accuracy is the deployed model's.
2. **Pruning**: the teacher pruned 50 % and 70 % (L1, channels removed), its accuracy before any
   training, then fine-tuned on the student's data without KD (cross-entropy) and with KD from
   the full teacher: the share of the pruning loss recovered, (after - pruned) / (teacher - pruned).
3. **Student search**: ``autokd search --space student_search`` (accuracy against deployed size,
   TPE, --budget trials); its Pareto-front points retrained at full length, against a grid of
   student widths each trained with the best single-teacher baseline (SP on the last stage, the
   strongest baseline on this task).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/compression.py    # about 13 min on 2 cores (one thread per run)

Writes reports/benchmarks/compression.{json,md,png}; work files go to --work-dir (git-ignored).
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import fmt, new_report, write_report  # noqa: E402
from compression_report import report_blocks, write_plot  # noqa: E402
from schemes import cli, fresh_work_dir, train_configs  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
KD = {"temperature": 4.0, "alpha": 0.9}
CE = {"alpha": 0.0}
GRID_WIDTHS = (16, 24, 32, 48, 64, 96)
PRUNE_AMOUNTS = (0.5, 0.7)


def parse_args(argv: Optional[Iterable[str]] = None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=3, help="full-length seeds per configuration")
    p.add_argument("--budget", type=int, default=100, help="trials of the student search")
    p.add_argument("--workers", type=int, default=2, help="train commands (and Ray trials) at once")
    p.add_argument("--front-max", type=int, default=8, help="front points retrained at most (spread over sizes)")
    p.add_argument("--epochs", type=int, default=None, help="student length (default: the task's full recipe)")
    p.add_argument("--skip-search", action="store_true", help="experiments 1 and 2 only")
    p.add_argument("--work-dir", type=Path, default=REPO / "reports" / "benchmarks" / "compression_work")
    p.add_argument("--out-dir", type=Path, default=REPO / "reports" / "benchmarks")
    return p.parse_args(argv)


def default_task() -> dict:
    import yaml

    from autokd.search.space_file import load_space_file

    task = yaml.safe_load(load_space_file("default").text)["task"]
    task.pop("teachers", None)
    return task


def compression_configs(task: dict) -> dict[str, dict]:
    """Experiments 1 and 2 as train configs (the task inline, the full recipe)."""
    configs = {}
    for loss_name, loss in (("ce", CE), ("kd", KD)):
        configs[f"float-{loss_name}"] = {"task": task, "strategy": dict(loss)}
        for bits in (8, 4):
            configs[f"int{bits}-{loss_name}"] = {"task": task, "strategy": {**loss, "compression": {"quantize": {"bits": bits}}}}
        for amount in PRUNE_AMOUNTS:
            prune = {"prune": {"amount": amount, "of": "teacher"}}
            configs[f"prune{int(amount * 100)}-{loss_name}"] = {"task": task, "strategy": {**loss, "compression": prune}}
    return configs


def pruned_teachers(task: dict) -> dict:
    """The teacher, and each pruned copy before any training (val and test accuracy, parameters)."""
    import torch

    from autokd.compression.prune import prune_channels
    from autokd.config.task import task_from_dict
    from autokd.data import cache_dir, load_task_data
    from autokd.training.fit import accuracy
    from autokd.training.teacher import get_teacher

    spec = task_from_dict(copy.deepcopy(task))
    data = load_task_data(spec.data, cache_dir())
    teacher_data = load_task_data(replace(spec.data, train_size=None), cache_dir())
    device = torch.device("cpu")
    teacher, info = get_teacher(spec, teacher_data, device, cache_dir())
    out = {"teacher": {"val_acc": info.val_acc, "test_acc": info.test_acc,
                       "params": sum(p.numel() for p in teacher.parameters())}}
    example = torch.zeros(2, *data.input_shape)
    for amount in PRUNE_AMOUNTS:
        pruned = prune_channels(teacher, amount, example).eval()
        out[f"prune{int(amount * 100)}"] = {"val_acc": accuracy(pruned, data, "val", device),
                                            "test_acc": accuracy(pruned, data, "test", device),
                                            "params": sum(p.numel() for p in pruned.parameters())}
    return out


def recovered(before: dict, results: dict) -> dict:
    """Share of the pruning loss recovered by fine-tuning, without and with KD (test accuracy)."""
    teacher = before["teacher"]["test_acc"]
    out = {}
    for amount in PRUNE_AMOUNTS:
        key = f"prune{int(amount * 100)}"
        lost = teacher - before[key]["test_acc"]
        out[key] = {loss: (results[f"{key}-{loss}"]["test_mean"] - before[key]["test_acc"]) / lost if lost > 0 else None
                    for loss in ("ce", "kd")}
    return out


def student_search(work: Path, args) -> dict:
    """The multi-objective search through the CLI, and its front (feasible, by accuracy)."""
    import optuna

    from autokd.search.leaderboard import front
    from autokd.search.storage import open_storage

    storage = work / "studies.db"
    run = cli("search", "--space", "student_search", "--budget", args.budget, "--sampler", "tpe", "--seed", 0,
              "--name", "student-search", "--storage", storage, "--workers", args.workers,
              log=work / "logs" / "search.log")
    study = optuna.load_study(study_name="student-search", storage=open_storage(str(storage), create=False))
    points = [{"number": e.number, "val_acc": e.value, "values": e.values, "footprint": e.footprint,
               "strategy": e.strategy} for e in front(study)]
    return {"wall_s": run["wall_s"], "front": points, "trials": len(study.trials)}


def spread(points: list[dict], most: int) -> list[dict]:
    """At most ``most`` front points, spread evenly over the front (smallest and largest kept)."""
    if len(points) <= most:
        return points
    step = (len(points) - 1) / (most - 1)
    return [points[round(i * step)] for i in range(most)]


def front_configs(work: Path, points: list[dict]) -> dict[str, dict]:
    from autokd.search.export import export_config
    from autokd.search.storage import open_storage
    from autokd.search.study import load_existing_study

    import yaml

    study = load_existing_study("student-search", open_storage(str(work / "studies.db"), create=False))
    return {f"front-{p['number']}": yaml.safe_load(export_config(study, trial=p["number"])) for p in points}


def grid_configs(task: dict) -> dict[str, dict]:
    """The best single-teacher baseline (SP, last stage, weight 3000) at each grid width."""
    sp = {"alpha": 0.0, "pairs": [{"teacher": "stages.2", "student": "stages.2", "loss": "sp", "weight": 3000.0}]}
    return {f"grid-sp-{w}": {"task": task, "strategy": {**sp, "student": {"channels": w}}} for w in GRID_WIDTHS}


def main(argv: Optional[Iterable[str]] = None) -> None:
    args = parse_args(argv)
    t_start = time.perf_counter()
    work = fresh_work_dir(args.work_dir)
    task = default_task()
    report = new_report("compression", seeds=args.seeds, budget=args.budget)
    print("teacher and pruned teachers ...", flush=True)
    report["pruned_teachers"] = pruned_teachers(task)
    print(f"experiments 1 and 2: {args.seeds} seeds each ...", flush=True)
    report["runs"] = train_configs(work, compression_configs(task), args.seeds, args.epochs, args.workers)
    report["recovered"] = recovered(report["pruned_teachers"], report["runs"])
    if not args.skip_search:
        print(f"experiment 3: student search, budget {args.budget} ...", flush=True)
        report["search"] = student_search(work, args)
        chosen = spread(report["search"]["front"], args.front_max)
        report["front_runs"] = train_configs(work, front_configs(work, chosen), args.seeds, args.epochs, args.workers)
        print("grid of widths with the SP baseline ...", flush=True)
        report["grid_runs"] = train_configs(work, grid_configs(task), args.seeds, args.epochs, args.workers)
    report["total_s"] = time.perf_counter() - t_start
    write_report(args.out_dir, "compression", report, report_blocks)
    if "grid_runs" in report:
        write_plot(report, args.out_dir / "compression.png")
    print(f"total {report['total_s'] / 60:.1f} min; float KD {fmt(report['runs']['float-kd']['test_mean'])} %")


if __name__ == "__main__":
    main()

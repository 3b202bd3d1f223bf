"""Which second teacher should the default task ship for the multi-teacher (ensemble) scheme?

Each candidate is trained (and cached) like the task's teacher, then measured three ways, all on
validation (test accuracy is reported, never used to choose):

1. the candidate alone (validation and test accuracy);
2. the two teachers' averaged softmax on validation (does the pair know more than the teacher?);
3. the ``multi_teacher`` baseline of ``search_spaces/scheme_baselines.yaml`` (equal weights, KD
   T=4, alpha=0.9) at the task's full recipe over --seeds seeds, next to one-teacher ``kd`` on the
   same seeds: the student's validation accuracy is what chooses.

    .venv/bin/python benchmarks/second_teacher.py            # about 5 min on 2 cores (the teachers once more)

Writes reports/benchmarks/second_teacher.{json,md}; work files go to --work-dir (git-ignored).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command_paragraph, dated_paragraph, fmt, load_average, new_report, write_markdown  # noqa: E402
from schemes import baseline_configs, fresh_work_dir, train_configs, with_second_teacher  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# The task's teacher is cnn1d(channels=128) trained with seed 0. Candidates: the same network from
# another seed (errors differ by initialisation only), a narrower CNN, and an MLP (other errors).
CANDIDATES = {
    "cnn1d-128-seed1": {"model": "cnn1d", "kwargs": {"channels": 128}, "seed": 1},
    "cnn1d-96-seed1": {"model": "cnn1d", "kwargs": {"channels": 96}, "seed": 1},
    "mlp1d-512x3-seed1": {"model": "mlp1d", "kwargs": {"width": 512, "depth": 3}, "seed": 1},
}


def parse_args(argv: Optional[Iterable[str]] = None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--space", default="default", help="shipped space name or space file (its task)")
    p.add_argument("--seeds", type=int, default=5, help="full-length student seeds per candidate")
    p.add_argument("--epochs", type=int, default=None, help="student length (default: the task's full recipe)")
    p.add_argument("--workers", type=int, default=2, help="train commands at once")
    p.add_argument("--work-dir", type=Path, default=REPO / "reports" / "benchmarks" / "second_teacher_work")
    p.add_argument("--out-dir", type=Path, default=REPO / "reports" / "benchmarks")
    return p.parse_args(argv)


def candidate_task(task: dict, candidate: dict) -> dict:
    """The task with ``candidate`` as its one further teacher (the teacher's recipe, another seed)."""
    return with_second_teacher(task, candidate["model"], candidate["kwargs"], candidate["seed"])


def measure_teachers(task: dict) -> dict:
    """The candidate alone and the pair's averaged softmax, on validation (and test, for the record)."""
    import torch

    from autokd.config.task import task_from_dict
    from autokd.data import cache_dir, load_task_data
    from autokd.training.teacher import get_teacher

    spec = task_from_dict(copy.deepcopy(task))
    data = load_task_data(replace(spec.data, train_size=None), cache_dir())
    device = torch.device("cpu")
    main_model, main_info = get_teacher(spec, data, device, cache_dir())
    out = {"teacher": {"val_acc": main_info.val_acc, "test_acc": main_info.test_acc}}
    for name, cand in CANDIDATES.items():
        one = task_from_dict(candidate_task(task, cand)).with_teacher(0)
        t0 = time.perf_counter()
        model, info = get_teacher(one, data, device, cache_dir())
        out[name] = {"val_acc": info.val_acc, "test_acc": info.test_acc, "source": info.source,
                     "seconds": time.perf_counter() - t0, "parameters": sum(p.numel() for p in model.parameters()),
                     "pair_val_acc": pair_accuracy(main_model, model, data, "val"),
                     "pair_test_acc": pair_accuracy(main_model, model, data, "test")}
    return out


def pair_accuracy(a, b, data, split: str) -> float:
    import torch

    correct = total = 0
    with torch.no_grad():
        for _, x, y in data.batches(split, 1024, shuffle=False, device=torch.device("cpu")):
            probs = a(x).softmax(1) + b(x).softmax(1)
            correct += (probs.argmax(1) == y).sum().item()
            total += len(y)
    return 100.0 * correct / max(total, 1)


def students(task: dict, work: Path, args) -> dict:
    """``kd`` (one teacher) and ``multi_teacher`` with each candidate, full length, --seeds seeds."""
    from autokd.config.task import task_from_dict

    configs = {}
    for name, cand in CANDIDATES.items():
        with_two = candidate_task(task, cand)
        bases = baseline_configs(with_two, task_from_dict(copy.deepcopy(with_two)))
        configs[f"multi_teacher+{name}"] = bases["multi_teacher"]
        configs.setdefault("kd", {"task": task, "strategy": bases["kd"]["strategy"]})
    return train_configs(work, configs, args.seeds, args.epochs, args.workers)


def report_blocks(report: dict) -> list:
    from autokd.document import Heading, Paragraph, simple_table

    t, s = report["teachers"], report["students"]
    rows = [["(the task's teacher)", fmt(t["teacher"]["val_acc"]), fmt(t["teacher"]["test_acc"]), "", "", "", ""]]
    kd = s["kd"]
    for name in CANDIDATES:
        c, st = t[name], s[f"multi_teacher+{name}"]
        rows.append([name, fmt(c["val_acc"]), fmt(c["test_acc"]), fmt(c["pair_val_acc"]),
                     f"{fmt(st['val_mean'])} ± {fmt(st['val_sd'])}", f"{fmt(st['test_mean'])} ± {fmt(st['test_sd'])}",
                     "**chosen**" if name == report["chosen"] else ""])
    ranked = sorted(CANDIDATES, key=lambda n: -s[f"multi_teacher+{n}"]["val_mean"])
    first, second = (s[f"multi_teacher+{n}"] for n in ranked[:2])
    margin = Paragraph(f"The chosen candidate leads the next ({ranked[1]}) by {fmt(first['val_mean'] - second['val_mean'])} "
                       f"points of mean validation accuracy, against seed-to-seed standard deviations of "
                       f"{fmt(first['val_sd'])} and {fmt(second['val_sd'])}.")
    return [
        Heading("Second teacher for the default task", 1),
        dated_paragraph(report),
        Paragraph(f"One-teacher KD student (T=4, alpha=0.9, {report['seeds']} seeds): val {fmt(kd['val_mean'])} ± "
                  f"{fmt(kd['val_sd'])} %, test {fmt(kd['test_mean'])} ± {fmt(kd['test_sd'])} %. The multi-teacher "
                  "student uses the task's teacher and the candidate with equal weights. Chosen by the multi-teacher "
                  "student's mean validation accuracy; test accuracy is shown, not used."),
        simple_table(["candidate", "val %", "test %", "pair val % (avg softmax)", "multi-teacher student val %",
                      "multi-teacher student test %", ""], rows),
        margin,
        command_paragraph(report["command"]),
    ]


def main(argv: Optional[Iterable[str]] = None) -> None:
    args = parse_args(argv)
    import yaml

    from autokd.search.space_file import load_space_file

    t_start = time.perf_counter()
    work = fresh_work_dir(args.work_dir)
    task = yaml.safe_load(load_space_file(args.space).text)["task"]
    task.pop("teachers", None)  # the candidates replace any the space already lists
    report = new_report("second_teacher", seeds=args.seeds, candidates=CANDIDATES)
    print("teachers (trained once, then cached) ...", flush=True)
    report["teachers"] = measure_teachers(task)
    print(f"students: kd and multi-teacher with each candidate, {args.seeds} seeds ...", flush=True)
    report["students"] = students(task, work, args)
    report["chosen"] = max(CANDIDATES, key=lambda n: report["students"][f"multi_teacher+{n}"]["val_mean"])
    report["load_average_at_end"] = load_average()
    report["total_s"] = time.perf_counter() - t_start
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "second_teacher.json").write_text(json.dumps(report, indent=1, default=str))
    write_markdown(args.out_dir / "second_teacher.md", report_blocks(report))
    print(f"chosen {report['chosen']}; total {report['total_s'] / 60:.1f} min")


if __name__ == "__main__":
    main()

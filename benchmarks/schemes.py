"""Do the distillation schemes pay for what they cost? Scheme baselines against one-teacher KD, and a
search with schemes against one without at equal compute.

The task is the space's (--space, default the shipped ``default``, whose second teacher was chosen
by benchmarks/second_teacher.py); a task with one teacher gets one more (the teacher's architecture
and recipe with another seed: --second-teacher-seed) so that multi-teacher can run. The one-teacher
figures do not change: a task's further teachers are used only by the ensemble scheme.

1. Baselines: every entry of ``search_spaces/scheme_baselines.yaml`` (kd, takd, dgkd, ban, dml,
   kdcl, multi_teacher, student) trained at the task's full recipe over --seeds seeds with the
   real CLI (``autokd train --config ... --seeds S --out ...``), two configs at once: test
   accuracy, its standard error, and the cost of one run (training steps: batches x models
   trained, every stage; and wall seconds). Each is paired by seed with ``kd``.
2. Proxy fidelity of the multi-stage schemes: the same baselines at the proxy length (seed 0, as a
   search trial sees it): Spearman's rho between proxy validation and full-length test accuracy
   over the baselines. Is the short run still a fair judge when a trial trains 2 to 3 models?
3. Equal compute: two searches of --budget trials with the same sampler and seed (the CLI, Ray, the
   space's pruning), one on the space as it is (one teacher), one whose space adds
   ``schemes: [single, born_again, mutual, online, assistant, ensemble]`` with the assistant
   halfway between teacher and student. Compute is counted in training steps recorded per
   trial; both are cut at the smaller of the two totals (trials in the order they were asked for),
   and each cut's best strategy (by proxy validation) is retrained over the seeds like a baseline.

    .venv/bin/python benchmarks/schemes.py                                   # about 1.5 h on 2 cores
    .venv/bin/python benchmarks/schemes.py --budget 4 --seeds 1 --epochs 2 --proxy-epochs 1   # smoke run

Writes reports/benchmarks/schemes.{json,md} and schemes.png (--out-dir, --name); work files go
to --work-dir (default reports/benchmarks/schemes_work/, git-ignored, emptied at the start).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Optional

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import new_report, write_report  # noqa: E402
from schemes_report import analyse, plot, report_blocks  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SCHEMES = ["single", "born_again", "mutual", "online", "assistant", "ensemble"]


def parse_args(argv: Optional[Iterable[str]] = None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--space", default="default", help="shipped space name or space file (its task and space)")
    p.add_argument("--second-teacher-seed", type=int, default=1, help="the seed of the teacher added to a task that has one")
    p.add_argument("--seeds", type=int, default=5, help="full-length seeds per strategy")
    p.add_argument("--epochs", type=int, default=None, help="full length (default: the task's full recipe)")
    p.add_argument("--proxy-epochs", type=int, default=None, help="proxy length (default: the task's proxy recipe)")
    p.add_argument("--budget", type=int, default=60, help="trials of each search")
    p.add_argument("--sampler", default="tpe")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="search trials / train commands at once")
    p.add_argument("--work-dir", type=Path, default=REPO / "reports" / "benchmarks" / "schemes_work")
    p.add_argument("--out-dir", type=Path, default=REPO / "reports" / "benchmarks")
    p.add_argument("--name", default="schemes")
    args = p.parse_args(argv)
    if min(args.seeds, args.budget) < 1:
        p.error("--seeds and --budget must be >= 1")
    return args


def cli(*args: str, log: Path) -> dict:
    """Run ``autokd ARGS`` in a subprocess (its output in ``log``); exit code and wall seconds."""
    t0 = time.perf_counter()
    with log.open("w") as out:
        code = subprocess.run([sys.executable, "-m", "autokd.cli.main", *map(str, args)], cwd=REPO, stdout=out,
                              stderr=subprocess.STDOUT, text=True).returncode
    if code != 0:
        sys.exit(f"autokd {' '.join(map(str, args))} exited {code}; see {log}:\n{log.read_text()[-2000:]}")
    return {"returncode": code, "wall_s": time.perf_counter() - t0}


def fresh_work_dir(work_dir: Path) -> Path:
    """``work_dir`` emptied, with its configs/, runs/ and logs/ (what train_configs writes)."""
    work = work_dir.resolve()
    shutil.rmtree(work, ignore_errors=True)
    for sub in ("configs", "runs", "logs"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    return work


def with_second_teacher(task: dict, model: str, kwargs: dict, seed: int) -> dict:
    """``task`` (a mapping) with one further teacher: ``model`` trained with the teacher's recipe and ``seed``."""
    spec = {"model": model, "kwargs": copy.deepcopy(kwargs), "recipe": {**task["teacher"]["recipe"], "seed": seed}}
    return {**copy.deepcopy(task), "teachers": [spec]}


def task_with_two_teachers(space_file, seed: int) -> dict:
    """The space's task; one with a single teacher gets the teacher again, trained with ``seed``."""
    from autokd.config.parse import to_mapping

    task = to_mapping(space_file.task)
    if task.get("teachers"):
        return task
    teacher = task["teacher"]
    return {**with_second_teacher(task, teacher["model"], teacher.get("kwargs") or {}, seed),
            "name": f"{task['name']}-two-teachers"}


def write_spaces(work: Path, space_file, task: dict) -> dict[str, Path]:
    """The space as it is, and the same with every scheme (assistant halfway between the models)."""
    from autokd.config.baseline_schemes import assistant_between

    plain = yaml.safe_load(space_file.text)["space"] or {}
    _, kwargs = assistant_between(space_file.task.teacher, space_file.task.student, "the benchmark's assistant")
    knobs = {"assistant": {"model": space_file.task.teacher.model, "kwargs": kwargs, "teacher_weight": [0.0, 1.0]},
             "ensemble": {"weights": ["equal", "confidence"]}}
    paths = {}
    for name, space in (("one_teacher", plain), ("schemes", {**plain, "schemes": SCHEMES, "scheme_knobs": knobs})):
        paths[name] = work / f"{name}.yaml"
        paths[name].write_text(yaml.safe_dump({"task": task, "space": space}, sort_keys=False))
    return paths


def train_configs(work: Path, configs: dict[str, dict], seeds: int, epochs: Optional[int], workers: int) -> dict:
    """``autokd train`` of each config (two at once); {name: its --out JSON plus the command's wall time}."""
    def one(name: str) -> dict:
        path, out = work / "configs" / f"{name}.yaml", work / "runs" / f"{name}-{epochs or 'full'}.json"
        path.write_text(yaml.safe_dump(configs[name], sort_keys=False))
        extra = ["--epochs", epochs] if epochs else []
        run = cli("train", "--config", path, "--seeds", seeds, "--out", out, "--device", "cpu", *extra,
                  log=work / "logs" / f"train-{name}-{epochs or 'full'}.log")
        return {**json.loads(out.read_text()), "wall_s": run["wall_s"]}

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return dict(zip(configs, pool.map(one, configs)))


def baseline_configs(task: dict, task_spec) -> dict[str, dict]:
    from autokd.config.baselines import load_baselines
    from autokd.config.strategy import strategy_to_dict
    from autokd.search.binding import bind_space
    from autokd.search.space_file import space_file_from_dict

    space = bind_space(space_file_from_dict({"task": task, "space": {"pair_losses": ["none"]}}, "benchmark"))
    bases = load_baselines("scheme_baselines", space.pairs, task_spec.recipes.full, task_spec)
    return {b.name: {"task": task, "strategy": strategy_to_dict(b.strategy)} for b in bases}


def descriptions(task_spec) -> dict[str, str]:
    from autokd.config.baselines import load_baselines

    return {b.name: b.description for b in load_baselines("scheme_baselines", [], task_spec.recipes.full, task_spec)}


def full_length(strategy: dict) -> dict:
    """A trial's strategy (proxy recipe) for a full-length run: the task's full recipe, the searched lr kept."""
    return {**{k: v for k, v in strategy.items() if k != "recipe"}, "recipe": {"lr": strategy["recipe"]["lr"]}}


def search(work: Path, space: Path, name: str, args) -> list[dict]:
    """One search through the CLI; its trials in the order asked for, with value, state and cost."""
    import optuna

    from autokd.search.ledger import STEPS_ATTR, STRATEGY_ATTR, is_void

    storage = work / "studies.db"
    run = cli("search", "--space", space, "--budget", args.budget, "--sampler", args.sampler, "--seed", 0,
              "--name", name, "--storage", storage, "--workers", args.workers, log=work / "logs" / f"search-{name}.log")
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{storage}")
    trials = [{"number": t.number, "state": t.state.name, "value": t.value, "steps": t.user_attrs.get(STEPS_ATTR),
               "strategy": t.user_attrs.get(STRATEGY_ATTR),
               "seconds": (t.datetime_complete - t.datetime_start).total_seconds()
               if t.datetime_complete and t.datetime_start else None}
              for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number) if not is_void(t)]
    return [{**t, "search_wall_s": run["wall_s"]} for t in trials]


def main(argv: Optional[Iterable[str]] = None) -> None:
    args = parse_args(argv)
    from autokd.config.task import task_from_dict
    from autokd.search.space_file import load_space_file

    t_start = time.perf_counter()
    work = fresh_work_dir(args.work_dir)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    space_file = load_space_file(args.space)
    task = task_with_two_teachers(space_file, args.second_teacher_seed)
    task_spec = task_from_dict(copy.deepcopy(task))
    proxy_epochs = args.proxy_epochs or task_spec.recipes.proxy.epochs
    report = new_report("schemes", settings={k: str(v) for k, v in vars(args).items()}, task=task,
                        full_epochs=args.epochs or task_spec.recipes.full.epochs, proxy_epochs=proxy_epochs)

    configs = baseline_configs(task, task_spec)
    report["descriptions"] = descriptions(task_spec)
    print(f"baselines ({', '.join(configs)}) over {args.seeds} seeds ...", flush=True)
    report["baselines"] = train_configs(work, configs, args.seeds, args.epochs, args.workers)
    print(f"baselines at the proxy length ({proxy_epochs} epochs, seed 0) ...", flush=True)
    report["baselines_proxy"] = train_configs(work, {f"{n}-proxy": c for n, c in configs.items()}, 1, proxy_epochs,
                                              args.workers)
    spaces = write_spaces(work, space_file, task)
    report["searches"] = {}
    for name, path in spaces.items():
        print(f"search {name} ({args.budget} trials) ...", flush=True)
        report["searches"][name] = search(work, path, name, args)
    cut = analyse(report)  # the equal-compute cut and each search's best strategy within it
    winners = {f"best_{name}": {"task": task, "strategy": full_length(best["strategy"])}
               for name, best in cut["best"].items()}
    print(f"retraining the winners at equal compute ({', '.join(winners)}) ...", flush=True)
    report["winners"] = train_configs(work, winners, args.seeds, args.epochs, args.workers)
    report["analysis"] = analyse(report)
    report["total_s"] = time.perf_counter() - t_start
    report["plot"] = f"{args.name}.png"
    write_report(args.out_dir, args.name, report, report_blocks)
    plot(report, args.out_dir / report["plot"])
    print(f"total {report['total_s'] / 60:.1f} min; wrote {args.out_dir / (args.name + '.md')}")


if __name__ == "__main__":
    main()

"""How much does a search trial cost beyond the training it does?

On the default task, one strategy (Hinton KD + a FitNets hint on stages.1: a logit loss, a
projector and a tapped feature) is trained for the proxy length three ways, one torch thread each:

  bare     a plain PyTorch loop written here: the same student, optimizer, schedule, batches,
           cached teacher outputs and loss formulas (autokd.losses' functions), forward hooks
           for the two features, validation once at the end; no autokd machinery
  trial    autokd.search.trial.run_trial in this process (Distiller, TeacherCache, fit, the
           trial's reporting), as `--workers 0` runs it
  ray      the same strategy as Ray Tune trials (`autokd search --workers 1`, a one-point space
           with a tiny learning-rate range so trials are distinct): each trial's wall time from
           the study (start to end, dispatch included); Ray's start-up is not in it

After one untimed run of each, the bare and trial runs alternate for --rounds rounds; the ratio
is the median of per-round trial / bare. Target: trial <= 1.3x bare.

    .venv/bin/python benchmarks/trial_overhead.py                  # ~4 min on an idle 2-core machine
    .venv/bin/python benchmarks/trial_overhead.py --rounds 2 --ray-trials 2 --epochs 3   # smoke run

Writes reports/benchmarks/trial_overhead.json and trial_overhead.md.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command_line, command_paragraph, dated_paragraph, load_average, machine_info, write_report  # noqa: E402

from autokd.config import PairLoss, Strategy  # noqa: E402
from autokd.document import Heading, Paragraph, simple_table  # noqa: E402
from autokd.losses import fitnet, kd  # noqa: E402
from autokd.models.projectors import make_projector  # noqa: E402
from autokd.models.registry import build_model  # noqa: E402
from autokd.training.fit import make_optimizer, make_scheduler  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TARGET = 1.3
PAIR = "stages.1"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--space", default="default", help="shipped space or space file (its task is used)")
    p.add_argument("--rounds", type=int, default=5, help="alternating bare / trial rounds")
    p.add_argument("--ray-trials", type=int, default=6, help="Ray Tune trials to time (0: skip)")
    p.add_argument("--epochs", type=int, default=None, help="training length (default: the task's proxy)")
    p.add_argument("--out-dir", type=Path, default=REPO / "reports" / "benchmarks")
    return p.parse_args(argv)


def the_strategy(recipe) -> Strategy:
    return Strategy(temperature=4.0, alpha=0.5, pairs=[PairLoss(PAIR, PAIR, "fitnet", 50.0)], recipe=recipe).validate()


def bare_loop(prepared, cache, strategy) -> float:
    """The same training written plainly; returns the final validation accuracy."""
    data, recipe, task = prepared.data, strategy.recipe, prepared.task
    torch.manual_seed(recipe.seed)
    student = build_model(task.student.model, task.student.kwargs, data.num_classes, data.input_shape)
    feats = {}
    modules = dict(student.named_modules())
    modules[PAIR].register_forward_hook(lambda m, i, o: feats.__setitem__("pair", o))
    with torch.no_grad():
        student.eval()
        student(torch.zeros(2, *data.input_shape))
    projector = make_projector(tuple(feats["pair"].shape[1:]), tuple(cache.features[PAIR].shape[1:]))
    optimizer = make_optimizer(list(student.parameters()) + list(projector.parameters()), recipe)
    scheduler = make_scheduler(optimizer, recipe)
    generator = torch.Generator().manual_seed(recipe.seed)
    for _ in range(recipe.epochs):
        student.train()
        projector.train()
        for idx, x, y in data.batches("train", recipe.batch_size, shuffle=True, generator=generator):
            logits = student(x)
            t_logits, t_pair = cache.logits[idx], cache.features[PAIR][idx]
            loss = (1 - strategy.alpha) * F.cross_entropy(logits, y) + strategy.alpha * kd(logits, t_logits, 4.0)
            loss = loss + 50.0 * fitnet(projector(feats["pair"]), t_pair)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        scheduler.step()
    student.eval()
    correct = total = 0
    with torch.no_grad():
        for _, x, y in data.batches("val", 1024):
            correct += (student(x).argmax(1) == y).sum().item()
            total += len(y)
    return 100.0 * correct / total


def time_in_process(prepared, cache, strategy, rounds: int) -> dict:
    from autokd.search.trial import run_trial

    bare, trial, accs = [], [], {}
    bare_loop(prepared, cache, strategy)  # untimed: the first run of each pays one-time costs (allocator, kernels)
    run_trial(prepared, strategy, cache, lambda _s: None, [])
    for _ in range(rounds):
        start = time.perf_counter()
        accs["bare"] = bare_loop(prepared, cache, strategy)
        bare.append(time.perf_counter() - start)
        start = time.perf_counter()
        accs["trial"] = run_trial(prepared, strategy, cache, lambda _s: None, []).value
        trial.append(time.perf_counter() - start)
    return {"bare_s": bare, "trial_s": trial, "val_acc": accs,
            "ratio_per_round": [t / b for t, b in zip(trial, bare)]}


def time_on_ray(space_file, strategy, trials: int, work: Path) -> dict:
    """Ray Tune trials of (almost) this strategy through the real CLI; their wall times from the study."""
    import optuna

    lr = strategy.recipe.lr
    space = {"temperature": strategy.temperature, "alpha": strategy.alpha, "logit_losses": ["kd"],
             "pairs": [{"teacher": PAIR, "student": PAIR}], "pair_losses": ["fitnet"], "relation_losses": [],
             "weight_scale": 0.5, "lr": {"low": lr, "high": lr * (1 + 1e-6)}, "pruning": False}
    task = yaml.safe_load(space_file.text)["task"]  # inline, whatever the file refers to
    path = work / "space.yaml"
    path.write_text(yaml.safe_dump({"task": task, "space": space}))
    db = work / "ray.db"
    subprocess.run([sys.executable, "-m", "autokd.cli.main", "search", "--space", str(path), "--budget", str(trials),
                    "--workers", "1", "--storage", str(db), "--name", "ray", "--sampler", "random"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    study = optuna.load_study(study_name="ray", storage=f"sqlite:///{db}")
    seconds = [(t.datetime_complete - t.datetime_start).total_seconds() for t in study.trials if t.value is not None]
    return {"trial_s": seconds, "values": [t.value for t in study.trials]}


def report_blocks(r: dict) -> list:
    med = {k: statistics.median(r["in_process"][k]) for k in ("bare_s", "trial_s")}
    ratio = statistics.median(r["in_process"]["ratio_per_round"])
    rows = [["bare PyTorch loop", f"{med['bare_s']:.2f}", "1.00", f"{r['in_process']['val_acc']['bare']:.2f}"],
            ["autokd trial, in process", f"{med['trial_s']:.2f}", f"{ratio:.3f}", f"{r['in_process']['val_acc']['trial']:.2f}"]]
    if r.get("ray", {}).get("trial_s"):
        ray_med = statistics.median(r["ray"]["trial_s"][1:] or r["ray"]["trial_s"])  # the first warms a worker up
        rows.append(["autokd trial on Ray Tune (first left out)", f"{ray_med:.2f}", f"{ray_med / med['bare_s']:.3f}", "-"])
    verdict = "MET" if ratio <= TARGET else "NOT MET"
    return [
        Heading("Trial overhead", 1),
        dated_paragraph(r, "; one torch thread"),
        command_paragraph(r["command"]),
        Paragraph(f"Strategy: {r['strategy']}; {r['epochs']} epochs of the task's proxy recipe, teacher outputs cached. "
                  f"Median over {r['rounds']} alternating rounds (in-process rows) and {len(r.get('ray', {}).get('trial_s', []))} "
                  "Ray trials."),
        simple_table(["run", "seconds (median)", "x bare", "val acc %"], rows, "lrrr"),
        Paragraph(f"Target: an in-process trial <= {TARGET}x the bare loop: {verdict} ({ratio:.3f}; per round "
                  + ", ".join(f"{x:.3f}" for x in r["in_process"]["ratio_per_round"]) + ")."),
    ]


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    from autokd.search.space_file import load_space_file
    from autokd.training.run import prepare_task
    from autokd.training.students import teacher_cache_for

    load_start = load_average()
    space_file = load_space_file(args.space)
    recipe = space_file.task.recipes.proxy if args.epochs is None else replace(space_file.task.recipes.proxy, epochs=args.epochs)
    prepared = prepare_task(space_file.task, "cpu", progress=lambda m: print(f"[prepare] {m}", flush=True))
    strategy = the_strategy(recipe)
    cache = teacher_cache_for(prepared, [PAIR])
    report = {"benchmark": "trial_overhead", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "command": command_line(), "machine": machine_info(), "load_average_at_start": load_start,
              "strategy": strategy.describe(), "epochs": recipe.epochs, "rounds": args.rounds}
    report["in_process"] = time_in_process(prepared, cache, strategy, args.rounds)
    if args.ray_trials:
        with tempfile.TemporaryDirectory(prefix="autokd-overhead-") as work:
            report["ray"] = time_on_ray(space_file, strategy, args.ray_trials, Path(work))
    print(write_report(args.out_dir, "trial_overhead", report, report_blocks).read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

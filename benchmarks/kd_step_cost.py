"""What does distillation cost per training step, compared with plain cross-entropy?

On the default task (MNIST-1D, cnn1d teacher -> cnn1d student, the task's full recipe: its
batch size and optimizer), time ONE training step -- cached-teacher lookup when the variant uses one,
``Distiller`` forward (student + losses), ``zero_grad``, backward, ``optimizer.step`` -- for:

  ce          cross-entropy only (CE_ONLY, no teacher)
  kd_cached   Hinton KD (alpha 0.9, T 4), teacher outputs from a TeacherCache
  kd_live     Hinton KD, the teacher run on every batch (teacher_outputs=None)
  kd_fitnet   KD + FitNets hint stages.1 <- stages.1 (weight 100), cached teacher outputs

plus two reference rows, the CE and cached-KD steps written by hand without ``Distiller``
(``ce_plain``, ``kd_cached_plain``), which show Distiller's own overhead.

The variants are interleaved in rounds (each round runs every variant for --steps steps, in a
rotating order), so machine noise hits all of them alike; we report the median per-step time
over rounds with its interquartile range, and the median (and IQR) of the per-round ratios to
CE. A second view times one whole epoch through ``fit`` (1-epoch recipe, includes validation)
for CE vs cached KD. A third, "pieces", times the parts of the extra work in isolation
(cache lookup, loss forward+backward, hint projector, teacher forward, Adam step).

Target: a cached-teacher KD step costs <= 1.3x a CE step.

    .venv/bin/python benchmarks/kd_step_cost.py                # 1 thread (a search trial's share), ~30 s
    .venv/bin/python benchmarks/kd_step_cost.py --threads 1 2  # and 2 threads, ~1 min on an idle machine

Writes reports/benchmarks/kd_step_cost.json, kd_step_cost.md and kd_step_cost.png (bars: ms per step).
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

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command_line, load_average, machine_info, markdown, write_markdown  # noqa: E402
from kd_step_cost_report import (  # noqa: E402
    accounting, epoch_table, paired_diff, piece_table, plot, report_blocks, step_table, verdict,
)
from autokd.config import CE_ONLY, PairLoss, Strategy, load_task
from autokd.losses import fitnet, kd
from autokd.training.fit import fit, make_optimizer
from autokd.training.run import prepare_task
from autokd.training.students import build_distiller, teacher_cache_for

REPO = Path(__file__).resolve().parents[1]
TARGET_RATIO = 1.3


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", default="default", help="shipped search space or YAML file holding the task")
    p.add_argument("--threads", type=int, nargs="+", default=[1],
                   help="torch.set_num_threads values to measure, in turn (a search trial gets 1 CPU); "
                        "e.g. --threads 1 2")
    p.add_argument("--rounds", type=int, default=30, help="interleaved rounds of the step benchmark")
    p.add_argument("--steps", type=int, default=20, help="steps per variant per round")
    p.add_argument("--warmup", type=int, default=30, help="untimed steps per variant before timing")
    p.add_argument("--epoch-rounds", type=int, default=10, help="interleaved rounds of the 1-epoch fit view")
    p.add_argument("--piece-rounds", type=int, default=30, help="interleaved rounds of the pieces view")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", type=Path, default=REPO / "reports" / "benchmarks")
    args = p.parse_args()
    for name in ("rounds", "epoch_rounds", "piece_rounds"):  # an IQR needs two rounds
        if getattr(args, name) < 2:
            p.error(f"--{name.replace('_', '-')} {getattr(args, name)}: at least 2 rounds")
    return args


# ----------------------------------------------------------------------------- timing


def interleaved(fns: dict, rounds: int, reps: int) -> dict[str, list[float]]:
    """Per-call milliseconds of each fn, one value per round (the mean over ``reps`` calls).

    Each round calls every fn ``reps`` times back to back; the order rotates from round to round.
    """
    names = list(fns)
    times = {n: [] for n in names}
    for r in range(rounds):
        for n in names[r % len(names):] + names[: r % len(names)]:
            fn = fns[n]
            start = time.perf_counter()
            for _ in range(reps):
                fn()
            times[n].append((time.perf_counter() - start) * 1e3 / reps)
    return times


def quartiles(values: list[float]) -> tuple[float, float, float]:
    q1, med, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, statistics.median(values), q3


def summarize(times: dict[str, list[float]], base: str | None) -> dict:
    """Median/IQR per name; with ``base``, also the per-round ratio to it (same round = same noise)."""
    out = {}
    for name, vals in times.items():
        q1, med, q3 = quartiles(vals)
        row = {"median_ms": med, "q1_ms": q1, "q3_ms": q3, "rounds_ms": vals}
        if base is not None:
            r1, rmed, r3 = quartiles([v / b for v, b in zip(vals, times[base])])
            row.update(ratio=rmed, ratio_q1=r1, ratio_q3=r3, extra_ms=paired_diff(vals, times[base]))
        out[name] = row
    return out


# ----------------------------------------------------------------------------- the variants


def strategies() -> dict[str, Strategy]:
    kd_only = Strategy(alpha=0.9, temperature=4.0)
    hint = PairLoss(teacher="stages.1", student="stages.1", loss="fitnet", weight=100.0)
    return {
        "ce": CE_ONLY,
        "kd_cached": kd_only,
        "kd_live": kd_only,
        "kd_fitnet": replace(kd_only, pairs=[hint]),
    }


CACHED = {"kd_cached", "kd_fitnet"}
def make_step(distiller, optimizer, cache, batches):
    """One training step of ``fit``'s inner loop on the next batch of ``batches`` (cycled)."""
    state = {"i": 0}

    def step():
        idx, x, y = batches[state["i"] % len(batches)]
        state["i"] += 1
        cached = cache.lookup(idx) if cache is not None else None
        out = distiller(x, y, index=idx, teacher_outputs=cached)
        optimizer.zero_grad(set_to_none=True)
        out.total.backward()
        optimizer.step()

    return step


def make_plain_step(student, optimizer, cache, batches):
    """The same step written by hand, without Distiller (reference for Distiller's own overhead)."""
    state = {"i": 0}

    def step():
        idx, x, y = batches[state["i"] % len(batches)]
        state["i"] += 1
        logits = student(x)
        if cache is None:
            loss = F.cross_entropy(logits, y)
        else:
            loss = 0.1 * F.cross_entropy(logits, y) + 0.9 * kd(logits, cache.lookup(idx).logits, 4.0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def build_variants(prepared, recipe, seed):
    built = {}
    for name, strategy in strategies().items():
        distiller = build_distiller(prepared, strategy, seed).train()
        optimizer = make_optimizer(distiller.trainable_parameters(), recipe)
        cache = teacher_cache_for(prepared, distiller.teacher_paths) if name in CACHED else None
        built[name] = (distiller, optimizer, cache)
    return built


def full_batches(prepared, batch_size, seed):
    """One shuffled epoch of the real training split, full batches only."""
    gen = torch.Generator().manual_seed(seed)
    return list(prepared.data.batches("train", batch_size, shuffle=True, generator=gen, drop_last=True))


# ----------------------------------------------------------------------------- the three views


def bench_steps(prepared, built, batches, recipe, args) -> dict:
    steps = {name: make_step(*parts, batches) for name, parts in built.items()}
    for name, cache in (("ce_plain", None), ("kd_cached_plain", built["kd_cached"][2])):
        student = build_distiller(prepared, CE_ONLY, args.seed).student.train()
        steps[name] = make_plain_step(student, make_optimizer(student.parameters(), recipe), cache, batches)
    for step in steps.values():
        for _ in range(args.warmup):
            step()
    return summarize(interleaved(steps, args.rounds, args.steps), base="ce")


def bench_epoch(prepared, recipe, args) -> dict:
    """Wall time of ``fit`` for one epoch (every batch + validation), CE vs cached KD."""
    one_epoch = replace(recipe, epochs=1)
    s = strategies()
    kd_distiller = build_distiller(prepared, s["kd_cached"], args.seed)
    kd_cache = teacher_cache_for(prepared, kd_distiller.teacher_paths)

    def run(name):
        def go():
            distiller = build_distiller(prepared, s[name], args.seed)  # fresh student, as a trial
            cache = kd_cache if name == "kd_cached" else None
            start = time.perf_counter()
            fit(distiller, prepared.data, one_epoch, prepared.device, teacher_cache=cache)
            go.ms.append((time.perf_counter() - start) * 1e3)

        go.ms = []
        return go

    fns = {"ce": run("ce"), "kd_cached": run("kd_cached")}
    for fn in fns.values():
        fn()  # warm-up
        fn.ms.clear()
    interleaved(fns, args.epoch_rounds, 1)  # builds are untimed: use the times fit alone took
    return summarize({n: fn.ms for n, fn in fns.items()}, base="ce")


def bench_pieces(prepared, built, batches, args) -> dict:
    """The extra work of the KD variants, piece by piece, timed in isolation."""
    idx, x, y = batches[0]
    kd_cache = built["kd_cached"][2]
    fit_d, fit_opt, fit_cache = built["kd_fitnet"]
    live_d = built["kd_live"][0]
    ce_d, ce_opt, _ = built["ce"]

    s_logits = ce_d.student(x).detach()
    t_logits = kd_cache.lookup(idx).logits
    fit_d._student_taps.clear()
    fit_d.student(x)
    s_feat = fit_d._student_taps.outputs["stages.1"].detach()
    fit_d._student_taps.clear()
    t_feat = fit_cache.lookup(idx).features["stages.1"]
    projector = fit_d.projectors["0"]

    def kd_loss_fwd_bwd():
        s = s_logits.clone().requires_grad_(True)
        kd(s, t_logits, 4.0).backward()

    def ce_loss_fwd_bwd():
        s = s_logits.clone().requires_grad_(True)
        F.cross_entropy(s, y).backward()

    def hint_fwd_bwd():
        f = s_feat.clone().requires_grad_(True)
        (100.0 * fitnet(projector(f), t_feat)).backward()

    fns = {
        "lookup_logits": lambda: kd_cache.lookup(idx),
        "lookup_logits_and_stages1": lambda: fit_cache.lookup(idx),
        "ce_loss_fwd_bwd": ce_loss_fwd_bwd,
        "kd_loss_fwd_bwd": kd_loss_fwd_bwd,
        "hint_proj_mse_fwd_bwd": hint_fwd_bwd,
        "teacher_forward": lambda: live_d.teacher_outputs(x),
        "adam_step_student": adam_step(ce_d, ce_opt, None, batches),
        "adam_step_student_and_projector": adam_step(fit_d, fit_opt, fit_cache, batches),
    }
    for fn in fns.values():
        for _ in range(args.warmup):
            fn()
    out = summarize(interleaved(fns, args.piece_rounds, args.steps), base=None)

    # one-off: building the cache over the whole training split (once per task, not per step)
    start = time.perf_counter()
    teacher_cache_for(prepared, fit_d.teacher_paths)
    out["one_off_cache_build_logits_and_stages1"] = {"median_ms": (time.perf_counter() - start) * 1e3}
    return out


def adam_step(distiller, opt, cache, batches):
    """An optimiser step alone: one real training step first, so that every parameter has a gradient."""
    make_step(distiller, opt, cache, batches)()
    params = list(distiller.trainable_parameters())
    grads = [p.grad for p in params]

    def go():
        for p, g in zip(params, grads):
            p.grad = g
        opt.step()
    return go


# ----------------------------------------------------------------------------- report


def main():
    args = parse_args()
    load_at_start = load_average()
    torch.manual_seed(args.seed)
    task = load_task(args.task)
    start = time.perf_counter()
    prepared = prepare_task(task, "cpu", progress=lambda msg: print(f"[prepare] {msg}"))
    print(f"[prepare] done in {time.perf_counter() - start:.1f}s")
    recipe = task.recipes.full
    batches = full_batches(prepared, recipe.batch_size, args.seed)

    results = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        print(f"\n=== torch.set_num_threads({threads}) ===")
        built = build_variants(prepared, recipe, args.seed)
        steps = bench_steps(prepared, built, batches, recipe, args)
        epoch = bench_epoch(prepared, recipe, args)
        pieces = bench_pieces(prepared, built, batches, args)
        res = {"threads": threads, "load_average_after": load_average(),
               "steps": steps, "epoch": epoch, "pieces": pieces}
        results.append(res)
        print(markdown([step_table(steps), epoch_table(epoch), piece_table(pieces, steps["ce"]["median_ms"]),
                        *accounting(res)]))
        kd_ratio = steps["kd_cached"]["ratio"]
        print(f"\nTarget: cached-teacher KD step <= {TARGET_RATIO}x a CE step -> {verdict(kd_ratio, TARGET_RATIO)} "
              f"({kd_ratio:.2f}x, IQR {steps['kd_cached']['ratio_q1']:.2f}-{steps['kd_cached']['ratio_q3']:.2f}) "
              f"at {threads} thread(s)")

    report = {
        "benchmark": "kd_step_cost",
        "target": f"cached-teacher KD step <= {TARGET_RATIO}x a CE step",
        "target_ratio": TARGET_RATIO,
        "target_met": {str(r["threads"]): r["steps"]["kd_cached"]["ratio"] <= TARGET_RATIO for r in results},
        "task": task.name,
        "batch_size": recipe.batch_size,
        "train_samples": len(prepared.data.train),
        "val_samples": len(prepared.data.val),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": command_line(),
        "machine": {**machine_info(), "load_average_at_start": load_at_start, "load_average_at_end": load_average()},
        "method": (
            f"{args.warmup} warm-up steps per variant, then {args.rounds} rounds; each round runs every variant "
            f"for {args.steps} steps in a rotating order. A round's value is its mean ms per step; we report the "
            "median and interquartile range over rounds, and the median/IQR of the per-round ratio to CE. "
            "A step = cache lookup (cached variants) + Distiller forward + zero_grad + backward + Adam step, on "
            "pre-built batches (data batching is left out, it is the same for every variant). "
            f"Epoch view: {args.epoch_rounds} interleaved rounds of fit() with a 1-epoch recipe, fresh student each."
        ),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "results": results,
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "kd_step_cost.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(args.out_dir / "kd_step_cost.png", report)
    write_markdown(args.out_dir / "kd_step_cost.md", report_blocks(report))
    print(f"\nwrote {args.out_dir / 'kd_step_cost.json'}, {args.out_dir / 'kd_step_cost.md'} and {args.out_dir / 'kd_step_cost.png'}")


if __name__ == "__main__":
    main()

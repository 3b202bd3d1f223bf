"""What holds the PPO controller back? Its settings, measured on a synthetic stand-in for the default space.

A real 100-trial search on the default task takes 6-8 minutes, too slow to compare controller
settings over many seeds. This script keeps the default space's parameters (temperature, alpha,
the logit loss, three layer pairs with a loss and a scale each, three relations with on/off and
a scale) and replaces training by a fixed function of them that mimics what the real searches
found: KD peaks near T=4 and alpha 0.45, a hint on a pair helps at a moderate weight and hurts
at a large one, attention transfer at its published weight is harmful, similarity-preserving on
the last pair helps most; plus Gaussian noise (sd 0.3 points, as seed noise on the task). Every
sampler runs 100 trials for each of --seeds seeds; the bar is the median over the random-search
runs of their best-of-100, and each run is scored by the number of trials it needs to reach the
bar (the sample-efficiency measure of search_quality.py). TPE and the controller's old settings
(an update every 8 trials, learning rate 3e-3, clip range 0.2, gradient clip 0.5) are
references; "new defaults" are the controller's defaults of 2026-12-02, and the "new, ..." rows
change one setting each of those (its "20 epochs per update" row was the default from 2026-12-03
to 2026-12-06). All of those clip the whole action's probability ratio, as SB3's PPO does; the
"per-knob clip" rows clip each knob's ratio on its own (autokd/search/samplers/ppo_update.py):
the first of them is the shipped default since 2026-12-06, the others change one setting of it.

    .venv/bin/python benchmarks/ppo_controller.py              # 16 seeds, about 17 minutes on one core
    .venv/bin/python benchmarks/ppo_controller.py --seeds 3    # smoke run

Writes reports/benchmarks/ppo_controller.json and ppo_controller.md. The synthetic function is a
stand-in, not the task: search_quality.py measures the controller on real training.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import optuna
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command_paragraph, dated_paragraph, new_report, write_report  # noqa: E402

from autokd.document import Heading, Paragraph, simple_table  # noqa: E402
from autokd.search.samplers.ppo import PPOSampler, PPOSettings  # noqa: E402
from autokd.search.space import FloatRange  # noqa: E402
from autokd.search.strategy_space import Dimension  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PAIRS = ("p0", "p1", "p2")
RELATIONS = {"rkd": (0.3, 0.0), "pkt": (1.0, -0.3), "sp": (0.5, 0.0)}  # gain, best log10(scale)
PAIR_EFFECTS = {"fitnet": (1.5, -0.5, 0.8), "at": (0.5, -2.0, 0.5), "nst": (0.7, -1.0, 1.0), "sp": (1.0, 0.0, 1.0)}
# every setting of a row pinned here, so that a change of the shipped defaults does not change the rows
DEC02 = PPOSettings(n_steps=4, batch_size=4, n_epochs=10, bins=8, learning_rate=0.03, ent_coef=0.01, clip_range=0.3,
                    max_grad_norm=10.0, per_knob_clip=False)  # the defaults of 2026-12-02
OLD = replace(DEC02, n_steps=8, batch_size=8, learning_rate=3e-3, clip_range=0.2, max_grad_norm=0.5)
PER_KNOB = replace(DEC02, n_epochs=20, learning_rate=0.01, per_knob_clip=True)  # the defaults since 2026-12-06


class SyntheticSpace:
    """The default space's parameters (what the controller's action is built from), plus ``extra``
    knobs the score ignores (alternately a choice of four and a float on a log scale): the real
    space has more knobs than this stand-in (the modern losses' parameters, standardization)."""

    def __init__(self, extra: int = 0):
        self.extra = extra

    def dimensions(self) -> list[Dimension]:
        scale = FloatRange(0.001, 10, True)
        dims = [Dimension("temperature", range=FloatRange(1, 16, True)), Dimension("alpha", range=FloatRange(0, 1)),
                Dimension("logit_loss", choices=["kd", "dkd"])]
        for p in PAIRS:
            dims += [Dimension(f"{p}.loss", choices=["none", *PAIR_EFFECTS]), Dimension(f"{p}.scale", range=scale)]
        for r in RELATIONS:
            dims += [Dimension(f"{r}.on", choices=[False, True]), Dimension(f"{r}.scale", range=scale)]
        for i in range(self.extra):
            dims.append(Dimension(f"extra{i}", choices=["a", "b", "c", "d"]) if i % 2 == 0 else
                        Dimension(f"extra{i}", range=FloatRange(0.1, 10, True)))
        return dims


def _bump(x: float, center: float, width: float) -> float:
    return math.exp(-((x - center) / width) ** 2)


def score(p: dict, rng) -> float:
    """Synthetic proxy validation accuracy (%) of a strategy's parameters."""
    s = 87.5 + (5.0 if p["logit_loss"] == "kd" else 4.0) * _bump(p["alpha"], 0.45, 0.35) * _bump(
        math.log(p["temperature"]), math.log(4), 0.8) - (3 * (p["alpha"] - 0.9) if p["alpha"] > 0.9 else 0)
    for i, q in enumerate(PAIRS):
        if p[f"{q}.loss"] != "none":
            gain, center, width = PAIR_EFFECTS[p[f"{q}.loss"]]
            gain = 2.5 if p[f"{q}.loss"] == "sp" and i == 2 else gain
            x = math.log10(p[f"{q}.scale"])
            s += gain * _bump(x, center, width) - (4 * (x - center - 1) if x > center + 1 else 0)
    for r, (gain, center) in RELATIONS.items():
        if p[f"{r}.on"]:
            x = math.log10(p[f"{r}.scale"])
            s += gain * _bump(x, center, 0.8) - (3 * (x - center - 1) if x > center + 1 else 0)
    return min(99.0, s + rng.normal(0, 0.3))


def suggest(trial, dims) -> dict:
    """Ask for the active parameters (a scale only when its loss or relation is on)."""
    p = {}
    for d in dims:
        owner = d.name.split(".")[0]
        if d.name.endswith(".scale") and (p.get(f"{owner}.loss") == "none" or p.get(f"{owner}.on") is False):
            continue
        p[d.name] = (trial.suggest_categorical(d.name, d.choices) if d.choices is not None
                     else trial.suggest_float(d.name, d.range.low, d.range.high, log=d.range.log))
    return p


def best_so_far(sampler, seed: int, trials: int, space: SyntheticSpace = SyntheticSpace()) -> list[float]:
    rng = np.random.default_rng(1000 + seed)  # the same noise stream for every sampler at a seed
    study = optuna.create_study(direction="maximize", sampler=sampler)
    dims, best, curve = space.dimensions(), -math.inf, []
    for _ in range(trials):
        trial = study.ask()
        value = score(suggest(trial, dims), rng)
        study.tell(trial, value)
        best = max(best, value)
        curve.append(best)
    return curve


def trials_to(curve: list[float], bar: float):
    return next((k + 1 for k, v in enumerate(curve) if v >= bar), None)


def samplers(space: SyntheticSpace) -> dict:
    assert PER_KNOB == PPOSettings(), "the shipped defaults changed: add them as a row"
    new = DEC02  # each "new, ..." row changes one setting of it
    variants = {"ppo, old settings": OLD, "ppo, new defaults": new}  # labels kept: the committed report's rows
    for label, change in (("update every 8", {"n_steps": 8, "batch_size": 8}), ("lr 0.01", {"learning_rate": 0.01}),
                          ("lr 0.1", {"learning_rate": 0.1}), ("clip range 0.2", {"clip_range": 0.2}),
                          ("clip range 0.5", {"clip_range": 0.5}),
                          ("gradient clip 0.5", {"max_grad_norm": 0.5}), ("12 bins", {"bins": 12}),
                          ("4 bins", {"bins": 4}), ("entropy 0.03", {"ent_coef": 0.03}), ("entropy 0", {"ent_coef": 0.0}),
                          ("20 epochs per update", {"n_epochs": 20})):
        variants[f"new, {label}"] = replace(new, **change)
    variants["per-knob clip (shipped)"] = PER_KNOB
    for label, change in (("lr 0.03", {"learning_rate": 0.03}), ("lr 0.003", {"learning_rate": 0.003}),
                          ("clip range 0.2", {"clip_range": 0.2}), ("clip range 0.5", {"clip_range": 0.5}),
                          ("10 epochs per update", {"n_epochs": 10})):
        variants[f"per-knob, {label}"] = replace(PER_KNOB, **change)
    out = {"tpe": lambda s: optuna.samplers.TPESampler(seed=s, multivariate=True, group=True, constant_liar=True)}
    out.update({name: (lambda s, cfg=cfg: PPOSampler(space, seed=s, settings=cfg)) for name, cfg in variants.items()})
    return out, {name: asdict(cfg) for name, cfg in variants.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds are first-seed .. first-seed + seeds - 1")
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--extra-knobs", type=int, default=0, help="knobs the score ignores, added to the space")
    parser.add_argument("--out-dir", type=Path, default=REPO / "reports" / "benchmarks")
    parser.add_argument("--name", default="ppo_controller", help="report file stem")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    import warnings

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    report = new_report("ppo_controller", seeds=args.seeds, first_seed=args.first_seed, trials=args.trials,
                        extra_knobs=args.extra_knobs)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    space = SyntheticSpace(args.extra_knobs)
    random_curves = [best_so_far(optuna.samplers.RandomSampler(seed=s), s, args.trials, space) for s in seeds]
    report["bar"] = bar = statistics.median(c[-1] for c in random_curves)
    makers, report["settings"] = samplers(space)
    rows = {}
    for name, make in makers.items():
        start = time.perf_counter()
        curves = [best_so_far(make(s), s, args.trials, space) for s in seeds]
        reach = [trials_to(c, bar) for c in curves]
        rows[name] = {"trials_to_bar": reach, "best": [c[-1] for c in curves], "seconds": time.perf_counter() - start}
        print(f"{name:32s} median trials {_median_trials(reach)}  best {statistics.median(c[-1] for c in curves):.2f}",
              flush=True)
    report["rows"] = rows
    write_report(args.out_dir, args.name, report, report_blocks)
    return 0


def _median_trials(reach: list) -> str:
    m = statistics.median([r if r is not None else math.inf for r in reach])
    return "never" if math.isinf(m) else f"{m:g}"


def report_blocks(r: dict) -> list:
    table = [[name, _median_trials(row["trials_to_bar"]), f"{sum(x is not None for x in row['trials_to_bar'])}/{r['seeds']}",
              f"{statistics.median(row['best']):.2f}"] for name, row in r["rows"].items()]
    return [
        Heading("PPO controller settings on a synthetic space", 1),
        dated_paragraph(r),
        command_paragraph(r["command"]),
        Paragraph(f"{r['seeds']} seeds ({r.get('first_seed', 0)} to {r.get('first_seed', 0) + r['seeds'] - 1}) x "
                  f"{r['trials']} trials per sampler on the synthetic stand-in for the default space "
                  f"(see the script's docstring)"
                  + (f", with {r['extra_knobs']} knobs added that the score ignores" if r.get("extra_knobs") else "")
                  + f". Bar: random search's best-of-{r['trials']}, median over its runs: "
                  f"{r['bar']:.2f}. Trials to the bar: median over seeds ('never' when more than half never reach it)."),
        simple_table(["sampler", "trials to the bar (median)", "runs reaching it", f"best-of-{r['trials']} (median)"],
                     table, "lrrr"),
        Paragraph("Settings of each PPO row: " + "; ".join(
            f"{name}: n_steps {s['n_steps']}, lr {s['learning_rate']:g}, clip {s['clip_range']:g}, "
            f"epochs {s['n_epochs']}, grad clip {s['max_grad_norm']:g}, bins {s['bins']}, entropy {s['ent_coef']:g}, "
            f"{'per-knob' if s.get('per_knob_clip') else 'whole-action'} clip"
            for name, s in r["settings"].items()) + "."),
    ]


if __name__ == "__main__":
    raise SystemExit(main())

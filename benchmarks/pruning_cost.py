"""Does pruning make a search's trials slower, or only change which strategies it tries?

On the default task the first search with pruning on ran its trial epochs at 0.22-0.24 s against
0.17 s without (two pairs of fresh-machine searches, 2026-12-06). Two measurements tell a cost of
pruning itself from a change in what the search chose:

1. Controlled (``--rounds``): ``autokd search`` on the task of ``--space`` with every trial the same
   strategy family and cost (Hinton KD only: no pair or relation losses; temperature and alpha
   searched), ``--budget`` trials, ``--workers`` at once, pruning off and on alternately (the order
   swapped each round). Per search: wall time, complete and pruned trials, the median seconds of a
   complete and of a pruned trial (study timestamps: dispatch and set-up included), seconds per
   trial epoch. If pruning cost nothing, a complete trial takes as long both ways and a pruned one
   about half as long.
2. Attribution (``--studies``): study files of real searches, each ``off=PATH`` or ``on=PATH``. Each
   trial's seconds per epoch is fitted by least squares on the losses it uses (each pair loss on
   each stage, each relation, the logit loss), on the searches without pruning only; the fit then
   predicts the searches with pruning. A prediction that matches their measured seconds per epoch
   says the slower epochs are the strategies chosen, not pruning. The loss mix is reported too.

    .venv/bin/python benchmarks/pruning_cost.py --rounds 2                       # ~6 min on 2 cores
    .venv/bin/python benchmarks/pruning_cost.py --rounds 0 --studies off=a.db on=b.db   # attribution only

Writes reports/benchmarks/pruning_cost.{json,md}.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command_paragraph, dated_paragraph, fmt, new_report, write_report  # noqa: E402
from search_quality import run_search_cli  # noqa: E402

from autokd.document import Heading, Paragraph, simple_table  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--space", default="default", help="the task's space (shipped name or file)")
    p.add_argument("--rounds", type=int, default=2, help="controlled pairs of searches (0: skip)")
    p.add_argument("--budget", type=int, default=24, help="trials per controlled search")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--studies", nargs="*", default=[], metavar="off|on=PATH", help="study files to attribute")
    p.add_argument("--out-dir", type=Path, default=REPO / "reports" / "benchmarks")
    args = p.parse_args(argv)
    for item in args.studies:
        if item.split("=", 1)[0] not in ("off", "on") or "=" not in item:
            p.error(f"--studies takes off=PATH or on=PATH, not {item!r}")
    return args


def kd_only_space(space_text: str, pruning: bool) -> str:
    """The task of ``space_text`` with a space of Hinton KD alone (every trial the same cost)."""
    import yaml

    doc = yaml.safe_load(space_text)
    doc["space"] = {"temperature": {"low": 1, "high": 16, "log": True}, "alpha": {"low": 0, "high": 1},
                    "logit_losses": ["kd"], "logit_standardization": False, "pair_losses": ["none"],
                    "relation_losses": [], "pruning": pruning}
    return yaml.safe_dump(doc, sort_keys=False)


def trial_rows(storage: str) -> list[dict]:
    """Finished trials of every study in ``storage``: seconds, epochs trained, state, the losses used."""
    import optuna

    from autokd.search.ledger import STRATEGY_ATTR

    rows = []
    for name in optuna.get_all_study_names(storage):
        for t in optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False):
            strategy = t.user_attrs.get(STRATEGY_ATTR)
            if t.state.name not in ("COMPLETE", "PRUNED") or not strategy or not t.datetime_complete:
                continue
            epochs = strategy["recipe"]["epochs"] if t.state.name == "COMPLETE" else max(t.intermediate_values)
            losses = {f"{p['student']}:{p['loss']}" for p in strategy.get("pairs", [])}
            losses |= {f"relation:{r['loss']}" for r in strategy.get("relations", [])}
            losses.add(f"logit:{strategy['logit_loss']}" + ("+ls" if strategy.get("logit_standardization") else ""))
            rows.append({"state": t.state.name, "epochs": epochs, "losses": sorted(losses),
                         "seconds": (t.datetime_complete - t.datetime_start).total_seconds()})
    return rows


def controlled(args, work: Path) -> list[dict]:
    """``--rounds`` pairs of KD-only searches, pruning off and on, the order swapped each round."""
    from autokd.search.space_file import load_space_file

    text = load_space_file(args.space).text
    out = []
    for r in range(args.rounds):
        for pruning in ((False, True) if r % 2 == 0 else (True, False)):
            name = f"r{r}-{'on' if pruning else 'off'}"
            space = work / f"{name}.yaml"
            space.write_text(kd_only_space(text, pruning))
            db = work / f"{name}.db"
            run = run_search_cli(["search", "--space", str(space), "--budget", str(args.budget), "--workers",
                                  str(args.workers), "--storage", str(db), "--name", "x"], work / f"{name}.log", 1800)
            if run["returncode"] != 0:
                sys.exit(f"search {name} failed:\n{run['output_tail']}")
            rows = trial_rows(f"sqlite:///{db}")
            out.append({"round": r, "pruning": pruning, "wall_s": run["wall_s"], **summarise(rows)})
            print(f"{name}: {run['wall_s']:.1f} s, {out[-1]}", flush=True)
    return out


def summarise(rows: list[dict]) -> dict:
    times = {state: [r["seconds"] for r in rows if r["state"] == state] for state in ("COMPLETE", "PRUNED")}
    epochs = sum(r["epochs"] for r in rows)
    return {"complete": len(times["COMPLETE"]), "pruned": len(times["PRUNED"]), "trial_epochs": epochs,
            "median_complete_s": statistics.median(times["COMPLETE"]) if times["COMPLETE"] else None,
            "median_pruned_s": statistics.median(times["PRUNED"]) if times["PRUNED"] else None,
            "s_per_epoch": sum(r["seconds"] for r in rows) / epochs if epochs else None}


def attribute(studies: list[str]) -> dict:
    """Fit seconds per epoch on the losses used (searches without pruning), predict those with it."""
    runs = [{"label": item.split("=", 1)[0], "path": item.split("=", 1)[1],
             "rows": trial_rows(f"sqlite:///{Path(item.split('=', 1)[1]).resolve()}")} for item in studies]
    features = sorted({loss for run in runs for row in run["rows"] for loss in row["losses"]})

    def design(rows):
        return np.array([[1.0] + [float(f in row["losses"]) for f in features] for row in rows])

    fit_rows = [row for run in runs if run["label"] == "off" for row in run["rows"]]
    coef, *_ = np.linalg.lstsq(design(fit_rows), np.array([r["seconds"] / r["epochs"] for r in fit_rows]), rcond=None)
    out = []
    for run in runs:
        rows, weights = run["rows"], np.array([r["epochs"] for r in run["rows"]], float)
        predicted = float((design(rows) @ coef * weights).sum() / weights.sum())
        mix = {f: float(sum(r["epochs"] for r in rows if f in r["losses"]) / weights.sum()) for f in features}
        out.append({"label": run["label"], "path": run["path"], **summarise(rows), "predicted_s_per_epoch": predicted,
                    "loss_mix": mix})
    return {"features": features, "coefficients": dict(zip(["(per epoch, base)"] + features, map(float, coef))),
            "fitted_on": len(fit_rows), "runs": out}


def report_blocks(r: dict) -> list:
    blocks = [Heading("Pruning's cost: the trials, or the strategies chosen?", 1), dated_paragraph(r),
              command_paragraph(r["command"])]
    if r["controlled"]:
        blocks += [Heading("Controlled: every trial Hinton KD (the same cost)", 2), simple_table(
            ["round", "pruning", "wall s", "complete / pruned", "median complete trial s", "median pruned trial s",
             "s per trial epoch"],
            [[str(c["round"]), "on" if c["pruning"] else "off", f"{c['wall_s']:.1f}", f"{c['complete']} / {c['pruned']}",
              fmt(c["median_complete_s"]), fmt(c["median_pruned_s"]), fmt(c["s_per_epoch"], ".3f")]
             for c in r["controlled"]])]
    if r["attribution"]:
        a = r["attribution"]
        top = sorted(a["features"], key=lambda f: -abs(a["coefficients"][f]))[:6]
        blocks += [Heading("Attribution: real searches, seconds per epoch from the losses used", 2),
                   Paragraph(f"Least squares over {a['fitted_on']} trials of the searches without pruning; the "
                             "prediction for each search is its trials' fitted seconds per epoch, weighted by their "
                             "epochs. Loss mix: share of the search's trial epochs that used the loss."),
                   simple_table(["search", "pruning", "trials (pruned)", "trial epochs", "s per epoch measured",
                                 "predicted from the losses"] + [f"{f} (+{a['coefficients'][f]:.3f} s)" for f in top],
                                [[x["path"], x["label"], f"{x['complete'] + x['pruned']} ({x['pruned']})",
                                  str(x["trial_epochs"]), fmt(x["s_per_epoch"], ".3f"),
                                  fmt(x["predicted_s_per_epoch"], ".3f")] + [f"{x['loss_mix'][f]:.2f}" for f in top]
                                 for x in a["runs"]])]
    return blocks


def main(argv=None) -> int:
    args = parse_args(argv)
    report = new_report("pruning_cost")
    with tempfile.TemporaryDirectory(prefix="autokd-pruning-cost-") as work:
        report["controlled"] = controlled(args, Path(work)) if args.rounds else []
    report["attribution"] = attribute(args.studies) if args.studies else None
    print(write_report(args.out_dir, "pruning_cost", report, report_blocks).read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""autokd compare: baselines adapted to a task, statistics on known numbers, reuse of runs, reports."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from conftest import run_cli, write_space

from autokd.compare.baselines import load_baselines
from autokd.compare.stats import gap_closed, mean_sd_se, paired, spearman
from autokd.config.strategy import Recipe
from autokd.errors import AutokdError
from autokd.search.driver import SearchRequest, run_search
from autokd.search.space_file import load_space_file

PAIRS = [("stages.0", "stages.0"), ("stages.1", "stages.1"), ("stages.2", "stages.2")]
SPACE = {"pair_losses": ["none", "fitnet", "at"], "relation_losses": ["rkd"], "weight_scale": {"low": 0.01, "high": 1, "log": True}}


# --- baselines --------------------------------------------------------------------------


def test_shipped_baselines_adapt_to_the_task_pairs():
    baselines = {b.name: b for b in load_baselines(None, PAIRS, Recipe(epochs=24, lr=0.02))}
    assert {"student", "kd", "kd_mild", "fitnet", "at", "nst", "sp", "rkd", "pkt", "crd", "dkd", "combined"} <= set(baselines)
    assert baselines["student"].strategy.alpha == 0 and not baselines["student"].strategy.needs_teacher
    kd = baselines["kd"].strategy
    assert (kd.temperature, kd.alpha) == (4.0, 0.9)
    assert [(p.student, p.loss, p.weight) for p in baselines["fitnet"].strategy.pairs] == [("stages.1", "fitnet", 100.0)]
    assert [p.student for p in baselines["at"].strategy.pairs] == ["stages.0", "stages.1", "stages.2"]
    assert [p.student for p in baselines["sp"].strategy.pairs] == ["stages.2"]
    assert baselines["rkd"].strategy.relations[0].params == {"distance_weight": 25.0, "angle_weight": 50.0}
    assert baselines["dkd"].strategy.logit_params == {"alpha": 1.0, "beta": 8.0, "warmup": 2}  # 1/12 of 24 epochs
    for b in baselines.values():  # every baseline trains with the task's full recipe
        assert b.strategy.recipe == Recipe(epochs=24, lr=0.02)


def test_user_baselines_file_and_its_errors(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("baselines:\n  hint_first:\n    alpha: 0.2\n    pairs: [{at: first, loss: fitnet, weight: 3}]\n")
    (b,) = load_baselines(path, PAIRS, Recipe())
    assert b.name == "hint_first" and b.strategy.pairs[0].student == "stages.0" and b.strategy.alpha == 0.2
    path.write_text("baselines:\n  x:\n    pairs: [{at: middlish, loss: at, weight: 1}]\n")
    with pytest.raises(AutokdError, match="'middlish'; allowed: all, first, middle, last"):
        load_baselines(path, PAIRS, Recipe())
    path.write_text("baselines:\n  x:\n    pairs: [{at: all, loss: hint, weight: 1}]\n")
    with pytest.raises(AutokdError, match="unknown .*loss 'hint'"):
        load_baselines(path, PAIRS, Recipe())
    path.write_text("strategies: {}\n")
    with pytest.raises(AutokdError, match="expected one top-level key 'baselines'"):
        load_baselines(path, PAIRS, Recipe())


# --- statistics -------------------------------------------------------------------------


def test_statistics_on_known_numbers():
    mean, sd, se = mean_sd_se([70.0, 72.0, 74.0])
    assert (mean, sd, se) == pytest.approx((72.0, 2.0, 2.0 / math.sqrt(3)))
    assert mean_sd_se([5.0]) == (5.0, 0.0, 0.0)
    assert gap_closed(80.0, student=70.0, teacher=90.0) == pytest.approx(0.5)
    assert gap_closed(65.0, student=70.0, teacher=90.0) == pytest.approx(-0.25)
    # paired over seeds: differences 2, 3, 4 -> mean 3, sd 1, se 1/sqrt(3), t = 3 sqrt(3)
    result = paired("trial 3", {0: 80.0, 1: 81.0, 2: 84.0}, "kd", {0: 78.0, 1: 78.0, 2: 80.0, 3: 99.0})
    assert result.n == 3 and result.diff_mean == pytest.approx(3.0) and result.diff_sd == pytest.approx(1.0)
    assert result.t == pytest.approx(3 * math.sqrt(3))
    t = 3 * math.sqrt(3)  # two-sided p of Student's t with 2 degrees of freedom, in closed form
    assert result.p_value == pytest.approx(1 - t / math.sqrt(t * t + 2))
    fid = spearman([1, 2, 3, 4], [10, 20, 40, 30])
    assert fid.rho == pytest.approx(0.8) and fid.n == 4
    assert spearman([1, 2], [3, 4]).rho is None


# --- end to end ----------------------------------------------------------------------------


def _study(tmp_path, budget=3):
    path = write_space(tmp_path / "tiny.yaml", space=SPACE)
    request = SearchRequest(name="cmp", sampler="random", budget=budget, workers=0,
                            storage=str(tmp_path / "s.db"), device="cpu", pruning=False)
    return run_search(load_space_file(path), request, lambda _m: None, lambda _t, _f: None)


def test_compare_reuses_runs_and_adds_only_new_seeds(tmp_path):
    from autokd.compare.compare import run_compare

    study = _study(tmp_path)
    mini = tmp_path / "baselines.yaml"
    mini.write_text("baselines:\n  student: {alpha: 0.0}\n  kd: {alpha: 0.9, temperature: 4.0}\n")
    out = tmp_path / "report"
    first = run_compare(study, out, top_k=2, seeds=2, baselines_path=str(mini), workers=0, device="cpu", say=lambda _m: None)
    lines = (out / "runs.jsonl").read_text().splitlines()
    assert len(lines) == (2 + 2) * 2
    assert sorted({r.seed for r in first.runs}) == [0, 1]
    again = run_compare(study, out, top_k=2, seeds=3, baselines_path=str(mini), workers=0, device="cpu", say=lambda _m: None)
    lines = (out / "runs.jsonl").read_text().splitlines()
    assert len(lines) == (2 + 2) * 3  # only the new seed ran
    old = {(json.loads(l)["strategy"], json.loads(l)["seed"]): json.loads(l)["test_acc"] for l in lines}
    for r in first.runs:  # the earlier runs were reused as they were
        assert old[(r.strategy, r.seed)] == r.test_acc
    names = {s.name for s in again.summaries}
    best = max((t for t in study.trials if t.value is not None), key=lambda t: (t.value, -t.number))
    assert f"trial {best.number}" in names and {"student", "kd"} <= names
    summary = {s.name: s for s in again.summaries}
    runs = [r.test_acc for r in again.runs if r.strategy == "kd"]
    assert summary["kd"].n == 3 and summary["kd"].test_mean == pytest.approx(sum(runs) / 3)
    assert again.paired.found == f"trial {best.number}" and again.paired.n == 3
    assert again.fidelity.n == 2  # two found strategies: too few for a rank correlation
    assert summary["student"].gap_closed is None
    assert again.teacher["test_acc"] > summary["student"].test_mean


def test_compare_cli_on_ray_writes_the_report(tmp_path):
    study = _study(tmp_path, budget=2)
    mini = tmp_path / "baselines.yaml"
    mini.write_text("baselines:\n  student: {alpha: 0.0}\n  fitnet:\n    alpha: 0.0\n    pairs: [{at: middle, loss: fitnet, weight: 100.0}]\n")
    out = tmp_path / "rep"
    result = run_cli("compare", "cmp", "--storage", tmp_path / "s.db", "--top-k", "1", "--seeds", "2",
                     "--baselines", mini, "--out", out, "--workers", "2")
    assert result.returncode == 0, result.stderr
    for name in ("report.md", "report.html", "results.csv", "comparison.png", "optimization_history.png"):
        assert (out / name).exists(), name
    table = pd.read_csv(out / "results.csv")
    assert len(table) == 3 * 2 and set(table["strategy"]) == {"student", "fitnet", f"trial {study.best_trial.number}"}
    md = (out / "report.md").read_text()
    for _, row in table.groupby("strategy")["test_acc"].mean().items():
        assert f"{row:.2f}" in md  # the table holds the run's numbers
    assert "fitnet" in result.stdout and "student" in result.stdout
    missing = run_cli("compare", "nope", "--storage", tmp_path / "s.db")
    assert missing.returncode == 2 and "unknown study 'nope'" in missing.stderr

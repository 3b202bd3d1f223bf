"""autokd calibrate: rho per proxy length with intervals, resuming from its run store, the
recommendation, a constant schedule read from one run's curve, the CLI and its bad input."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import TINY_TASK, run_cli, write_space

from autokd.calibrate.analysis import LengthRow, StrategyResult, recommend, seed_noise
from autokd.calibrate.calibrate import CalibrateRequest, run_calibrate
from autokd.calibrate.plan import default_lengths
from autokd.compare.results import Fidelity
from autokd.search.space_file import load_space_file

SPACE = {"logit_losses": ["kd"], "pair_losses": ["none", "at"], "relation_losses": [],
         "weight_scale": {"low": 0.01, "high": 1, "log": True}}
BASELINES = "baselines:\n  student: {alpha: 0.0}\n  kd: {alpha: 0.9, temperature: 4.0}\n"


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _request(tmp_path, **kw) -> CalibrateRequest:
    (tmp_path / "baselines.yaml").write_text(BASELINES)
    base = dict(out_dir=tmp_path / "cal", strategies=4, seeds=2, baselines_path=str(tmp_path / "baselines.yaml"),
                workers=0, device="cpu")
    return CalibrateRequest(**{**base, **kw})


def test_calibrate_measures_rho_per_length_with_intervals_resumes_and_recommends(tmp_path):
    space_file = load_space_file(write_space(tmp_path / "tiny.yaml", space=SPACE))
    said = []
    cal = run_calibrate(space_file, _request(tmp_path, lengths=[2, 3]), say=said.append)
    assert [s.name for s in cal.strategies] == [f"sampled {i}" for i in range(4)] + ["student", "kd"]
    assert [r.epochs for r in cal.rows] == [2, 3]
    for row in cal.rows:  # six strategies: rho with a bootstrap interval
        assert row.fidelity.n == 6 and row.fidelity.rho is not None and -1 <= row.fidelity.rho <= 1
        assert row.fidelity.ci_low is not None and row.fidelity.ci_low <= row.fidelity.ci_high
        assert row.seconds > 0
    assert [r.rung for r in cal.rows] == [1, 1] and cal.rows[0].rung_fidelity.n == 6
    assert cal.seed_sd is not None and cal.seed_fidelity is not None and cal.full_seeds == [0, 1]
    rec = cal.recommendation
    assert rec.epochs in (2, 3, None) and rec.text
    if rec.epochs is not None:
        assert next(r for r in cal.rows if r.epochs == rec.epochs).fidelity.rho >= 0.7
    runs = _lines(tmp_path / "cal" / "runs.jsonl")
    # cosine anneals over the run: every length is its own run; 6 strategies x (2 full + 2 proxies)
    assert len(runs) == 6 * 4 and sum(r["kind"] == "proxy" for r in runs) == 12
    assert all(r["curve"] and set(r["curve"]) in ({"1", "2"}, {"1", "3"}) for r in runs if r["kind"] == "proxy")
    # (each proxy validated at its rung, epoch 1, and its end); the figures are the stored runs'
    kd = next(s for s in cal.strategies if s.name == "kd")
    assert kd.full_test == [r["test_acc"] for r in runs if r["strategy"] == "kd" and r["kind"] == "full"]
    # resumes from its store: nothing trains again (the task is never even prepared)
    said.clear()
    again = run_calibrate(space_file, _request(tmp_path, lengths=[2, 3]), say=said.append)
    assert len(_lines(tmp_path / "cal" / "runs.jsonl")) == 24 and "(24 already done)" in said[0]
    assert not any("teacher" in line for line in said)
    assert [r.fidelity.rho for r in again.rows] == [r.fidelity.rho for r in cal.rows]
    # another length only adds its runs
    more = run_calibrate(space_file, _request(tmp_path, lengths=[1, 2, 3]), say=lambda _m: None)
    assert len(_lines(tmp_path / "cal" / "runs.jsonl")) == 24 + 6 and [r.epochs for r in more.rows] == [1, 2, 3]


def test_a_constant_schedule_reads_shorter_lengths_from_one_runs_curve(tmp_path):
    from dataclasses import replace

    from autokd.calibrate.plan import rung_of
    from autokd.training.run import prepare_task, train_strategy

    task = {**TINY_TASK, "recipes": {"full": {**TINY_TASK["recipes"]["full"], "epochs": 4, "schedule": "constant"},
                                     "proxy": {"epochs": 2}}}
    space_file = load_space_file(write_space(tmp_path / "flat.yaml", task=task, space=SPACE))
    cal = run_calibrate(space_file, _request(tmp_path, lengths=[1, 2, 3], seeds=1), say=lambda _m: None)
    runs = _lines(tmp_path / "cal" / "runs.jsonl")
    proxies = [r for r in runs if r["kind"] == "proxy"]
    assert len(proxies) == 6 and all(set(r["curve"]) == {"1", "2", "3"} for r in proxies)  # one 3-epoch run each
    assert cal.by_curve and cal.seed_sd is None and cal.seed_fidelity is None
    # a value read off the curve is what a separate run of that length gives (same seed, same schedule)
    prepared = prepare_task(space_file.task, "cpu")
    sampled = next(s for s in cal.strategies if s.name == "sampled 0")
    from autokd.calibrate.plan import sampled_candidates

    strategy = sampled_candidates(space_file, [2], 1, 0)[0].proxies[2]
    alone = train_strategy(prepared, replace(strategy, recipe=replace(strategy.recipe, seed=0)), validate_at=())
    assert sampled.proxy_val[2] == pytest.approx(alone.val_acc)
    assert sampled.rung_val[2] == sampled.proxy_val[rung_of(2)]


def test_a_dkd_strategy_runs_each_length_even_on_a_constant_schedule(tmp_path):
    """A DKD warm-up is a share of the run: a 24-epoch run warmed up over 2 epochs; a 3-epoch trial over 1 (or
    a baseline's fraction of 3). Reading 3 off the long run's curve ranked another run than the search makes."""
    from autokd.calibrate.plan import make_plan, sampled_candidates

    task = {**TINY_TASK, "recipes": {"full": {**TINY_TASK["recipes"]["full"], "epochs": 24, "schedule": "constant"},
                                     "proxy": {"epochs": 12}}}
    plain = {**SPACE, "pair_losses": ["none"]}
    for losses, runs_per_candidate in ((["kd"], 1), (["dkd"], 2)):
        space_file = load_space_file(write_space(tmp_path / "c.yaml", task=task, space={**plain, "logit_losses": losses}))
        candidates = sampled_candidates(space_file, [3, 24], 2, 0)
        plan = make_plan(space_file, candidates, [3, 24], seeds=1)
        proxy_jobs = [j for j in plan.jobs if j.kind == "proxy"]
        assert len(proxy_jobs) == 2 * runs_per_candidate, losses
        if losses == ["dkd"]:
            assert {c.proxies[3].logit_params["warmup"] for c in candidates} == {1}


def _row(epochs: int, rho, rung_rho=None, top=None, top_rung=None, top_n=6) -> LengthRow:
    rung = epochs // 2 or None
    return LengthRow(epochs, Fidelity(rho, 0.01, 12, rho and rho - 0.1, rho and rho + 0.1), rung,
                     Fidelity(rung_rho, 0.01, 12) if rung else None, 1.0, 0,
                     Fidelity(rho if top is None else top, 0.1, top_n),
                     Fidelity(rung_rho if top_rung is None else top_rung, 0.1, top_n) if rung else None)


def test_recommendation_is_the_shortest_length_from_which_every_longer_one_clears():
    rows = [_row(5, 0.75), _row(10, 0.5), _row(20, 0.8, 0.72), _row(40, 0.9, 0.6)]
    rec = recommend(rows, 0.7, current=40)
    assert (rec.epochs, rec.rho, rec.pruning_safe) == (20, 0.8, True)  # 5 clears alone, 10 does not: not trusted
    assert "20 epochs" in rec.text and "space uses 40 today" in rec.text and "safe" in rec.text
    rec = recommend([_row(5, 0.2), _row(10, 0.9, 0.3)], 0.7, current=10)
    assert (rec.epochs, rec.pruning_safe) == (10, False) and "not safe" in rec.text and "uses today" in rec.text
    rec = recommend([_row(5, 0.2), _row(10, 0.6), _row(20, None)], 0.7, current=10)
    assert rec.epochs is None and "10 epochs at rho 0.60" in rec.text and "--lengths" in rec.text


def test_the_better_half_must_rank_well_too_once_it_can_be_judged():
    from dataclasses import replace

    # all strategies rank well at 30 epochs, the better half does not: 40 is recommended
    rows = [_row(30, 0.91, 0.8, top=0.69), _row(40, 0.97, 0.9, top=0.91, top_rung=0.81)]
    rec = recommend(rows, 0.7, current=40)
    assert (rec.epochs, rec.pruning_safe) == (40, True) and "0.91 over the better half" in rec.text
    rows[1] = _row(40, 0.97, 0.9, top=0.91, top_rung=0.5)  # the rung orders the better half poorly: no pruning
    assert recommend(rows, 0.7, current=40).pruning_safe is False
    rows[1] = replace(rows[1], top_rung_fidelity=Fidelity(None, None, 6))  # level at the rung: no rho
    rec = recommend(rows, 0.7, current=40)
    assert rec.pruning_safe is False and "rho 0.90 (not defined over the better half)" in rec.text and " -" not in rec.text
    # a better half of fewer than five strategies is not judged alone
    rec = recommend([_row(30, 0.91, top=0.2, top_n=4), _row(40, 0.97, top=0.1, top_n=4)], 0.7, current=40)
    assert rec.epochs == 30 and "too few strategies to judge the better half" in rec.text


def test_seed_noise_on_known_numbers_and_a_diverged_run_counts_as_zero():
    def result(name, tests):
        return StrategyResult(name, "sampled", "", tests, tests, {}, {}, {})

    strategies = [result("a", [90.0, 92.0]), result("b", [80.0, 81.0]), result("c", [None, 70.0]),
                  result("d", [75.0, 85.0])]
    sd, fid = seed_noise(strategies)
    assert sd == pytest.approx(((2.0 + 0.5 + 50.0) / 3) ** 0.5)  # c has one run that did not diverge: no variance
    # seed 0: 90, 80, 0 (diverged), 75 -> ranks 4, 3, 1, 2; seed 1: 92, 81, 70, 85 -> 4, 2, 1, 3
    assert fid.rho == pytest.approx(1 - 6 * 2 / (4 * 15))
    assert strategies[2].truth == pytest.approx(35.0)


def test_default_lengths_span_the_full_recipe_and_keep_the_current_proxy():
    assert default_lengths(60, 40) == [8, 15, 30, 40, 45]
    assert default_lengths(3, 2) == [1, 2]
    assert default_lengths(10, 10) == [1, 2, 5, 8, 10]


def test_calibrate_cli_on_ray_writes_the_report_and_a_copy_never_the_space_file(tmp_path):
    path = write_space(tmp_path / "tiny.yaml", space=SPACE)
    before = path.read_text()
    (tmp_path / "baselines.yaml").write_text(BASELINES)
    out = run_cli("calibrate", "--space", path, "--strategies", "3", "--seeds", "1", "--lengths", "2,3",
                  "--baselines", tmp_path / "baselines.yaml", "--workers", "1", "--threshold", "-1",
                  "--out", tmp_path / "cal", "--write-space", tmp_path / "calibrated" / "tiny.yaml", timeout=600)
    assert out.returncode == 0, out.stderr
    assert "proxy epochs | rho" in out.stdout and "Recommended proxy: 2 epochs" in out.stdout
    assert "too few strategies to judge the better half" in out.stdout  # 5 strategies: a better half of 3
    assert path.read_text() == before
    for name in ("calibration.md", "calibration.html", "calibration.json", "calibration.png", "runs.jsonl"):
        assert (tmp_path / "cal" / name).is_file(), name
    copy = yaml.safe_load((tmp_path / "calibrated" / "tiny.yaml").read_text())
    assert copy["task"]["recipes"]["proxy"]["epochs"] == 2 and isinstance(copy["space"]["pruning"], bool)
    assert copy["space"]["pair_losses"] == SPACE["pair_losses"]
    assert load_space_file(tmp_path / "calibrated" / "tiny.yaml").task.recipes.proxy.epochs == 2
    figures = json.loads((tmp_path / "cal" / "calibration.json").read_text())
    assert [r["epochs"] for r in figures["rows"]] == [2, 3] and len(figures["strategies"]) == 5


@pytest.mark.parametrize("args, message", [
    (["--lengths", "0,2"], "--lengths 0: a proxy length must be 1..3 epochs"),
    (["--lengths", "4"], "--lengths 4: a proxy length must be 1..3 epochs"),
    (["--lengths", "ten"], "--lengths must be whole numbers of epochs"),
    (["--lengths", "1_0"], "--lengths must be whole numbers of epochs"),
    (["--lengths", "1,,2"], "--lengths must be whole numbers of epochs"),
    (["--lengths", "+1"], "--lengths must be whole numbers of epochs"),
    (["--threshold", "1.5"], "--threshold must be a Spearman rho in [-1, 1]"),
    (["--strategies", "1", "--baselines", "none"], "Spearman's rho needs at least 3"),
    (["--write-space", "{space}"], "is the space file being calibrated"),
    (["--write-space", "{other}"], "mine.yaml exists and is not a space file copy autokd wrote"),
    (["--workers", "-1"], "--workers must be >= 0"),
])
def test_calibrate_bad_input_is_one_error_line_and_creates_nothing(tmp_path, args, message):
    path = write_space(tmp_path / "tiny.yaml", space=SPACE)
    mine = tmp_path / "mine.yaml"  # a task file of the user's: was replaced by the copy (data loss)
    mine.write_text("task: default\n")
    args = [a.replace("{space}", str(path)).replace("{other}", str(mine)) for a in args]
    out = run_cli("calibrate", "--space", path, "--out", tmp_path / "cal", *args)
    assert out.returncode == 2 and out.stderr.startswith("error: ") and message in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and not (tmp_path / "cal").exists()
    assert mine.read_text() == "task: default\n"


def test_write_space_replaces_only_an_earlier_copy(tmp_path):
    from autokd.calibrate.space_copy import check_destination, write_space_copy

    path = write_space(tmp_path / "tiny.yaml", space=SPACE)
    copy = write_space_copy(str(path), tmp_path / "copy.yaml", 2, False)
    check_destination(str(path), copy)  # an earlier copy: replaced
    assert load_space_file(write_space_copy(str(path), copy, 3, True)).task.recipes.proxy.epochs == 3


def test_a_baseline_that_cannot_run_is_an_error_naming_it_before_any_run(tmp_path):
    from autokd.errors import AutokdError

    space_file = load_space_file(write_space(tmp_path / "tiny.yaml", space=SPACE))
    request = _request(tmp_path, seeds=1, strategies=3)
    (tmp_path / "baselines.yaml").write_text("baselines:\n  x: {alpha: 0.9, scheme: {kind: assistant, model: nosuch}}\n")
    with pytest.raises(AutokdError, match="^baseline x: unknown model 'nosuch'"):
        run_calibrate(space_file, request, say=lambda _m: None)
    assert not (tmp_path / "cal" / "runs.jsonl").exists()


STEP = {"epochs": 8, "optimizer": "sgd", "lr": 0.05, "schedule": "step", "milestones": [4, 6], "batch_size": 64}


def test_each_proxy_length_of_a_step_schedule_is_what_its_recommended_space_trains(tmp_path):
    """Calibrate measured a length from the already shortened proxy ([3] at 6 epochs) while the space it
    recommended trained the full recipe's milestones moved ([3, 5]); a proxy with milestones of its own
    was written with them unmoved (refused, or another schedule than measured)."""
    from autokd.calibrate.plan import anneals
    from autokd.calibrate.space_copy import recommended_lines, write_space_copy

    derived = load_space_file(write_space(tmp_path / "d.yaml", task={**TINY_TASK, "recipes": {"full": STEP}}))
    recipes = derived.task.recipes
    assert recipes.proxy.milestones == [1, 1] and recipes.proxy_milestones(6) == [3, 5]
    copy = write_space_copy(str(tmp_path / "d.yaml"), tmp_path / "dc.yaml", 6, False, recipes.proxy_milestones(6))
    assert recipes.proxy_at(6) == load_space_file(copy).task.recipes.proxy
    assert recipes.proxy_at(6).milestones == [3, 5] and anneals(recipes.proxy_at(6))
    own = {**TINY_TASK, "recipes": {"full": STEP, "proxy": {"epochs": 4, "milestones": [2, 3]}}}
    recipes = load_space_file(write_space(tmp_path / "o.yaml", task=own)).task.recipes
    assert recipes.proxy_milestones(2) == [1, 1]
    copy = write_space_copy(str(tmp_path / "o.yaml"), tmp_path / "oc.yaml", 2, True, recipes.proxy_milestones(2))
    assert recipes.proxy_at(2) == load_space_file(copy).task.recipes.proxy
    assert "proxy: {epochs: 2, milestones: [1, 1]}" in recommended_lines(2, True, [1, 1])

"""autokd calibrate against hostile input: duplicate baselines, a seed past the largest, a run store
edited by hand, --write-space without a recommendation, an --out folder holding files of the user's.

Most checks read a run store written here with known values (every job of the plan, keyed as the
calibration keys it), so the command resumes without training and its figures are known: the proxy
ranks the strategies in reverse, rho -1, nothing recommended."""

from __future__ import annotations

import copy
import json
import math

import pytest
from conftest import TINY_TASK, run_cli, write_space

from autokd.calibrate.analysis import recommend
from autokd.calibrate.calibrate import CalibrateRequest, build_plan, run_calibrate
from autokd.compare.results import Fidelity, RunRecord
from autokd.compare.store import RunStore
from autokd.errors import AutokdError
from autokd.search.space_file import load_space_file

SPACE = {"logit_losses": ["kd"], "pair_losses": ["none", "at"], "relation_losses": [],
         "weight_scale": {"low": 0.01, "high": 1, "log": True}}
DUPLICATES = "baselines:\n  kd: {alpha: 0.9, temperature: 4}\n  hinton: {alpha: 0.9, temperature: 4}\n  ce: {alpha: 0.0}\n"


def _request(tmp_path, **kw) -> CalibrateRequest:
    base = dict(out_dir=tmp_path / "cal", lengths=[2], strategies=3, seeds=1, baselines_path="none", workers=0,
                device="cpu")
    return CalibrateRequest(**{**base, **kw})


def _known_store(space_file, request: CalibrateRequest):
    """Every run of the plan with known values: candidate i tests at 50 + i, its proxy validates at 50 - i."""
    plan, _ = build_plan(space_file, request)
    index = {c.name: i for i, c in enumerate(plan.candidates)}
    store = RunStore(request.out_dir / "runs.jsonl")
    for job in plan.jobs:
        acc = 50.0 + index[job.name] if job.kind == "full" else 50.0 - index[job.name]
        points = (*job.validate_at, job.strategy.recipe.epochs)
        curve = {str(e): [acc, 0.1 * e] for e in points} if job.validate_at else None
        store.add(RunRecord(job.name, job.kind, job.strategy.recipe.seed, acc, acc, 1.0, job.key, curve=curve))
    return plan


def test_duplicate_baselines_count_once(tmp_path):
    """Three baselines of which two identical made '3 baselines', rho 1.00 from two distinct strategies."""
    space_file = load_space_file(write_space(tmp_path / "tiny.yaml", space=SPACE))
    (tmp_path / "b.yaml").write_text(DUPLICATES)
    with pytest.raises(AutokdError, match="a calibration ranks 2 distinct strategies; Spearman's rho needs at least 3"):
        build_plan(space_file, _request(tmp_path, strategies=0, baselines_path=str(tmp_path / "b.yaml")))
    plan, _ = build_plan(space_file, _request(tmp_path, strategies=2, baselines_path=str(tmp_path / "b.yaml")))
    assert [c.name for c in plan.candidates] == ["sampled 0", "sampled 1", "kd = hinton", "ce"]
    assert len({j.key for j in plan.jobs}) == len(plan.jobs) == 4 * 2  # one full and one proxy run each


def test_a_seed_past_the_largest_is_refused_before_anything_is_made(tmp_path):
    """The full recipe's seed 4294967295 with --seeds 2 trained seed 4294967296; compare refuses it."""
    task = copy.deepcopy(TINY_TASK)
    task["recipes"]["full"]["seed"] = 2**32 - 1
    path = write_space(tmp_path / "tiny.yaml", task=task, space=SPACE)
    out = run_cli("calibrate", "--space", path, "--out", tmp_path / "cal", "--seeds", "2", "--workers", "0")
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert out.stderr.startswith("error: --seeds 2 from the recipe's seed 4294967295 goes past the largest seed")
    assert not (tmp_path / "cal").exists()


def test_lines_edited_by_hand_are_trained_again_not_a_traceback(tmp_path):
    """A deleted curve point gave KeyError '2', curve null a TypeError, test_acc NaN 'rho nan'."""
    space_file = load_space_file(write_space(tmp_path / "tiny.yaml", space=SPACE))
    request = _request(tmp_path)
    _known_store(space_file, request)
    path = request.out_dir / "runs.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    proxies = [r for r in lines if r["kind"] == "proxy"]
    del proxies[0]["curve"]["2"]  # the end of a 2-epoch proxy validated at its rung
    proxies[1]["curve"] = None
    next(r for r in lines if r["kind"] == "full")["test_acc"] = math.nan
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    said = []
    cal = run_calibrate(space_file, request, say=said.append)
    assert any(line.startswith("warning: 3 line(s) of") for line in said), said
    assert any("(3 already done)" in line for line in said), said
    assert cal.rows[0].fidelity.rho is not None and math.isfinite(cal.rows[0].fidelity.rho)
    assert all(math.isfinite(t) for s in cal.strategies for t in s.full_test)


def test_write_space_without_a_recommendation_says_no_copy_was_written(tmp_path):
    """It was silently ignored, and an old copy from an earlier run stayed as if it were this run's."""
    from autokd.calibrate.space_copy import write_space_copy

    path = write_space(tmp_path / "tiny.yaml", space=SPACE)
    _known_store(load_space_file(path), _request(tmp_path))
    old = write_space_copy(str(path), tmp_path / "copy.yaml", 1, False).read_text()
    for _ in range(2):  # the second time into its own report folder (calibration.md, .html, .json, .png)
        out = run_cli("calibrate", "--space", path, "--out", tmp_path / "cal", "--strategies", "3", "--seeds", "1",
                      "--lengths", "2", "--baselines", "none", "--workers", "0", "--write-space", tmp_path / "copy.yaml")
        assert out.returncode == 0, out.stderr
        assert "No measured proxy length" in out.stdout and "(6 already done)" in out.stdout + out.stderr
        assert (f"--write-space: no copy written to {tmp_path / 'copy.yaml'} (the file already there is left as it "
                "was): no proxy length was recommended") in out.stdout
        assert "too few strategies to judge the better half" in out.stdout  # three strategies: not judged
        assert "over all strategies and over the better half" not in out.stdout
        assert (tmp_path / "copy.yaml").read_text() == old


@pytest.mark.parametrize("name, text, needle", [
    ("calibration.md", "# my notes\n", "its calibration.md is not a report of autokd calibrate"),
    ("runs.jsonl", '{"step": 1}\n', "its runs.jsonl is not a run store of autokd calibrate"),
])
def test_calibrate_refuses_an_out_folder_holding_files_it_did_not_write(tmp_path, name, text, needle):
    path = write_space(tmp_path / "tiny.yaml", space=SPACE)
    out_dir = tmp_path / "mine"
    out_dir.mkdir()
    (out_dir / name).write_text(text)
    out = run_cli("calibrate", "--space", path, "--out", out_dir, "--strategies", "3", "--seeds", "1", "--lengths",
                  "2", "--baselines", "none", "--workers", "0")
    assert out.returncode == 2 and out.stderr.startswith("error: --out ") and needle in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "teacher" not in out.stdout
    assert sorted(p.name for p in out_dir.iterdir()) == [name] and (out_dir / name).read_text() == text


def test_the_verdict_without_a_recommendation_says_when_the_better_half_was_not_judged():
    from autokd.calibrate.analysis import LengthRow

    def row(epochs, top_n):
        return LengthRow(epochs, Fidelity(0.2, 0.5, 9), None, None, 1.0, 0, Fidelity(0.1, 0.5, top_n))

    small = recommend([row(2, 4), row(3, 4)], 0.7, current=3).text
    assert "too few strategies to judge the better half alone" in small and "and over the better half" not in small
    judged = recommend([row(2, 5), row(3, 5)], 0.7, current=3).text
    assert "(over all strategies and over the better half)" in judged


def test_its_own_calibration_json_is_recognised_however_long(tmp_path):
    """The keys were looked for in the first 4 KiB only: a calibration of 4 or more strategies (the default
    is 16) writes 'recommendation' after its lists, so every re-run into its own folder was refused."""
    from autokd.compare.outfolder import CALIBRATE_FILES, check_out_folder

    data = {"full_epochs": 60, "strategies": [{"name": f"sampled {i}", "text": "x" * 200} for i in range(40)],
            "recommendation": {"epochs": 20}}
    (tmp_path / "calibration.json").write_text(json.dumps(data, indent=2))
    assert (tmp_path / "calibration.json").stat().st_size > 8192
    check_out_folder(tmp_path, CALIBRATE_FILES, "the calibration")
    for text in (json.dumps({"full_epochs": 60}), '{"full_epochs": ' + "[" * 200_000):  # not ours: refused
        (tmp_path / "calibration.json").write_text(text)  # (the second was a RecursionError traceback)
        with pytest.raises(AutokdError, match="its calibration.json is not the figures of autokd calibrate"):
            check_out_folder(tmp_path, CALIBRATE_FILES, "the calibration")

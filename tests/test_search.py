"""The strategy search: spaces, samplers, Ray Tune and in-process trials, budgets, resume, export.

Real Optuna storages (SQLite files), real Ray (local, fixed CPUs, no dashboard, no auth, shut
down after each search), real training on the tiny MNIST-1D task.
"""

from __future__ import annotations

import copy
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import optuna
import pytest
import yaml
from conftest import TINY_SPACE, TINY_TASK, run_cli, session_members, write_space

from autokd.errors import AutokdError
from autokd.search.driver import bind_space, run_search
from autokd.search.ledger import INTERRUPTED_ATTR, OWNER_ATTR, counts
from autokd.search.settings import SearchSettings
from autokd.search.space import space_from_dict
from autokd.search.space_file import load_space_file
from autokd.search.study import read_settings

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = TINY_SPACE


@pytest.fixture
def space_path(tmp_path) -> Path:
    return write_space(tmp_path / "tiny.yaml", space=SPACE)


def search(tmp_path, space_path, name, sampler="tpe", budget=4, workers=0, **kw):
    space_file = load_space_file(space_path)
    settings = SearchSettings(space_file.text, space_file.source, sampler=sampler, budget=budget, workers=workers,
                              device="cpu", **kw)
    return run_search(space_file, settings, name, str(tmp_path / "studies.db"), say=lambda _m: None)


def load(tmp_path, name):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / 'studies.db'}")


# --- spaces -------------------------------------------------------------------------------


def test_space_defaults_and_fixed_parameter_names(space_path):
    space = bind_space(load_space_file(space_path))
    assert space.pairs == [("stages.0", "stages.0"), ("stages.1", "stages.1"), ("stages.2", "stages.2")]
    names = [d.name for d in space.dimensions()]
    assert names == [
        "temperature", "alpha", "logit_loss", "logit[dkd].beta",
        "pair[stages.0].loss", "pair[stages.0].scale", "pair[stages.1].loss", "pair[stages.1].scale",
        "pair[stages.2].loss", "pair[stages.2].scale",
        "relation[rkd].on", "relation[rkd].scale", "relation[pkt].on", "relation[pkt].scale",
    ]


@pytest.mark.parametrize(
    "space, message",
    [
        ({"temperature": {"low": 8, "high": 1}}, "empty range, low 8"),
        ({"alpha": {"low": 0, "high": 2}}, "alpha.high must be <= 1.0"),
        ({"temperature": 1e200}, "space.temperature must be in (0, 100], got 1e+200"),  # every trial overflowed
        ({"temperature": {"low": 1, "high": 1000}}, "temperature.high must be <= 100"),
        ({"lr": 1e39}, "space.lr must be in (0, 3.4e+38]"),
        ({"weight_scale": {"low": 0, "high": 1, "log": True}}, "weight_scale.low must be > 0"),
        ({"pair_losses": ["none", "fitnett"]}, "did you mean 'fitnet'"),
        ({"relation_losses": ["crd", "kd"]}, "space.relation_losses: unknown loss 'kd'"),
        ({"logit_losses": []}, "must list at least one"),
        ({"pairs": "everything"}, "pairs must be 'auto', 'search', {student: [...], teacher: [...]} or a non-empty list"),
        ({"pairs": {"student": ["stages.0"], "teacher": []}}, "space.pairs.teacher must list one or more distinct layers"),
        ({"logit_standardization": [True, True]}, "must be true, false or a list of both"),
        ({"temprature": 3}, "unknown key space.temprature (did you mean 'temperature'?)"),
        ({"alpha": "high"}, "space.alpha must be"),
        ("hello", "space must be a mapping of settings (or left out for the defaults), got 'hello'"),
        ([1, 2], "space must be a mapping of settings (or left out for the defaults), got [1, 2]"),
    ],
)
def test_space_validation_errors(space, message):
    with pytest.raises(AutokdError) as err:
        space_from_dict(space)
    assert message in str(err.value)


def test_unknown_pair_layer_lists_the_layers(tmp_path):
    path = write_space(tmp_path / "s.yaml", space={"pairs": [{"teacher": "stages.9", "student": "stages.0"}]})
    with pytest.raises(AutokdError) as err:
        bind_space(load_space_file(path))
    assert "stages.9" in str(err.value) and "stages.1" in str(err.value)


def test_suggested_weights_scale_published_defaults_and_follow_their_loss(space_path):
    space = bind_space(load_space_file(space_path))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3), direction="maximize")
    for _ in range(25):
        trial = study.ask()
        strategy = space.suggest(trial)
        for pair in strategy.pairs:  # weight = scale x the loss's published default
            scale = trial.params[f"pair[{pair.teacher}].scale"]
            assert pair.weight == pytest.approx(scale * {"fitnet": 100.0, "at": 1000.0}[pair.loss])
        off = [p for p in ("stages.0", "stages.1", "stages.2") if trial.params[f"pair[{p}].loss"] == "none"]
        for p in off:  # a weight whose loss is off is not suggested
            assert f"pair[{p}].scale" not in trial.params
        study.tell(trial, 50.0)


# --- samplers on real trials ---------------------------------------------------------------


def test_trials_report_at_the_pruning_rungs_only():
    from autokd.search.pruning import REDUCTION_FACTOR, grace_period, report_epochs

    assert REDUCTION_FACTOR == 3
    assert report_epochs(15) == [7] and grace_period(15) == 7
    assert report_epochs(60) == [30] and report_epochs(2) == [1]
    assert report_epochs(1) == [] and report_epochs(15, enabled=False) == []
    assert report_epochs(40) == [20]


@pytest.mark.parametrize("sampler, workers", [("tpe", 2), ("random", 0), ("ppo", 1), ("evolution", 0), ("evolution", 2)])
def test_each_sampler_completes_a_budget(tmp_path, space_path, sampler, workers):
    """Every sampler on each back-end it meets (Tune pickles its searcher: Optuna 5.1's NSGA-II holds a lock)."""
    search(tmp_path, space_path, f"t-{sampler}", sampler=sampler, budget=5, workers=workers)
    study = load(tmp_path, f"t-{sampler}")
    c = counts(study)
    assert c.finished == 5 and c.running == 0 and c.waiting == 0 and c.void == 0
    assert c.complete >= 1
    for t in study.trials:
        assert t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        assert "strategy" in t.user_attrs
        assert len(t.intermediate_values) >= 1  # the rung (grace period) and the last epoch were reported
        if t.state == optuna.trial.TrialState.COMPLETE:
            assert t.intermediate_values[max(t.intermediate_values)] == t.value
            assert max(t.intermediate_values) == 2  # the proxy's epochs
    assert read_settings(study).sampler == sampler


def test_space_can_turn_pruning_off(tmp_path):
    """`pruning: false` in the space: no trial is pruned and each reports only its last epoch."""
    path = write_space(tmp_path / "no_prune.yaml", space={**SPACE, "pruning": False})
    search(tmp_path, path, "np", sampler="random", budget=4, workers=0)
    study = load(tmp_path, "np")
    assert counts(study).complete == 4
    assert all(list(t.intermediate_values) == [2] for t in study.trials)  # the proxy's 2 epochs
    with pytest.raises(AutokdError, match=r"space.pruning.*true or false"):
        bind_space(load_space_file(write_space(tmp_path / "bad.yaml", space={**SPACE, "pruning": "no"})))


# --- budget, states, resume ----------------------------------------------------------------


def test_budget_is_total_and_rerun_adds_only_the_remainder(tmp_path, space_path):
    search(tmp_path, space_path, "b", sampler="random", budget=3)
    assert counts(load(tmp_path, "b")).finished == 3
    search(tmp_path, space_path, "b", sampler="random", budget=3)  # nothing left to do
    assert len(load(tmp_path, "b").trials) == 3
    search(tmp_path, space_path, "b", sampler="random", budget=5)
    study = load(tmp_path, "b")
    assert counts(study).finished == 5 and len(study.trials) == 5
    assert read_settings(study).budget == 5


def test_a_run_with_another_sampler_continues_the_study_and_resume_follows_it(tmp_path, space_path):
    search(tmp_path, space_path, "s", sampler="random", budget=2)
    space_file, db, said = load_space_file(space_path), str(tmp_path / "studies.db"), []
    settings = SearchSettings(space_file.text, space_file.source, sampler=None, budget=3, workers=0, device="cpu")
    run_search(space_file, settings, "s", db, say=said.append)  # no --sampler: the study's own
    assert read_settings(load(tmp_path, "s")).sampler == "random" and not any(m.startswith("sampler:") for m in said)
    run_search(space_file, replace(settings, sampler="tpe", budget=4), "s", db, say=said.append)
    study = load(tmp_path, "s")
    assert counts(study).finished == 4 and read_settings(study).sampler == "tpe"
    assert any("searched with random; this run and later resumes use tpe" in m for m in said)
    run_search(space_file, replace(settings, budget=1), "new", db, say=said.append)
    assert read_settings(load(tmp_path, "new")).sampler == "tpe"  # a new study without --sampler: TPE


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_an_interruption_fails_only_this_process_running_trials(tmp_path):
    """Ctrl-C records by owner: a trial asked but not yet started is not left RUNNING, another
    process's trial is left alone; only a trial that held a whole strategy is queued again."""
    from autokd.search.ledger import interrupt_own_trials, mark_owner

    study = optuna.create_study(study_name="own", storage=f"sqlite:///{tmp_path / 'own.db'}")
    dist = {"temperature": optuna.distributions.FloatDistribution(1, 8, log=True)}
    mine, drawing, theirs = study.ask(dist), study.ask(dist), study.ask(dist)
    for t in (mine, drawing):
        mark_owner(study, t._trial_id)
    mine.set_user_attr("strategy", {"temperature": mine.params["temperature"]})  # claimed: its strategy was drawn
    study._storage.set_trial_system_attr(theirs._trial_id, OWNER_ATTR, "elsewhere:1")
    assert interrupt_own_trials(study) == 2
    states = {t.number: t.state for t in study.trials}
    assert states[mine.number] == states[drawing.number] == optuna.trial.TrialState.FAIL
    assert states[theirs.number] == optuna.trial.TrialState.RUNNING
    assert study.trials[mine.number].user_attrs["interrupted"] is True
    assert "before its strategy was drawn" in study.trials[drawing.number].user_attrs["void"]
    waiting = [t for t in study.trials if t.state == optuna.trial.TrialState.WAITING]
    assert [t.user_attrs.get("requeued_from") for t in waiting] == [mine.number]  # only its params queued again


def test_interrupted_trial_is_failed_and_requeued(tmp_path, space_path):
    search(tmp_path, space_path, "r", sampler="random", budget=2)
    study = load(tmp_path, "r")
    trial = study.ask({"temperature": optuna.distributions.FloatDistribution(1, 8, log=True)})
    study._storage.set_trial_system_attr(trial._trial_id, OWNER_ATTR, f"{os.uname().nodename}:{_dead_pid()}")
    trial.set_user_attr("strategy", {"temperature": trial.params["temperature"]})  # claimed, then its process died
    interrupted_temperature = trial.params["temperature"]
    search(tmp_path, space_path, "r", sampler="random", budget=4)
    study = load(tmp_path, "r")
    c = counts(study)
    assert c.finished == 4 and c.running == 0 and c.void == 1
    failed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert failed[0].user_attrs[INTERRUPTED_ATTR] is True
    rerun = [t for t in study.trials if t.user_attrs.get("requeued_from") == failed[0].number]
    assert rerun and rerun[0].params["temperature"] == interrupted_temperature


def test_failing_strategies_are_recorded_and_search_goes_on(tmp_path):
    space = {"alpha": 0.0, "temperature": 4.0, "logit_losses": ["kd"], "pair_losses": ["fitnet"],
             "relation_losses": [], "weight_scale": {"low": 1.0e29, "high": 1.0e30, "log": True}}
    path = write_space(tmp_path / "bad.yaml", space=space)
    search(tmp_path, path, "f", sampler="random", budget=2)
    study = load(tmp_path, "f")
    assert counts(study).failed == 2
    for t in study.trials:
        assert t.state == optuna.trial.TrialState.FAIL
        assert "diverged" in t.user_attrs["fail_reason"]


def test_ray_searcher_records_pruned_failed_and_complete_states(space_path):
    """The Tune searcher maps what Tune reports to the study's states (without running Ray)."""
    from autokd.search.monitor import SearchMonitor
    from autokd.search.ray_backend import make_searcher

    space = bind_space(load_space_file(space_path))
    study = optuna.create_study(direction="maximize")
    searcher = make_searcher(study, space, budget=10, epochs=2, monitor=SearchMonitor(study, 10, lambda *_: None))
    for i in range(4):
        assert searcher.suggest(f"t{i}")["number"] == i
    searcher.on_trial_result("t0", {"val_acc": 40.0, "epoch": 1})
    searcher.on_trial_complete("t0", {"val_acc": 40.0, "epoch": 1})  # stopped by ASHA
    searcher.on_trial_complete("t1", {"val_acc": 61.5, "epoch": 2})
    searcher.on_trial_complete("t2", {"val_acc": 0.0, "failed": "loss diverged", "epoch": 1})
    searcher.on_trial_complete("t3", None, error=True)
    states = [t.state.name for t in study.trials]
    assert states == ["PRUNED", "COMPLETE", "FAIL", "FAIL", "WAITING"]  # a dead worker's trial is retried once
    assert counts(study).void == 1 and counts(study).failed == 1  # the dead worker's trial does not count
    assert study.trials[0].intermediate_values == {1: 40.0}
    assert study.trials[1].value == 61.5 and study.trials[1].intermediate_values == {2: 61.5}
    assert study.trials[2].user_attrs["fail_reason"] == "loss diverged"
    assert study.trials[3].user_attrs["fail_reason"] == "the trial's worker died; retrying it once"
    retry = searcher.suggest("t4")
    assert retry["number"] == 4 and study.trials[4].user_attrs["retry_of"] == 3
    assert study.trials[4].params == study.trials[3].params
    searcher.on_trial_complete("t4", None, error=True)  # dies again: recorded, not retried a second time
    assert study.trials[4].user_attrs["fail_reason"] == "the trial's worker died again; not retried"
    assert len(study.trials) == 5


def test_resume_refuses_a_changed_space(tmp_path, space_path):
    storage = tmp_path / "cli.db"
    first = run_cli("search", "--space", space_path, "--budget", "1", "--workers", "0", "--storage", storage, "--name", "c")
    assert first.returncode == 0, first.stderr
    changed = write_space(space_path, space={**SPACE, "alpha": 0.5})
    again = run_cli("search", "--space", changed, "--budget", "2", "--workers", "0", "--storage", storage, "--name", "c")
    assert again.returncode == 2
    assert "different search space" in again.stderr and "Traceback" not in again.stderr
    assert counts(optuna.load_study(study_name="c", storage=f"sqlite:///{storage}")).finished == 1


def test_studies_columns_line_up_whatever_the_names_and_samplers(tmp_path, space_path):
    """A 9-letter sampler (evolution) or a name past 28 characters shifted the row's columns."""
    from autokd.search.settings import SETTINGS_ATTR

    storage, space_file = tmp_path / "cols.db", load_space_file(space_path)
    for name, sampler, budget in (("a", "evolution", 7), ("a-study-name-longer-than-twenty-eight", "tpe", 100)):
        study = optuna.create_study(study_name=name, storage=f"sqlite:///{storage}", direction="maximize")
        settings = SearchSettings(space_file.text, space_file.source, sampler=sampler, budget=budget)
        study._storage.set_study_system_attr(study._study_id, SETTINGS_ATTR, settings.to_dict())
    header, *rows = run_cli("studies", "--storage", storage).stdout.splitlines()
    assert len(rows) == 2
    for column, cells in (("done/budget", ["0/7", "0/100"]), ("best val", ["-", "-"])):
        ends = {header.index(column) + len(column)}
        ends |= {row.index(f" {cell}") + len(cell) + 1 for row, cell in zip(rows, cells)}
        assert len(ends) == 1, (header, rows)


def test_cli_search_studies_show_resume_export_train(tmp_path, space_path):
    storage = tmp_path / "cli.db"
    out = run_cli("search", "--space", space_path, "--budget", "3", "--workers", "0", "--sampler", "random",
                  "--storage", storage, "--name", "flow", "--no-pruning")
    assert out.returncode == 0, out.stderr
    assert "leaderboard of 'flow'" in out.stdout and "trials 3/3" in out.stderr
    listing = run_cli("studies", "--storage", storage)
    assert "flow" in listing.stdout and "3/3" in listing.stdout
    resumed = run_cli("resume", "flow", "--storage", storage, "--budget", "4")
    assert resumed.returncode == 0, resumed.stderr
    study = optuna.load_study(study_name="flow", storage=f"sqlite:///{storage}")
    assert counts(study).finished == 4
    shown = run_cli("show", "flow", "--storage", storage)
    assert shown.returncode == 0 and "rank  trial" in shown.stdout
    # export -> train: the exported config trains exactly the winner (at the proxy length it
    # reproduces the trial's validation accuracy; the export itself carries the full recipe)
    best = max((t for t in study.trials if t.value is not None), key=lambda t: (t.value, -t.number))
    exported = tmp_path / "best.yaml"
    assert run_cli("export", "flow", "--storage", storage, "-o", exported).returncode == 0
    text = exported.read_text()
    assert f"trial {best.number} (rank 1" in text
    config = yaml.safe_load(text)
    assert config["strategy"]["recipe"]["epochs"] == TINY_TASK["recipes"]["full"]["epochs"]
    stored = copy.deepcopy(best.user_attrs["strategy"])
    stored.pop("recipe"), config["strategy"].pop("recipe")
    assert config["strategy"] == stored
    trained = run_cli("train", "--config", exported, "--epochs", "2", "--out", tmp_path / "r.json")
    assert trained.returncode == 0, trained.stderr
    import json

    assert json.loads((tmp_path / "r.json").read_text())["val_mean"] == pytest.approx(best.value, abs=0.01)
    bad_rank = run_cli("export", "flow", "--storage", storage, "--rank", "99")
    assert bad_rank.returncode == 2 and "--rank 99 is beyond the leaderboard" in bad_rank.stderr
    assert run_cli("export", "flow", "--storage", storage, "--rank", "2", "-o", exported).returncode == 0  # its own
    assert "(rank 2" in exported.read_text()
    space_before = Path(space_path).read_text()  # the space file named by mistake: was replaced by the config
    over = run_cli("export", "flow", "--storage", storage, "-o", space_path)
    assert over.returncode == 2 and "-o " in over.stderr and "exists and is not a config autokd wrote" in over.stderr
    assert Path(space_path).read_text() == space_before


def _finished(db: Path, name: str) -> dict[int, tuple]:
    if not db.exists():
        return {}
    with sqlite3.connect(db, timeout=30) as con:
        try:
            rows = con.execute(
                "SELECT t.number, t.state, v.value FROM trials t JOIN studies s ON s.study_id = t.study_id "
                "LEFT JOIN trial_values v ON v.trial_id = t.trial_id WHERE s.study_name = ? AND t.state != 'RUNNING' "
                "AND t.state != 'WAITING'", (name,)).fetchall()
        except sqlite3.OperationalError:
            return {}
    return {n: (s, v) for n, s, v in rows}


def test_sigkill_mid_search_then_resume_loses_nothing(tmp_path, space_path):
    """Kill the search process (SIGKILL) while Ray trials run; resume; exactly the budget, no RUNNING."""
    db = tmp_path / "kill.db"
    cmd = [sys.executable, "-m", "autokd.cli.main", "search", "--space", str(space_path), "--budget", "8",
           "--workers", "1", "--storage", str(db), "--name", "k", "--sampler", "random"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while len(_finished(db, "k")) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
        before = _finished(db, "k")
        assert 2 <= len(before) < 8, "the search should be killed mid-run"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        # end what the killed search started (its Ray processes share its session), by pid
        for pid in session_members(proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if proc.poll() is None:
            proc.kill()
    before = _finished(db, "k")
    resumed = run_cli("resume", "k", "--storage", db, "--workers", "0")
    assert resumed.returncode == 0, resumed.stderr
    study = optuna.load_study(study_name="k", storage=f"sqlite:///{db}")
    c = counts(study)
    assert c.finished == 8 and c.running == 0 and c.waiting == 0
    after = _finished(db, "k")
    for number, (state, value) in before.items():  # no finished trial lost or changed
        assert after[number] == (state, value)
    assert not session_members(proc.pid)

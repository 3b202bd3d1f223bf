"""Faults: Ctrl-C, kills during teacher training, two searches on one study, failing trials,
a dying Ray worker. Real processes, real Ray, real storages, the tiny task."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from conftest import TINY_TASK, assert_interrupted_requeued, run_cli, session_members, write_space

from autokd.search.driver import run_search
from autokd.search.ledger import counts
from autokd.search.settings import SearchSettings
from autokd.search.space_file import load_space_file

TESTS = Path(__file__).parent
SPACE = {"pair_losses": ["none", "fitnet"], "relation_losses": ["rkd"], "weight_scale": {"low": 0.01, "high": 1, "log": True}}
TERMINAL = ("COMPLETE", "PRUNED", "FAIL")


def _cli(*args) -> list[str]:
    return [sys.executable, "-m", "autokd.cli.main", *map(str, args)]


def _default_sigint() -> None:
    """Ctrl-C's default in the child: a test runner started as a background job ignores SIGINT,
    and its children would inherit that (a shell's convention autokd respects)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _end_session(proc: subprocess.Popen) -> None:
    """End what a test's subprocess started (its session), by pid."""
    for pid in session_members(proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _search(space: Path, name: str, db: Path, **settings):
    space_file = load_space_file(space)
    settings = SearchSettings(space_file.text, space_file.source, **{"sampler": "random", "device": "cpu", **settings})
    return run_search(space_file, settings, name, str(db), say=lambda _m: None)


def _study(storage: str, name: str):
    if storage.endswith(".journal"):
        from optuna.storages.journal import JournalFileBackend

        storage = optuna.storages.JournalStorage(JournalFileBackend(storage))
    else:
        storage = f"sqlite:///{storage}"
    return optuna.load_study(study_name=name, storage=storage)


def _wait_for(condition, timeout: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if proc.poll() is not None:
            raise AssertionError(f"the process ended early with code {proc.returncode}")
        time.sleep(0.3)
    raise AssertionError("timed out waiting")


def _finished_count(db: Path, name: str) -> int:
    try:
        return counts(_study(str(db), name)).finished
    except Exception:  # the study does not exist yet
        return 0


def test_ctrl_c_stops_within_seconds_requeues_and_shuts_ray_down(tmp_path):
    space = write_space(tmp_path / "s.yaml", space=SPACE)
    db = tmp_path / "int.db"
    proc = subprocess.Popen(_cli("search", "--space", space, "--budget", "500", "--workers", "2", "--storage", db,
                                 "--name", "int", "--sampler", "random"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_default_sigint)
    try:
        _wait_for(lambda: _finished_count(db, "int") >= 3, 240, proc)
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        out, err = proc.communicate(timeout=60)
        stopped_after = time.monotonic() - sent
    finally:
        _end_session(proc)
    assert stopped_after < 20, f"took {stopped_after:.1f} s to stop"
    assert proc.returncode == 130
    assert "autokd resume int" in err and "Traceback" not in err
    study = _study(str(db), "int")
    c = counts(study)
    assert c.running == 0 and 3 <= c.finished < 500
    assert_interrupted_requeued(study)
    time.sleep(2)
    assert not session_members(proc.pid), "Ray processes were left behind"
    # resuming runs the re-queued trials first and ends exactly at the new budget
    target = c.finished + c.void + 1
    resumed = run_cli("resume", "int", "--storage", db, "--budget", target, "--workers", "0")
    assert resumed.returncode == 0, resumed.stderr
    c2 = counts(_study(str(db), "int"))
    assert c2.finished == target and c2.running == 0 and c2.waiting == 0


def test_kill_during_teacher_training_leaves_no_study_and_the_search_runs_again(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOKD_CACHE", str(tmp_path / "fresh-cache"))  # the teacher must be trained
    task = copy.deepcopy(TINY_TASK)
    task["teacher"]["recipe"]["epochs"] = 250  # long enough to be killed in the middle
    space = write_space(tmp_path / "s.yaml", task=task, space=SPACE)
    db = tmp_path / "k.db"
    proc = subprocess.Popen(_cli("search", "--space", space, "--budget", "2", "--workers", "0", "--storage", db, "--name", "k"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_for(lambda: (tmp_path / "fresh-cache" / "mnist1d").exists(), 120, proc)
        time.sleep(4)  # inside teacher training now
        assert not list((tmp_path / "fresh-cache").glob("teachers/*.pt")), "the teacher finished too early"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        _end_session(proc)
    assert not db.exists()  # the study is created only once the set-up (the teacher too) succeeded
    again = run_cli("search", "--space", space, "--budget", "2", "--workers", "0", "--storage", db, "--name", "k",
                    timeout=600)
    assert again.returncode == 0, again.stderr
    c = counts(_study(str(db), "k"))
    assert c.finished == 2 and c.running == 0
    assert len(list((tmp_path / "fresh-cache").glob("teachers/*.pt"))) == 1


def test_two_searches_on_one_journal_study(tmp_path):
    space = write_space(tmp_path / "s.yaml", space=SPACE)
    journal = tmp_path / "shared.journal"
    args = ("search", "--space", space, "--budget", "12", "--workers", "0", "--storage", journal, "--name", "both",
            "--sampler", "random")
    procs = [subprocess.Popen(_cli(*args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              start_new_session=True) for _ in range(2)]
    try:
        errors = [p.communicate(timeout=600)[1] for p in procs]
    finally:
        for p in procs:
            _end_session(p)
    assert [p.returncode for p in procs] == [0, 0], errors
    study = _study(str(journal), "both")
    c = counts(study)
    assert c.running == 0 and c.waiting == 0
    assert c.finished == 12  # exact: a trial started over the budget steps back
    owners = {t.system_attrs.get("autokd_owner") for t in study.trials}
    assert len(owners) == 2  # both processes contributed
    assert len({t.number for t in study.trials}) == len(study.trials)


@pytest.mark.parametrize(
    "model, reason",
    [
        ("faulty_models:NanNet", "loss diverged to nan"),
        ("faulty_models:RaisingNet", "ValueError: this layer is broken on purpose"),
        ("faulty_models:OomNet", "out of memory"),
    ],
)
def test_failing_trials_are_recorded_with_reasons_and_shown(tmp_path, model, reason):
    task = copy.deepcopy(TINY_TASK)
    task["student"] = {"model": model, "kwargs": {"channels": 4}}
    space = write_space(tmp_path / "s.yaml", task=task, space=SPACE)
    _search(space, "f", tmp_path / "f.db", budget=2, workers=0)  # the search goes on
    study = _study(str(tmp_path / "f.db"), "f")
    assert [t.state.name for t in study.trials] == ["FAIL", "FAIL"]
    assert all(reason in t.user_attrs["fail_reason"] for t in study.trials)
    shown = run_cli("show", "f", "--storage", tmp_path / "f.db", env={"PYTHONPATH": str(TESTS)})
    assert shown.returncode == 0 and "failed trials (2)" in shown.stdout and reason in shown.stdout


def test_a_dying_ray_worker_fails_the_trial_and_it_is_retried_once(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(TESTS))  # Ray workers import faulty_models
    monkeypatch.setenv("AUTOKD_TEST_MARKER", str(tmp_path / "died-once"))
    task = copy.deepcopy(TINY_TASK)
    task["student"] = {"model": "faulty_models:DyingNet", "kwargs": {"channels": 4}}
    space = write_space(tmp_path / "s.yaml", task=task, space=SPACE)
    _search(space, "d", tmp_path / "d.db", budget=2, workers=1, pruning=False)
    study = _study(str(tmp_path / "d.db"), "d")
    first, retry, other = study.trials
    assert (tmp_path / "died-once").exists()
    assert first.state.name == "FAIL" and "worker died" in first.user_attrs["fail_reason"]
    assert retry.state.name == "COMPLETE" and retry.user_attrs["retry_of"] == first.number
    assert retry.params == first.params
    assert other.state.name == "COMPLETE"
    c = counts(study)
    assert c.finished == 2 and c.void == 1  # the dead worker's trial is void: it says nothing about its strategy

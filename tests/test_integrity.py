"""Search integrity: no strategy runs twice, the budget is exact, owners survive PID reuse, trials
of dead processes are recovered (teachers and failed set-ups: test_integrity_setup.py).

Real SQLite and journal storages, real subprocesses of the CLI, the tiny task.
"""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import sqlalchemy.exc
from conftest import PLAIN_SPACE, assert_interrupted_requeued, run_cli, session_members, write_space

from autokd.errors import AutokdError
from autokd.search.claims import check_claim
from autokd.search.driver import run_search
from autokd.search.ledger import DUPLICATE_ATTR, OWNER_ATTR, counts, is_void, param_key
from autokd.search.owner import Owner, current_owner, is_alive, process_start_time
from autokd.search.samplers import run_seed
from autokd.search.settings import SearchSettings, check_study_name, default_study_name
from autokd.search.space_file import load_space_file

optuna.logging.set_verbosity(optuna.logging.WARNING)
TrialState = optuna.trial.TrialState
SPACE = PLAIN_SPACE


def _search(space: Path, name: str, storage, **settings):
    space_file = load_space_file(space)
    settings = SearchSettings(space_file.text, space_file.source, **{"device": "cpu", "workers": 0, **settings})
    notes: list[str] = []
    study = run_search(space_file, settings, name, str(storage), say=notes.append)
    return study, notes


def _counted(study) -> list:
    return [t for t in study.trials if t.state.is_finished() and not is_void(t)]


def _assert_distinct(study) -> None:
    keys = [param_key(t.params) for t in _counted(study)]
    assert len(keys) == len(set(keys)), "two counted trials share their parameters"


def _storage(path: Path):
    if path.suffix == ".journal":
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    return f"sqlite:///{path}"


# --- the claim rule, on frozen trials --------------------------------------------------------


def _frozen(number: int, state, start: float, params: dict, **user_attrs):
    t0 = datetime.datetime(2026, 1, 1)
    dist = {k: optuna.distributions.FloatDistribution(0, 10) for k in params}
    return optuna.trial.FrozenTrial(
        number=number, state=state, value=50.0 if state == TrialState.COMPLETE else None, values=None,
        datetime_start=t0 + datetime.timedelta(seconds=start),
        datetime_complete=t0 + datetime.timedelta(seconds=start + 1) if state.is_finished() else None,
        params=params, distributions=dist, user_attrs=user_attrs, system_attrs={}, intermediate_values={},
        trial_id=number)


def test_claim_rule_counts_finished_and_earlier_running_trials():
    done = [_frozen(i, TrialState.COMPLETE, i, {"x": float(i)}) for i in range(3)]
    mine = _frozen(3, TrialState.RUNNING, 10, {"x": 7.0})
    earlier = _frozen(4, TrialState.RUNNING, 9, {"x": 8.0})
    later = _frozen(5, TrialState.RUNNING, 11, {"x": 9.0})
    void = _frozen(6, TrialState.FAIL, 2, {"x": 7.0}, void="interrupted")
    trials = done + [mine, earlier, later, void]
    assert check_claim(trials, 3, budget=5).ok  # 3 finished + 1 earlier-running ahead of it
    assert check_claim(trials, 3, budget=4).over_budget  # the earlier-started trial took the last slot
    assert check_claim(trials, 4, budget=4).ok  # ... so that one runs
    assert check_claim(trials, 5, budget=5).over_budget  # the latest start steps back
    assert check_claim(trials, 3, budget=9).duplicate_of is None  # a void trial holds nothing


def test_claim_rule_finds_duplicates_of_counted_and_earlier_running_trials():
    trials = [_frozen(0, TrialState.PRUNED, 0, {"x": 1.0}), _frozen(1, TrialState.RUNNING, 5, {"x": 2.0}),
              _frozen(2, TrialState.RUNNING, 6, {"x": 1.0}), _frozen(3, TrialState.RUNNING, 7, {"x": 2.0}),
              _frozen(4, TrialState.RUNNING, 4, {"x": 3.0})]
    assert check_claim(trials, 2, budget=10).duplicate_of == 0
    assert check_claim(trials, 3, budget=10).duplicate_of == 1
    assert check_claim(trials, 1, budget=10).ok  # trial 3 started later: it is the duplicate, not 1
    assert check_claim(trials, 4, budget=10).ok


# --- owners and seeds ------------------------------------------------------------------------


def test_an_owner_tag_survives_pid_reuse():
    me = current_owner()
    assert is_alive(me.tag())
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        theirs = Owner(me.host, me.boot, sleeper.pid, process_start_time(sleeper.pid))
        assert is_alive(theirs.tag())
        # the same pid, another start time: the process that owned the trial died and the pid was reused
        reused = Owner(me.host, me.boot, sleeper.pid, str(int(theirs.start) - 5))
        assert not is_alive(reused.tag())
        assert not is_alive(Owner(me.host, me.boot, os.getpid(), "1").tag())  # our own pid, an earlier process
        assert not is_alive(Owner(me.host, "another-boot", sleeper.pid, theirs.start).tag())  # rebooted since
        assert is_alive(Owner("elsewhere", "", 1, "").tag())  # another host cannot be checked: alive
        assert is_alive(f"{me.host}:{sleeper.pid}")  # an older tag: judged by the pid
    finally:
        sleeper.kill()
        sleeper.wait()
    assert not is_alive(theirs.tag()) and not is_alive(None)
    assert Owner.parse(theirs.tag()) == theirs
    # a tag damaged or written by another tool is no owner (show and resume crashed on it)
    for damaged in (5, True, 1.5, ["a"], {"a": 1}, "vm|b|\u00b2|1", "host:\u00b2", "host:" + "9" * 30, "garbage"):
        assert Owner.parse(damaged) is None and not is_alive(damaged), damaged


def test_an_untagged_trial_whose_askers_are_all_gone_is_recovered_at_once(tmp_path):
    """A process killed between ``ask`` and its owner tag leaves an untagged RUNNING trial: it is
    requeued as soon as every process that asked the study before it started is gone (it used to
    count as alive for two minutes), and kept while one of them lives."""
    from autokd.search.ledger import ASKER_ATTR_PREFIX, STRATEGY_ATTR, mark_asker, recover_interrupted

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'a.db'}", study_name="a")
    me = current_owner()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone = Owner(me.host, me.boot, int(dead.stdout), "1").tag()
    study._storage.set_study_system_attr(study._study_id, ASKER_ATTR_PREFIX + gone, time.time() - 1)
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    study._storage.set_trial_user_attr(trial._trial_id, STRATEGY_ATTR, {"alpha": 0.0})  # drawn, then killed
    assert recover_interrupted(study) == (1, 0)  # requeued although only seconds old
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.WAITING]
    mark_asker(study)  # a live process asks; its trial is untagged for a moment
    assert ASKER_ATTR_PREFIX + me.tag() in study._storage.get_study_system_attrs(study._study_id)
    mine = study.ask()
    assert recover_interrupted(study) == (0, 0)
    assert study.trials[mine.number].state == optuna.trial.TrialState.RUNNING


def test_each_run_of_a_sampler_has_its_own_stream():
    assert run_seed(7, created=True, owner_tag="a") == 7  # the first run on a new study: reproducible
    later = {run_seed(7, created=False, owner_tag=tag) for tag in ("a", "b", "c")}
    assert len(later) == 3 and 7 not in later
    assert run_seed(7, False, "a") == run_seed(7, False, "a") and 0 <= run_seed(7, False, "a") < 2**32


def test_study_names_are_safe_file_names():
    assert check_study_name("default-tpe.v2_1") == "default-tpe.v2_1"
    for bad in ("../x", "a/b", "", ".hidden", "a..b", "x" * 101, "new\nline", "a b"):
        with pytest.raises(AutokdError, match="study name"):
            check_study_name(bad)
    assert default_study_name("/x/my space (2).yaml", "tpe") == "my-space-2-tpe"


# --- no strategy twice, exact budgets ------------------------------------------------------


@pytest.mark.parametrize("sampler", ["random", "tpe", "ppo", "evolution"])
def test_raising_the_budget_continues_the_sampler(tmp_path, sampler):
    """budget 3 then 6 (and a resume to 8): the later runs do not replay the first run's proposals."""
    space = write_space(tmp_path / "s.yaml", space=SPACE)
    db = tmp_path / "s.db"
    _search(space, "b", db, sampler=sampler, budget=3)
    study, _ = _search(space, "b", db, sampler=sampler, budget=6)
    assert counts(study).finished == 6
    resumed = run_cli("resume", "b", "--storage", db, "--budget", "8")
    assert resumed.returncode == 0, resumed.stderr
    study = optuna.load_study(study_name="b", storage=_storage(db))
    c = counts(study)
    assert c.finished == 8 and c.running == 0 and c.waiting == 0
    _assert_distinct(study)


def test_the_first_run_of_a_new_study_is_reproducible(tmp_path):
    space = write_space(tmp_path / "s.yaml", space=SPACE)
    first = [_search(space, name, tmp_path / f"{name}.db", sampler="random", budget=3, seed=11)[0] for name in ("x", "y")]
    assert [t.params for t in first[0].trials] == [t.params for t in first[1].trials]


def test_a_duplicate_proposal_is_not_trained_and_an_exhausted_space_stops(tmp_path):
    """Four strategies in all (one pair: none/fitnet at a fixed weight x rkd on/off): a budget of 6
    trains each once, records the sampler's repeats as void duplicates, and says why it stopped."""
    small = {"temperature": 4.0, "alpha": 0.5, "logit_losses": ["kd"], "pairs": [{"teacher": "stages.1", "student": "stages.1"}],
             "pair_losses": ["none", "fitnet"], "relation_losses": ["rkd"], "weight_scale": 0.1, "pruning": False}
    space = write_space(tmp_path / "small.yaml", space=small)
    study, notes = _search(space, "small", tmp_path / "s.db", sampler="random", budget=6)
    c = counts(study)
    assert c.complete == 4 and c.finished == 4 and c.running == 0
    _assert_distinct(study)
    dups = [t for t in study.trials if DUPLICATE_ATTR in t.user_attrs]
    assert dups and all(is_void(t) and param_key(t.params) == param_key(study.trials[t.user_attrs[DUPLICATE_ATTR]].params)
                        for t in dups)
    assert any("stopped at 4/6 trials: all 4 strategies of the space have been tried" in n for n in notes)


def test_the_size_of_a_finite_space_counts_only_the_parameters_strategies_use(tmp_path):
    from autokd.search.binding import bind_space

    def size(space: dict):
        return bind_space(load_space_file(write_space(tmp_path / "z.yaml", space=space))).size()

    fixed = {"temperature": 4.0, "alpha": 0.5, "logit_losses": ["kd"], "weight_scale": 0.1}
    assert size({**SPACE}) is None  # continuous
    assert size({**fixed, "pair_losses": ["none", "fitnet", "at"], "relation_losses": ["rkd"]}) == 3 ** 3 * 2
    assert size({**fixed, "pair_losses": ["none"], "relation_losses": []}) == 1
    # a searched weight makes it continuous, unless its loss can never be on
    assert size({**fixed, "weight_scale": {"low": 0.1, "high": 1}, "pair_losses": ["none"], "relation_losses": []}) == 1


@pytest.mark.parametrize("storage", ["both.journal", "both.db"])
def test_three_concurrent_searches_share_one_exact_budget_and_never_a_strategy(tmp_path, storage):
    space = write_space(tmp_path / "s.yaml", space=SPACE)
    db = tmp_path / storage
    args = ["search", "--space", space, "--budget", "9", "--workers", "0", "--storage", db, "--name", "both",
            "--sampler", "random"]
    procs = [subprocess.Popen([sys.executable, "-m", "autokd.cli.main", *map(str, args)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, start_new_session=True) for _ in range(3)]
    try:
        errors = [p.communicate(timeout=600)[1] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    study = optuna.load_study(study_name="both", storage=_storage(db))
    c = counts(study)
    assert c.finished == 9 and c.running == 0  # exactly the budget
    _assert_distinct(study)
    owners = {t.system_attrs.get(OWNER_ATTR) for t in _counted(study)}
    assert len(owners) >= 2  # the processes shared the work


# --- recovery ----------------------------------------------------------------------------------


def test_a_trial_whose_owner_pid_was_reused_is_recovered(tmp_path):
    space = write_space(tmp_path / "s.yaml", space=SPACE)
    db = tmp_path / "r.db"
    _search(space, "r", db, sampler="random", budget=2)
    study = optuna.load_study(study_name="r", storage=_storage(db))
    trial = study.ask({"alpha": optuna.distributions.FloatDistribution(0, 1)})
    trial.set_user_attr("strategy", {"alpha": trial.params["alpha"]})  # claimed by the process that died
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:  # a live process now has the pid, but it is not the process that started the trial
        me = current_owner()
        stale = Owner(me.host, me.boot, sleeper.pid, str(int(process_start_time(sleeper.pid)) - 100))
        study._storage.set_trial_system_attr(trial._trial_id, OWNER_ATTR, stale.tag())
        resumed = run_cli("resume", "r", "--storage", db, "--budget", "4")
    finally:
        sleeper.kill()
        sleeper.wait()
    assert resumed.returncode == 0, resumed.stderr
    assert "1 interrupted trial(s) re-queued" in resumed.stderr
    c = counts(optuna.load_study(study_name="r", storage=_storage(db)))
    assert c.finished == 4 and c.running == 0 and c.void == 1


# --- what users of Optuna expect --------------------------------------------------------------


def test_settings_are_stored_out_of_optuna_studies_listing_and_the_metric_is_named(tmp_path):
    space = write_space(tmp_path / "s.yaml", space=SPACE)
    db = tmp_path / "o.db"
    out = run_cli("search", "--space", space, "--budget", "1", "--workers", "0", "--storage", db, "--name", "o")
    assert out.returncode == 0 and "A new study created" not in out.stderr + out.stdout
    study = optuna.load_study(study_name="o", storage=_storage(db))
    assert study.user_attrs == {} and study.metric_names == ["val_acc"]
    listing = subprocess.run([str(Path(sys.executable).parent / "optuna"), "studies", "--storage", f"sqlite:///{db}"],
                             capture_output=True, text=True)
    assert listing.returncode == 0 and "pair_losses" not in listing.stdout


def test_an_interruption_waits_for_the_end_of_an_uninterruptible_block():
    import signal

    from autokd.search.interrupts import interrupts_as_keyboard, uninterruptible

    steps = []
    with interrupts_as_keyboard():
        with pytest.raises(KeyboardInterrupt):
            with uninterruptible():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)  # the handler runs here, and holds the interruption
                steps.append("block finished")
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
    assert steps == ["block finished"]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_an_interruption_that_lands_in_a_finalizer_reaches_the_code_after_it_without_a_traceback(capsys):
    """CI saw SIGTERM land while SQLAlchemy finalized a connection: Python swallowed the
    KeyboardInterrupt there and printed its traceback."""
    import signal
    import sys

    from autokd.search.interrupts import interrupts_as_keyboard

    class Collected:
        def __del__(self):  # the signal's handler raising inside a finalizer
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)

    hook = sys.unraisablehook
    reached = []
    with interrupts_as_keyboard():
        with pytest.raises(KeyboardInterrupt):
            Collected()  # collected at once: its __del__ runs here
            reached.append("after the finalizer")
            time.sleep(1.0)  # the interruption arrives here
        assert reached == ["after the finalizer"]
    assert sys.unraisablehook is hook
    assert "Traceback" not in capsys.readouterr().err


def test_sigterm_under_ray_exits_130_requeues_and_leaves_no_process(tmp_path):
    space = write_space(tmp_path / "s.yaml", space=SPACE)
    db = tmp_path / "term.db"
    proc = subprocess.Popen([sys.executable, "-m", "autokd.cli.main", "search", "--space", str(space), "--budget", "200",
                             "--workers", "1", "--storage", str(db), "--name", "term", "--sampler", "random"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists():
                try:
                    if counts(optuna.load_study(study_name="term", storage=_storage(db))).finished >= 2:
                        break
                # the study does not exist yet, or the CLI is creating the file's tables while this
                # poll's Optuna storage tries to create them too (a UNIQUE clash on alembic_version)
                except (KeyError, sqlalchemy.exc.SQLAlchemyError):
                    pass
            time.sleep(0.5)
        proc.terminate()
        out, err = proc.communicate(timeout=60)
    finally:
        for pid in session_members(proc.pid):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "SIGTERM received" not in err and "Traceback" not in err
    assert f"autokd resume term --storage {db}" in err
    c = counts(optuna.load_study(study_name="term", storage=_storage(db)))
    assert c.running == 0
    assert_interrupted_requeued(optuna.load_study(study_name="term", storage=_storage(db)))
    time.sleep(2)
    assert not session_members(proc.pid), "Ray processes were left behind"


def test_a_changed_space_is_refused_naming_where_it_differs():
    """The refusal named only the file, the same one the user had given."""
    from autokd.search.study import _first_difference

    old = "task: default\nspace: {weight_scale: {low: 0.1, high: 1}, alpha: 0.5}\n"
    changed = _first_difference(old, old.replace("high: 1", "high: 2"))
    assert changed == "space.weight_scale.high: the study's 1, this run's 2"
    assert _first_difference(old, old.replace(", alpha: 0.5", "")) == "space.alpha: only the study sets it"


def test_an_interruption_as_the_study_is_created_waits_for_its_settings_and_warm_start(tmp_path, monkeypatch):
    """Ctrl-C a few ms after create_study left a study without settings (refused by every command
    for good), or with its settings but not its warm-start trials (silently never queued)."""
    import signal

    space = write_space(tmp_path / "s.yaml")
    create = optuna.create_study

    def create_then_interrupt(*args, **kwargs):
        study = create(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # the handler runs here: the interruption is held until the study is whole
        return study

    monkeypatch.setattr(optuna, "create_study", create_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        _search(space, "cut", tmp_path / "s.db", budget=2, warm_start="baselines")
    monkeypatch.setattr(optuna, "create_study", create)
    study = optuna.load_study(study_name="cut", storage=f"sqlite:///{tmp_path / 's.db'}")
    from autokd.search.study import read_settings

    assert read_settings(study).warm_start == "baselines"
    assert [t.state for t in study.trials] and all(t.state == TrialState.WAITING for t in study.trials)

"""--confirm K: the leaders re-run with more seeds once the budget is done, kept in the study,
not repeated on resume, and ranking the leaderboard, export and compare by their mean."""

from __future__ import annotations

import optuna
import yaml

from autokd.search.confirm import CONFIRM_SEEDS, CONFIRMED_ATTR, confirmed, store_confirmation
from conftest import run_cli, write_space

SPACE = {"temperature": {"low": 1, "high": 8}, "alpha": {"low": 0.1, "high": 0.9}, "logit_losses": ["kd"],
         "pair_losses": ["none"], "relation_losses": [], "pruning": False}


def test_confirmation_runs_are_recorded_reused_on_resume_and_rank_the_export(tmp_path):
    space = write_space(tmp_path / "s.yaml", space=SPACE)
    db = tmp_path / "c.db"
    out = run_cli("search", "--space", space, "--budget", "4", "--workers", "0", "--storage", db, "--name", "c",
                  "--sampler", "random", "--confirm", "2")
    assert out.returncode == 0, out.stderr
    assert "confirmed 2/2" in out.stderr and "confirmed" in out.stdout and "proxy seed noise" in out.stdout
    study = optuna.load_study(study_name="c", storage=f"sqlite:///{db}")
    state = confirmed(study)
    top2 = sorted((t for t in study.trials if t.value is not None), key=lambda t: (-t.value, t.number))[:2]
    assert sorted(state["trials"]) == sorted(t.number for t in top2)
    for t in top2:
        entry = state["trials"][t.number]
        assert len(entry["values"]) == 1 + CONFIRM_SEEDS and entry["values"][0] == t.value
        assert abs(entry["mean"] - sum(entry["values"]) / len(entry["values"])) < 1e-9
    assert state["noise"] is not None and state["noise"] >= 0
    before = confirmed(study)
    resumed = run_cli("resume", "c", "--storage", db)  # the budget is done: nothing more to run or confirm
    assert resumed.returncode == 0 and "confirmed" not in resumed.stderr.replace("confirmed trial", "")
    study = optuna.load_study(study_name="c", storage=f"sqlite:///{db}")
    assert confirmed(study) == before

    # a confirmed mean that drops below another trial's value changes the export
    winner, runner_up = top2
    store_confirmation(study, winner.number, {"values": [winner.value, 0.0, 0.0], "mean": winner.value / 3,
                                              "se": winner.value / 3})
    exported = run_cli("export", "c", "--storage", db)
    assert exported.returncode == 0, exported.stderr
    means = {n: v["mean"] for n, v in confirmed(study)["trials"].items()}
    expected = min(means, key=lambda n: (-means[n], n))  # the confirmed trials rank first, by their mean
    assert expected == runner_up.number
    header = exported.stdout.splitlines()[0]
    assert f"trial {expected} (rank 1" in header, header
    chosen = next(t for t in study.trials if t.number == expected)
    assert yaml.safe_load(exported.stdout)["strategy"]["alpha"] == chosen.user_attrs["strategy"]["alpha"]
    assert runner_up.number in means


def test_a_search_that_runs_out_of_strategies_still_confirms(tmp_path):
    """A space of 2 strategies and a budget of 5: the search stops at 2, and --confirm ran nothing, unsaid."""
    two = {**SPACE, "temperature": 4.0, "alpha": 0.5, "logit_standardization": [False, True]}
    space, db = write_space(tmp_path / "two.yaml", space=two), tmp_path / "c.db"
    out = run_cli("search", "--space", space, "--budget", "5", "--workers", "0", "--storage", db, "--name", "two",
                  "--sampler", "random", "--confirm", "1")
    assert out.returncode == 0, out.stderr
    assert "all 2 strategies of the space have been tried" in out.stderr and "confirmed 1/1" in out.stderr
    assert len(confirmed(optuna.load_study(study_name="two", storage=f"sqlite:///{db}"))["trials"]) == 1


def test_two_processes_confirming_one_study_keep_both_records(tmp_path):
    """Each trial's confirmation is its own attribute: a second handle that read the study before the
    first stored its record does not overwrite it (one shared attribute lost one of them)."""
    storage = f"sqlite:///{tmp_path / 'c.db'}"
    first = optuna.create_study(study_name="c", storage=storage)
    second = optuna.load_study(study_name="c", storage=storage)
    assert confirmed(first)["trials"] == confirmed(second)["trials"] == {}  # both read before either writes
    store_confirmation(first, 3, {"values": [90.0, 91.0, 92.0], "mean": 91.0, "se": 0.58})
    store_confirmation(second, 7, {"values": [89.0, 89.5, 90.0], "mean": 89.5, "se": 0.29})
    state = confirmed(optuna.load_study(study_name="c", storage=storage))
    assert sorted(state["trials"]) == [3, 7]
    assert abs(state["noise"] - ((1.0 + 0.25) / 2) ** 0.5) < 1e-9  # pooled over both: variances 1 and 0.25


def test_confirmations_stored_by_earlier_versions_are_read(tmp_path):
    study = optuna.create_study(study_name="c", storage=f"sqlite:///{tmp_path / 'c.db'}")
    legacy = {"trials": {"4": {"values": [80.0, 82.0], "mean": 81.0, "se": 1.0}}, "noise": 1.41}
    study._storage.set_study_system_attr(study._study_id, CONFIRMED_ATTR, legacy)
    store_confirmation(study, 5, {"values": [70.0, 70.0], "mean": 70.0, "se": 0.0})
    state = confirmed(study)
    assert state["trials"][4]["mean"] == 81.0 and state["trials"][5]["mean"] == 70.0
    assert abs(state["noise"] - 1.0) < 1e-9  # variances 2 and 0, one dof each: sqrt(2 / 2)


def test_a_seed_that_diverges_in_confirmation_counts_as_zero_not_as_missing(tmp_path):
    """The confirmation stopped at the diverged seed and kept the trial's own value alone (se 0): a strategy
    that diverges on other seeds ranked first and was exported as the winner."""
    from pathlib import Path

    from conftest import TINY_TASK

    task = {**TINY_TASK, "student": {"model": "faulty_models:SeedDoomed", "kwargs": {"channels": 4}}}
    space = write_space(tmp_path / "s.yaml", task=task, space={**SPACE, "temperature": 4.0, "alpha": 0.5})
    db = tmp_path / "d.db"
    out = run_cli("search", "--space", space, "--budget", "1", "--workers", "0", "--storage", db, "--name", "d",
                  "--confirm", "1", env={"PYTHONPATH": str(Path(__file__).parent)})
    assert out.returncode == 0, out.stderr
    assert "over 3 seeds (1 diverged, counted as 0%)" in out.stderr, out.stderr  # seed 1 diverges, 0 and 2 train
    entry = confirmed(optuna.load_study(study_name="d", storage=f"sqlite:///{db}"))["trials"][0]
    assert entry["diverged"] == 1 and len(entry["values"]) == 3 and 0.0 in entry["values"]
    assert "1 diverged" in out.stdout  # the leaderboard says so

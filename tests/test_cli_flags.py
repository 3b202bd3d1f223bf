"""Flags that contradict each other or click lets through: one error line, exit 2, nothing made."""

from __future__ import annotations

import pytest
from conftest import run_cli

from autokd.search.settings import default_study_name

CASES = {
    "nan_size": (["search", "--max-size-kb", "nan"], "Invalid value for '--max-size-kb': nan is not a finite number > 0"),
    "inf_latency": (["search", "--max-latency-ms", "inf"], "'--max-latency-ms': inf is not a finite number > 0"),
    "workers0_address": (["search", "--workers", "0", "--address", "1.2.3.4:1"],
                         "--workers 0 runs trials in this process without Ray, --address '1.2.3.4:1' joins"),
    "rank_and_trial": (["export", "x", "--rank", "2", "--trial", "0"], "give --rank or --trial, not both"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_contradicting_or_non_finite_flags_are_one_error_line(tmp_path, case):
    args, needle = CASES[case]
    proc = run_cli(*args, "--storage", tmp_path / "s.db", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ") and needle in proc.stderr, proc.stderr
    assert list(tmp_path.iterdir()) == []  # no storage, no report folder


@pytest.mark.parametrize("args", [
    ["search", "--space", ""], ["studies", "--storage", " "], ["export", "x", "-o", ""], ["train", "--config", ""],
    ["train", "--config", "c.yaml", "--out", ""], ["compare", "x", "--out", ""], ["compare", "x", "--baselines", ""],
    ["calibrate", "--baselines", ""], ["calibrate", "--write-space", ""],
], ids=lambda a: " ".join(a))
def test_an_empty_flag_value_is_refused_not_read_as_the_default(tmp_path, args):
    """compare --out '' wrote to reports/NAME, calibrate --baselines '' ran every shipped baseline."""
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "is empty; give a value, or leave the flag out for its default" in proc.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("source, name", [("_x.yaml", "x-tpe"), ("__.yaml", "space-tpe"), ("my space.yaml", "my-space-tpe"),
                                          (".hidden.yaml", "hidden-tpe")])
def test_a_default_study_name_is_always_a_valid_one(source, name):
    assert default_study_name(source, "tpe") == name


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without a CUDA GPU")
def test_resume_takes_a_device_and_stores_it(tmp_path):
    """A study made on a GPU machine could not be resumed on a CPU one: resume had no --device, and its error
    said to use one."""
    import json

    import optuna
    from conftest import write_space

    from autokd.search.settings import SETTINGS_ATTR

    space = write_space(tmp_path / "s.yaml")
    db = tmp_path / "s.db"
    assert run_cli("search", "--space", space, "--budget", "1", "--workers", "0", "--storage", db, "--name", "g",
                   "--no-pruning").returncode == 0
    storage = optuna.storages.RDBStorage(f"sqlite:///{db}")
    study_id = storage.get_study_id_from_name("g")
    settings = storage.get_study_system_attrs(study_id)[SETTINGS_ATTR]
    storage.set_study_system_attr(study_id, SETTINGS_ATTR, {**settings, "device": "cuda"})  # made on a GPU machine
    storage.remove_session()
    refused = run_cli("resume", "g", "--storage", db, "--budget", "2")
    assert refused.returncode == 2 and "no CUDA GPU" in refused.stderr, refused.stderr
    resumed = run_cli("resume", "g", "--storage", db, "--budget", "2", "--device", "cpu")
    assert resumed.returncode == 0, resumed.stderr
    stored = optuna.load_study(study_name="g", storage=f"sqlite:///{db}")._storage.get_study_system_attrs(study_id)
    assert json.loads(json.dumps(stored[SETTINGS_ATTR]))["device"] == "cpu"


def test_a_search_with_nothing_to_do_leaves_the_stored_budget_and_sampler(tmp_path):
    """`search --budget 2` on a study with 3 trials done stored 2 (`studies` then said 3/2)."""
    import optuna
    from conftest import write_space

    from autokd.search.study import read_settings

    space = write_space(tmp_path / "s.yaml")
    db = tmp_path / "s.db"
    common = ["search", "--space", space, "--workers", "0", "--storage", db, "--name", "n", "--no-pruning"]
    assert run_cli(*common, "--budget", "3").returncode == 0
    idle = run_cli(*common, "--budget", "2", "--sampler", "random")
    assert idle.returncode == 0 and "budget already reached" in idle.stdout + idle.stderr
    assert "this run and later resumes use random" not in idle.stdout + idle.stderr
    settings = read_settings(optuna.load_study(study_name="n", storage=f"sqlite:///{db}"))
    assert (settings.budget, settings.sampler) == (3, "tpe")


def test_resuming_a_warm_started_study_does_not_warn_about_a_flag_not_given(tmp_path):
    from conftest import write_space

    space = write_space(tmp_path / "s.yaml")
    db = tmp_path / "s.db"
    first = run_cli("search", "--space", space, "--workers", "0", "--storage", db, "--name", "w", "--budget", "1",
                    "--warm-start", "baselines", "--no-pruning")
    assert first.returncode == 0 and "warm start:" in first.stdout + first.stderr, first.stderr
    resumed = run_cli("resume", "w", "--storage", db, "--budget", "2")
    assert resumed.returncode == 0 and "--warm-start is ignored" not in resumed.stdout + resumed.stderr
    again = run_cli("search", "--space", space, "--workers", "0", "--storage", db, "--name", "w", "--budget", "2",
                    "--warm-start", "baselines")  # given again: honoured at creation, nothing to say
    assert again.returncode == 0 and "--warm-start is ignored" not in again.stdout + again.stderr


def test_no_pruning_and_confirm_given_to_a_later_run_are_stored_and_kept_when_not_named(tmp_path):
    """A later search's --no-pruning and --confirm were used by that run only: its printed resume
    command pruned and never confirmed, and a re-run raising the budget left the old confirmed
    trial (15 points below the new best) as the exported winner."""
    import optuna
    from conftest import write_space

    from autokd.search.study import read_settings

    space = write_space(tmp_path / "s.yaml", space={"temperature": {"low": 1, "high": 8}, "logit_losses": ["kd"],
                                                    "pair_losses": ["none"], "relation_losses": []})
    db = tmp_path / "s.db"
    common = ("search", "--space", space, "--workers", "0", "--storage", db, "--name", "p", "--sampler", "random")
    assert run_cli(*common, "--budget", "1").returncode == 0

    def stored():
        return read_settings(optuna.load_study(study_name="p", storage=f"sqlite:///{db}"))

    assert (stored().pruning, stored().confirm) == (True, 0)
    assert run_cli(*common, "--budget", "2", "--no-pruning", "--confirm", "1").returncode == 0
    assert (stored().pruning, stored().confirm) == (False, 1)
    raised = run_cli(*common, "--budget", "4")  # neither named: the study's own
    assert raised.returncode == 0, raised.stderr
    assert (stored().pruning, stored().confirm) == (False, 1)
    from autokd.search.confirm import confirmed

    study = optuna.load_study(study_name="p", storage=f"sqlite:///{db}")
    best = max((t for t in study.trials if t.value is not None), key=lambda t: (t.value, -t.number))
    assert best.number in confirmed(study)["trials"]  # the new leader is confirmed too
    idle = run_cli(*common, "--budget", "4", "--confirm", "2", "--pruning")  # nothing to run: still kept
    assert idle.returncode == 0, idle.stderr
    assert (stored().pruning, stored().confirm, stored().budget) == (True, 2, 4)


def test_studies_lists_another_tools_studies_without_a_best_accuracy_and_on_one_line_each(tmp_path):
    """A minimising study showed its largest value as a best accuracy (0.93%), and a name holding a
    newline split its row in two."""
    import optuna

    db = tmp_path / "s.db"
    for name, direction in (("min", "minimize"), ("evil\nname", "maximize")):
        study = optuna.create_study(study_name=name, direction=direction, storage=f"sqlite:///{db}")
        for value in (0.93, 0.12):
            study.add_trial(optuna.trial.create_trial(value=value, params={}, distributions={}))
    out = run_cli("studies", "--storage", db)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 3, out.stdout
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {"min", "evil\\nname"}
    assert all("%" not in row and row.endswith("not made by autokd search") for row in rows.values()), out.stdout


def test_resuming_a_study_stored_with_more_workers_than_this_machine_names_the_stored_setting(tmp_path):
    import optuna
    from conftest import write_space

    from autokd.search.settings import SETTINGS_ATTR

    db = tmp_path / "s.db"
    space = write_space(tmp_path / "s.yaml")
    assert run_cli("search", "--space", space, "--workers", "0", "--storage", db, "--name", "w",
                   "--budget", "1").returncode == 0
    study = optuna.load_study(study_name="w", storage=f"sqlite:///{db}")  # searched on a larger machine
    study._storage.set_study_system_attr(study._study_id, SETTINGS_ATTR,
                                         {**study._storage.get_study_system_attrs(study._study_id)[SETTINGS_ATTR], "workers": 4096})
    out = run_cli("resume", "w", "--storage", db, "--budget", "2")
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith(
        "error: the study's stored workers setting (4096) is more than this machine's"), out.stderr
    assert "pass --workers N" in out.stderr


def test_a_rerun_that_names_no_budget_or_device_keeps_the_studys_own(tmp_path):
    """Re-running `search` without --budget raised the study's budget to the default 100 (47 trials ran
    before the user stopped it) and replaced its stored device with the default."""
    import optuna
    from conftest import write_space

    from autokd.search.study import read_settings

    space = write_space(tmp_path / "s.yaml", space={"temperature": {"low": 1, "high": 8}, "logit_losses": ["kd"],
                                                    "pair_losses": ["none"], "relation_losses": []})
    db = tmp_path / "s.db"
    common = ("search", "--space", space, "--storage", db, "--name", "b", "--sampler", "random")
    common = (*common, "--workers", "0")
    assert run_cli(*common, "--budget", "1", "--device", "cpu").returncode == 0
    again = run_cli(*common)
    assert again.returncode == 0, again.stderr
    assert "1/1 trials done" in again.stdout + again.stderr and "budget already reached" in again.stdout + again.stderr
    settings = read_settings(optuna.load_study(study_name="b", storage=f"sqlite:///{db}"))
    assert (settings.budget, settings.device) == (1, "cpu")
    for flags in (("--address", ""), ("--device", "")):
        empty = run_cli(*common, *flags)
        assert empty.returncode == 2 and "is empty" in empty.stderr, empty.stderr

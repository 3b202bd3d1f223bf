"""Studies whose stored settings were damaged (edited, or written by another tool), studies with no
feasible trial, and a re-run search whose flags differ from the study's.

Every case is a real SQLite study made by ``autokd search`` (budget 1, the tiny task), damaged
with Optuna's own storage API and then read by the real CLI in a subprocess: a damaged value gives
one ``error:`` line, exit code 2, no traceback, and the storage file is left byte for byte as it was.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import optuna
import pytest
from conftest import PLAIN_SPACE, run_cli, write_space

from autokd.errors import AutokdError
from autokd.search.settings import DamagedSettings, SearchSettings

HINT = "next: autokd export"


@pytest.fixture(scope="module")
def made(tmp_path_factory, _session_cache_dir) -> dict:
    """One storage with three real studies: ``base`` (feasible), ``tight`` (``--max-latency-ms 0.001``: no
    trial feasible) and ``allfail`` (every trial diverges); with the searches' outputs."""
    folder = tmp_path_factory.mktemp("damaged")
    env = {"AUTOKD_CACHE": str(_session_cache_dir), "MPLBACKEND": "Agg", "RAY_AUTH_MODE": "disabled"}
    space = write_space(folder / "tiny.yaml", space=PLAIN_SPACE)
    failing = write_space(folder / "fail.yaml", space={**PLAIN_SPACE, "alpha": 0.0, "pair_losses": ["fitnet"],
                                                       "weight_scale": 1.0e30})
    db = folder / "studies.db"
    common = ["--budget", "1", "--workers", "0", "--sampler", "random", "--storage", db]
    outputs = {}
    for name, path, extra in (("base", space, []), ("tight", space, ["--max-latency-ms", "0.001"]), ("allfail", failing, [])):
        outputs[name] = run_cli("search", "--space", path, "--name", name, *common, *extra, cwd=folder, env=env)
        assert outputs[name].returncode == 0, outputs[name].stderr
    return {"folder": folder, "db": db, "space": space, "outputs": outputs}


def _copy(made: dict, tmp_path: Path) -> Path:
    copy = tmp_path / "copy.db"
    shutil.copy(made["db"], copy)
    return copy


def _damage(db: Path, how: str, study: str = "base") -> None:
    """Damage ``study``'s stored settings or teacher record as a hand edit or another tool might."""
    storage = optuna.storages.RDBStorage(f"sqlite:///{db}")
    study_id = storage.get_study_id_from_name(study)
    settings = dict(storage.get_study_system_attrs(study_id)["autokd:settings"])
    changes = {
        "settings a string": ("autokd:settings", "garbage"),
        "settings without space_text": ("autokd:settings", {k: v for k, v in settings.items() if k != "space_text"}),
        "space_text not yaml": ("autokd:settings", {**settings, "space_text": "task: [\n"}),
        "space_text a list": ("autokd:settings", {**settings, "space_text": "- 1\n- 2\n"}),
        "budget a word": ("autokd:settings", {**settings, "budget": "lots"}),
        "budget negative": ("autokd:settings", {**settings, "budget": -5}),
        "unknown sampler": ("autokd:settings", {**settings, "sampler": "foo"}),
        "pruning a word": ("autokd:settings", {**settings, "pruning": "yes"}),
        "teacher a string": ("autokd:teacher", "x"),
        "teacher without fingerprint": ("autokd:teacher", {"source": "cache"}),
    }
    key, value = changes[how]
    storage.set_study_system_attr(study_id, key, value)
    storage.remove_session()
    storage.engine.dispose()


def _digest(db: Path) -> str:
    return hashlib.sha256(db.read_bytes()).hexdigest()


def _assert_refused(result, *fragments: str) -> None:
    """Exit code 2, exactly one stderr line, an ``error:`` naming ``fragments``, no traceback."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


SETTINGS_DAMAGE = {
    "settings a string": "autokd:settings is 'garbage', expected a mapping",
    "settings without space_text": "autokd:settings has no space_text",
    "space_text not yaml": "autokd:settings.space_text is not readable YAML",
    "space_text a list": "autokd:settings.space_text is '- 1",
    "budget a word": "autokd:settings.budget is 'lots', expected a whole number",
    "budget negative": "autokd:settings.budget is -5, expected a whole number >= 1",
    "unknown sampler": "autokd:settings.sampler is 'foo', expected one of tpe",
    "pruning a word": "autokd:settings.pruning is 'yes', expected true or false",
}


@pytest.mark.parametrize("how", list(SETTINGS_DAMAGE))
def test_damaged_settings_are_one_error_line_in_show_export_and_resume(made, tmp_path, how):
    db = _copy(made, tmp_path)
    _damage(db, how)
    before = _digest(db)
    commands = (["show", "base"], ["export", "base", "-o", tmp_path / "best.yaml"], ["resume", "base", "--budget", "2"])
    for command in commands:
        result = run_cli(*command, "--storage", db, cwd=tmp_path)
        _assert_refused(result, "study 'base' has damaged stored settings", SETTINGS_DAMAGE[how],
                        "it was not written by autokd or was edited")
        assert _digest(db) == before, command
    assert not (tmp_path / "best.yaml").exists()


@pytest.mark.parametrize("how, fragment", [
    ("teacher a string", "autokd:teacher is 'x', expected a mapping with the teacher's fingerprint"),
    ("teacher without fingerprint", "autokd:teacher.fingerprint is None, expected a text"),
])
def test_damaged_teacher_record_is_refused_before_any_training(made, tmp_path, how, fragment):
    db = _copy(made, tmp_path)
    _damage(db, how)
    before = _digest(db)
    for command in (["resume", "base", "--budget", "2"],
                    ["search", "--space", made["space"], "--name", "base", "--budget", "2", "--workers", "0",
                     "--sampler", "random"]):
        result = run_cli(*command, "--storage", db, cwd=tmp_path)
        _assert_refused(result, "study 'base' has damaged stored teacher record", fragment)
        assert "teacher" not in result.stdout  # refused before the task was set up
        assert _digest(db) == before, command
    assert run_cli("show", "base", "--storage", db).returncode == 0  # show needs no teacher


def test_one_damaged_study_does_not_hide_the_others_in_studies(made, tmp_path):
    db = _copy(made, tmp_path)
    _damage(db, "settings a string", "base")
    _damage(db, "budget a word", "allfail")
    before = _digest(db)
    listing = run_cli("studies", "--storage", db)
    assert listing.returncode == 0 and listing.stderr == "", listing.stderr
    rows = {line.split()[0]: line for line in listing.stdout.splitlines()[1:]}
    assert set(rows) == {"base", "tight", "allfail"}
    for name in ("base", "allfail"):
        assert f"damaged settings (autokd show {name} says what)" in rows[name]
        assert rows[name].split()[1:3] == ["?", "1/?"]
    assert "damaged" not in rows["tight"] and "1/1" in rows["tight"]
    assert _digest(db) == before


def test_studies_agrees_with_show_on_a_study_without_a_feasible_trial(made):
    db = made["db"]
    rows = {line.split()[0]: line for line in run_cli("studies", "--storage", db).stdout.splitlines()[1:]}
    assert "no feasible trial (max_latency_ms 0.001)" in rows["tight"]
    assert rows["tight"].split()[6] == "-"  # no best val: no trial meets the constraint
    assert rows["base"].split()[6].endswith("%") and "feasible" not in rows["base"]
    shown = run_cli("show", "tight", "--storage", db)
    assert shown.returncode == 0 and "no feasible trial" in shown.stdout
    from autokd.search.monitor import SearchMonitor  # the progress line agrees too (it showed the infeasible best)

    lines, tight = [], optuna.load_study(study_name="tight", storage=f"sqlite:///{db}")
    monitor = SearchMonitor(tight, 1, lambda text, _force: lines.append(text))
    monitor.trial_finished("complete", 99.0)
    assert monitor.best is None and "best val -" in lines[-1]
    assert SearchMonitor(optuna.load_study(study_name="base", storage=f"sqlite:///{db}"), 1, print).best is not None
    _assert_refused(run_cli("export", "tight", "--storage", db), "no complete trial that meets its constraints")


def test_search_hints_at_export_only_when_there_is_something_to_export(made):
    outputs = made["outputs"]
    assert HINT in outputs["base"].stdout
    assert HINT not in outputs["tight"].stdout and "no feasible trial" in outputs["tight"].stdout
    assert HINT not in outputs["allfail"].stdout and "no complete trials yet" in outputs["allfail"].stdout


@pytest.mark.parametrize("study, flags, fragment", [
    ("base", ["--objectives", "accuracy,size"], "--objectives was unset (accuracy only), now accuracy,size"),
    ("base", ["--max-params", "100000"], "--max-params was unset, now 100000"),
    ("tight", ["--max-latency-ms", "2"], "--max-latency-ms was 0.001, now 2"),
    ("tight", [], "--max-latency-ms was 0.001, now unset"),
    ("base", ["--objectives", "accuracy,size", "--max-size-kb", "3"],
     "--objectives was unset (accuracy only), now accuracy,size, --max-size-kb was unset, now 3"),
])
def test_a_rerun_with_other_flags_names_the_flag_not_the_space(made, tmp_path, study, flags, fragment):
    db = _copy(made, tmp_path)
    before = _digest(db)
    result = run_cli("search", "--space", made["space"], "--name", study, "--budget", "2", "--workers", "0",
                     "--sampler", "random", "--storage", db, *flags, cwd=tmp_path)
    _assert_refused(result, f"study {study!r} was made with other objectives or constraints than this run",
                    fragment, f"autokd resume {study}")
    assert "different search space" not in result.stderr
    assert _digest(db) == before


def test_a_rerun_with_another_space_still_says_the_space_differs(made, tmp_path):
    db = _copy(made, tmp_path)
    before = _digest(db)
    changed = write_space(tmp_path / "tiny.yaml", space={**PLAIN_SPACE, "alpha": 0.3})
    result = run_cli("search", "--space", changed, "--name", "base", "--budget", "2", "--workers", "0",
                     "--sampler", "random", "--storage", db, "--max-params", "100000", cwd=tmp_path)
    _assert_refused(result, "study 'base' was made with a different search space")
    assert "space.alpha: only this run sets it" in result.stderr  # what differs (the file names alone were equal)
    assert _digest(db) == before


def test_stored_settings_round_trip_and_unknown_keys_are_ignored(made):
    storage = optuna.storages.RDBStorage(f"sqlite:///{made['db']}")
    stored = storage.get_study_system_attrs(storage.get_study_id_from_name("base"))["autokd:settings"]
    settings = SearchSettings.from_dict(stored, "base")
    assert SearchSettings.from_dict(settings.to_dict(), "base") == settings
    assert SearchSettings.from_dict({**stored, "added_later": 1}, "base") == settings  # a newer autokd's key
    storage.engine.dispose()


@pytest.mark.parametrize("change, fragment", [
    ({"workers": -1}, "workers is -1, expected a whole number >= 0, or null"),
    ({"seed": 2**40}, "seed is 1099511627776, expected a whole number from 0 to"),
    ({"budget": True}, "budget is True, expected a whole number >= 1"),
    ({"confirm": 1.5}, "confirm is 1.5, expected a whole number >= 0"),
    ({"warm_start": "all"}, "warm_start is 'all', expected null or one of baselines"),
    ({"space_source": 3}, "space_source is 3, expected a file name"),
    ({"space_text": "task: {}\nspace:\n  objectives: [size]\n"}, "space_text holds objectives or constraints"),
])
def test_each_stored_setting_is_checked(made, change, fragment):
    storage = optuna.storages.RDBStorage(f"sqlite:///{made['db']}")
    stored = storage.get_study_system_attrs(storage.get_study_id_from_name("base"))["autokd:settings"]
    storage.engine.dispose()
    with pytest.raises(DamagedSettings, match="study 'base' has damaged stored settings") as caught:
        SearchSettings.from_dict({**stored, **change}, "base")
    assert fragment in str(caught.value) and isinstance(caught.value, AutokdError)


def test_objectives_accuracy_written_out_is_the_default_not_another_search():
    """--objectives accuracy (or a space's objectives: [accuracy]) is what a study without objectives
    searches: it was refused as 'other objectives' on the same study."""
    from autokd.search.settings import SearchSettings

    plain = "task: {name: t}\nspace: {alpha: 0.5}\n"
    written = "task: {name: t}\nspace: {alpha: 0.5, objectives: [accuracy]}\n"
    sized = "task: {name: t}\nspace: {alpha: 0.5, objectives: [accuracy, size]}\n"
    fingerprint = [SearchSettings(text, "s.yaml").space_fingerprint() for text in (plain, written, sized)]
    assert fingerprint[0] == fingerprint[1] != fingerprint[2]


def test_show_says_which_running_trials_a_killed_search_left(made, tmp_path):
    """A trial whose search was killed stays RUNNING in the storage until the next search or resume;
    show counted it as running as if a search were still at work."""
    import subprocess
    import sys

    from autokd.search.ledger import OWNER_ATTR, orphaned
    from autokd.search.owner import current_owner

    db = _copy(made, tmp_path)
    study = optuna.load_study(study_name="base", storage=f"sqlite:///{db}")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = current_owner().tag().replace(f"|{current_owner().pid}|", f"|{int(gone.stdout)}|")
    for tag in (dead, current_owner().tag()):  # one killed search's, one of a live process (this one)
        trial = study.ask()
        study._storage.set_trial_system_attr(trial._trial_id, OWNER_ATTR, tag)
    assert orphaned(study) == 1
    shown = run_cli("show", "base", "--storage", db, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "; 2 running, 1 of them left by a search that was killed (void on the next search or resume))" in shown.stdout

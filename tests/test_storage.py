"""Study storages: URLs and files, what is refused, drivers, and files made only to write."""

from __future__ import annotations

import os

import pytest

from autokd.errors import AutokdError
from autokd.search.storage import _reason, open_storage, storage_exists, storage_file


def test_a_postgresql_url_reaches_the_driver_and_hides_the_password():
    with pytest.raises(AutokdError) as err:
        open_storage("postgresql://autokd:s3cret@127.0.0.1:9/none")  # nothing listens on port 9
    message = str(err.value)
    assert "s3cret" not in message and "autokd:***@127.0.0.1" in message
    assert "refused" in message.lower() and "driver" not in message


def test_a_missing_postgresql_driver_names_the_extra():
    exc = ImportError("No module named 'psycopg'")
    assert "pip install 'autokd[postgres]'" in _reason("postgresql://u@h/db", exc)
    assert "driver is not installed" in _reason("mysql://u@h/db", ModuleNotFoundError("No module named 'MySQLdb'"))


def test_storage_files_that_are_not_regular_files_are_refused(tmp_path):
    (tmp_path / "folder.db").mkdir()
    os.mkfifo(tmp_path / "fifo.journal")
    for bad in ("folder.db", "fifo.journal"):
        with pytest.raises(AutokdError, match="not a regular file"):
            open_storage(str(tmp_path / bad))
    with pytest.raises(AutokdError, match="neither a URL"):
        open_storage(str(tmp_path / "studies.txt"))


def test_a_local_storage_is_created_only_when_opened(tmp_path):
    path = tmp_path / "new" / "s.db"
    assert storage_file(str(path)) == path and not storage_exists(str(path))
    assert storage_file("postgresql://u@h/db") is None and storage_exists("postgresql://u@h/db")
    open_storage(str(path))
    assert path.is_file() and storage_exists(str(path))
    journal = tmp_path / "j.journal"
    open_storage(str(journal))
    assert storage_file(str(journal)) == journal


def _journal(path):
    import optuna

    storage = open_storage(str(path))
    study = optuna.create_study(storage=storage, study_name="j")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    return path.read_bytes()


def test_a_file_that_is_not_a_journal_is_refused_and_left_as_it_was(tmp_path):
    garbage = tmp_path / "g.journal"
    garbage.write_text("garbage\n")
    with pytest.raises(AutokdError, match=r"g\.journal' is not an Optuna journal: line 1 is not a journal record"):
        open_storage(str(garbage))
    assert garbage.read_text() == "garbage\n"
    cut = tmp_path / "cut.journal"
    good = _journal(cut)
    cut.write_bytes(good[:-50])  # a last line cut short (a crash, a full disk)
    with pytest.raises(AutokdError, match=r"its last line \(line \d+\) is cut short.*remove that line"):
        open_storage(str(cut))
    assert cut.read_bytes() == good[:-50]
    cut.write_bytes(good)
    open_storage(str(cut))  # whole again: opens


def test_reading_an_empty_sqlite_file_leaves_it_empty(tmp_path):
    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(AutokdError, match=r"empty\.db' is an empty file: no studies in it"):
        open_storage(str(empty), create=False)
    assert empty.stat().st_size == 0
    from conftest import run_cli

    listed = run_cli("studies", "--storage", empty)
    assert listed.returncode == 2 and "is an empty file: no studies in it" in listed.stderr, listed.stderr
    assert empty.stat().st_size == 0
    open_storage(str(empty))  # a search may make its tables there
    assert empty.stat().st_size > 0


def test_an_sqlite_uri_filename_names_its_file(tmp_path):
    db = tmp_path / "s.db"
    assert storage_file(f"sqlite:///file:{db}?mode=ro&uri=true") == db
    assert storage_file(f"sqlite:///{db}?timeout=5") == db


def test_a_read_only_storage_is_read_and_a_write_refused_in_one_line(tmp_path, tiny_space_file):
    import hashlib

    from conftest import run_cli

    db = tmp_path / "s.db"
    made = run_cli("search", "--space", tiny_space_file, "--budget", "1", "--workers", "0", "--name", "ro",
                   "--storage", db)
    assert made.returncode == 0, made.stderr
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    read_only = f"sqlite:///file:{db}?mode=ro&uri=true"
    shown = run_cli("show", "ro", "--storage", read_only)
    assert shown.returncode == 0 and "rank" in shown.stdout, shown.stderr
    grown = run_cli("resume", "ro", "--budget", "2", "--workers", "0", "--storage", read_only)
    assert grown.returncode == 2 and "Traceback" not in grown.stderr, grown.stderr
    assert grown.stderr.splitlines()[-1] == "error: the study storage failed: attempt to write a readonly database"
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest
    assert not (tmp_path / "file:").exists() and not any(p.name.startswith("file:") for p in tmp_path.rglob("*"))


@pytest.mark.parametrize("name", ["p%41.db", "q?x=1.db", "a b#c.db"])
def test_a_storage_path_with_url_characters_is_the_file_named(tmp_path, name):
    """p%41.db was written as pA.db, q?x=1.db as q (with a raw SQLAlchemy warning), while the commands
    that read looked for the file named and said there was no storage."""
    import optuna

    path = tmp_path / name
    optuna.create_study(study_name="s", storage=open_storage(str(path)))
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    assert storage_file(str(path)) == path and storage_exists(str(path))
    assert optuna.get_all_study_names(open_storage(str(path), create=False)) == ["s"]


def test_a_tilde_in_an_sqlite_url_is_refused_as_sqlite_would_make_a_folder_of_it():
    with pytest.raises(AutokdError, match=r"SQLite takes ~ as a folder named ~.*write the path alone \(~/x\.db\)"):
        open_storage("sqlite:///~/x.db")


def test_an_sqlite_database_of_something_else_is_refused_and_left_as_it_was(tmp_path):
    """Even `autokd studies` added Optuna's twelve tables next to the user's own."""
    import sqlite3

    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE customers (id INTEGER)")
    before = path.read_bytes()
    for create in (False, True):
        with pytest.raises(AutokdError, match=r"is an SQLite database of something else \(tables customers\)"):
            open_storage(str(path), create=create)
    assert path.read_bytes() == before

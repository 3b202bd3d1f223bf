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

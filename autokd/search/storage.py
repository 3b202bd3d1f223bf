"""Where studies live: Optuna storages from a URL or a path.

- default: the SQLite file ``studies/autokd.db`` under the current directory (one file, many studies);
- ``sqlite:///x.db``, ``postgresql://...``, ``mysql://...``: any Optuna RDB URL;
- a path ending in ``.journal`` or ``.log``: Optuna's journal file storage (safe for several
  processes on one machine without a database server);
- a path ending in ``.db`` or ``.sqlite``: that SQLite file.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Optional

from autokd.errors import AutokdError
from autokd.outputs import make_folder

DEFAULT_STORAGE_DIR = "studies"
DEFAULT_STORAGE_FILE = "autokd.db"


def default_storage_url() -> str:
    folder = Path(os.environ.get("AUTOKD_STUDIES", DEFAULT_STORAGE_DIR))
    return _sqlite_url(folder / DEFAULT_STORAGE_FILE)


def _sqlite_url(path: Path) -> str:
    """The SQLite URL of ``path``, percent-quoted: SQLAlchemy decodes ``%41`` and reads ``?`` as a
    query, so ``p%41.db`` or ``q?x.db`` went to other files than the ones named."""
    from urllib.parse import quote

    return "sqlite:///" + quote(str(path), safe="/")


def _resolve(spec: Optional[str]) -> tuple[str, str]:
    """``("journal", path)`` or ``("rdb", url)`` for a storage spec (None: the default SQLite file)."""
    spec = spec or default_storage_url()
    if spec.endswith((".journal", ".log")) and "://" not in spec:
        return "journal", str(Path(spec).expanduser())
    if "://" not in spec:
        if not spec.endswith((".db", ".sqlite", ".sqlite3")):
            raise AutokdError(
                f"storage {spec!r} is neither a URL (sqlite:///..., postgresql://...) nor a file ending "
                "in .db/.sqlite (SQLite) or .journal/.log (journal file)"
            )
        spec = _sqlite_url(Path(spec).expanduser())
    elif spec.startswith("sqlite:///~"):
        raise AutokdError(f"storage {spec!r}: in a URL SQLite takes ~ as a folder named ~, not your home; "
                          f"write the path alone ({spec[len('sqlite:///'):]}) or in full")
    return "rdb", spec


def storage_file(spec: Optional[str]) -> Optional[Path]:
    """The local file a storage lives in (SQLite, journal), None for a database server."""
    kind, target = _resolve(spec)
    if kind == "journal":
        return Path(target)
    if target.startswith("sqlite:///"):
        from sqlalchemy.engine import make_url

        try:  # read as SQLAlchemy reads it: percent-decoded, without its query (?timeout=..., ?mode=ro&uri=true)
            path = make_url(target).database or ""
        except Exception:  # a malformed URL: opening it says why
            return None
        if path.startswith("file:"):  # an SQLite URI filename: sqlite:///file:PATH?mode=ro&uri=true
            path = path[len("file:"):]
        return Path(path) if path and path != ":memory:" else None
    return None


def storage_exists(spec: Optional[str]) -> bool:
    """False when the storage is a local file not created yet (opening it would create it)."""
    file = storage_file(spec)
    return file is None or file.exists()


def open_storage(spec: Optional[str] = None, create: bool = True):
    """An Optuna storage object for ``spec`` (None: the default SQLite file).

    ``create``: make a missing local file (and its folder); else a missing file is an AutokdError,
    so commands that only read never leave an empty storage behind."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" lines in normal output
    kind, target = _resolve(spec)
    file = storage_file(spec)
    if not create and file is not None and not file.exists():
        raise AutokdError(f"no study storage at {str(file)!r} (run autokd search first, or name another with --storage)")
    if not create and kind == "rdb" and file is not None and file.is_file() and file.stat().st_size == 0:
        # opening it would write Optuna's tables into it: a command that only reads leaves it as it is
        raise AutokdError(f"storage {str(file)!r} is an empty file: no studies in it (run autokd search with it first)")
    try:
        if file is not None and file.exists() and not file.is_file():
            raise AutokdError(f"storage {str(file)!r} is not a regular file (a folder, FIFO or device); "
                              "name a .db or .journal file")
        if kind == "rdb" and file is not None and file.is_file():
            _check_not_foreign(file)
        if file is not None and not file.parent.exists():
            make_folder(file.parent, "the study storage")
        if kind == "journal":
            from optuna.storages.journal import JournalFileBackend

            if file.exists():
                _check_journal(file)
            return optuna.storages.JournalStorage(JournalFileBackend(target))
        return _open_rdb(target, attempts=6 if file is not None else 1)
    except AutokdError:
        raise
    except Exception as exc:  # SQLAlchemy and drivers raise many types for bad URLs
        raise AutokdError(f"cannot open storage {_redacted(target)!r}: {_reason(target, exc)}") from None


def _check_not_foreign(path: Path) -> None:
    """An SQLite database holding tables but none of Optuna's is someone else's: opening it would add
    Optuna's tables next to theirs (even for a command that only reads), so it is refused."""
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    except sqlite3.Error:  # not SQLite, or locked: opening it says what it is
        return
    if tables and "studies" not in tables and "alembic_version" not in tables:
        shown = ", ".join(sorted(tables)[:5]) + (f" and {len(tables) - 5} more" if len(tables) > 5 else "")
        raise AutokdError(f"storage {str(path)!r} is an SQLite database of something else (tables {shown}), not an "
                          f"Optuna study storage; name another .db file (a new name makes a new storage)")


def _check_journal(path: Path, retries: int = 3) -> None:
    """An Optuna journal holds one JSON record per line. A file that does not (another format, or a
    last line cut short by a crash or a full disk) is refused before Optuna appends to it; a last
    line without its newline is read again a moment later (another search may be writing it)."""
    import json
    import time

    for attempt in range(retries):
        lines = path.read_bytes().split(b"\n")
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if isinstance(record, dict) and "op_code" in record:
                continue
            if number < len(lines):  # a whole line that is not a journal record
                raise AutokdError(f"storage {str(path)!r} is not an Optuna journal: line {number} is not a journal "
                                  f"record; name another file (a new name makes a new journal)")
            if attempt == retries - 1:
                raise AutokdError(f"storage {str(path)!r}: its last line (line {number}) is cut short, as after a crash "
                                  f"or a full disk; remove that line to recover the studies before it")
            time.sleep(0.5)
            break
        else:
            return


def _open_rdb(url: str, attempts: int):
    """An RDBStorage; several processes creating one SQLite file at once race on its schema
    ("table already exists", a unique version row): the losers try again once it is made."""
    import time

    import optuna

    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=_engine_kwargs(url))
        except Exception:
            if attempt == attempts - 1:
                raise
            time.sleep(0.25 * (attempt + 1))


def _reason(url: str, exc: Exception) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    missing_driver = isinstance(exc, (ImportError, ModuleNotFoundError)) or "Failed to import DB access module" in text
    if missing_driver and url.startswith("postgresql"):
        return "no PostgreSQL driver is installed; install it with: pip install 'autokd[postgres]'"
    if missing_driver:
        return f"the database driver is not installed ({text[:200]})"
    return text[:300]


def _redacted(url: str) -> str:
    """The URL without its password (user:secret@host -> user:***@host)."""
    import re

    return re.sub(r"(://[^:/@]+:)[^@/]*@", r"\1***@", url)


def _engine_kwargs(url: str) -> dict:
    # SQLite: wait for a writer instead of failing at once with "database is locked"
    return {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}

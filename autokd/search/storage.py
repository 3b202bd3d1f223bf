"""Where studies live: Optuna storages from a URL or a path.

- default: the SQLite file ``studies/autokd.db`` under the current directory (one file, many studies);
- ``sqlite:///x.db``, ``postgresql://...``, ``mysql://...``: any Optuna RDB URL;
- a path ending in ``.journal`` or ``.log``: Optuna's journal file storage (safe for several
  processes on one machine without a database server);
- a path ending in ``.db`` or ``.sqlite``: that SQLite file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from autokd.errors import AutokdError

DEFAULT_STORAGE_DIR = "studies"
DEFAULT_STORAGE_FILE = "autokd.db"


def default_storage_url() -> str:
    folder = Path(os.environ.get("AUTOKD_STUDIES", DEFAULT_STORAGE_DIR))
    return f"sqlite:///{folder / DEFAULT_STORAGE_FILE}"


def open_storage(spec: Optional[str] = None):
    """An Optuna storage object for ``spec`` (None: the default SQLite file)."""
    import optuna

    spec = spec or default_storage_url()
    try:
        if spec.endswith((".journal", ".log")) and "://" not in spec:
            from optuna.storages.journal import JournalFileBackend

            path = Path(spec).expanduser()
            path.parent.mkdir(parents=True, exist_ok=True)
            return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
        if "://" not in spec:
            if not spec.endswith((".db", ".sqlite", ".sqlite3")):
                raise AutokdError(
                    f"storage {spec!r} is neither a URL (sqlite:///..., postgresql://...) nor a file ending "
                    "in .db/.sqlite (SQLite) or .journal/.log (journal file)"
                )
            spec = f"sqlite:///{Path(spec).expanduser()}"
        if spec.startswith("sqlite:///"):
            Path(spec[len("sqlite:///"):]).expanduser().parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.RDBStorage(spec, engine_kwargs=_engine_kwargs(spec))
    except AutokdError:
        raise
    except Exception as exc:  # SQLAlchemy and drivers raise many types for bad URLs
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AutokdError(f"cannot open storage {spec!r}: {first}") from None


def _engine_kwargs(url: str) -> dict:
    # SQLite: wait for a writer instead of failing at once with "database is locked"
    return {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}

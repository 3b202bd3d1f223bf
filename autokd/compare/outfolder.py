"""The report folder of ``autokd compare`` and ``autokd calibrate`` (``--out``): checked before any
training, so that a file of the user's that happens to be there is neither replaced (a report.md
of one's own) nor appended to (an unrelated runs.jsonl).

Each file autokd writes there is recognised by how it begins: a run store's lines are JSON objects
starting with ``{"strategy": `` (the first field of every run record), the Markdown reports with
their title, the HTML reports with it in ``<title>``, the CSV tables with their header, the plots as
PNG files that matplotlib wrote, ``calibration.json`` with its fields. So a folder an earlier
compare or calibrate wrote (also an older autokd) is used again, and its runs are resumed; a
missing or empty file may be written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from autokd.errors import AutokdError

RUN_LINE = '{"strategy": '  # how every line of a run store begins (json.dumps of a RunRecord)


def _head(path: Path, most: int = 4096) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(most)


def _starts(prefix: str) -> Callable[[Path], bool]:
    return lambda path: _head(path, len(prefix.encode())).decode("utf-8", errors="replace") == prefix


def _holds(*parts: bytes) -> Callable[[Path], bool]:
    return lambda path: all(part in _head(path) for part in parts)


def _json_with(*keys: str) -> Callable[[Path], bool]:
    """A JSON object holding ``keys`` (read whole: a calibration's lists put its later keys far in)."""
    def is_ours(path: Path) -> bool:
        import json

        if path.stat().st_size > 200 * 1024 * 1024:
            return False
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError):
            return False
        return isinstance(data, dict) and all(key in data for key in keys)
    return is_ours


def _png(path: Path) -> bool:
    head = _head(path)
    return head.startswith(b"\x89PNG\r\n\x1a\n") and b"Matplotlib" in head


@dataclass(frozen=True)
class OwnFile:
    """A file autokd writes into the report folder, and how it is recognised."""

    name: str
    is_ours: Callable[[Path], bool]
    what: str  # "a compare run store", ...


def _plots(names: tuple[str, ...], what: str) -> list[OwnFile]:
    return [OwnFile(name, _png, what) for name in names]


COMPARE_FILES = [
    OwnFile("runs.jsonl", _starts(RUN_LINE), "a run store of autokd compare"),
    OwnFile("proxy_runs.jsonl", _starts(RUN_LINE), "a run store of autokd compare"),
    OwnFile("report.md", _starts("# autokd comparison: "), "a report of autokd compare"),
    OwnFile("report.html", _holds(b"<title>autokd comparison: "), "a report of autokd compare"),
    OwnFile("results.csv", _starts("strategy,kind,seed,val_acc,test_acc,seconds"), "a table of autokd compare"),
    OwnFile("summary.csv", _starts("rank,name,kind,description"), "a table of autokd compare"),
    *_plots(("optimization_history.png", "importances.png", "comparison.png", "cost.png", "size.png",
             "proxy_vs_full.png"), "a plot of autokd compare"),
]

CALIBRATE_FILES = [
    OwnFile("runs.jsonl", _starts(RUN_LINE), "a run store of autokd calibrate"),
    OwnFile("calibration.md", _starts("# Proxy calibration: "), "a report of autokd calibrate"),
    OwnFile("calibration.html", _holds(b"<title>Proxy calibration: "), "a report of autokd calibrate"),
    OwnFile("calibration.json", _json_with("full_epochs", "recommendation"), "the figures of autokd calibrate"),
    *_plots(("calibration.png",), "a plot of autokd calibrate"),
]


def check_out_folder(folder: Path, files: list[OwnFile], what: str) -> None:
    """Refuse ``--out folder`` when it is a file, or holds one of ``files`` that autokd did not
    write (it would be replaced, or a run store added to); creates nothing."""
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise AutokdError(f"cannot write {what} into {folder}: it is a file, not a folder")
    if not folder.is_dir():
        return
    for own in files:
        path = folder / own.name
        try:
            if not path.exists() or (path.is_file() and (path.stat().st_size == 0 or own.is_ours(path))):
                continue
        except OSError:
            continue  # unreadable: reading or writing it will say why
        change = "add runs to it" if own.name.endswith(".jsonl") else "replace it"
        raise AutokdError(f"--out {folder}: its {own.name} is not {own.what} (autokd did not write it), and "
                          f"{what} would {change}; choose another folder with --out (or move that file yourself)")

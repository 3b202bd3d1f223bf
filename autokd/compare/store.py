"""Finished full-length runs, kept so an interrupted compare resumes and more seeds only add runs.

An append-only JSON-lines file; each line is one run, keyed by (task, strategy, recipe, seed).
Failed runs (training diverged) are kept and reused like the others: the same strategy and seed
diverge again. A run is stored under the name it was first run with; whoever reads it back
relabels it by key (a baseline's run is a found strategy's run when the two are the same).
A line that is not a run (cut short by a kill, or edited by hand to a value no run gives) is
treated as absent, counted and warned about: that run is trained again.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict
from pathlib import Path
from typing import Optional

from autokd.compare.results import FAILED, OK, RunRecord
from autokd.config.parse import to_mapping
from autokd.errors import AutokdError
from autokd.outputs import make_folder, os_error_text


# Strategy fields added after key format 1, with their defaults: a field at its default is left
# out of the key, so runs stored before the field existed are still found.
_LATER_FIELDS = {"logit_standardization": False, "scheme": {"kind": "single"}}


def _key(task, strategy, seed: Optional[int]) -> str:
    payload = {"task": to_mapping(task), "strategy": to_mapping(strategy), "seed": seed, "format": 1}
    if not payload["task"].get("teachers"):
        payload["task"].pop("teachers", None)  # a task without more teachers keys as before they existed
    payload["strategy"]["recipe"]["seed"] = seed
    for name, default in _LATER_FIELDS.items():
        value = payload["strategy"].get(name)
        if type(value) is type(default) and value == default:
            del payload["strategy"][name]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


def run_key(task, strategy, seed: int) -> str:
    """What makes two runs the same: the task, the strategy with its recipe, the seed."""
    return _key(task, strategy, seed)


def strategy_key(task, strategy) -> str:
    """What makes two strategies the same: the run key without the seed."""
    return _key(task, strategy, None)


_NUMBER = (int, float)
_FIELD_TYPES = {"strategy": str, "kind": str, "seed": int, "val_acc": _NUMBER, "test_acc": _NUMBER,
                "seconds": _NUMBER, "key": str, "state": str, "reason": str, "steps": int, "footprint": dict,
                "curve": dict}
_REQUIRED = ("strategy", "kind", "seed", "seconds", "key")


def _record(line: str) -> Optional[RunRecord]:
    """The run a line holds, or None when it is not one (not JSON, a field missing, unknown or of
    the wrong type: val_acc "abc" would break the statistics later; or a value no run gives: an
    accuracy that is not a finite percentage, an ok run without its accuracies, a malformed curve)."""
    try:
        data = json.loads(line)
    except (ValueError, RecursionError):  # (a line nested thousands deep)
        return None
    if not isinstance(data, dict) or set(data) - set(_FIELD_TYPES) or any(data.get(k) is None for k in _REQUIRED):
        return None
    for name, value in data.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, _FIELD_TYPES[name])):
            return None
    return RunRecord(**data) if _possible(data) else None


def _footprint(value: dict) -> bool:
    """A footprint as a run stores it: params a whole number >= 0, size_bytes a number >= 0, macs and latency_ms
    numbers >= 0 or null, nothing else."""
    def number(v, whole: bool) -> bool:
        return (isinstance(v, int) if whole else isinstance(v, (int, float))) and not isinstance(v, bool) and (
            0 <= v < math.inf)

    return (set(value) == {"params", "size_bytes", "macs", "latency_ms"} and number(value["params"], True)
            and number(value["size_bytes"], False) and all(value[k] is None or number(value[k], k == "macs")
                                                          for k in ("macs", "latency_ms")))


def _accuracy(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 100  # NaN fails too


def _possible(data: dict) -> bool:
    """The values of a well-typed line are ones a run gives."""
    state = data.get("state", OK)
    if state not in (OK, FAILED) or not 0 <= data["seconds"] < math.inf or (data.get("steps") or 0) < 0:
        return False
    if any(data.get(k) is not None and not _accuracy(data[k]) for k in ("val_acc", "test_acc")):
        return False
    if state == OK and (data.get("val_acc") is None or data.get("test_acc") is None):
        return False
    if data.get("footprint") is not None and not _footprint(data["footprint"]):
        return False
    return all(isinstance(e, str) and e.isdecimal() and isinstance(v, list) and len(v) == 2 and _accuracy(v[0])
               and isinstance(v[1], (int, float)) and not isinstance(v[1], bool) and 0 <= v[1] < math.inf
               for e, v in (data.get("curve") or {}).items())


class RunStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.runs: dict[str, RunRecord] = {}
        self._cut = False  # the file ends inside a line (a kill mid-write): the next record starts a new one
        self.unreadable = 0  # lines that are not a run record (cut short, or edited by hand): those runs run again
        if self.path.is_dir():
            raise AutokdError(f"cannot keep compare runs in {self.path}: it is a folder")
        if not self.path.exists():
            return
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            why = os_error_text(exc) if isinstance(exc, OSError) else "not a text file"
            raise AutokdError(f"cannot read the compare runs {self.path}: {why}") from None
        self._cut = bool(text) and not text.endswith("\n")
        for line in text.splitlines():
            record = _record(line)
            if record is None:  # a line cut short by a kill, or edited: that run is simply done again
                self.unreadable += bool(line.strip())
                continue
            self.runs[record.key] = record

    def warn_unreadable(self, say) -> None:
        """Say how many lines were not runs (those runs are trained again), if any."""
        if self.unreadable:
            say(f"warning: {self.unreadable} line(s) of {self.path} are not runs (cut short or edited); "
                f"those runs are trained again")

    def __contains__(self, key: str) -> bool:
        return key in self.runs

    def add(self, record: RunRecord) -> None:
        make_folder(self.path.parent, "compare runs")
        try:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(("\n" if self._cut else "") + json.dumps(asdict(record)) + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise AutokdError(f"cannot write the compare run to {self.path}: {os_error_text(exc)}") from None
        self._cut = False
        self.runs[record.key] = record

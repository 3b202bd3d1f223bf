"""What a search runs with, stored in its study so that ``autokd resume NAME`` needs no flags."""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Optional

from autokd.errors import AutokdError, short_repr

SETTINGS_ATTR = "autokd:settings"  # the study system attribute that holds a search's settings
SAMPLERS = ("tpe", "random", "ppo", "evolution")
WARM_STARTS = ("baselines",)
MAX_SEED = 2**32 - 1
# a study name is also the default report folder (reports/NAME): a plain file name
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@dataclass
class SearchSettings:
    space_text: str  # the normalised YAML of task + space
    space_source: str  # where it was read from (a shipped name's path, or the user's file)
    # sampler, budget, device, pruning, confirm: None in a run that does not name them (the study's own,
    # else the defaults below); stored settings always hold values
    sampler: Optional[str] = "tpe"
    budget: Optional[int] = 100  # total finished trials (complete + pruned + failed) the study should hold
    workers: Optional[int] = None  # trials at once; None: every CPU (of the cluster with --address)
    seed: int = 0
    device: Optional[str] = "auto"
    pruning: Optional[bool] = True
    warm_start: Optional[str] = None  # "baselines": the baselines that fit the space are the first trials
    confirm: Optional[int] = 0  # the top K trials re-run at the proxy with more seeds once the budget is done

    def space_fingerprint(self) -> str:
        """Equal for the same task and space whatever the YAML's formatting (``objectives: [accuracy]``
        is the default written out: the same search)."""
        from autokd.config.yaml_io import load_yaml_value

        data = load_yaml_value(self.space_text)
        space = data.get("space") if isinstance(data, dict) else None
        if isinstance(space, dict) and space.get("objectives") == ["accuracy"]:
            data = {**data, "space": {k: v for k, v in space.items() if k != "objectives"}}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Any, study_name: Optional[str] = None, attr: str = SETTINGS_ATTR) -> "SearchSettings":
        """Settings as a study stored them, checked: a value autokd would not have written raises
        :class:`DamagedSettings` naming the study, the key, the value and what is expected."""
        if not isinstance(data, dict):
            raise damaged(study_name, f"{attr} is {short_repr(data)}, expected a mapping of search settings")
        for key in ("space_text", "space_source"):
            if key not in data:
                raise damaged(study_name, f"{attr} has no {key}")
        known = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        for key, value in known.items():
            check, expected = _STORED_CHECKS[key]
            if not check(value):
                raise damaged(study_name, f"{attr}.{key} is {short_repr(value)}, expected {expected}")
        problem = _space_text_problem(known["space_text"])
        if problem:
            raise damaged(study_name, f"{attr}.space_text {problem}")
        return cls(**known)


class DamagedSettings(AutokdError):
    """What a study stores for autokd (its settings, its teacher's record) is not what autokd writes."""


def damaged(study_name: Optional[str], detail: str, what: str = "stored settings") -> DamagedSettings:
    """The error for a stored value autokd did not write: ``detail`` names the key, value and what is expected."""
    owner = f"study {study_name!r} has" if study_name is not None else "the study has"
    return DamagedSettings(f"{owner} damaged {what} ({detail}); it was not written by autokd or was edited")


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(value: Any) -> bool:
    return isinstance(value, str)


# each stored setting: (a check of its value, what the check expects)
_STORED_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "space_text": (_text, "the search space's YAML text"),
    "space_source": (_text, "a file name"),
    "sampler": (lambda v: _text(v) and v in SAMPLERS, f"one of {', '.join(SAMPLERS)}"),
    "budget": (lambda v: _whole(v) and v >= 1, "a whole number >= 1"),
    "workers": (lambda v: v is None or (_whole(v) and v >= 0), "a whole number >= 0, or null"),
    "seed": (lambda v: _whole(v) and 0 <= v <= MAX_SEED, f"a whole number from 0 to {MAX_SEED}"),
    "device": (_text, "a device name (auto, cpu, cuda, ...)"),
    "pruning": (lambda v: isinstance(v, bool), "true or false"),
    "warm_start": (lambda v: v is None or (_text(v) and v in WARM_STARTS), f"null or one of {', '.join(WARM_STARTS)}"),
    "confirm": (lambda v: _whole(v) and v >= 0, "a whole number >= 0"),
}


def _space_text_problem(text: str) -> str:
    """'' when ``text`` reads as a space file (a mapping with a task and, if any, a space mapping)."""
    from autokd.config.yaml_io import load_yaml_value

    try:
        data = load_yaml_value(text, "the stored text")
    except AutokdError as exc:
        return f"is not readable YAML ({exc})"
    if not isinstance(data, dict) or "task" not in data:
        return f"is {short_repr(text)}, expected the YAML of a space file (a mapping with a task)"
    if not isinstance(data.get("space") or {}, dict):
        return f"holds space: {short_repr(data['space'])}, expected a mapping"
    from autokd.search.objectives import judging_of

    try:
        judging_of(text)
    except AutokdError as exc:
        return f"holds objectives or constraints autokd cannot read ({exc})"
    return ""


def check_study_name(name: str) -> str:
    """A study name is a safe file name: letters, digits, '.', '_', '-', at most 100, no '..'."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise AutokdError(
            f"study name {short_repr(name)} is not allowed: use 1-100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, without '..' (it names the report folder reports/NAME)")
    return name


def default_study_name(space_source: str, sampler: str) -> str:
    """``SPACE-SAMPLER`` (e.g. ``default-tpe``), other characters of the file name replaced by '-'."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(space_source).stem).strip("-._") or "space"
    return check_study_name(f"{stem[:80].replace('..', '-')}-{sampler}")


def resume_command(name: str, storage=None, address: Optional[str] = None) -> str:
    """The shell command that resumes study ``name`` where it is stored."""
    import shlex

    words = ["autokd", "resume", name] + (["--storage", str(storage)] if storage else [])
    return shlex.join(words + (["--address", address] if address else []))


def check_workers(workers: Optional[int], address: Optional[str], stored: bool = False) -> None:
    """``--workers``: >= 0, and no more than this machine's CPUs unless a cluster is joined
    (``stored``: the study's own setting, which a resume without ``--workers`` takes)."""
    if workers is None:
        return
    cpus = os.cpu_count() or 1
    if workers < 0:
        raise AutokdError(f"--workers must be >= 0 (0 runs trials in this process without Ray), got {workers}")
    if workers == 0 and address:
        what = "the study's stored workers setting (0)" if stored else "--workers 0"
        raise AutokdError(f"{what} runs trials in this process without Ray, --address {short_repr(address, 80)} "
                          f"joins a Ray cluster: {'pass --workers N to use it' if stored else 'give one of them'}")
    if workers > cpus and not (address or os.environ.get("RAY_ADDRESS")):
        what = f"the study's stored workers setting ({workers})" if stored else f"--workers {workers}"
        raise AutokdError(f"{what} is more than this machine's {cpus} CPUs; {'pass --workers N, ' if stored else 'use '}"
                          f"at most {cpus} (or --address to use a cluster)")

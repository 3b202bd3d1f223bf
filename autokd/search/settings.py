"""What a search runs with, stored in its study so that ``autokd resume NAME`` needs no flags."""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Optional

from autokd.errors import AutokdError, short_repr

SAMPLERS = ("tpe", "random", "ppo", "evolution")
WARM_STARTS = ("baselines",)
MAX_SEED = 2**32 - 1
# a study name is also the default report folder (reports/NAME): a plain file name
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@dataclass
class SearchSettings:
    space_text: str  # the normalised YAML of task + space
    space_source: str  # where it was read from (a shipped name's path, or the user's file)
    sampler: str = "tpe"
    budget: int = 100  # total finished trials (complete + pruned + failed) the study should hold
    workers: Optional[int] = None  # trials at once; None: every CPU (of the cluster with --address)
    seed: int = 0
    device: str = "auto"
    pruning: bool = True
    warm_start: Optional[str] = None  # "baselines": the baselines that fit the space are the first trials
    confirm: int = 0  # the top K trials re-run at the proxy with more seeds once the budget is done

    def space_fingerprint(self) -> str:
        """Equal for the same task and space whatever the YAML's formatting."""
        from autokd.config.yaml_io import load_yaml_value

        data = load_yaml_value(self.space_text)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict) -> "SearchSettings":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def check_study_name(name: str) -> str:
    """A study name is a safe file name: letters, digits, '.', '_', '-', at most 100, no '..'."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise AutokdError(
            f"study name {short_repr(name)} is not allowed: use 1-100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, without '..' (it names the report folder reports/NAME)")
    return name


def default_study_name(space_source: str, sampler: str) -> str:
    """``SPACE-SAMPLER`` (e.g. ``default-tpe``), other characters of the file name replaced by '-'."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(space_source).stem).strip("-.") or "space"
    return check_study_name(f"{stem[:80].replace('..', '-')}-{sampler}")


def check_workers(workers: Optional[int], address: Optional[str]) -> None:
    """``--workers``: >= 0, and no more than this machine's CPUs unless a cluster is joined."""
    if workers is None:
        return
    cpus = os.cpu_count() or 1
    if workers < 0:
        raise AutokdError(f"--workers must be >= 0 (0 runs trials in this process without Ray), got {workers}")
    if workers > cpus and not (address or os.environ.get("RAY_ADDRESS")):
        raise AutokdError(f"--workers {workers} is more than this machine's {cpus} CPUs; use at most {cpus} "
                          "(or --address to use a cluster)")

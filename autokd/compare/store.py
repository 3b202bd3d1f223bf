"""Finished full-length runs, kept so an interrupted compare resumes and more seeds only add runs.

An append-only JSON-lines file; each line is one run, keyed by (task, strategy, recipe, seed).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path

from autokd.compare.results import RunRecord
from autokd.config.parse import to_mapping


def run_key(task, strategy, seed: int) -> str:
    """What makes two runs the same: the task, the strategy with its recipe, the seed."""
    payload = {"task": to_mapping(task), "strategy": to_mapping(strategy), "seed": seed, "format": 1}
    payload["strategy"]["recipe"]["seed"] = seed
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


class RunStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.runs: dict[str, RunRecord] = {}
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    record = RunRecord(**json.loads(line))
                except (ValueError, TypeError):
                    continue  # a line cut short by a kill: that run is simply done again
                self.runs[record.key] = record

    def __contains__(self, key: str) -> bool:
        return key in self.runs

    def add(self, record: RunRecord) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(json.dumps(asdict(record)) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.runs[record.key] = record

"""The bad-input matrix: every mistake gets one clear line, exit code 2, no traceback, and leaves
the studies as they were.

The cases run as real CLI subprocesses, a few at a time, once per session (``outcomes``); each
case is then its own test.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import optuna
import pytest
import torch
from bad_input_cases import SPACE, all_cases, space_file
from conftest import TINY_TASK, run_cli, write_space

from autokd.models.registry import build_model


def _study_with_checkpoint(d: Path, db: Path, name: str) -> Path:
    """A 1-trial study whose teacher is a checkpoint file (returned: change it to test the study's guard)."""
    checkpoint = d / f"{name}.pt"
    torch.manual_seed(len(name))
    torch.save(build_model(TINY_TASK["teacher"]["model"], TINY_TASK["teacher"]["kwargs"], 10, (1, 40)).state_dict(), checkpoint)
    space = space_file(d, f"{name}.yaml", {"teacher.checkpoint": str(checkpoint)})
    assert run_cli("search", "--space", space, "--budget", "1", "--workers", "0", "--storage", db, "--name", name,
                   "--no-pruning").returncode == 0
    return checkpoint


def _snapshot(db: Path) -> list:
    storage = f"sqlite:///{db}"
    return sorted(
        (s.study_name, t.number, t.state.name, t.value, tuple(sorted(t.params.items())))
        for s in optuna.get_all_study_summaries(storage)
        for t in optuna.load_study(study_name=s.study_name, storage=storage).trials
    ) + sorted(str(optuna.load_study(study_name=s.study_name, storage=storage).user_attrs)
               for s in optuna.get_all_study_summaries(storage))


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, _session_cache_dir):
    os.environ["AUTOKD_CACHE"] = str(_session_cache_dir)
    os.environ["RAY_AUTH_MODE"] = "disabled"
    d = tmp_path_factory.mktemp("bad-input")
    write_space(d / "good.yaml", space=SPACE)
    db = d / "studies.db"
    assert run_cli("search", "--space", d / "good.yaml", "--budget", "2", "--workers", "0", "--storage", db,
                   "--name", "base", "--no-pruning").returncode == 0
    failing = space_file(d, "fail.yaml", space_changes={"alpha": 0.0, "pair_losses": ["fitnet"], "weight_scale": 1.0e30})
    assert run_cli("search", "--space", failing, "--budget", "1", "--workers", "0", "--storage", db,
                   "--name", "allfail").returncode == 0
    swapped = _study_with_checkpoint(d, db, "swapped")
    torch.manual_seed(99)
    torch.save(build_model(TINY_TASK["teacher"]["model"], TINY_TASK["teacher"]["kwargs"], 10, (1, 40)).state_dict(), swapped)
    _study_with_checkpoint(d, db, "lost").unlink()
    cases = all_cases(d)
    before = _snapshot(db)
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = dict(zip(cases, pool.map(lambda args: run_cli(*args[0], cwd=d), cases.values())))
    return {"cases": cases, "results": results, "before": before, "after": _snapshot(db), "digest": digest,
            "digest_after": hashlib.sha256(db.read_bytes()).hexdigest(), "files": sorted(p.name for p in d.iterdir())}


def _case_names() -> list[str]:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        write_space(Path(tmp) / "good.yaml", space=SPACE)
        return list(all_cases(Path(tmp)))


CASE_NAMES = _case_names()


def test_the_matrix_has_at_least_70_cases():
    assert len(CASE_NAMES) >= 70


@pytest.mark.parametrize("case", CASE_NAMES)
def test_bad_input_gets_one_clear_line_and_exit_code_2(outcomes, case):
    _, fragment = outcomes["cases"][case]
    result = outcomes["results"][case]
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert fragment in result.stderr, result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith(("error:", "Error:"))]
    assert len(error_lines) == 1, result.stderr  # one line names the problem


def test_bad_inputs_leave_the_studies_unchanged(outcomes):
    assert outcomes["after"] == outcomes["before"]
    assert outcomes["digest_after"] == outcomes["digest"]  # byte for byte
    assert "nowhere.db" not in outcomes["files"]  # a command that only reads creates no storage

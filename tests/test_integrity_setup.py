"""A study keeps its teacher (and further teachers), and a search or resume that fails its set-up
leaves the storage as it was: no study created, the stored budget unchanged.

Real SQLite storages, real subprocesses of the CLI, the tiny task.
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import pytest
import torch
from conftest import PLAIN_SPACE, TINY_TASK, arrays_file, run_cli, write_space

SPACE = PLAIN_SPACE


def _checkpoint(path: Path, seed: int) -> Path:
    from autokd.models.registry import build_model

    torch.manual_seed(seed)
    model = build_model(TINY_TASK["teacher"]["model"], TINY_TASK["teacher"]["kwargs"], 10, (1, 40))
    torch.save(model.state_dict(), path)
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _searched_with_a_checkpoint_teacher(tmp_path: Path, task: dict, budget: int) -> tuple[Path, Path, str]:
    """Study ``t`` searched ``budget`` trials on ``task`` with a checkpoint teacher: (space, storage, its digest)."""
    task["teacher"]["checkpoint"] = str(_checkpoint(tmp_path / "teacher.pt", seed=1))
    space = write_space(tmp_path / "s.yaml", task=task, space=SPACE)
    db = tmp_path / "t.db"
    first = run_cli("search", "--space", space, "--budget", str(budget), "--workers", "0", "--storage", db, "--name", "t")
    assert first.returncode == 0, first.stderr
    return space, db, _digest(db)


def test_a_study_refuses_another_teacher(tmp_path):
    _, db, before = _searched_with_a_checkpoint_teacher(tmp_path, copy.deepcopy(TINY_TASK), budget=2)
    _checkpoint(tmp_path / "teacher.pt", seed=2)  # the same file, another teacher
    again = run_cli("resume", "t", "--storage", db, "--budget", "3")
    assert again.returncode == 2 and "searched with another teacher" in again.stderr, again.stderr
    assert "Traceback" not in again.stderr and _digest(db) == before  # nothing written, the budget unchanged


def test_a_study_that_uses_further_teachers_refuses_others(tmp_path):
    task = copy.deepcopy(TINY_TASK)
    further = _checkpoint(tmp_path / "second.pt", seed=1)
    task["teachers"] = [{"model": task["teacher"]["model"], "kwargs": task["teacher"]["kwargs"], "checkpoint": str(further)}]
    space = write_space(tmp_path / "s.yaml", task=task, space={**SPACE, "schemes": ["single", "ensemble"]})
    db = tmp_path / "t.db"
    first = run_cli("search", "--space", space, "--budget", "1", "--workers", "0", "--storage", db, "--name", "t")
    assert first.returncode == 0, first.stderr
    before = _digest(db)
    _checkpoint(further, seed=2)  # the same file, another second teacher
    again = run_cli("resume", "t", "--storage", db, "--budget", "2")
    assert again.returncode == 2 and "searched with other further teachers" in again.stderr, again.stderr
    assert "Traceback" not in again.stderr and _digest(db) == before


@pytest.mark.parametrize("change, fragment", [
    ({"data.train_size": 100000}, "train_size 100000 is more than"),
    ({"data.val_size": 900}, "data.val_size 900 takes"),
    ({"teacher.checkpoint": "/nonexistent/teacher.pt"}, "teacher checkpoint not found"),
])
def test_a_failing_setup_creates_no_study(tmp_path, change, fragment):
    task = copy.deepcopy(TINY_TASK)
    for dotted, value in change.items():
        node = task
        *parents, last = dotted.split(".")
        for key in parents:
            node = node[key]
        node[last] = value
    bad = write_space(tmp_path / "bad.yaml", task=task, space=SPACE)
    fresh = tmp_path / "fresh.db"
    out = run_cli("search", "--space", bad, "--budget", "2", "--workers", "0", "--storage", fresh, "--name", "x")
    assert out.returncode == 2 and fragment in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert not fresh.exists()  # not even an empty storage file
    # an existing storage stays byte-identical, and the corrected file is not refused afterwards
    good = write_space(tmp_path / "good.yaml", space=SPACE)
    db = tmp_path / "db.db"
    assert run_cli("search", "--space", good, "--budget", "1", "--workers", "0", "--storage", db, "--name", "other").returncode == 0
    before = _digest(db)
    out = run_cli("search", "--space", bad, "--budget", "2", "--workers", "0", "--storage", db, "--name", "x")
    assert out.returncode == 2 and _digest(db) == before
    fixed = run_cli("search", "--space", good, "--budget", "1", "--workers", "0", "--storage", db, "--name", "x")
    assert fixed.returncode == 0, fixed.stderr


def test_a_failing_resume_keeps_the_stored_budget(tmp_path):
    task = copy.deepcopy(TINY_TASK)
    checkpoint = _checkpoint(tmp_path / "teacher.pt", seed=1)
    task["teacher"]["checkpoint"] = str(checkpoint)
    space = write_space(tmp_path / "s.yaml", task=task, space=SPACE)
    db = tmp_path / "k.db"
    assert run_cli("search", "--space", space, "--budget", "1", "--workers", "0", "--storage", db, "--name", "k").returncode == 0
    checkpoint.unlink()
    before = _digest(db)
    out = run_cli("resume", "k", "--storage", db, "--budget", "9")
    assert out.returncode == 2 and "teacher checkpoint not found" in out.stderr
    assert _digest(db) == before


def test_a_study_refuses_data_that_changed_since(tmp_path):
    """The teacher is a checkpoint (the same weights whatever the data): only the data changes, its validation
    labels. The study went on, its old trials ranked on the old labels next to new ones."""
    task = copy.deepcopy(TINY_TASK)
    task["data"] = {"name": "arrays", "path": str(arrays_file(tmp_path / "d.npz", val_labels_seed=1))}
    space, db, before = _searched_with_a_checkpoint_teacher(tmp_path, task, budget=1)
    arrays_file(tmp_path / "d.npz", val_labels_seed=2)
    for args in (["resume", "t"], ["search", "--space", space, "--name", "t", "--workers", "0"]):
        again = run_cli(*args, "--storage", db, "--budget", "2")
        assert again.returncode == 2 and "was searched on other data" in again.stderr, again.stderr
        assert "Traceback" not in again.stderr and _digest(db) == before
    arrays_file(tmp_path / "d.npz", val_labels_seed=1)  # the data restored: the study goes on
    assert run_cli("resume", "t", "--storage", db, "--budget", "2").returncode == 0

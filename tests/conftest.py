"""Shared fixtures and helpers of autokd's tests.

* ``autokd_cache`` (autouse): every test sees ``AUTOKD_CACHE`` pointing at ONE folder for the
  whole session, so the tiny MNIST-1D data and the tiny teacher are generated once and reused
  (also by CLI subprocesses, which inherit the environment).
* ``TINY_TASK`` / ``write_space`` / ``tiny_space_file``: a task small enough to train in a
  second or two on a CPU.
* ``write_config``: a train config (``task`` + ``strategy``).
* ``run_cli``: the real ``autokd`` command in a subprocess.
* ``fresh_cache``: ``AUTOKD_CACHE`` at a new, empty folder (tests of the cache itself);
  ``float64``: torch's default dtype double for the test (exact comparisons of loss formulas).

Torch runs with one thread (``OMP_NUM_THREADS=1``, see below) so the suite stays fast on a
small, shared CPU machine.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Optional, Union

import pytest
import yaml

# One intra-op thread for torch, here and in CLI subprocesses (which inherit os.environ): the
# models are tiny, and on a small shared machine two spinning threads per process slow every
# step down by orders of magnitude when other processes compete for the cores. Set before any
# test module imports torch; a value the user already set wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

TINY_TASK: dict = {
    "name": "tiny-mnist1d",
    "data": {
        "name": "mnist1d",
        "num_samples": 1200,
        "test_fraction": 0.25,
        "val_size": 200,
        "train_size": 400,
        "seed": 0,
    },
    "teacher": {
        "model": "cnn1d",
        "kwargs": {"channels": 16, "depth": 3},
        "recipe": {"epochs": 3, "lr": 0.01, "batch_size": 64, "seed": 0},
    },
    "student": {"model": "cnn1d", "kwargs": {"channels": 4}},
    "recipes": {
        "full": {"epochs": 3, "optimizer": "adam", "lr": 0.01, "batch_size": 64, "seed": 0},
        "proxy": {"epochs": 2},
    },
}


# a small search space on the tiny task (both logit losses, the automatic pairs, two relations)
TINY_SPACE: dict = {
    "temperature": {"low": 1, "high": 8, "log": True},
    "alpha": {"low": 0, "high": 1},
    "logit_losses": ["kd", "dkd"],
    "pairs": "auto",
    "pair_losses": ["none", "fitnet", "at"],
    "relation_losses": ["rkd", "pkt"],
    "weight_scale": {"low": 0.01, "high": 1, "log": True},
}

# smaller still, pruning off (every trial runs to its end): for integrity and set-up checks
PLAIN_SPACE: dict = {"pair_losses": ["none", "fitnet"], "relation_losses": ["rkd"],
                     "weight_scale": {"low": 0.01, "high": 1, "log": True}, "pruning": False}


# a student recipe for scheme tests, and the tiny task with a second teacher (for multi-teacher)
TINY_RECIPE = {"epochs": 2, "lr": 0.01, "batch_size": 64, "seed": 0}
TINY_TEACHERS_TASK = {**TINY_TASK, "name": "tiny-two-teachers",
                      "teachers": [{"model": "cnn1d", "kwargs": {"channels": 8, "depth": 3},
                                    "recipe": {"epochs": 2, "lr": 0.01, "batch_size": 64, "seed": 1}}]}


def write_space(path: Union[str, Path], task: Optional[dict] = None, space: Optional[dict] = None) -> Path:
    """Write a search-space file ``{task: ..., space: ...}`` (``space`` left out when None)."""
    path = Path(path)
    data: dict = {"task": copy.deepcopy(TINY_TASK if task is None else task)}
    if space is not None:
        data["space"] = space
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def write_config(path: Union[str, Path], strategy: dict, task_ref: Union[str, Path, dict]) -> Path:
    """Write a train config ``{task: task_ref, strategy: strategy}``."""
    path = Path(path)
    ref = str(task_ref) if isinstance(task_ref, Path) else copy.deepcopy(task_ref)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"task": ref, "strategy": strategy}, sort_keys=False))
    return path


def arrays_file(path: Path, val_labels_seed: int) -> Path:
    """A small ``arrays`` task file (train/val/test of 1x40 signals, 10 classes); another
    ``val_labels_seed`` changes only its validation labels (data that changed under a study)."""
    import numpy as np

    rng = np.random.default_rng(0)
    y = np.arange(200) % 10
    x = rng.normal(0, 1, (200, 1, 40)).astype(np.float32) + y[:, None, None]
    y_val = np.random.default_rng(val_labels_seed).permutation(np.arange(40) % 10)
    np.savez(path, x_train=x[:120], y_train=y[:120], x_val=x[120:160], y_val=y_val, x_test=x[160:], y_test=y[160:])
    return path


def run_cli(*args: str, cwd=None, env: Optional[dict] = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``autokd ARGS`` (this interpreter's installed package) and capture its text output.

    The environment is inherited (so ``AUTOKD_CACHE`` etc. set by the fixtures apply);
    ``env`` adds or overrides variables.
    """
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "autokd.cli.main", *map(str, args)],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_interrupted_requeued(study) -> None:
    """Every void trial that held a strategy (interrupted mid-training) is queued again, exactly once;
    a trial interrupted while its strategy was being drawn is void and queues nothing."""
    from optuna.trial import TrialState

    from autokd.search.ledger import INTERRUPTED_ATTR, REQUEUED_ATTR, STRATEGY_ATTR, is_void

    trials = study.get_trials(deepcopy=False)
    interrupted = [t for t in trials if is_void(t) and t.user_attrs.get(INTERRUPTED_ATTR)]
    assert len(interrupted) == sum(is_void(t) for t in trials), "a void trial that was not interrupted"
    queued = sorted(t.user_attrs.get(REQUEUED_ATTR) for t in trials if t.state == TrialState.WAITING)
    assert queued == sorted(t.number for t in interrupted if STRATEGY_ATTR in t.user_attrs)


def session_members(sid: int) -> list[int]:
    """Pids of the processes in session ``sid`` other than its leader (what a test's process started)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != sid:
            try:
                if os.getsid(int(entry.name)) == sid:
                    members.append(int(entry.name))
            except (ProcessLookupError, PermissionError):
                pass
    return members


@pytest.fixture(scope="session")
def _session_cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("autokd-cache")


@pytest.fixture(autouse=True)
def autokd_cache(_session_cache_dir, monkeypatch) -> Path:
    """AUTOKD_CACHE -> one session-wide folder; non-interactive matplotlib; Ray without auth."""
    monkeypatch.setenv("AUTOKD_CACHE", str(_session_cache_dir))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    return _session_cache_dir


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch) -> Path:
    """AUTOKD_CACHE pointed at a fresh, empty folder."""
    root = tmp_path / "cache"
    monkeypatch.setenv("AUTOKD_CACHE", str(root))
    return root


@pytest.fixture
def float64():
    """Exact comparisons in double precision, restored afterwards for other tests."""
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.fixture
def tiny_space_file(tmp_path) -> Path:
    """A space file holding only the tiny task."""
    return write_space(tmp_path / "tiny.yaml")


@pytest.fixture
def tiny_task():
    """The tiny task parsed (a TaskSpec)."""
    from autokd.config import task_from_dict

    return task_from_dict(copy.deepcopy(TINY_TASK))


@pytest.fixture(scope="session")
def tiny_prepared(_session_cache_dir):
    """The tiny task prepared once per session (data loaded, teacher trained or read from cache, CPU)."""
    from autokd.config import task_from_dict
    from autokd.training.run import prepare_task

    return prepare_task(task_from_dict(copy.deepcopy(TINY_TASK)), "cpu", cache_root=_session_cache_dir)


@pytest.fixture
def tiny_config_file(tmp_path, tiny_space_file) -> Path:
    """A cross-entropy-only train config on the tiny task (its space file referenced by path)."""
    return write_config(tmp_path / "ce.yaml", {"alpha": 0.0}, tiny_space_file)

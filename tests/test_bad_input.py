"""The bad-input matrix: every mistake gets one clear line, exit code 2, no traceback, and leaves
the studies as they were.

The cases run as real CLI subprocesses, a few at a time, once per session (``outcomes``); each
case is then its own test.
"""

from __future__ import annotations

import copy
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import optuna
import pytest
import torch
import yaml
from conftest import TINY_TASK, run_cli, write_config, write_space

SPACE = {"pair_losses": ["none", "fitnet"], "relation_losses": [], "weight_scale": {"low": 0.01, "high": 1, "log": True}}


def _space(folder: Path, name: str, task_changes=None, space_changes=None) -> Path:
    task = copy.deepcopy(TINY_TASK)
    for dotted, value in (task_changes or {}).items():
        node = task
        *parents, last = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return write_space(folder / name, task=task, space={**SPACE, **(space_changes or {})})


def _cases(d: Path) -> dict[str, tuple[list, str]]:
    """name -> (CLI arguments, a fragment the error must contain)."""
    db = str(d / "studies.db")
    good = str(d / "good.yaml")
    st = ["--storage", db]
    syntax = d / "syntax.yaml"
    syntax.write_text("task:\n  name: x\n  data: {name: mnist1d\n  teacher: {}\n")
    garbage = d / "garbage.pt"
    garbage.write_bytes(os.urandom(256))
    other = d / "other.pt"
    torch.save(torch.nn.Linear(3, 2).state_dict(), other)
    no_strategy = d / "nostrategy.yaml"
    no_strategy.write_text("task: default\n")
    return {
        "missing space file": (["search", "--space", d / "nope.yaml", *st], "file not found"),
        "space is a folder": (["search", "--space", d, *st], "is a folder"),
        "yaml syntax error": (["search", "--space", syntax, *st], "line 4"),
        "unknown key": (["search", "--space", _space(d, "k.yaml", {"data.num_sample": 10}), *st], "num_sample"),
        "wrong type": (["search", "--space", _space(d, "t.yaml", {"data.num_samples": "many"}), *st],
                       "num_samples must be an integer"),
        "empty range": (["search", "--space", _space(d, "r.yaml", space_changes={"temperature": {"low": 9, "high": 2}}), *st],
                        "empty range, low 9"),
        "zero budget": (["search", "--space", good, "--budget", "0", *st], "0 is not in the range"),
        "negative budget": (["search", "--space", good, "--budget", "-4", *st], "-4 is not in the range"),
        "unknown sampler": (["search", "--space", good, "--sampler", "bayes", *st], "'bayes' is not one of"),
        "unknown loss": (["search", "--space", _space(d, "l.yaml", space_changes={"pair_losses": ["fitnet", "hint"]}), *st],
                         "space.pair_losses: unknown loss 'hint'"),
        "unknown layer path": (["search", "--space", _space(d, "p.yaml", space_changes={
            "pairs": [{"teacher": "stages.1", "student": "stage.1"}]}), *st], "stages.1"),
        "pair cannot be projected": (["search", "--space", _space(d, "u.yaml", space_changes={
            "pairs": [{"teacher": "stages.1", "student": "fc"}]}), *st], "cannot take fitnet"),
        "unknown model name": (["search", "--space", _space(d, "m.yaml", {"student.model": "cnn9"}), *st],
                               "unknown model 'cnn9'"),
        "bad module:callable": (["search", "--space", _space(d, "c.yaml", {"student.model": "nosuchpkg.nets:Tiny"}), *st],
                                "nosuchpkg.nets"),
        "checkpoint missing": (["teacher", "--space", _space(d, "ck1.yaml", {"teacher.checkpoint": str(d / "no.pt")})],
                               "teacher checkpoint not found"),
        "checkpoint not a checkpoint": (["teacher", "--space", _space(d, "ck2.yaml", {"teacher.checkpoint": str(garbage)})],
                                        "not a loadable PyTorch checkpoint"),
        "checkpoint does not fit": (["teacher", "--space", _space(d, "ck3.yaml", {"teacher.checkpoint": str(other)})],
                                    "does not fit the teacher model"),
        "cifar data root missing": (["teacher", "--space", _space(d, "cifar.yaml", {
            "data": {"name": "cifar10", "root": str(d / "no-data")}, "teacher.model": "resnet8x4",
            "student.model": "resnet8x4"})], "not found under"),
        "resume unknown study": (["resume", "nope", *st], "unknown study 'nope'"),
        "export unknown study": (["export", "nope", *st], "unknown study 'nope'"),
        "compare unknown study": (["compare", "nope", *st], "unknown study 'nope'"),
        "show unknown study": (["show", "nope", *st], "unknown study 'nope'"),
        "search with a changed space": (["search", "--space", _space(d, "changed.yaml", space_changes={"alpha": 0.3}),
                                         "--name", "base", "--workers", "0", *st], "different search space"),
        "bad storage url": (["studies", "--storage", "nosuchdb://host/x"], "cannot open storage"),
        "bad storage path": (["studies", "--storage", str(d / "studies.txt")], "neither a URL"),
        "unreachable ray address": (["search", "--space", good, "--name", "base", "--address", "127.0.0.1:9", *st],
                                    "cannot reach the Ray cluster"),
        "rank beyond leaderboard": (["export", "base", "--rank", "50", *st], "--rank 50 is beyond the leaderboard"),
        "export with no finished trial": (["export", "allfail", *st], "no complete trial yet"),
        "more workers than cpus": (["search", "--space", good, "--name", "base", "--workers", "512", *st],
                                   "more than this machine's"),
        "negative workers": (["search", "--space", good, "--name", "base", "--workers", "-1", *st], "must be >= 0"),
        "gpu on a cpu machine (search)": (["search", "--space", good, "--name", "base", "--device", "cuda", *st],
                                          "no CUDA GPU"),
        "gpu on a cpu machine (train)": (["train", "--config", write_config(d / "ce.yaml", {"alpha": 0.0}, good),
                                          "--device", "cuda"], "no CUDA GPU"),
        "zero epochs": (["train", "--config", d / "ce.yaml", "--epochs", "0"], "0 is not in the range"),
        "config without strategy": (["train", "--config", no_strategy], "missing top-level key 'strategy'"),
        "unknown dataset": (["teacher", "--space", _space(d, "ds.yaml", {"data.name": "mnist2d"})], "mnist2d"),
        "zero seeds in compare": (["compare", "base", "--seeds", "0", *st], "0 is not in the range"),
        "unknown baseline position": (["compare", "base", "--baselines", _baselines(d), "--workers", "0", *st],
                                      "'middlish'; allowed: all, first, middle, last"),
    }


def _baselines(d: Path) -> Path:
    path = d / "bad-baselines.yaml"
    path.write_text(yaml.safe_dump({"baselines": {"x": {"pairs": [{"at": "middlish", "loss": "at", "weight": 1}]}}}))
    return path


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
    failing = _space(d, "fail.yaml", space_changes={"alpha": 0.0, "pair_losses": ["fitnet"], "weight_scale": 1.0e30})
    assert run_cli("search", "--space", failing, "--budget", "1", "--workers", "0", "--storage", db,
                   "--name", "allfail").returncode == 0
    cases = _cases(d)
    before = _snapshot(db)
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = dict(zip(cases, pool.map(lambda args: run_cli(*args[0], cwd=d), cases.values())))
    return {"cases": cases, "results": results, "before": before, "after": _snapshot(db)}


def _case_names() -> list[str]:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        write_space(Path(tmp) / "good.yaml", space=SPACE)
        return list(_cases(Path(tmp)))


CASE_NAMES = _case_names()


def test_the_matrix_has_at_least_30_cases():
    assert len(CASE_NAMES) >= 30


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

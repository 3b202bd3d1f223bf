"""What a search space can ship, checked before its study is created: a ``quantize`` choice no student
can take, and a size limit below the smallest deployed size (counted as a trial counts it)."""

from __future__ import annotations

import copy

import pytest
import torch

from autokd.data.spec import nominal_shape
from autokd.errors import AutokdError
from autokd.search.feasibility import check_constraints_reachable, check_quantize_reachable
from autokd.search.space_file import load_space_file
from conftest import TINY_TASK, write_space

PLAIN = {"pair_losses": ["none"], "relation_losses": []}


def _check(tmp_path, check, model: dict, **space):
    """``check`` (a feasibility function) on the tiny task with the student ``model`` and the space ``space``."""
    task = {**copy.deepcopy(TINY_TASK), "student": model}
    loaded = load_space_file(write_space(tmp_path / "s.yaml", task=task, space={**PLAIN, **space}))
    shape, classes = nominal_shape(loaded.task.data)
    check(loaded.space, loaded.task, shape, classes)


GRU = {"model": "compression_models:Recurrent"}
NO_LAYER = ("the student: the student has no Conv1d, Conv2d, Conv3d or Linear layer to quantize besides its "
            "classifier")


@pytest.mark.parametrize("quantize, fix", [(8, "use quantize: none"), (["none", 8], "drop 8 from space.quantize")])
def test_a_quantize_choice_no_student_can_take_is_refused(tmp_path, quantize, fix):
    """Was: the study was created and every trial drawing it failed."""
    with pytest.raises(AutokdError) as error:
        _check(tmp_path, check_quantize_reachable, GRU, quantize=quantize)
    assert str(error.value) == f"space.quantize 8: no student of the space can ship at 8 bits ({NO_LAYER}); {fix}"


def test_four_bits_no_student_would_have_a_layer_at_is_refused(tmp_path):
    with pytest.raises(AutokdError, match=r"^space.quantize 4: no student of the space can ship at 4 bits \(the "
                                          r"student: no layer would be at 4 bits: .*; drop 4 from space.quantize$"):
        _check(tmp_path, check_quantize_reachable, {"model": "compression_models:FirstAndClassifier"},
               quantize=["none", 8, 4])


def test_a_choice_some_students_can_take_is_kept(tmp_path):
    _check(tmp_path, check_quantize_reachable, GRU, quantize="none")
    _check(tmp_path, check_quantize_reachable, GRU, student={"stem": [False, True]}, quantize=8)  # stem: True can
    _check(tmp_path, check_quantize_reachable, {"model": "cnn1d", "kwargs": {"channels": 4}}, quantize=["none", 8, 4])


def test_the_size_bound_is_the_deployed_size_a_trial_measures(tmp_path):
    """Was: params x 4 bits (0.12 KiB here), so a limit no trial could meet was accepted."""
    from autokd.compression.measure import deployed_bytes
    from autokd.compression.quantize import prepare
    from autokd.models.registry import build_model

    student = {"model": "cnn1d", "kwargs": {"channels": 4}}
    smallest = deployed_bytes(prepare(build_model("cnn1d", {"channels": 4}, 10, (1, 40)), 4, torch.zeros(2, 1, 40)))
    kib = smallest / 1024
    with pytest.raises(AutokdError, match=rf"^no student this space can ship meets max_size_kb 0.5: the smallest, "
                                          rf"the task's student, has {kib:.4g} KiB deployed \({smallest:,} bytes\); "):
        _check(tmp_path, check_constraints_reachable, student, quantize=["none", 8, 4], constraints={"max_size_kb": 0.5})
    _check(tmp_path, check_constraints_reachable, student, quantize=["none", 4], constraints={"max_size_kb": kib})
    with pytest.raises(AutokdError, match=r"^no student this space can ship meets max_size_kb"):  # 8 bits at best
        _check(tmp_path, check_constraints_reachable, student, quantize=[8], constraints={"max_size_kb": kib})
    just_below = round(kib - 0.0004, 3)  # said "has at least 0.527 KiB" of a limit of 0.527: a difference shown
    with pytest.raises(AutokdError, match=rf"meets max_size_kb {just_below:g}: .* has {kib:.4g} KiB deployed"):
        _check(tmp_path, check_constraints_reachable, student, quantize=[4], constraints={"max_size_kb": just_below})


def test_search_refuses_such_a_space_before_the_study_exists(tmp_path):
    """The check runs where the space is bound: `autokd search` says it in one line and creates nothing."""
    import os
    from pathlib import Path

    from conftest import run_cli

    task = {**copy.deepcopy(TINY_TASK), "student": GRU}
    space = write_space(tmp_path / "s.yaml", task=task, space={**PLAIN, "quantize": 8})
    db = tmp_path / "s.db"
    tests = str(Path(__file__).parent)
    result = run_cli("search", "--space", space, "--budget", "2", "--workers", "0", "--storage", db,
                     cwd=tmp_path, env={"PYTHONPATH": os.pathsep.join(filter(None, [tests, os.environ.get("PYTHONPATH")]))})
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: space.quantize 8: no student of the space can ship")
    assert "Traceback" not in result.stderr and not db.exists()

"""Quantization is honest and refused up front: 4 bits where no layer would be at 4 bits, layers that
train fake-quantized but cannot be deployed, the first layer and the classifier found by what the
forward does (not by where they are declared)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from autokd.compression.quantize import layer_bits, prepare
from conftest import TINY_TASK, run_cli, write_config, write_space

TESTS = Path(__file__).parent  # compression_models, for CLI subprocesses
X = torch.zeros(2, 1, 40)


def _train(tmp_path, model: str, bits: int):
    """`autokd train` of one epoch of the student ``compression_models:MODEL`` quantized at ``bits``."""
    task = {**copy.deepcopy(TINY_TASK), "student": {"model": f"compression_models:{model}"}}
    write_space(tmp_path / "tiny.yaml", task=task)
    write_config(tmp_path / "c.yaml", {"alpha": 0.9, "compression": {"quantize": {"bits": bits}}}, "tiny.yaml")
    return run_cli("train", "--config", "c.yaml", "--epochs", "1", cwd=tmp_path, env={"PYTHONPATH": str(TESTS)})


def _error_line(proc) -> str:
    """The one ``error:`` line of a refused run (exit 2, no traceback, no training)."""
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert " epoch 1/1" not in proc.stdout + proc.stderr  # refused before the student trained
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_four_bits_with_no_layer_at_four_bits_is_refused(tmp_path):
    """Was: trained and reported as int4 QAT while every deployed layer was 8-bit (as with bits: 8)."""
    with pytest.raises(ValueError, match=r"^no layer would be at 4 bits"):
        from compression_models import FirstAndClassifier

        prepare(FirstAndClassifier(), 4, X)
    line = _error_line(_train(tmp_path, "FirstAndClassifier", 4))
    assert line == ("error: compression.quantize: no layer would be at 4 bits: the classifier stays float and the "
                    "first layer at 8 bits (stem at 8, fc float), and the student has no other Conv1d, Conv2d, "
                    "Conv3d or Linear layer; use bits 8"), line


@pytest.mark.parametrize("model, needle", [
    ("DilatedSame", "layer conv (Conv1d(8, 8, kernel_size=(3,), stride=(1,), padding=same, dilation=(2,))) trains "
                    "quantized but cannot be deployed at 8 bits: RuntimeError: quantized::conv1d_prepack() "),
    ("Circular", "layer conv (Conv1d(8, 8, kernel_size=(3,), stride=(1,), padding=(1,), padding_mode=circular)) "
                 "trains quantized but cannot be deployed at 8 bits: ValueError: 'padding_mode' circular is not "
                 "supported by quantized convolution"),
    ("Aliased", "layer a is also registered as b (one module at two paths), which quantization cannot wrap; give "
                "each use its own layer"),
])
def test_a_student_that_cannot_be_deployed_quantized_is_refused_before_training(tmp_path, model, needle):
    """Was: trained, then a traceback at deployment (exit 1)."""
    line = _error_line(_train(tmp_path, model, 8))
    assert line.startswith(f"error: compression.quantize: {needle}"), line


def test_the_first_layer_is_the_one_the_input_reaches_first():
    """``mid`` is registered before ``stem``: it used to be kept at 8 bits and stem put at 4."""
    from compression_models import MidFirst

    assert layer_bits(MidFirst(), 4, X) == {"mid": 4, "stem": 8, "fc": None}
    assert layer_bits(MidFirst(), 8, X) == {"mid": 8, "stem": 8, "fc": None}


def test_a_hidden_linear_is_not_taken_for_the_classifier():
    """Logits from ``F.linear(x, self.head_w)``: ``mid`` was taken as the classifier and left float."""
    from compression_models import FunctionalHead

    assert layer_bits(FunctionalHead(), 4, X) == {"stem": 8, "mid": 4}
    model = prepare(FunctionalHead(), 8, X)
    assert type(model.mid).__name__ == "FakeQuantLayer"


def test_the_usual_layout_keeps_its_plan():
    from autokd.models.registry import build_model

    student = build_model("cnn1d", {"channels": 4}, 10, (1, 40))
    plan = layer_bits(student, 4, X)
    paths = list(plan)
    assert plan[paths[0]] == 8 and plan[paths[-1]] is None and set(plan[p] for p in paths[1:-1]) == {4}


def test_a_first_layer_int8_kernels_cannot_take_still_ships_at_four_bits():
    """At 4 bits the deployed student is the frozen fake-quantized one (nothing is converted): the check
    converted the first layer (kept at 8 bits) on its own and refused a student that trains and ships."""
    from compression_models import SameFirst

    from autokd.compression.quantize import check_deploys, deploy

    prepared = prepare(SameFirst(), 4, X)
    check_deploys(prepared, X)
    assert torch.isfinite(deploy(prepared)(X)).all()
    with pytest.raises(ValueError, match=r"^layer stem \(Conv1d.*padding=same.*cannot be deployed at 8 bits"):
        check_deploys(prepare(SameFirst(), 8, X), X)


def test_a_float64_student_is_refused_for_quantization_by_name(tmp_path):
    """Was: a traceback from torch's fake quantization before training (exit 1)."""
    line = _error_line(_train(tmp_path, "Float64", 8))
    assert line.startswith("error: compression.quantize: the student cannot be fake-quantized (its weights are "
                           "float64; quantization needs float32)"), line


def test_conv_subclasses_stay_float_and_the_user_is_told_in_one_warning_line(tmp_path):
    """Was silent: 74 % of the weights stayed float under "int8" (only the hidden Linear was quantized)."""
    proc = _train(tmp_path, "SubclassedConvs", 8)
    assert proc.returncode == 0, proc.stderr
    warned = [line for line in proc.stderr.splitlines() if "stay float" in line]
    assert warned and warned[0] == ("warning: quantize: 2 layer(s) stay float: c1 (StandardisedConv), c2 "
                                    "(StandardisedConv), subclasses of Conv/Linear (quantization swaps exact "
                                    "Conv1d/2d/3d and Linear layers only); their weights count at 32 bits"), proc.stderr
    assert "RuntimeWarning" not in proc.stderr


def test_the_stay_float_warning_is_said_once_per_process():
    """quiet()'s catch_warnings made Python forget it: the line came back for every seed and every trial."""
    import warnings

    from compression_models import SubclassedConvs

    from autokd.compression import quantize

    quantize._SAID.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            prepare(SubclassedConvs(), 8, X)
    assert sum("stay float" in str(w.message) for w in caught) == 1

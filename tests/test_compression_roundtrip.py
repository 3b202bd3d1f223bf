"""A pruned user student (a depthwise conv, LayerNorm and GroupNorm after pruned layers) trains,
saves as ``autokd train --save`` writes it and comes back from ``autokd.load_student`` as the model
that was trained: the same layers, the same outputs. A pruning that could not come back is refused
before any training."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import nn

import autokd
from autokd.compression import deploy
from autokd.compression.prune import PruningError, prune_channels, resize_like
from autokd.compression.saved import save_student
from autokd.config.compression import compression_to_dict
from autokd.config.strategy import strategy_from_dict
from conftest import TINY_TASK, run_cli, write_config, write_space

TESTS = Path(__file__).parent  # compression_models, for CLI subprocesses
ONE_EPOCH = {"epochs": 1, "lr": 0.01, "batch_size": 64, "seed": 0}


@pytest.fixture(scope="module")
def prepared_with(_session_cache_dir):
    """The tiny task prepared with the student ``compression_models:NAME`` (the teacher from the cache)."""
    from autokd.config import task_from_dict
    from autokd.training.run import prepare_task

    def prepare(name: str):
        task = {**copy.deepcopy(TINY_TASK), "student": {"model": f"compression_models:{name}"}}
        return prepare_task(task_from_dict(task), "cpu", cache_root=_session_cache_dir)

    return prepare


@pytest.mark.parametrize("model, quantize", [("Depthwise", None), ("Depthwise", 8), ("Normed", None),
                                             ("Normed", 4)])
def test_a_pruned_user_student_loads_back_as_trained(prepared_with, tmp_path, model, quantize):
    """Was: the depthwise conv came back as Conv1d(8, 4, groups=8) (its forward failed; with quantize 8,
    load_student itself), and LayerNorm/GroupNorm could not be rebuilt at all."""
    from autokd.training.run import train_strategy
    from autokd.training.shipping import student_architecture

    prepared = prepared_with(model)
    compression = {"prune": {"amount": 0.5, "of": "student", "recover_epochs": 1},
                   **({"quantize": {"bits": quantize}} if quantize else {})}
    strategy = strategy_from_dict({"alpha": 0.9, "recipe": ONE_EPOCH, "compression": compression})
    trained = train_strategy(prepared, strategy, evaluate_test=False, measure=False, keep_model=True).model.eval()
    path = tmp_path / "student.pt"  # what `autokd train --save` writes (cli/train_cmd.py's _save_best)
    save_student(path, trained, student_architecture(prepared, strategy), prepared.data.num_classes,
                 prepared.data.input_shape, compression_to_dict(strategy.compression), {})
    loaded = autokd.load_student(path, deployed=False)
    assert [(p, type(m), m.extra_repr()) for p, m in loaded.named_modules()] == [
        (p, type(m), m.extra_repr()) for p, m in trained.named_modules()]
    x = next(iter(prepared.data.batches("val", 64)))[1].cpu()
    with torch.no_grad():
        assert torch.equal(loaded(x), trained(x))
        assert torch.equal(autokd.load_student(path)(x), deploy(trained, strategy.compression)(x))


def test_a_depthwise_conv_is_pruned_with_its_input_channels():
    from compression_models import Depthwise

    x = torch.randn(2, 1, 40)
    pruned = prune_channels(Depthwise(), 0.5, x)
    assert (pruned.dw.in_channels, pruned.dw.out_channels, pruned.dw.groups) == (4, 4, 4)
    rebuilt = resize_like(Depthwise(), pruned.state_dict())
    assert rebuilt.dw.groups == 4 and rebuilt.load_state_dict(pruned.state_dict())
    assert torch.equal(rebuilt.eval()(x), pruned.eval()(x))


class _PlainLayerNorm(nn.Module):
    """A LayerNorm without weights after a pruned Linear: nothing saved says its new size."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.mid = nn.Linear(40, 16)
        self.norm = nn.LayerNorm(16, elementwise_affine=False)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x):
        return self.fc(self.norm(self.mid(x.flatten(1))))


def test_a_pruning_load_student_could_not_rebuild_is_refused_when_pruning():
    with pytest.raises(PruningError, match=r"^the pruned norm \(LayerNorm\(\(8,\), .*\)\) would be rebuilt from its "
                                           r"saved weights as LayerNorm\(\(16,\), .*\); this layer cannot be pruned "
                                           r"and saved$"):
        prune_channels(_PlainLayerNorm(), 0.5, torch.randn(2, 1, 40))


def test_a_strategy_whose_pruned_student_could_not_be_rebuilt_is_refused_before_training(tmp_path):
    task = {**copy.deepcopy(TINY_TASK), "student": {"model": "test_compression_roundtrip:_PlainLayerNorm"}}
    write_space(tmp_path / "tiny.yaml", task=task)
    write_config(tmp_path / "c.yaml", {"alpha": 0.9, "recipe": ONE_EPOCH, "compression": {
        "prune": {"amount": 0.5, "of": "student", "recover_epochs": 1}}}, "tiny.yaml")
    proc = run_cli("train", "--config", "c.yaml", cwd=tmp_path, env={"PYTHONPATH": str(TESTS)})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: compression.prune (of the student): the pruned "
                                                           "norm (LayerNorm"), proc.stderr
    assert "epoch" not in proc.stdout


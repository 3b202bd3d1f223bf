"""What a Distiller holds and leaves behind: its feature hooks (removed after training, on close and on
drop) and the teacher's outputs cached over the training split (within a memory budget)."""

from __future__ import annotations

import pytest
import torch

from autokd.config import PairLoss, RelationLoss, Strategy, strategy_from_dict
from autokd.errors import AutokdError
from autokd.models.registry import build_model
from autokd.training.distiller import Distiller
from autokd.training.run import train_strategy
from autokd.training.teacher_cache import compute_teacher_cache
from test_distiller import SHAPE, batch, models


def _hooks(model) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_training_leaves_no_hooks_on_the_teacher_or_the_trained_student(tiny_prepared):
    # each trial's taps stayed on the shared teacher (4 more hooks a trial, each holding its last
    # features) and on the shipped student (its latency was measured with them: 33 % slower)
    strategy = strategy_from_dict({"alpha": 0.5, "pairs": [{"teacher": "stages.1", "student": "stages.1",
                                                            "loss": "fitnet"}], "relations": [{"loss": "rkd"}],
                                   "recipe": {"epochs": 1}}, base_recipe=tiny_prepared.task.recipes.proxy)
    before = _hooks(tiny_prepared.teacher)
    for _ in range(2):
        result = train_strategy(tiny_prepared, strategy, evaluate_test=False, keep_model=True)
        assert _hooks(result.model) == 0
        assert _hooks(tiny_prepared.teacher) == before == 0


def test_closed_refused_and_dropped_distillers_leave_no_hooks():
    teacher, student = models()
    strategy = Strategy(alpha=0.5, pairs=[PairLoss("stages.1", "stages.1", "fitnet")],
                        relations=[RelationLoss("pkt")])
    with Distiller(teacher, student, strategy, SHAPE) as distiller:
        assert _hooks(teacher) > 0 and _hooks(student) > 0
        x, y = batch()
        distiller(x, y)
    assert _hooks(teacher) == _hooks(student) == 0
    with pytest.raises(AutokdError, match="closed"):
        distiller(x, y)
    for refused, named in ((PairLoss("stages.1", "fc", "at"), "at needs"), (PairLoss("stages.0", "nope", "fitnet"), "nope")):
        with pytest.raises(AutokdError, match=named):
            Distiller(teacher, student, Strategy(alpha=0.5, pairs=[strategy.pairs[0], refused]), SHAPE)
        assert _hooks(teacher) == _hooks(student) == 0
    Distiller(teacher, student, strategy, SHAPE)  # dropped at once: its hooks go with it
    assert _hooks(teacher) == _hooks(student) == 0


def test_a_teacher_cache_beyond_the_memory_budget_is_declined_and_the_teacher_runs_with_each_batch(
        tiny_prepared, monkeypatch):
    """It was kept whatever its size (a CIFAR-size task: 17 GiB, twice that at its peak): an
    out-of-memory kill with no message. Declined, the trial computes the teacher's outputs per batch."""
    from autokd.training import students
    from autokd.training.teacher_cache import cache_size

    teacher, data, paths = tiny_prepared.teacher, tiny_prepared.data, ["stages.1", "embedding"]
    cache = compute_teacher_cache(teacher, data, paths, "cpu", batch_size=64)
    with torch.no_grad(), Distiller(teacher, build_model("cnn1d", {"channels": 4}, 10, SHAPE),
                                    Strategy(pairs=[PairLoss("stages.1", "stages.1", "fitnet")],
                                             relations=[RelationLoss("pkt")]), SHAPE) as distiller:
        live = distiller.teacher_outputs(data.train.x[:64].float())
    assert torch.allclose(cache.logits[:64], live.logits, atol=1e-5)
    assert torch.allclose(cache.features["stages.1"][:64], live.features["stages.1"], atol=1e-5)
    assert compute_teacher_cache(teacher, data, paths, "cpu", max_bytes=cache_size(cache) - 1) is None
    heard = []
    monkeypatch.setattr(students, "memory_budget", lambda device: cache_size(cache) - 1)
    assert students.teacher_cache_for(tiny_prepared, paths, say=heard.append) is None
    assert "too large to keep over the" in heard[0] and "the teacher runs with each batch" in heard[0]
    strategy = strategy_from_dict({"alpha": 0.5, "pairs": [{"teacher": "stages.1", "student": "stages.1",
                                                            "loss": "fitnet"}], "recipe": {"epochs": 1}},
                                  base_recipe=tiny_prepared.task.recipes.proxy)
    assert train_strategy(tiny_prepared, strategy, evaluate_test=False).val_acc > 0


def test_a_tapped_module_named_logits_is_cached_apart_from_the_logits(tiny_prepared):
    """The in-place cache keyed the logits by the name "logits": a user's module of that name overwrote them."""
    from torch import nn

    class Named(nn.Module):
        def __init__(self):
            super().__init__()
            self.logits = nn.Conv1d(1, 6, 3, padding=1)
            self.fc = nn.Linear(6, 10)

        def forward(self, x):
            return self.fc(self.logits(x).mean(-1))

    teacher = Named().eval()
    cache = compute_teacher_cache(teacher, tiny_prepared.data, ["logits"], "cpu", batch_size=64)
    n = len(tiny_prepared.data.train)
    assert cache.logits.shape == (n, 10) and cache.features["logits"].shape == (n, 6, 40)

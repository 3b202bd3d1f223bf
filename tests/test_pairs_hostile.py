"""Layer pairs a user can write that used to train on nothing or end in a traceback: maps of one position
under at/nst, layers that run in one mode only (or never, or return a tuple), stages in a ModuleList."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from autokd.config import PairLoss, Strategy
from autokd.errors import AutokdError
from autokd.losses import at, nst, one_position
from autokd.models.pairs import auto_pairs
from autokd.models.registry import build_model
from autokd.training.distiller import Distiller

SHAPE = (1, 40)


@pytest.mark.parametrize("loss", [at, nst])
@pytest.mark.parametrize("student, teacher", [((8, 4, 20), (8, 16, 1)), ((4, 4, 8, 8), (4, 16, 1, 1)),
                                              ((4, 4, 1, 8), (4, 16, 4, 1))])
def test_maps_that_pool_to_one_position_make_at_and_nst_zero_and_are_told_apart(loss, student, teacher):
    """A map of one position normalises to a constant: the loss is 0 with no gradient (as the references)."""
    s = torch.randn(*student, requires_grad=True)
    value = loss(s, torch.randn(*teacher))
    value.backward()
    assert abs(value.item()) < 1e-6 and s.grad.abs().max().item() < 1e-6
    assert one_position(student[1:], teacher[1:]) and not one_position((4, 2), (16, 5))
    assert loss(torch.randn(8, 4, 2), torch.randn(8, 16, 5)) > 0  # two positions are enough


def test_a_config_pairing_at_on_one_position_is_refused_before_training_and_a_space_only_when_nothing_acts(tmp_path):
    """`train` trained such a pair to the cross-entropy-only result, silently; a space whose every choice for a
    student layer is such a pair trained nothing there in every trial. A space with fitnet too is fine."""
    from conftest import run_cli, write_config, write_space

    from autokd.search.binding import bind_space
    from autokd.search.space_file import load_space_file

    space = write_space(tmp_path / "s.yaml", space={"pair_losses": ["at"], "relation_losses": []})
    config = write_config(tmp_path / "c.yaml", {"alpha": 0.5, "pairs": [
        {"teacher": "pool", "student": "stages.2", "loss": "at", "weight": 1000}]}, str(space))
    refused = run_cli("train", "--config", config, env={"AUTOKD_CACHE": str(tmp_path / "cache")})
    assert refused.returncode == 2 and "strategy.pairs[0] (teacher pool -> student stages.2, at): at compares maps " \
        "over their positions" in refused.stderr, refused.stderr
    assert "teacher" not in refused.stdout  # before the teacher trained
    searched = {"pairs": {"student": ["stages.2"], "teacher": ["pool"]}, "relation_losses": []}
    with pytest.raises(AutokdError, match=r"^student layer 'stages.2': every pair the space may make there pools to "
                                          r"one position, where at, nst"):
        bind_space(load_space_file(write_space(tmp_path / "a.yaml", space={**searched, "pair_losses": ["at", "nst"]})))
    bind_space(load_space_file(write_space(tmp_path / "b.yaml", space={**searched, "pair_losses": ["at", "fitnet"]})))


class OneModeLayers(nn.Module):
    """A tiny classifier with a layer that runs only in eval mode, one only in training, one never, and one
    that returns a tuple."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.conv = nn.Conv1d(1, 4, 3, padding=1)
        self.eval_only, self.train_only, self.never = nn.Identity(), nn.Identity(), nn.Identity()
        self.fc = nn.Linear(4, num_classes)

    def forward(self, x):
        h = self.conv(x).relu()
        h = self.train_only(h) if self.training else self.eval_only(h)
        return self.fc(h.mean(-1))


def test_a_pair_on_a_layer_that_gives_no_tensor_in_some_mode_is_named_when_the_distiller_is_built():
    """Each was a KeyError (or AttributeError) traceback from the distiller, in train or in every search trial."""
    teacher = build_model("cnn1d", {"channels": 8}, 10, SHAPE)
    for layer, mode in (("eval_only", "training-mode"), ("train_only", "eval-mode"), ("never", "eval-mode")):
        student = OneModeLayers()
        strategy = Strategy(pairs=[PairLoss(teacher="stages.0", student=layer, loss="fitnet")])
        with pytest.raises(AutokdError, match=rf"student layer\(s\) '{layer}' give no single tensor in an? {mode}"):
            Distiller(teacher, student, strategy, SHAPE)
        assert student.training and all(m.training for m in student.modules())  # the check left the modes as they were


def test_stages_in_a_module_list_are_paired():
    """A ModuleList never runs itself: its stages were never found (pairs: auto and search found nothing)."""
    class ListStages(nn.Module):
        def __init__(self, width, num_classes=10):
            super().__init__()
            self.stem = nn.Conv1d(1, width, 3, padding=1)
            self.stage1 = nn.ModuleList([nn.Conv1d(width, width, 3, stride=2, padding=1), nn.ReLU()])
            self.stage2 = nn.ModuleList([nn.Conv1d(width, width, 3, stride=2, padding=1), nn.ReLU()])
            self.fc = nn.Linear(width, num_classes)

        def forward(self, x):
            x = self.stem(x)
            for stage in (self.stage1, self.stage2):
                for block in stage:
                    x = block(x)
            return self.fc(x.mean(-1))

    assert auto_pairs(ListStages(8), ListStages(4), SHAPE) == [("stem", "stem"), ("stage1.1", "stage1.1"),
                                                              ("stage2.1", "stage2.1")]


def test_a_space_pairing_a_student_layer_that_runs_only_in_eval_mode_is_refused(tmp_path, monkeypatch):
    """The layer list traces in eval mode: the space was accepted and every trial failed (KeyError)."""
    import copy
    import inspect

    from conftest import TINY_TASK, write_space

    from autokd.search.binding import bind_space
    from autokd.search.space_file import load_space_file

    (tmp_path / "onemode.py").write_text("import torch.nn as nn\n\n\n" + inspect.getsource(OneModeLayers))
    monkeypatch.syspath_prepend(str(tmp_path))
    task = {**copy.deepcopy(TINY_TASK), "student": {"model": "onemode:OneModeLayers"}}
    space = {"pairs": [{"teacher": "stages.0", "student": "eval_only"}], "pair_losses": ["fitnet"], "relation_losses": []}
    with pytest.raises(AutokdError, match=r"^student layer\(s\) 'eval_only' of the pairs give no single tensor in a "
                                          r"training-mode forward pass"):
        bind_space(load_space_file(write_space(tmp_path / "s.yaml", task=task, space=space)))


class NamedEmbedding(nn.Module):
    """A user model with a module of its own named ``embedding`` (a name that means the classifier's input)."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.embedding = nn.Conv1d(1, 16, 3, stride=2, padding=1)
        self.body = nn.Sequential(nn.Conv1d(16, 16, 3, stride=2, padding=1), nn.ReLU())
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x):
        return self.fc(self.body(self.embedding(x)).mean(-1))


def test_a_module_named_embedding_is_never_offered_as_a_layer():
    """Automatic pairs picked it as a stage (stages.0 -> embedding) while the pair distilled the
    classifier's input, and `autokd layers` listed two different `embedding` rows."""
    from autokd.models.pairs import stage_layers
    from autokd.models.taps import list_layers

    student = NamedEmbedding()
    teacher = build_model("cnn1d", {"channels": 16}, 10, SHAPE)
    assert [path for path, _ in stage_layers(student, SHAPE)] == ["body"]
    assert all(s != "embedding" for _, s in auto_pairs(teacher, student, SHAPE))
    rows = [(info.path, info.type_name, info.output_shape) for info in list_layers(student, SHAPE)
            if info.path == "embedding"]
    assert rows == [("embedding", "input of fc", (16,))]

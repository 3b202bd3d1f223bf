"""User models that pass a single eval-mode look but fail later: a tuple in training mode, float64
weights, a classifier not declared last; teacher checkpoints autokd cannot load, in words."""

from __future__ import annotations

import copy
import textwrap
import warnings

import pytest
import torch
from torch import nn

from autokd.errors import AutokdError

SIGNAL = (1, 40)


class AuxInTraining(nn.Module):
    """Returns (logits, aux) in training mode only, like torchvision's googlenet; BatchNorm and dropout."""

    def __init__(self, num_classes=10, tuple_in_training=True):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(40, 8), nn.BatchNorm1d(8), nn.Dropout(0.5))
        self.fc = nn.Linear(8, num_classes)
        self.aux = nn.Linear(8, num_classes)  # declared last, runs in training mode only
        self.tuple_in_training = tuple_in_training
        self.aux_logits = None

    def forward(self, x):
        h = self.body(x)
        logits = self.fc(h)
        if not self.training:
            return logits
        self.aux_logits = self.aux(h)
        return (logits, self.aux_logits) if self.tuple_in_training else logits


class ProjectionDeclaredLast(nn.Module):
    """The classifier is declared first; an internal Linear (16 -> 16) after it."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.fc = nn.Linear(16, num_classes)
        self.stem = nn.Sequential(nn.Flatten(), nn.Linear(40, 16))
        self.proj = nn.Linear(16, 16)

    def forward(self, x):
        return self.fc(torch.relu(self.proj(self.stem(x))))


# --- check_logits: training mode, dtype --------------------------------------------------------


def test_check_logits_refuses_a_tuple_in_training_mode_and_changes_nothing():
    """Was: passed (eval mode only), then train/teacher crashed in cross_entropy with a tuple."""
    from autokd.models.checks import check_logits

    for model in (AuxInTraining(tuple_in_training=False), AuxInTraining()):
        model.train()
        model.body[3].eval()  # a mix of modes is restored module by module
        bn = model.body[2]
        stats = {k: v.clone() for k, v in bn.state_dict().items()}
        rng = torch.get_rng_state()
        if model.tuple_in_training:
            with pytest.raises(AutokdError) as info:
                check_logits(model, "nets:Aux", "teacher", SIGNAL, 10)
            message = str(info.value)
            assert "\n" not in message and message.startswith("teacher model 'nets:Aux': forward returned a tuple "
                                                              "of 2 (tensor (2, 10), tensor (2, 10)) in training mode")
            assert "aux_logits=False" in message, message
        else:
            check_logits(model, "nets:Aux", "teacher", SIGNAL, 10)
            assert model.aux_logits is not None  # the training-mode forward ran
        assert model.training and model.fc.training and not model.body[3].training
        assert all(torch.equal(bn.state_dict()[k], v) for k, v in stats.items())  # running stats, batches tracked
        assert torch.equal(rng, torch.get_rng_state())  # dropout drew from a forked RNG


def test_check_logits_names_float64_weights():
    """Was: the zero batch followed torch's default dtype (float64 too), so the check passed and training crashed."""
    from autokd.models.checks import check_logits

    model = nn.Sequential(nn.Flatten(), nn.Linear(40, 10)).double()
    with pytest.raises(AutokdError) as info:
        check_logits(model, "nets:Double", "student", SIGNAL, 10)
    message = str(info.value)
    assert message.startswith("student model 'nets:Double': a forward pass on a dummy batch of shape (2, 1, 40) failed")
    assert "its weights are torch.float64, autokd's data is torch.float32" in message, message
    assert "torch.set_default_dtype" in message and "\n" not in message


FLOAT64_MODULE = '''
import torch
import torch.nn as nn

torch.set_default_dtype(torch.float64)


def make(num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(40, num_classes))
'''


def test_train_with_a_model_module_that_sets_float64_is_one_error_line(tmp_path):
    """Was: RuntimeError: Input type (float) and bias type (double) should be the same, a traceback."""
    from conftest import TINY_TASK, run_cli, write_config

    (tmp_path / "f64nets.py").write_text(textwrap.dedent(FLOAT64_MODULE))
    task = copy.deepcopy(TINY_TASK)
    task["teacher"] = {**task["teacher"], "model": "f64nets:make", "kwargs": {}}
    write_config(tmp_path / "c.yaml", {"alpha": 0.0}, task)
    proc = run_cli("train", "--config", "c.yaml", "--epochs", "1", cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: teacher model 'f64nets:make': a forward pass") and "torch.float64" in last, last


# --- the embedding: the input of the Linear that makes the logits --------------------------------


def test_embedding_is_the_input_of_the_classifier_declared_first():
    """Was: the input of `proj` (declared last), a mid-network tensor, silently."""
    from autokd.models.taps import EMBEDDING, FeatureTaps, classifier_path, list_layers

    model = ProjectionDeclaredLast().eval()
    seen = {}
    model.fc.register_forward_pre_hook(lambda m, inp: seen.setdefault("x", inp[0]))
    x = torch.randn(3, *SIGNAL)
    with FeatureTaps(model, [EMBEDDING]) as taps, torch.no_grad():
        model(x)
    assert taps.classifier == "fc" and torch.equal(taps.outputs[EMBEDDING], seen["x"])
    assert classifier_path(model, SIGNAL) == "fc"
    assert list_layers(model, SIGNAL)[-1].type_name == "input of fc"


def test_teacher_cache_taps_the_embedding_of_a_model_with_an_aux_head_declared_last(tiny_prepared):
    """Was: KeyError: 'embedding' (the pre-hook sat on `aux`, which an eval-mode forward never calls)."""
    from autokd.models.taps import EMBEDDING
    from autokd.training.teacher_cache import compute_teacher_cache

    torch.manual_seed(0)
    teacher = AuxInTraining(tuple_in_training=False)
    cache = compute_teacher_cache(teacher, tiny_prepared.data, [EMBEDDING], "cpu")
    n = len(tiny_prepared.data.train)
    assert cache.features[EMBEDDING].shape == (n, 8) and cache.logits.shape == (n, 10)
    torch.testing.assert_close(teacher.fc(cache.features[EMBEDDING]), cache.logits)


def test_a_model_whose_logits_come_from_no_linear_has_no_embedding_and_says_drop_the_relations():
    """Was: the input of the one Linear (mid-network), silently; the message said "tap a module path instead"."""
    from autokd.models.taps import EMBEDDING, FeatureTaps, list_layers

    conv_head = nn.Sequential(nn.Flatten(), nn.Linear(40, 8), nn.Unflatten(1, (2, 4)), nn.Conv1d(2, 10, 4),
                              nn.Flatten())
    taps = FeatureTaps(conv_head, [EMBEDDING])
    with pytest.raises(AutokdError) as info:
        conv_head(torch.randn(2, *SIGNAL))
    taps.remove()
    message = str(info.value)
    assert message.startswith("Sequential has no nn.Linear classifier") and "tap a module path" not in message
    assert "relation losses (crd, pkt, rkd, sp)" in message and "drop them" in message, message
    assert [i.path for i in list_layers(conv_head, SIGNAL)][-1] == "4"  # no embedding entry
    with pytest.raises(AutokdError, match=r"relation losses \(crd, pkt, rkd, sp\) need the features entering"):
        FeatureTaps(nn.Sequential(nn.Conv1d(1, 10, 40), nn.Flatten()), [EMBEDDING])


# --- teacher checkpoints -----------------------------------------------------------------------


def _teacher():
    from autokd.models.registry import build_model

    return build_model("cnn1d", {"channels": 4}, 10, SIGNAL)


@pytest.mark.parametrize("wrapped", [False, True])
def test_a_data_parallel_state_dict_loads(tmp_path, wrapped):
    """Was: "does not fit the teacher model: Missing key(s) ...", the unexpected module.* keys dropped."""
    from autokd.training.teacher import load_checkpoint

    torch.manual_seed(3)
    saved = _teacher()
    state = nn.DataParallel(saved).state_dict()
    assert all(k.startswith("module.") for k in state)
    torch.save({"state_dict": state, "epoch": 3} if wrapped else state, tmp_path / "dp.pt")
    model = _teacher()
    load_checkpoint(model, str(tmp_path / "dp.pt"))
    assert all(torch.equal(model.state_dict()[k], v) for k, v in saved.state_dict().items())


def test_a_misfit_names_missing_and_unexpected_keys(tmp_path):
    from autokd.training.teacher import load_checkpoint

    state = nn.DataParallel(_teacher()).state_dict()
    state["step"] = torch.zeros(())  # not every key has the prefix: nothing is stripped
    torch.save(state, tmp_path / "odd.pt")
    with pytest.raises(AutokdError) as info:
        load_checkpoint(_teacher(), str(tmp_path / "odd.pt"))
    message = str(info.value)
    assert "does not fit the teacher model: missing keys 'stages.0.0.weight'" in message, message
    assert "unexpected keys 'module.stages.0.0.weight'" in message and "\n" not in message, message


def _unloadable(path, save) -> str:
    from autokd.training.teacher import load_checkpoint

    save(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(AutokdError) as info:
            load_checkpoint(_teacher(), str(path))
    assert not caught, [str(w.message) for w in caught]  # was: torch's TorchScript UserWarning, printed first
    message = str(info.value)
    assert message.startswith(f"{path} is not a loadable PyTorch checkpoint: ") and "\n" not in message, message
    assert len(message) < 400, message
    return message


def test_unloadable_checkpoints_say_what_the_file_is(tmp_path):
    pickled = _unloadable(tmp_path / "whole.pt", lambda p: torch.save(_teacher(), p))
    assert "holds a pickled autokd.models.mnist1d_nets." in pickled and "not a state dict" in pickled, pickled
    assert "torch.save(model.state_dict(), path)" in pickled and "two options" not in pickled, pickled
    text = _unloadable(tmp_path / "notes.pt", lambda p: p.write_text("101\n"))
    assert text.endswith("it is a text file; expected what torch.save(model.state_dict(), path) writes"), text

    def script(path):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit is deprecated
            torch.jit.save(torch.jit.script(nn.Linear(4, 2)), path)

    scripted = _unloadable(tmp_path / "scripted.pt", script)
    assert "it is a TorchScript archive (torch.jit.save), not a state dict" in scripted, scripted


def test_teacher_retrain_with_a_checkpoint_teacher_is_refused(tmp_path):
    """Was: --retrain silently ignored (the checkpoint loaded, nothing trained)."""
    from conftest import TINY_TASK, run_cli, write_space

    from autokd.models.registry import build_model

    torch.save(build_model("cnn1d", {"channels": 16, "depth": 3}, 10, SIGNAL).state_dict(), tmp_path / "t.pt")
    task = copy.deepcopy(TINY_TASK)
    task["teacher"]["checkpoint"] = "t.pt"
    write_space(tmp_path / "s.yaml", task=task)
    proc = run_cli("teacher", "--space", "s.yaml", "--retrain", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --retrain trains a teacher again, but the task's teacher "
                                                   f"is loaded from its checkpoint {tmp_path / 't.pt'}"), proc.stderr


CONV_HEAD = """
import torch.nn as nn


class ConvHead(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.body = nn.Conv1d(1, 8, 3, padding=1)
        self.head = nn.Conv1d(8, num_classes, 40)

    def forward(self, x):
        return self.head(self.body(x).relu()).flatten(1)
"""


def test_a_space_with_relations_refuses_a_model_without_an_embedding_before_any_training(tmp_path, monkeypatch):
    """The search trained the teacher, then said the model has no 'embedding' features."""
    from conftest import TINY_TASK, write_space

    from autokd.search.binding import bind_space
    from autokd.search.space_file import load_space_file

    (tmp_path / "bindheads.py").write_text(CONV_HEAD)
    monkeypatch.syspath_prepend(str(tmp_path))
    task = {**copy.deepcopy(TINY_TASK), "student": {"model": "bindheads:ConvHead"}}
    space = {"pair_losses": ["none"], "relation_losses": ["rkd", "pkt"]}
    with pytest.raises(AutokdError, match=r"^space\.relation_losses rkd, pkt: the student: ConvHead has no nn\.Linear "
                                          r"classifier"):
        bind_space(load_space_file(write_space(tmp_path / "r.yaml", task=task, space=space)))
    bind_space(load_space_file(write_space(tmp_path / "n.yaml", task=task, space={**space, "relation_losses": []})))


def test_relations_that_read_an_assistant_do_not_need_the_teacher_s_embedding(tmp_path, monkeypatch):
    """The teacher (logits from a conv) was refused though the assistant, which the relations read, has one."""
    from conftest import TINY_TASK, write_space

    from autokd.search.binding import bind_space
    from autokd.search.space_file import load_space_file

    (tmp_path / "bindheads2.py").write_text(CONV_HEAD)
    monkeypatch.syspath_prepend(str(tmp_path))
    task = {**copy.deepcopy(TINY_TASK), "teacher": {**TINY_TASK["teacher"], "model": "bindheads2:ConvHead", "kwargs": {}}}
    space = {"pair_losses": ["none"], "relation_losses": ["rkd"], "schemes": ["assistant"],
             "scheme_knobs": {"assistant": {"model": "cnn1d", "kwargs": {"channels": 8}}}}
    bind_space(load_space_file(write_space(tmp_path / "a.yaml", task=task, space=space)))
    with pytest.raises(AutokdError, match=r"^space\.relation_losses rkd: the teacher: ConvHead has no nn\.Linear"):
        bind_space(load_space_file(write_space(tmp_path / "b.yaml", task=task,
                                               space={**space, "schemes": ["single", "assistant"]})))

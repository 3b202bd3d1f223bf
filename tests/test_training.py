"""Tests of autokd.training: the fit loop, divergence detection, the cached teacher, teacher
checkpoints and end-to-end determinism, all on the tiny MNIST-1D task on the CPU."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import torch

from autokd.config import Strategy, strategy_from_dict, task_from_dict
from autokd.data import load_task_data
from autokd.errors import AutokdError
from autokd.models.registry import build_model
from autokd.training.fit import TrainingFailed, accuracy, fit
from autokd.training.run import check_strategy, train_strategy
from autokd.training.students import build_distiller
from autokd.training.teacher import get_teacher, teacher_cache_path, teacher_content

from conftest import TINY_TASK

CHANCE = 10.0  # percent, 10 classes


def strategy(data: dict, prepared) -> Strategy:
    return strategy_from_dict(data, base_recipe=prepared.task.recipes.full)


@pytest.fixture(scope="module")
def teacher_data(_session_cache_dir):
    """The tiny task's teacher data (all of the training split, train_size not applied)."""
    task = task_from_dict(copy.deepcopy(TINY_TASK))
    return load_task_data(replace(task.data, train_size=None), _session_cache_dir)


def test_fit_improves_over_chance_and_reports_every_epoch(tiny_prepared):
    prepared = tiny_prepared
    assert len(prepared.data.train) == 400 and len(prepared.data.val) == 200 and len(prepared.data.test) == 300
    recipe = replace(prepared.task.recipes.full, epochs=4)
    distiller = build_distiller(prepared, strategy({"alpha": 0.0}, prepared), seed=0)
    before = accuracy(distiller.student, prepared.data, "val", "cpu")
    seen = []
    result = fit(distiller, prepared.data, recipe, "cpu", on_epoch=seen.append)
    assert [s.epoch for s in seen] == [1, 2, 3, 4]
    assert all(s.epochs == 4 for s in seen)
    assert result.history == seen
    assert result.val_acc == seen[-1].val_acc == accuracy(distiller.student, prepared.data, "val", "cpu")
    assert seen[-1].train_loss < seen[0].train_loss
    assert [s.seconds for s in seen] == sorted(s.seconds for s in seen)
    assert result.val_acc > CHANCE + 5, (before, result.val_acc)
    assert distiller.student.training  # fit leaves the student in train mode; accuracy() restores it


def test_fit_validates_only_where_asked_and_trains_the_same(tiny_prepared):
    prepared = tiny_prepared
    recipe = replace(prepared.task.recipes.full, epochs=5)
    every = fit(build_distiller(prepared, strategy({"alpha": 0.0}, prepared), seed=0), prepared.data, recipe, "cpu")
    seen = []
    some = fit(build_distiller(prepared, strategy({"alpha": 0.0}, prepared), seed=0), prepared.data, recipe, "cpu",
               on_epoch=seen.append, validate_at={2})
    assert [s.epoch for s in seen] == [2, 5]  # the asked epoch, and always the last
    assert some.history == seen
    # validation does not touch training: same losses and accuracies at the epochs both measured
    by_epoch = {s.epoch: s for s in every.history}
    for s in seen:
        assert (s.train_loss, s.val_acc) == (by_epoch[s.epoch].train_loss, by_epoch[s.epoch].val_acc)
    assert some.val_acc == every.val_acc
    only_last = fit(build_distiller(prepared, strategy({"alpha": 0.0}, prepared), seed=0), prepared.data, recipe, "cpu",
                    validate_at=())
    assert [s.epoch for s in only_last.history] == [5] and only_last.val_acc == every.val_acc


def test_on_epoch_may_stop_training(tiny_prepared):
    class Stop(Exception):
        pass

    seen = []

    def on_epoch(stats):
        seen.append(stats.epoch)
        if stats.epoch == 2:
            raise Stop

    distiller = build_distiller(tiny_prepared, strategy({"alpha": 0.9}, tiny_prepared), seed=0)
    with pytest.raises(Stop):
        fit(distiller, tiny_prepared.data, replace(tiny_prepared.task.recipes.full, epochs=5), "cpu", on_epoch=on_epoch)
    assert seen == [1, 2]


FITNET = {"teacher": "stages.1", "student": "stages.1", "loss": "fitnet"}


@pytest.mark.parametrize(
    "data,what",
    [
        ({"alpha": 0.5, "pairs": [{**FITNET, "weight": 3e38}]}, "inf"),  # a part overflows float32
        ({"alpha": 0.5, "pairs": [{**FITNET, "weight": 1e38}]}, "inf"),  # the epoch's sum overflows
        ({"alpha": 0.0, "relations": [{"loss": "rkd", "weight": 1e37}]}, "nan"),  # the weights blow up to NaN
        ({"alpha": 0.5, "pairs": [{**FITNET, "weight": 1e30}]}, "e+30"),  # finite, but exploded
        ({"alpha": 0.0, "recipe": {"lr": 1e6, "optimizer": "sgd"}}, "e+"),
    ],
)
def test_training_failed_for_a_diverging_strategy(tiny_prepared, data, what):
    seen = []
    with pytest.raises(TrainingFailed) as info:
        train_strategy(tiny_prepared, strategy(data, tiny_prepared), on_epoch=seen.append)
    message = str(info.value)
    assert "diverged" in message and "epoch 1" in message and what in message, message
    assert "ce=" in message  # the last batch's parts are named
    assert seen == []  # no epoch was reported as if it had worked
    assert not isinstance(info.value, AutokdError)  # a property of the strategy, not a user error


def test_teacher_is_trained_once_then_read_from_the_cache(tmp_path, teacher_data):
    task = task_from_dict(copy.deepcopy(TINY_TASK))
    root = tmp_path / "cache"
    epochs = []
    t1, info1 = get_teacher(task, teacher_data, "cpu", root, on_epoch=epochs.append)
    assert info1.source == "trained" and len(epochs) == 3
    assert info1.path == str(teacher_cache_path(task, root, teacher_content(task, teacher_data))) and teacher_cache_path(task, root, teacher_content(task, teacher_data)).is_file()
    assert not list((root / "teachers").glob("*.tmp"))
    assert info1.val_acc > CHANCE + 5
    t2, info2 = get_teacher(task, teacher_data, "cpu", root, on_epoch=epochs.append)
    assert info2.source == "cache" and len(epochs) == 3  # no training the second time
    assert (info2.val_acc, info2.test_acc) == (info1.val_acc, info1.test_acc)
    s1, s2 = t1.state_dict(), t2.state_dict()
    assert s1.keys() == s2.keys() and all(torch.equal(s1[k], s2[k]) for k in s1)
    assert not t2.training and not any(p.requires_grad for p in t2.parameters())
    # a different teacher recipe is a different cache entry; train_size is not part of the key
    other = replace(task, teacher=replace(task.teacher, recipe=replace(task.teacher.recipe, epochs=1)))
    assert teacher_cache_path(other, root, teacher_content(other, teacher_data)) != teacher_cache_path(task, root, teacher_content(task, teacher_data))
    same = replace(task, data=replace(task.data, train_size=123))
    assert teacher_cache_path(same, root, teacher_content(same, teacher_data)) == teacher_cache_path(task, root, teacher_content(task, teacher_data))
    # retrain ignores the cache
    _, info3 = get_teacher(task, teacher_data, "cpu", root, retrain=True)
    assert info3.source == "trained"


def _task_with_checkpoint(path) -> "object":
    data = copy.deepcopy(TINY_TASK)
    data["teacher"]["checkpoint"] = str(path)
    return task_from_dict(data)


def test_teacher_from_a_checkpoint(tmp_path, teacher_data):
    torch.manual_seed(5)
    model = build_model("cnn1d", {"channels": 16, "depth": 3}, 10, (1, 40))
    for i, (path, obj) in enumerate(
        [
            (tmp_path / "plain.pt", model.state_dict()),
            (tmp_path / "wrapped.pth", {"state_dict": model.state_dict(), "epoch": 3}),
        ]
    ):
        torch.save(obj, path)
        teacher, info = get_teacher(_task_with_checkpoint(path), teacher_data, "cpu", tmp_path / "cache")
        assert info.source == "checkpoint" and info.path == str(path)
        loaded = teacher.state_dict()
        assert all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())
        assert not teacher.training
    assert not (tmp_path / "cache" / "teachers").exists()  # nothing trained, nothing cached


@pytest.mark.parametrize("kind", ["missing", "random_bytes", "other_architecture", "not_a_state_dict"])
def test_bad_teacher_checkpoints_are_one_line_errors(tmp_path, teacher_data, kind):
    path = tmp_path / "teacher.pt"
    if kind == "random_bytes":
        path.write_bytes(torch.randint(0, 256, (4096,), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
                         .numpy().tobytes())
    elif kind == "other_architecture":
        torch.save(build_model("cnn1d", {"channels": 8, "depth": 3}, 10, (1, 40)).state_dict(), path)
    elif kind == "not_a_state_dict":
        torch.save({"epochs": 3, "lr": 0.1}, path)
    with pytest.raises(AutokdError) as info:
        get_teacher(_task_with_checkpoint(path), teacher_data, "cpu", tmp_path / "cache")
    message = str(info.value)
    assert "\n" not in message and str(path) in message and len(message) < 500, message
    expected = {
        "missing": "not found",
        "random_bytes": "not a loadable PyTorch checkpoint",
        "other_architecture": "does not fit the teacher model",
        "not_a_state_dict": "holds no state dict",
    }[kind]
    assert expected in message, message
    if kind == "other_architecture":
        assert "size mismatch" in message or "stages" in message


def test_train_strategy_is_deterministic_for_a_fixed_seed(tiny_prepared):
    data = {
        "alpha": 0.7,
        "temperature": 3.0,
        "pairs": [{**FITNET, "weight": 2.0}],
        "relations": [{"loss": "crd", "weight": 0.5, "params": {"feat_dim": 8, "num_negatives": 32}}],
        "recipe": {"epochs": 2, "seed": 3},
    }
    s = strategy(data, tiny_prepared)
    a = train_strategy(tiny_prepared, s)
    b = train_strategy(tiny_prepared, s)
    assert (a.val_acc, a.test_acc, a.seed, a.epochs) == (b.val_acc, b.test_acc, 3, 2)
    assert [h.train_loss for h in a.history] == [h.train_loss for h in b.history]
    assert a.test_acc is not None and 0 <= a.test_acc <= 100
    other = train_strategy(tiny_prepared, s, recipe=replace(s.recipe, seed=4), evaluate_test=False)
    assert other.test_acc is None and other.seed == 4
    assert [h.train_loss for h in other.history] != [h.train_loss for h in a.history]


def test_check_strategy_rejects_unknown_layers(tiny_prepared):
    check_strategy(tiny_prepared, strategy({"alpha": 0.5, "pairs": [FITNET]}, tiny_prepared))
    bad = strategy({"alpha": 0.5, "pairs": [{**FITNET, "student": "stage.1"}]}, tiny_prepared)
    with pytest.raises(AutokdError, match=r"'stage\.1'.*did you mean 'stages\.1'"):
        check_strategy(tiny_prepared, bad)


# ----------------------------------------------------------------------------- hardening


def _tiny_task(**teacher_recipe):
    data = copy.deepcopy(TINY_TASK)
    data["teacher"]["recipe"].update(teacher_recipe)
    return task_from_dict(data)


def test_a_diverging_teacher_is_an_error_naming_the_knob(tmp_path, teacher_data):
    task = _tiny_task(lr=1e6, optimizer="sgd", epochs=1)
    with pytest.raises(AutokdError) as info:
        get_teacher(task, teacher_data, "cpu", tmp_path / "cache")
    message = str(info.value)
    assert "teacher 'cnn1d' diverged" in message and "epoch 1" in message, message
    assert "lower task.teacher.recipe.lr (now 1e+06)" in message and "\n" not in message
    assert not teacher_cache_path(task, tmp_path / "cache", teacher_content(task, teacher_data)).exists()


@pytest.mark.parametrize("content", ["garbage", "wrong_mapping", "wrong_shapes"])
def test_a_corrupt_cached_teacher_is_trained_again_saying_why(tmp_path, teacher_data, content):
    task = _tiny_task(epochs=1)
    root = tmp_path / "cache"
    path = teacher_cache_path(task, root, teacher_content(task, teacher_data))
    path.parent.mkdir(parents=True)
    if content == "garbage":
        path.write_bytes(b"\x00not a zip" * 50)
    elif content == "wrong_mapping":
        torch.save({"weights": [1, 2, 3]}, path)
    else:
        torch.save({"state_dict": build_model("cnn1d", {"channels": 3}, 10, (1, 40)).state_dict()}, path)
    messages, epochs = [], []
    model, info = get_teacher(task, teacher_data, "cpu", root, on_epoch=epochs.append, progress=messages.append)
    assert info.source == "trained" and len(epochs) == 1
    assert len(messages) == 1 and str(path) in messages[0] and "training it again" in messages[0], messages
    # the file is whole again: the next call reads it
    _, again = get_teacher(task, teacher_data, "cpu", root, on_epoch=epochs.append, progress=messages.append)
    assert again.source == "cache" and len(epochs) == 1 and len(messages) == 1
    assert again.fingerprint == info.fingerprint


def test_an_unwritable_teacher_cache_keeps_the_teacher_in_memory_and_warns_once(tmp_path, teacher_data):
    task = _tiny_task(epochs=1, seed=11)
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the cache folder should be")  # unwritable, also as root
    messages, epochs = [], []
    first, info = get_teacher(task, teacher_data, "cpu", blocked, on_epoch=epochs.append, progress=messages.append)
    assert info.source == "trained" and info.path == "" and len(epochs) == 1
    assert len(messages) == 1 and messages[0].startswith("warning: ") and "in memory for this run" in messages[0]
    second, again = get_teacher(task, teacher_data, "cpu", blocked, on_epoch=epochs.append, progress=messages.append)
    assert again.source == "memory" and len(epochs) == 1 and len(messages) == 1  # not trained, not warned again
    assert again.fingerprint == info.fingerprint and (again.val_acc, again.test_acc) == (info.val_acc, info.test_acc)


def test_an_unwritable_teacher_cache_without_progress_is_a_warning(tmp_path, teacher_data):
    blocked = tmp_path / "cache"
    blocked.write_text("x")
    with pytest.warns(RuntimeWarning, match="kept in memory"):
        _, info = get_teacher(_tiny_task(epochs=1, seed=12), teacher_data, "cpu", blocked)
    assert info.source == "trained"


def test_teacher_fingerprint_follows_the_weights():
    from autokd.training.teacher import teacher_fingerprint

    torch.manual_seed(0)
    model = build_model("cnn1d", {"channels": 4}, 10, (1, 40))
    fingerprint = teacher_fingerprint(model)
    assert len(fingerprint) == 16 and int(fingerprint, 16) >= 0
    copy_of = build_model("cnn1d", {"channels": 4}, 10, (1, 40))
    copy_of.load_state_dict(model.state_dict())
    assert teacher_fingerprint(copy_of) == fingerprint
    with torch.no_grad():
        next(copy_of.parameters()).view(-1)[0] += 1e-6
    assert teacher_fingerprint(copy_of) != fingerprint
    assert teacher_fingerprint(model.double()) != fingerprint  # the dtype is part of it


def test_get_teacher_fills_the_fingerprint(tiny_prepared):
    from autokd.training.teacher import teacher_fingerprint

    assert tiny_prepared.teacher_info.fingerprint == teacher_fingerprint(tiny_prepared.teacher)


NOT_LOGITS = '''
import torch.nn as nn

class PairNet(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.fc = nn.Linear(40, num_classes)

    def forward(self, x):
        return self.fc(x.flatten(1)), x
'''


def test_prepare_task_refuses_a_model_without_logits_before_training(tmp_path, monkeypatch):
    from autokd.training.run import prepare_task

    module = f"autokd_pairnet_{tmp_path.name}".replace("-", "_")
    (tmp_path / f"{module}.py").write_text(NOT_LOGITS)
    monkeypatch.syspath_prepend(str(tmp_path))
    data = copy.deepcopy(TINY_TASK)
    data["student"] = {"model": f"{module}:PairNet"}
    epochs = []
    with pytest.raises(AutokdError) as info:
        prepare_task(task_from_dict(data), "cpu", on_teacher_epoch=epochs.append, cache_root=tmp_path / "cache")
    message = str(info.value)
    assert message.startswith(f"student model '{module}:PairNet': forward returned a tuple of 2"), message
    assert "(batch, num_classes) = (2, 10)" in message
    assert epochs == [] and not (tmp_path / "cache" / "teachers").exists()


@pytest.mark.parametrize("name,needle", [("gpu", "unknown device 'gpu'"), ("cuda:x", "unknown device 'cuda:x'"),
                                         ("cuda:" + "9" * 5000, "unknown device 'cuda:999")])
def test_resolve_device_refuses_unknown_names(name, needle):
    from autokd.training.run import resolve_device

    with pytest.raises(AutokdError) as info:
        resolve_device(name)
    assert needle in str(info.value) and "cuda:N" in str(info.value) and len(str(info.value)) < 200


def test_resolve_device_refuses_a_gpu_index_the_machine_lacks():
    from autokd.training.run import resolve_device

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    expected = "no CUDA GPU" if count == 0 else f"this machine has {count} CUDA GPU"
    with pytest.raises(AutokdError, match=expected):
        resolve_device(f"cuda:{count}")
    if count:
        assert resolve_device(f"cuda:{count - 1}") == torch.device(f"cuda:{count - 1}")


def test_prepare_task_checks_a_torch_device_as_it_checks_a_name(tmp_path):
    """prepare_task(task, torch.device("cuda:N")) from Python skipped the check and failed deep in torch."""
    from autokd.training.run import prepare_task

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(AutokdError, match="no CUDA GPU" if count == 0 else f"this machine has {count} CUDA GPU"):
        prepare_task(task_from_dict(copy.deepcopy(TINY_TASK)), torch.device(f"cuda:{count}"), cache_root=tmp_path)
    assert not any(tmp_path.iterdir())  # refused before any data was generated
    assert prepare_task(task_from_dict(copy.deepcopy(TINY_TASK)), torch.device("cpu", 0),
                        cache_root=tmp_path).device == torch.device("cpu", 0)  # any other device as given


def test_get_teacher_refuses_a_teacher_without_logits_before_training(tmp_path, monkeypatch, teacher_data):
    module = f"autokd_pairnet_t_{tmp_path.name}".replace("-", "_")
    (tmp_path / f"{module}.py").write_text(NOT_LOGITS)
    monkeypatch.syspath_prepend(str(tmp_path))
    data = copy.deepcopy(TINY_TASK)
    data["teacher"] = {"model": f"{module}:PairNet", "recipe": {"epochs": 1}}
    epochs = []
    with pytest.raises(AutokdError, match=r"^teacher model .*PairNet': forward returned a tuple of 2"):
        get_teacher(task_from_dict(data), teacher_data, "cpu", tmp_path / "cache", on_epoch=epochs.append)
    assert epochs == []


def test_a_last_training_batch_of_one_is_skipped(tiny_prepared):
    """400 samples in batches of 399: the last batch held one sample, and BatchNorm (cnn1d has it) cannot train
    on one: `autokd teacher` was a traceback, every search trial failed."""
    prepared = tiny_prepared
    recipe = replace(prepared.task.recipes.full, epochs=2, batch_size=399)
    result = fit(build_distiller(prepared, strategy({"alpha": 0.0}, prepared), seed=0), prepared.data, recipe, "cpu")
    assert result.steps == 2  # one batch of 399 per epoch

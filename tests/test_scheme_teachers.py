"""Schemes with more teachers: a teacher assistant (TAKD, DGKD) and several teachers at once
(multi-teacher), each against its algorithm on the tiny task (what is frozen, what is cached,
what the student's target is)."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import torch

from autokd.config.schemes import SingleScheme
from autokd.config.strategy import Strategy, strategy_from_dict
from autokd.errors import AutokdError, ConfigError
from autokd.training.run import check_strategy, train_strategy
from conftest import TINY_RECIPE, TINY_TEACHERS_TASK


# --- teacher assistant ----------------------------------------------------------------------


def _assistant(teacher_weight: float = 0.0, pairs=None) -> Strategy:
    return strategy_from_dict({
        "alpha": 0.7, "temperature": 3.0, "recipe": TINY_RECIPE, "pairs": pairs or [],
        "scheme": {"kind": "assistant", "model": "cnn1d", "kwargs": {"channels": 8}, "teacher_weight": teacher_weight},
    })


def test_the_assistant_is_trained_once_then_shared_from_the_cache(tiny_prepared, tmp_path):
    prepared = replace(tiny_prepared, cache_root=tmp_path)
    said: list[str] = []
    first = train_strategy(prepared, _assistant(), progress=said.append)
    assert said == ["teacher assistant cnn1d: distilling from the teacher"]
    single = train_strategy(prepared, replace(_assistant(), scheme=SingleScheme()), evaluate_test=False)
    assert first.steps == 2 * single.steps  # the assistant and the student, same batches
    said.clear()
    hint = [{"teacher": "stages.1", "student": "stages.1", "loss": "at", "weight": 10.0}]
    other = train_strategy(prepared, _assistant(pairs=hint), progress=said.append)  # same logit term: same assistant
    assert said == ["teacher assistant cnn1d: from the cache"] and other.steps == first.steps  # still counted
    again = train_strategy(prepared, _assistant(), progress=said.append)
    assert (again.val_acc, again.test_acc) == (first.val_acc, first.test_acc)


def test_the_student_distils_from_the_frozen_assistant(tiny_prepared, monkeypatch):
    from autokd.training.schemes import assistant

    seen = []
    real = assistant.build_distiller
    monkeypatch.setattr(assistant, "build_distiller",
                        lambda *a, **k: seen.append(k.get("teacher")) or real(*a, **k))
    train_strategy(replace(tiny_prepared, cache_root=None), _assistant(), evaluate_test=False)
    (helper,) = [t for t in seen if t is not None]
    assert helper is not tiny_prepared.teacher and not helper.training
    assert not any(p.requires_grad for p in helper.parameters())
    assert sum(p.numel() for p in helper.parameters()) != sum(p.numel() for p in tiny_prepared.teacher.parameters())


def test_the_teacher_guides_the_student_with_its_weight(tiny_prepared):
    from autokd.losses import kd as kd_loss
    from autokd.training.schemes.assistant import Guided
    from autokd.training.students import build_distiller, build_student

    strategy = _assistant(teacher_weight=0.5)
    helper = build_student(tiny_prepared, 0, "cnn1d", {"channels": 8}).eval()
    guided = Guided(build_distiller(tiny_prepared, strategy, 0, teacher=helper), tiny_prepared.teacher, 0.5).train()
    x, y = tiny_prepared.data.train.x[:16], tiny_prepared.data.train.y[:16]
    out = guided(x, y)
    assert set(out.parts) == {"ce", "kd", "kd@teacher"}
    with torch.no_grad():
        expected = 0.5 * 0.7 * kd_loss(out.logits, tiny_prepared.teacher(x), 3.0)
    assert torch.allclose(out.parts["kd@teacher"], expected)
    out.total.backward()
    assert all(p.grad is None for p in tiny_prepared.teacher.parameters())
    assert all(p.grad is None for p in helper.parameters())
    assert {id(p) for p in guided.trainable_parameters()} == {id(p) for p in guided.distiller.trainable_parameters()}
    # with the teacher's cached outputs, the guide's logits are looked up by position, not recomputed
    from autokd.training.students import teacher_cache_for

    cache = teacher_cache_for(tiny_prepared, [])
    cached = Guided(guided.distiller, tiny_prepared.teacher, 0.5, cache).eval()
    index = torch.arange(3, 19)
    x = tiny_prepared.data.train.x[index]
    live = Guided(guided.distiller, tiny_prepared.teacher, 0.5).eval()
    assert torch.allclose(cached(x, y, index=index).parts["kd@teacher"], live(x, y).parts["kd@teacher"], atol=1e-5)
    cache.logits[index] = 0.0  # a wrong cache shows: the lookup is what is used
    assert not torch.allclose(cached(x, y, index=index).parts["kd@teacher"], live(x, y).parts["kd@teacher"])
    result = train_strategy(replace(tiny_prepared, cache_root=None), strategy)
    assert 0 <= result.val_acc <= 100


def test_the_assistant_check_names_a_bad_model_or_a_layer_it_lacks(tiny_prepared):
    bad = strategy_from_dict({"scheme": {"kind": "assistant", "model": "torch.nn:Flatten"}})
    with pytest.raises(AutokdError, match="assistant model"):
        check_strategy(tiny_prepared, bad)
    lacks = _assistant(pairs=[{"teacher": "head.0", "student": "stages.1", "loss": "fitnet", "weight": 1.0}])
    with pytest.raises(AutokdError, match="head.0"):
        check_strategy(tiny_prepared, lacks)


# --- several teachers -----------------------------------------------------------------------


def test_weighted_logits_and_confidence_weights_follow_their_formulas():
    from autokd.losses import confidence_weights, weighted_logits

    torch.manual_seed(2)
    z = [torch.randn(5, 4, requires_grad=True) for _ in range(3)]
    y = torch.tensor([0, 1, 2, 3, 0])
    assert torch.allclose(weighted_logits(z, torch.tensor([1.0, 1.0, 2.0])), (z[0] + z[1] + 2 * z[2]) / 4)
    w = confidence_weights(z, y)
    ce = torch.stack([torch.nn.functional.cross_entropy(t, y, reduction="none") for t in z], 1)
    assert torch.allclose(w, torch.exp(-ce) / torch.exp(-ce).sum(1, keepdim=True), atol=1e-6)
    assert torch.allclose(w.sum(1), torch.ones(5))
    mixed = weighted_logits(z, w)
    assert torch.allclose(mixed[1], sum(w[1, k] * z[k][1] for k in range(3)), atol=1e-6)
    assert not mixed.requires_grad  # targets are detached
    with pytest.raises(AutokdError, match="do not fit"):
        weighted_logits(z, torch.ones(2))


@pytest.fixture(scope="module")
def teachers_prepared(tmp_path_factory):
    from autokd.config import task_from_dict
    from autokd.training.run import prepare_task

    return prepare_task(task_from_dict(copy.deepcopy(TINY_TEACHERS_TASK)), "cpu",
                        cache_root=tmp_path_factory.mktemp("teachers-cache"))


def _ensemble(weights="equal", feature_teacher=0, pairs=None) -> Strategy:
    return strategy_from_dict({"alpha": 0.8, "temperature": 2.0, "recipe": TINY_RECIPE, "pairs": pairs or [],
                               "scheme": {"kind": "ensemble", "weights": weights, "feature_teacher": feature_teacher}})


def test_the_further_teachers_load_once_and_come_from_the_cache_after(teachers_prepared):
    from autokd.training.extra_teachers import extra_teachers

    said: list[str] = []
    first = extra_teachers(teachers_prepared, said.append)
    assert len(first) == 1 and extra_teachers(teachers_prepared) is first  # kept on the prepared task
    model, info = first[0]
    assert info.source in ("trained", "cache") and not any(p.requires_grad for p in model.parameters())
    assert info.fingerprint != teachers_prepared.teacher_info.fingerprint
    again = replace(teachers_prepared, extra_teachers=None)
    assert extra_teachers(again)[0][1].source == "cache"


@pytest.mark.parametrize("weights", ["equal", "confidence", [3.0, 1.0]])
def test_the_ensemble_target_combines_every_teacher(teachers_prepared, weights):
    from autokd.losses import confidence_weights, weighted_logits
    from autokd.training.extra_teachers import extra_teachers
    from autokd.training.schemes.ensemble import TeacherEnsemble
    from autokd.training.students import build_distiller

    teachers = [teachers_prepared.teacher] + [m for m, _ in extra_teachers(teachers_prepared)]
    strategy = _ensemble(weights)
    wrapped = TeacherEnsemble(build_distiller(teachers_prepared, strategy, 0), teachers, weights).train()
    x, y = teachers_prepared.data.train.x[:16], teachers_prepared.data.train.y[:16]
    with torch.no_grad():
        logits = [t(x) for t in teachers]
    w = (torch.tensor([3.0, 1.0]) if isinstance(weights, list)
         else {"equal": torch.ones(2), "confidence": confidence_weights(logits, y)}[weights])
    assert torch.allclose(wrapped.target(x, y, None), weighted_logits(logits, w), atol=1e-6)
    out = wrapped(x, y)
    from autokd.losses import kd as kd_loss

    assert torch.allclose(out.parts["kd"], 0.8 * kd_loss(out.logits, weighted_logits(logits, w), 2.0), atol=1e-6)
    out.total.backward()
    assert all(p.grad is None for t in teachers for p in t.parameters())


def test_an_ensemble_run_trains_one_student_and_uses_the_feature_teacher_s_layers(teachers_prepared):
    one = train_strategy(teachers_prepared, replace(_ensemble(), scheme=SingleScheme()), evaluate_test=False)
    result = train_strategy(teachers_prepared, _ensemble("confidence"))
    assert result.steps == one.steps and 0 <= result.test_acc <= 100
    hint = [{"teacher": "stages.1", "student": "stages.1", "loss": "fitnet", "weight": 1.0}]
    check_strategy(teachers_prepared, _ensemble(feature_teacher=1, pairs=hint))  # teacher 2 has 8 channels
    assert train_strategy(teachers_prepared, _ensemble(feature_teacher=1, pairs=hint)).steps == one.steps


def test_the_ensemble_computes_each_teacher_s_outputs_once_and_only_what_it_uses(teachers_prepared):
    from autokd.training.extra_teachers import extra_teachers
    from autokd.training.schemes.base import SchemeJob
    from autokd.training.schemes.ensemble import _caches
    from autokd.training.students import teacher_cache_for

    teachers = [teachers_prepared.teacher] + [m for m, _ in extra_teachers(teachers_prepared)]
    own = teacher_cache_for(teachers_prepared, [])
    hint = [{"teacher": "stages.1", "student": "stages.1", "loss": "fitnet", "weight": 1.0}]
    strategy = _ensemble(feature_teacher=1, pairs=hint)
    job = SchemeJob(teachers_prepared, strategy, strategy.recipe, teacher_cache=own)
    caches, feature = _caches(job, teachers, ["stages.1"])
    assert caches[0] is own and feature is caches[1] and set(feature.features) == {"stages.1"}
    x = teachers_prepared.data.train.x[:4]
    with torch.no_grad():
        assert torch.allclose(caches[1].logits[:4], teachers[1](x), atol=1e-5)
    no_logits = replace(job, strategy=replace(job.strategy, alpha=0.0))
    assert _caches(no_logits, teachers, ["stages.1"])[0] is None  # no logit term: no teacher's logits needed
    nothing = replace(no_logits, strategy=replace(_ensemble(feature_teacher=1), alpha=0.0))
    assert _caches(nothing, teachers, []) == (None, None)


@pytest.mark.parametrize("strategy, needle", [
    (lambda: _ensemble(weights=[1.0, 1.0, 1.0]), "lists 3 numbers for 2 teachers"),
    (lambda: _ensemble(feature_teacher=2), r"feature_teacher 2 names no teacher: the task has 2 \(0: task.teacher, "
                                            r"1 to 1: task.teachers\)"),
])
def test_ensemble_knobs_must_fit_the_task_s_teachers(teachers_prepared, strategy, needle):
    with pytest.raises(AutokdError, match=needle):
        check_strategy(teachers_prepared, strategy())


def test_the_ensemble_scheme_needs_more_than_one_teacher(tiny_prepared):
    with pytest.raises(AutokdError, match="the task has one teacher"):
        check_strategy(tiny_prepared, _ensemble())


@pytest.mark.parametrize("scheme, needle", [
    ({"kind": "ensemble", "weights": "mean"}, "weights must be equal or confidence"),
    ({"kind": "ensemble", "weights": [1.0]}, "one number >= 0 per teacher"),
    ({"kind": "ensemble", "weights": [0, 0]}, "not all 0"),
    ({"kind": "ensemble", "weights": [1, -1]}, "must be >= 0"),
    ({"kind": "ensemble", "feature_teacher": -1}, "feature_teacher must be a whole number >= 0"),
])
def test_bad_ensemble_schemes_are_config_errors(scheme, needle):
    with pytest.raises(ConfigError, match=needle):
        strategy_from_dict({"scheme": scheme})


def test_the_teacher_command_trains_and_caches_every_teacher(tmp_path):
    from conftest import run_cli, write_space

    space = write_space(tmp_path / "t.yaml", task=TINY_TEACHERS_TASK)
    env = {"AUTOKD_CACHE": str(tmp_path / "cache")}
    out = run_cli("teacher", "--space", space, env=env)
    assert out.returncode == 0, out.stderr
    assert "teacher cnn1d" in out.stdout and "teacher 2 cnn1d {'channels': 8, 'depth': 3}" in out.stdout
    assert len(list((tmp_path / "cache" / "teachers").glob("*.pt"))) == 2
    again = run_cli("teacher", "--space", space, env=env)
    assert again.stdout.count("parameters, cache)") == 2  # both read back, not trained again

"""Tests of autokd.training.distiller: the total loss and its parts, projectors, relation losses,
gradients (student/projector/heads only), cached vs live teacher outputs, teacher=None, the
logit losses through the registry (dist, ttm, wttm) with and without logit standardization."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from autokd.config import PairLoss, Recipe, RelationLoss, Strategy, strategy_from_dict, task_from_dict
from autokd.data import load_task_data
from autokd.errors import AutokdError
from autokd.losses import at, dist, dkd, fitnet, kd, pkt, rkd, sp, standardize, ttm, wttm
from autokd.models.registry import build_model
from autokd.training.distiller import Distiller
from autokd.training.run import train_strategy
from autokd.training.teacher_cache import compute_teacher_cache

from conftest import TINY_TASK

SHAPE = (1, 40)
N_TRAIN = 400


def models(seed: int = 0):
    torch.manual_seed(seed)
    teacher = build_model("cnn1d", {"channels": 16, "depth": 3}, 10, SHAPE)
    student = build_model("cnn1d", {"channels": 4}, 10, SHAPE)
    return teacher, student


def batch(n: int = 32, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 40, generator=g), torch.randint(0, 10, (n,), generator=g)


@pytest.fixture(scope="module")
def tiny_data():
    spec = task_from_dict(copy.deepcopy(TINY_TASK)).data
    return load_task_data(spec)


def test_ce_only_total_is_cross_entropy():
    _, student = models()
    distiller = Distiller(None, student, Strategy(alpha=0.0), SHAPE)
    x, y = batch()
    out = distiller(x, y)
    assert set(out.parts) == {"ce"}
    torch.testing.assert_close(out.total, F.cross_entropy(out.logits, y), rtol=0, atol=0)
    torch.testing.assert_close(out.logits, student(x))  # train-mode BN with batch stats: same batch, same logits
    assert out.total.requires_grad


def test_alpha_one_total_is_kd():
    teacher, student = models()
    distiller = Distiller(teacher, student, Strategy(alpha=1.0, temperature=3.0), SHAPE)
    x, y = batch()
    out = distiller(x, y)
    assert set(out.parts) == {"kd"}  # no CE part at alpha = 1
    with torch.no_grad():
        t_logits = teacher(x)
    expected = kd(out.logits, t_logits, temperature=3.0)
    torch.testing.assert_close(out.total, expected, rtol=1e-6, atol=0)
    assert out.total.item() > 0


def test_fitnet_pair_projector_named_parts_and_weighted_sum():
    teacher, student = models()
    strategy = Strategy(
        alpha=0.3,
        temperature=2.0,
        pairs=[
            PairLoss(teacher="stages.1", student="stages.1", loss="fitnet", weight=7.0),
            PairLoss(teacher="stages.2", student="stages.2", loss="at", weight=50.0),
            PairLoss(teacher="stages.2", student="stages.1", loss="fitnet", weight=0.5),
        ],
    )
    distiller = Distiller(teacher, student, strategy, SHAPE)
    # fitnet maps 4 student channels to 16 teacher channels with a learned projector; at needs none
    assert set(distiller.projectors) == {"0", "2"}
    x, y = batch()
    out = distiller(x, y)
    assert list(out.parts) == ["ce", "kd", "fitnet@stages.1", "at@stages.2", "fitnet@stages.1#2"]
    torch.testing.assert_close(out.total, sum(out.parts.values()), rtol=1e-6, atol=0)

    # every part recomputed by hand from the models' own layers
    with torch.no_grad():
        t_logits = teacher(x)
        t1 = teacher.stages[:2](x.unsqueeze(1))
        t2 = teacher.stages(x.unsqueeze(1))
    s1 = student.stages[:2](x.unsqueeze(1))
    s2 = student.stages[2](s1)
    expected = {
        "ce": 0.7 * F.cross_entropy(out.logits, y),
        "kd": 0.3 * kd(out.logits, t_logits, temperature=2.0),
        "fitnet@stages.1": 7.0 * fitnet(distiller.projectors["0"](s1), t1),
        "at@stages.2": 50.0 * at(s2, t2),
        "fitnet@stages.1#2": 0.5 * fitnet(distiller.projectors["2"](s1), t2),
    }
    for name, value in expected.items():
        torch.testing.assert_close(out.parts[name], value, rtol=1e-5, atol=1e-7, msg=name)
    assert all(v.item() > 0 for v in out.parts.values())


def test_relation_losses_finite_with_gradients_on_student_projector_and_heads_only():
    teacher, student = models()
    strategy = Strategy(
        alpha=0.5,
        pairs=[PairLoss(teacher="stages.1", student="stages.1", loss="fitnet", weight=1.0)],
        relations=[
            RelationLoss(loss="rkd", weight=1.0),
            RelationLoss(loss="pkt", weight=100.0),
            RelationLoss(loss="sp", weight=10.0),
            RelationLoss(loss="crd", weight=0.8, params={"feat_dim": 8, "num_negatives": 16}),
        ],
    )
    distiller = Distiller(teacher, student, strategy, SHAPE, num_train_samples=N_TRAIN)
    assert distiller.crd_memory is not None and distiller.crd_memory.num_negatives == 16
    x, y = batch(32)
    index = torch.randperm(N_TRAIN)[:32]
    out = distiller(x, y, index=index)
    assert list(out.parts) == ["ce", "kd", "fitnet@stages.1", "rkd", "pkt", "sp", "crd"]
    for name, value in out.parts.items():
        assert value.dim() == 0 and torch.isfinite(value), name
    torch.testing.assert_close(out.total, sum(out.parts.values()), rtol=1e-6, atol=0)

    # the embedding losses see the penultimate features (input of fc)
    with torch.no_grad():
        t_emb = torch.flatten(teacher.pool(teacher.stages(x.unsqueeze(1))), 1)
    s_emb = torch.flatten(student.pool(student.stages(x.unsqueeze(1))), 1)
    torch.testing.assert_close(out.parts["rkd"], rkd(s_emb, t_emb), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(out.parts["pkt"], 100.0 * pkt(s_emb, t_emb), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(out.parts["sp"], 10.0 * sp(s_emb, t_emb), rtol=1e-5, atol=1e-7)

    distiller.zero_grad(set_to_none=True)
    out.total.backward()
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    trainable = list(distiller.trainable_parameters())
    for p in trainable:
        assert p.grad is not None and torch.isfinite(p.grad).all()
    assert any(p.grad.abs().sum() > 0 for p in distiller.projectors.parameters())
    assert any(p.grad.abs().sum() > 0 for p in distiller.crd_memory.parameters())
    # each relation loss alone also reaches the student
    for loss in ("rkd", "pkt", "sp"):
        t, s = models()
        d = Distiller(t, s, Strategy(alpha=0.0, relations=[RelationLoss(loss=loss)]), SHAPE)
        d(x, y).parts[loss].backward()
        assert s.stages[0][0].weight.grad.abs().sum() > 0, loss
        assert all(p.grad is None for p in t.parameters()), loss


def test_crd_needs_index_and_num_train_samples():
    teacher, student = models()
    strategy = Strategy(alpha=0.0, relations=[RelationLoss(loss="crd", params={"feat_dim": 8, "num_negatives": 8})])
    with pytest.raises(AutokdError, match="num_train_samples"):
        Distiller(teacher, student, strategy, SHAPE)
    distiller = Distiller(teacher, student, strategy, SHAPE, num_train_samples=N_TRAIN)
    x, y = batch()
    with pytest.raises(AutokdError, match="index"):
        distiller(x, y)


def test_cached_teacher_outputs_give_the_same_loss_as_the_live_teacher(tiny_data):
    teacher, student = models()
    strategy = Strategy(
        alpha=0.6,
        temperature=4.0,
        pairs=[
            PairLoss(teacher="stages.1", student="stages.1", loss="fitnet", weight=3.0),
            PairLoss(teacher="stages.2", student="stages.2", loss="nst", weight=2.0),
        ],
        relations=[RelationLoss(loss="rkd"), RelationLoss(loss="pkt", weight=50.0)],
    )
    distiller = Distiller(teacher, student, strategy, tiny_data.input_shape, num_train_samples=len(tiny_data.train))
    cache = compute_teacher_cache(teacher, tiny_data, distiller.teacher_paths, "cpu")
    assert len(cache.logits) == len(tiny_data.train) == N_TRAIN
    assert set(cache.features) == {"stages.1", "stages.2", "embedding"}
    assert not teacher.training
    g = torch.Generator().manual_seed(0)
    distiller.train()
    checked = 0
    for idx, x, y in tiny_data.batches("train", 64, shuffle=True, generator=g):
        live = distiller(x, y, index=idx)
        cached = distiller(x, y, index=idx, teacher_outputs=cache.lookup(idx))
        assert list(live.parts) == list(cached.parts)
        # bit-identical here; the tolerance only allows for conv kernels that round differently
        # at the cache's batch size (1024) and the training batch size (64) on other CPUs
        for name in live.parts:
            torch.testing.assert_close(cached.parts[name], live.parts[name], rtol=1e-6, atol=1e-7, msg=name)
        torch.testing.assert_close(cached.total, live.total, rtol=1e-6, atol=1e-7)
        checked += 1
        if checked == 3:
            break
    # looking up the wrong samples changes the loss: the cache really is used
    idx, x, y = next(iter(tiny_data.batches("train", 64, shuffle=False)))
    wrong = distiller(x, y, teacher_outputs=cache.lookup(idx.flip(0)))
    right = distiller(x, y, teacher_outputs=cache.lookup(idx))
    assert not torch.allclose(wrong.total, right.total)
    # a subset keeps only what is asked for
    sub = cache.subset(["stages.1"])
    assert set(sub.features) == {"stages.1"} and sub.logits is cache.logits


def test_trainable_parameters_exclude_the_teacher():
    teacher, student = models()
    strategy = Strategy(
        pairs=[PairLoss(teacher="stages.0", student="stages.0", loss="fitnet")],
        relations=[RelationLoss(loss="crd", params={"feat_dim": 8, "num_negatives": 8})],
    )
    distiller = Distiller(teacher, student, strategy, SHAPE, num_train_samples=N_TRAIN)
    ids = {id(p) for p in distiller.trainable_parameters()}
    expected = {id(p) for m in (student, distiller.projectors, distiller.crd_memory) for p in m.parameters()}
    assert ids == expected
    assert not ids & {id(p) for p in teacher.parameters()}
    assert all(not p.requires_grad for p in teacher.parameters())
    # the teacher is still a submodule (moves with .to(), is saved in state_dict)
    assert any(k.startswith("teacher.") for k in distiller.state_dict())


def test_train_mode_keeps_the_teacher_in_eval():
    teacher, student = models()
    teacher.train()
    distiller = Distiller(teacher, student, Strategy(alpha=0.9), SHAPE)
    assert not teacher.training
    distiller.train()
    assert distiller.training and student.training and not teacher.training
    assert not any(m.training for m in teacher.modules())
    running = teacher.stages[0][1].running_mean.clone()
    x, y = batch()
    distiller(x, y)
    torch.testing.assert_close(teacher.stages[0][1].running_mean, running, rtol=0, atol=0)
    distiller.eval()
    assert not student.training
    distiller.train()
    assert student.training and not teacher.training


@pytest.mark.parametrize("side", ["student", "teacher"])
def test_unknown_layer_path_lists_the_layers(side):
    teacher, student = models()
    paths = {"teacher": "stages.1", "student": "stages.1", side: "stages.7"}
    strategy = Strategy(pairs=[PairLoss(loss="fitnet", **paths)])
    with pytest.raises(AutokdError) as info:
        Distiller(teacher, student, strategy, SHAPE)
    message = str(info.value)
    assert "'stages.7'" in message and "stages.1" in message and "stages.2" in message and "embedding" in message
    assert "\n" not in message


def test_a_pair_its_loss_cannot_take_is_named_when_the_distiller_is_built():
    """It was a bare shape error from the first training batch, after the teacher trained, naming no pair."""
    teacher, student = models()
    strategy = Strategy(pairs=[PairLoss(teacher="stages.1", student="stages.1", loss="at"),
                               PairLoss(teacher="stages.1", student="fc", loss="at")])
    with pytest.raises(AutokdError, match=r"^strategy\.pairs\[1\] \(teacher stages\.1 -> student fc, at\): at needs "
                                          r"feature maps"):
        Distiller(teacher, student, strategy, SHAPE)
    state = torch.get_rng_state()
    Distiller(teacher, student, Strategy(pairs=strategy.pairs[:1]), SHAPE)  # at: no projector to initialise
    assert torch.equal(torch.get_rng_state(), state)  # the check draws from its own generator
    fitting = Distiller(teacher, student, Strategy(pairs=[PairLoss(teacher="stages.1", student="stages.1", loss="fitnet")]),
                        SHAPE)
    assert all(m.training for m in fitting.projectors.modules())  # the check leaves the projectors as they were


def test_teacher_none():
    _, student = models()
    x, y = batch()
    out = Distiller(None, student, Strategy(alpha=0.0), SHAPE)(x, y)
    assert torch.isfinite(out.total)
    for strategy in (
        Strategy(alpha=0.5),
        Strategy(alpha=0.0, pairs=[PairLoss(teacher="stages.1", student="stages.1", loss="at")]),
        Strategy(alpha=0.0, relations=[RelationLoss(loss="rkd")]),
    ):
        with pytest.raises(AutokdError, match="teacher"):
            Distiller(None, student, strategy, SHAPE)


def test_dkd_warmup_scales_the_dkd_part_by_epoch():
    teacher, student = models()
    strategy = Strategy(alpha=0.8, temperature=2.0, logit_loss="dkd",
                        logit_params={"alpha": 1.5, "beta": 4.0, "warmup": 4})
    distiller = Distiller(teacher, student, strategy, SHAPE)
    x, y = batch()
    parts = {epoch: distiller(x, y, epoch=epoch).parts for epoch in (1, 2, 4, 9)}
    with torch.no_grad():
        full = 0.8 * dkd(student(x), teacher(x), y, alpha=1.5, beta=4.0, temperature=2.0)
    assert full.item() > 0
    for epoch, factor in ((1, 0.25), (2, 0.5), (4, 1.0), (9, 1.0)):
        torch.testing.assert_close(parts[epoch]["dkd"].detach(), factor * full, rtol=1e-5, atol=0, msg=str(epoch))
        torch.testing.assert_close(parts[epoch]["ce"], parts[1]["ce"])  # CE does not warm up
    # a Strategy built in code without a warm-up gets 1/12 of its recipe's, as a parsed config does
    # (it was the registry's 20 epochs whatever the length): 24 epochs -> 2, so epoch 1 gets half
    default = Distiller(teacher, student, Strategy(alpha=0.8, temperature=2.0, logit_loss="dkd",
                                                   recipe=Recipe(epochs=24)), SHAPE)
    with torch.no_grad():
        base = 0.8 * dkd(student(x), teacher(x), y, temperature=2.0)
    torch.testing.assert_close(default(x, y, epoch=1).parts["dkd"].detach(), base / 2, rtol=1e-5, atol=0)
    # without epoch= a warm-up cannot be applied: refused (it silently gave 1/warmup for the whole run)
    with pytest.raises(AutokdError, match=r"warm-up \(2 epochs\) needs each batch's epoch"):
        default(x, y)
    no_warmup = Distiller(teacher, student, Strategy(alpha=0.8, temperature=2.0, logit_loss="dkd",
                                                     logit_params={"warmup": 0}), SHAPE)
    torch.testing.assert_close(no_warmup(x, y).parts["dkd"].detach(), base, rtol=1e-5, atol=0)


# --- the newer logit losses and logit standardization -------------------------------------

LOGIT_CASES = [
    # (strategy, part name, the expected logit part from the student's and teacher's raw logits)
    (Strategy(alpha=0.7, temperature=4.0, logit_loss="dist", logit_params={"beta": 2.0, "gamma": 0.5}),
     "dist", lambda s, t, y: 0.7 * dist(s, t, temperature=4.0, beta=2.0, gamma=0.5)),
    (Strategy(alpha=0.6, temperature=5.0, logit_loss="ttm"), "ttm", lambda s, t, y: 0.6 * ttm(s, t, temperature=5.0)),
    (Strategy(alpha=0.8, temperature=5.0, logit_loss="wttm"), "wttm",
     lambda s, t, y: 0.8 * wttm(s, t, temperature=5.0)),
    (Strategy(alpha=0.9, temperature=2.0, logit_standardization=True), "kd",
     lambda s, t, y: 0.9 * kd(standardize(s), standardize(t), temperature=2.0)),
    (Strategy(alpha=0.9, temperature=2.0, logit_loss="dkd", logit_params={"warmup": 1}, logit_standardization=True),
     "dkd", lambda s, t, y: 0.9 * dkd(standardize(s), standardize(t), y, temperature=2.0)),
    (Strategy(alpha=0.5, temperature=3.0, logit_loss="dist", logit_standardization=True), "dist",
     lambda s, t, y: 0.5 * dist(standardize(s), standardize(t), temperature=3.0)),
]


@pytest.mark.parametrize("strategy,part,expected", LOGIT_CASES, ids=[c[0].describe() for c in LOGIT_CASES])
def test_newer_logit_losses_and_standardization_in_the_distiller(strategy, part, expected):
    teacher, student = models()
    distiller = Distiller(teacher, student, strategy, SHAPE)
    x, y = batch()
    out = distiller(x, y, epoch=1)
    assert list(out.parts) == ["ce", part]
    with torch.no_grad():
        t_logits = teacher(x)
    torch.testing.assert_close(out.parts[part], expected(out.logits, t_logits, y), rtol=1e-6, atol=1e-8)
    # CE always sees the raw student logits, standardized or not
    torch.testing.assert_close(out.parts["ce"], (1 - strategy.alpha) * F.cross_entropy(out.logits, y), rtol=0, atol=0)
    torch.testing.assert_close(out.total, out.parts["ce"] + out.parts[part])
    assert out.parts[part].item() > 0
    distiller.zero_grad(set_to_none=True)
    out.total.backward()
    assert student.fc.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())


def test_standardization_changes_the_kd_part_and_not_the_ce_part():
    teacher, student = models()
    x, y = batch()
    plain = Distiller(teacher, student, Strategy(alpha=0.5, temperature=2.0), SHAPE)(x, y)
    ls = Distiller(teacher, student, Strategy(alpha=0.5, temperature=2.0, logit_standardization=True), SHAPE)(x, y)
    torch.testing.assert_close(plain.parts["ce"], ls.parts["ce"], rtol=0, atol=0)
    assert not torch.allclose(plain.parts["kd"], ls.parts["kd"])


@pytest.mark.parametrize("data", [
    {"alpha": 0.7, "temperature": 4.0, "logit_loss": "dist"},
    {"alpha": 0.8, "temperature": 5.0, "logit_loss": "wttm"},
    {"alpha": 0.9, "temperature": 2.0, "logit_standardization": True},
], ids=["dist", "wttm", "kd+ls"])
def test_one_epoch_of_training_with_the_newer_logit_losses(tiny_prepared, data):
    strategy = strategy_from_dict(data, base_recipe=tiny_prepared.task.recipes.full)
    seen = []
    result = train_strategy(tiny_prepared, strategy, recipe=replace(strategy.recipe, epochs=1), on_epoch=seen.append)
    assert [s.epoch for s in seen] == [1]
    assert torch.isfinite(torch.tensor(seen[0].train_loss)) and seen[0].train_loss > 0
    assert 0 <= result.val_acc <= 100 and result.test_acc is not None

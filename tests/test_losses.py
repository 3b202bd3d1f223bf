"""Tests of autokd.losses' feature and relation losses (FitNets, AT, NST, SP, RKD, PKT, CRD)
against their formulas, gradient flow (student only), shape handling, and the registry. The
logit losses: test_losses_logits.py; CRD and its memory: test_losses_crd.py."""

import inspect
import itertools
import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from autokd.errors import AutokdError
from autokd.losses import (
    EMBEDDING_LOSSES,
    LOGIT_LOSSES,
    PAIR_LOSSES,
    CRDMemory,
    at,
    dist,
    dkd,
    dkd_warmup,
    fitnet,
    kd,
    nst,
    pkt,
    rkd,
    sp,
    standardize,
    ttm,
    wttm,
)


from loss_checks import approx, seeded

pytestmark = pytest.mark.usefixtures("float64")  # exact formulas in double precision


# ----------------------------------------------------------------------------- fitnet


def test_fitnet_is_mse():
    s, t = seeded(3, 4, 5, seed=6), seeded(3, 4, 5, seed=7)
    assert approx(fitnet(s, t), ((s - t) ** 2).sum() / s.numel())
    assert approx(fitnet(torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, 2.0]])), 2.0)


def test_fitnet_shape_mismatch_names_both_shapes():
    with pytest.raises(AutokdError, match=r"\(2, 8, 4, 4\).*\(2, 16, 4, 4\)"):
        fitnet(torch.zeros(2, 8, 4, 4), torch.zeros(2, 16, 4, 4))


# ----------------------------------------------------------------------------- at


def test_at_known_maps_with_different_channels():
    # Student attention [1, 0, 0, 0]; teacher (2 channels of ones) [1/2, 1/2, 1/2, 1/2].
    student = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    teacher = torch.ones(1, 2, 2, 2)
    assert approx(at(student, teacher), (0.25 + 0.25 * 3) / 4)
    assert approx(at(teacher, teacher * 3), 0.0)


def test_at_pools_larger_2d_map_to_smaller():
    # A 4x4 student whose top-left 2x2 block is 2 pools to [[2, 0], [0, 0]] -> same as above.
    student = torch.zeros(1, 3, 4, 4)
    student[:, :, :2, :2] = 2.0
    teacher = torch.ones(1, 2, 2, 2)
    assert approx(at(student, teacher), 0.25)
    # Either side may be the larger one.
    assert approx(at(teacher, student), 0.25)
    s, t = seeded(2, 3, 8, 8, seed=8), seeded(2, 5, 4, 4, seed=9)
    assert approx(at(s, t), at(F.avg_pool2d(s, 2), t))


def test_at_pools_1d_maps():
    # Student [2, 2, 0, 0] pools to [2, 0] -> attention [1, 0]; teacher -> [a, a], a = 1/sqrt(2).
    student = torch.tensor([[[2.0, 2.0, 0.0, 0.0]]])
    teacher = torch.ones(1, 3, 2)
    assert approx(at(student, teacher), 1 - 1 / math.sqrt(2))


def test_at_p_changes_the_map():
    s = torch.tensor([[[1.0, 2.0]]])
    t = torch.tensor([[[1.0, 1.0]]])
    # p=1: [1, 2]/sqrt(5) vs [1, 1]/sqrt(2).
    a = [1 / math.sqrt(5), 2 / math.sqrt(5)]
    b = 1 / math.sqrt(2)
    assert approx(at(s, t, p=1), ((a[0] - b) ** 2 + (a[1] - b) ** 2) / 2)
    # The paper's |f|**p: a negative activation counts by its size at any p ([1, -2] maps as [1, 2]),
    # where the references' f.pow(p) (written for p = 2) kept the sign at odd p and gave NaN at p = 1.5.
    assert approx(at(torch.tensor([[[1.0, -2.0]]]), t, p=1), ((a[0] - b) ** 2 + (a[1] - b) ** 2) / 2)
    c = [1 / math.sqrt(1 + 2 ** 3), 2 ** 1.5 / math.sqrt(1 + 2 ** 3)]
    assert approx(at(torch.tensor([[[-1.0, -2.0]]]), t, p=1.5), ((c[0] - b) ** 2 + (c[1] - b) ** 2) / 2)


def test_at_and_nst_reject_vectors():
    for fn in (at, nst):
        with pytest.raises(AutokdError, match=r"\(4, 8\)"):
            fn(torch.zeros(4, 8), torch.zeros(4, 8))


# ----------------------------------------------------------------------------- nst


def _nst_by_loop(s, t):
    """Squared MMD with k(a, b) = (a.b)^2 over normalised channel vectors, by explicit loops."""
    def channels(f, b):
        rows = f[b].reshape(f.shape[1], -1)
        return [r / r.norm() for r in rows]

    def mean_k(xs, ys):
        return sum(float(x @ y) ** 2 for x in xs for y in ys) / (len(xs) * len(ys))

    total = 0.0
    for b in range(s.shape[0]):
        cs, ct = channels(s, b), channels(t, b)
        total += mean_k(ct, ct) - 2 * mean_k(cs, ct) + mean_k(cs, cs)
    return total / s.shape[0]


def test_nst_closed_form():
    # Student channels e1, e2; teacher channel (1, 1)/sqrt 2: 1 - 2 * 1/2 + 1/2 = 1/2.
    student = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    teacher = torch.tensor([[[1.0, 1.0]]])
    assert approx(nst(student, teacher), 0.5)


def test_nst_matches_loop_and_invariances():
    s, t = seeded(2, 3, 4, 4, seed=10), seeded(2, 5, 4, 4, seed=11)
    assert approx(nst(s, t), _nst_by_loop(s, t))
    # Channel order and per-channel scale do not matter; the value is the same both ways.
    assert approx(nst(s, s[:, [2, 0, 1]] * torch.tensor([1.0, 3.0, 0.5]).view(1, 3, 1, 1)), 0.0)
    assert approx(nst(s, t), nst(t, s))


def test_nst_pools_to_smaller_size():
    s2, t2 = seeded(2, 3, 8, 8, seed=12), seeded(2, 4, 4, 4, seed=13)
    assert approx(nst(s2, t2), _nst_by_loop(F.avg_pool2d(s2, 2), t2))
    assert approx(nst(t2, s2), _nst_by_loop(t2, F.avg_pool2d(s2, 2)))
    s1, t1 = seeded(2, 3, 4, seed=14), seeded(2, 2, 8, seed=15)
    assert approx(nst(s1, t1), _nst_by_loop(s1, F.avg_pool1d(t1, 2)))


# ----------------------------------------------------------------------------- sp


def test_sp_two_samples_by_hand():
    # G_s = I; G_t = all ones -> rows (1, 1)/sqrt 2; sum of squares 4 - 2 sqrt 2, over B^2 = 4.
    student = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    teacher = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert approx(sp(student, teacher), 1 - math.sqrt(2) / 2)  # (L1 rows would give 0.25)


def test_sp_accepts_maps_of_different_widths():
    s, t = seeded(3, 2, 4, 4, seed=16), seeded(3, 7, seed=17)
    fs, ft = s.reshape(3, -1), t
    gs = fs @ fs.T
    gt = ft @ ft.T
    gs = gs / gs.norm(dim=1, keepdim=True)
    gt = gt / gt.norm(dim=1, keepdim=True)
    assert approx(sp(s, t), ((gt - gs) ** 2).sum() / 9)
    assert approx(sp(s, 2 * s), 0.0)


# ----------------------------------------------------------------------------- rkd


def _smooth_l1(x):
    return 0.5 * x * x if abs(x) < 1 else abs(x) - 0.5


def _rkd_angle_by_loop(xs, ys):
    """Angle term for 1-D points: cos between i->j and i->k is sign product (0 when degenerate)."""
    sign = lambda v: (v > 0) - (v < 0)  # noqa: E731
    n = len(xs)
    total = 0.0
    for i, j, k in itertools.product(range(n), repeat=3):
        a = sign(xs[j] - xs[i]) * sign(xs[k] - xs[i])
        b = sign(ys[j] - ys[i]) * sign(ys[k] - ys[i])
        total += _smooth_l1(a - b)
    return total / n**3


def test_rkd_distance_term_three_points_on_a_line():
    # Student 0, 1, 2: d = (1, 2, 1) / (4/3); teacher 0, 1, 3: d = (1, 3, 2) / 2.
    # Differences 1/4, 0, -1/4 on each ordered pair: 4 entries of 0.5/16 over 9 -> 1/72.
    student = torch.tensor([[0.0], [1.0], [2.0]])
    teacher = torch.tensor([[0.0], [1.0], [3.0]])
    assert approx(rkd(student, teacher, distance_weight=1.0, angle_weight=0.0), 1 / 72)
    # Same ordering on the line -> identical angles, so the default weights give 25/72.
    assert approx(rkd(student, teacher), 25 / 72)


def test_rkd_angle_term_and_scale_invariance():
    xs, ys = [0.0, 1.0, 2.0, 5.0], [1.0, 0.0, 2.0, -3.0]
    student = torch.tensor(xs).unsqueeze(1)
    teacher = torch.tensor(ys).unsqueeze(1)
    assert approx(rkd(student, teacher, distance_weight=0.0, angle_weight=1.0), _rkd_angle_by_loop(xs, ys))
    s = seeded(5, 6, seed=18)
    assert approx(rkd(s, 3 * s), 0.0, abs=1e-6)  # both terms are scale-invariant


def test_rkd_single_sample_is_zero_not_nan():
    out = rkd(torch.ones(1, 4, requires_grad=True), torch.ones(1, 4))
    assert float(out.detach()) == 0.0
    out.backward()  # still part of the graph


# ----------------------------------------------------------------------------- pkt


def test_pkt_identical_embeddings_is_zero():
    s = seeded(6, 8, seed=19)
    assert approx(pkt(s, s.clone()), 0.0, abs=1e-7)
    assert approx(pkt(s, 4 * s), 0.0, abs=1e-7)  # only directions matter


def test_pkt_two_samples_by_hand():
    # Student rows orthogonal -> (I + 1)/2 -> rows (2/3, 1/3); teacher rows parallel -> (1/2, 1/2).
    student = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    teacher = torch.tensor([[1.0, 0.0], [2.0, 0.0]])
    assert approx(pkt(student, teacher), math.log(9 / 8) / 4, rel=1e-5)


def test_pkt_zero_row_does_not_give_nan():
    s = torch.tensor([[0.0, 0.0], [1.0, 1.0]], requires_grad=True)
    value = pkt(s, seeded(2, 2, seed=20))
    assert torch.isfinite(value)
    value.backward()  # the gradient too: a student's all-zero embedding row made every gradient NaN (divergence)
    assert torch.isfinite(s.grad).all()


# ----------------------------------------------------------------------------- gradients


def _grad_cases():
    target = torch.tensor([0, 1, 2, 1])
    return [
        ("kd", lambda s, t: kd(s, t), (4, 3), (4, 3)),
        ("dkd", lambda s, t: dkd(s, t, target), (4, 3), (4, 3)),
        ("dist", dist, (4, 3), (4, 3)),
        ("ttm", ttm, (4, 3), (4, 3)),
        ("wttm", wttm, (4, 3), (4, 3)),
        ("kd_ls", lambda s, t: kd(standardize(s), standardize(t)), (4, 3), (4, 3)),
        ("dkd_ls", lambda s, t: dkd(standardize(s), standardize(t), target), (4, 3), (4, 3)),
        ("dist_ls", lambda s, t: dist(standardize(s), standardize(t)), (4, 3), (4, 3)),
        ("fitnet", fitnet, (4, 3, 5, 5), (4, 3, 5, 5)),
        ("at_2d", at, (4, 3, 8, 8), (4, 6, 4, 4)),
        ("at_1d", at, (4, 3, 4), (4, 6, 8)),
        ("nst_2d", nst, (4, 3, 4, 4), (4, 6, 8, 8)),
        ("nst_1d", nst, (4, 3, 8), (4, 6, 4)),
        ("sp", sp, (4, 3, 4, 4), (4, 10)),
        ("rkd", rkd, (4, 6), (4, 9)),
        ("pkt", pkt, (4, 6), (4, 9)),
    ]


@pytest.mark.parametrize("name,fn,s_shape,t_shape", _grad_cases(), ids=[c[0] for c in _grad_cases()])
def test_gradients_reach_student_only(name, fn, s_shape, t_shape):
    student = seeded(*s_shape, seed=21).requires_grad_(True)
    teacher = seeded(*t_shape, seed=22).requires_grad_(True)
    loss = fn(student, teacher)
    assert loss.dim() == 0
    loss.backward()
    assert student.grad is not None and float(student.grad.abs().sum()) > 0
    assert teacher.grad is None


# ----------------------------------------------------------------------------- registry


def test_registry_levels_and_metadata():
    assert set(LOGIT_LOSSES) == {"kd", "dkd", "dist", "ttm", "wttm"}
    assert set(PAIR_LOSSES) == {"fitnet", "at", "nst", "sp"}
    assert set(EMBEDDING_LOSSES) == {"sp", "rkd", "pkt", "crd"}
    weights = {"fitnet": 100, "at": 1000, "nst": 50, "sp": 3000, "rkd": 1, "pkt": 30000, "crd": 0.8}
    for table in (PAIR_LOSSES, EMBEDDING_LOSSES):
        for name, info in table.items():
            assert info.name == name
            assert info.default_weight == weights[name]
            assert info.needs_projector == (name == "fitnet")
            assert info.description and "\n" not in info.description
    assert PAIR_LOSSES["sp"].level == "pair" and EMBEDDING_LOSSES["sp"].level == "embedding"
    assert LOGIT_LOSSES["dkd"].params == {"alpha": 1.0, "beta": 8.0, "temperature": 4.0, "warmup": 20}
    assert EMBEDDING_LOSSES["rkd"].params == {"distance_weight": 25.0, "angle_weight": 50.0}


def test_logit_registry_metadata():
    standardizable = {name for name, info in LOGIT_LOSSES.items() if info.standardizable}
    assert standardizable == {"kd", "dkd", "dist"}
    assert LOGIT_LOSSES["dist"].params == {"temperature": 4.0, "beta": 1.0, "gamma": 1.0}
    assert LOGIT_LOSSES["ttm"].params == {"temperature": 10.0} and LOGIT_LOSSES["wttm"].params == {"temperature": 5.0}
    assert LOGIT_LOSSES["dkd"].searched == {"beta": (1.0, 16.0, True)}
    assert LOGIT_LOSSES["dist"].searched == {"beta": (0.5, 4.0, True), "gamma": (0.5, 4.0, True)}
    for name, info in LOGIT_LOSSES.items():
        assert info.level == "logit" and callable(info.term) and 0 < info.default_weight < 1, name
        assert info.description and "\n" not in info.description
        for key, (low, high, log) in info.searched.items():
            assert key in info.params and key != "temperature", (name, key)
            assert low < high and isinstance(log, bool) and (low > 0 or not log), (name, key)
            if key in info.limits:
                assert info.limits[key][0] <= low and high <= info.limits[key][1], (name, key)
            assert low <= info.params[key] <= high, (name, key)  # the published default lies inside
    for table in (PAIR_LOSSES, EMBEDDING_LOSSES):
        for info in table.values():
            assert info.term is None and not info.standardizable and not info.searched
    with pytest.raises(TypeError, match="pair loss"):
        PAIR_LOSSES["at"].apply(seeded(2, 3), seeded(2, 3), None, 4.0)


def test_logit_terms_are_the_functions_with_defaults_warmup_and_the_strategys_temperature():
    s, t = seeded(6, 5, seed=50) * 2, seeded(6, 5, seed=51) * 2
    target = torch.tensor([0, 4, 2, 2, 1, 3])
    apply = {name: info.apply for name, info in LOGIT_LOSSES.items()}
    # bit for bit what the Distiller computed before the registry call
    assert torch.equal(apply["kd"](s, t, target, 3.0, 1, {}), kd(s, t, temperature=3.0))
    assert torch.equal(apply["dkd"](s, t, target, 2.0, 5, {"beta": 4.0}),
                       dkd_warmup(5, 20) * dkd(s, t, target, alpha=1.0, beta=4.0, temperature=2.0))
    assert torch.equal(apply["dkd"](s, t, target, 2.0, 3, {"warmup": 0}), dkd(s, t, target, temperature=2.0))
    assert torch.equal(apply["dist"](s, t, target, 2.0, 1, {"gamma": 3.0}), dist(s, t, temperature=2.0, gamma=3.0))
    # the strategy's temperature wins over the registry's published one
    assert torch.equal(apply["ttm"](s, t, target, 3.0, 1, {}), ttm(s, t, temperature=3.0))
    assert torch.equal(apply["wttm"](s, t, None, 3.0, 1, {}), wttm(s, t, temperature=3.0))


def test_registry_params_match_function_defaults():
    crd_defaults = inspect.signature(CRDMemory).parameters
    for table in (LOGIT_LOSSES, PAIR_LOSSES, EMBEDDING_LOSSES):
        for name, info in table.items():
            sig = inspect.signature(info.fn).parameters if name != "crd" else crd_defaults
            for key, default in info.params.items():
                if name == "dkd" and key == "warmup":
                    continue  # applied by the caller through dkd_warmup
                assert key in sig, (name, key)
                assert sig[key].default == default, (name, key)


def test_import_is_light():
    code = (
        "import sys, autokd.losses; "
        "print(sorted(m for m in ('ray', 'optuna', 'torchvision', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

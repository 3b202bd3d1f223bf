"""Tests of autokd.losses: each loss against its formula on hand-checkable inputs, gradient
flow (student only), shape handling, the CRD memory, and the registry."""

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
    crd,
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


@pytest.fixture(autouse=True)
def _float64():
    """Exact comparisons in double precision, restored afterwards for other test modules."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def approx(value, expected, rel=1e-6, abs=1e-9):
    """``value == expected`` to a tolerance; tensors may be part of a graph."""
    if isinstance(value, torch.Tensor):
        value = value.detach()
    if isinstance(expected, torch.Tensor):
        expected = expected.detach()
    return float(value) == pytest.approx(float(expected), rel=rel, abs=abs)


def seeded(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- kd


def test_kd_of_identical_logits_is_zero():
    logits = seeded(5, 7)
    assert approx(kd(logits, logits.clone()), 0.0)


def test_kd_two_class_by_hand():
    # Row 0: t/T = [log 3, 0] -> p_t = [3/4, 1/4]; s = 0 -> p_s = [1/2, 1/2]. Row 1 identical -> 0.
    T = 2.0
    student = torch.tensor([[0.0, 0.0], [1.0, -1.0]])
    teacher = torch.tensor([[T * math.log(3.0), 0.0], [1.0, -1.0]])
    kl_row0 = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    expected = kl_row0 * T**2 / 2  # summed over classes, averaged over the batch of 2
    assert approx(kd(student, teacher, temperature=T), expected)


def test_kd_scales_with_temperature_squared():
    s, t = seeded(4, 10, seed=1), seeded(4, 10, seed=2)
    for T in (2.0, 4.0, 8.0):
        # Same softened distributions, so the only difference is the T**2 factor.
        assert approx(kd(s * T, t * T, temperature=T), T**2 * kd(s, t, temperature=1.0))


def test_kd_rejects_mismatched_shapes():
    with pytest.raises(AutokdError, match=r"\(4, 10\).*\(4, 5\)"):
        kd(torch.zeros(4, 10), torch.zeros(4, 5))


# ----------------------------------------------------------------------------- dkd


def _kl(p, q):
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q) if pi > 0)


def _dkd_by_loop(s, t, target, alpha, beta, T):
    """An independent per-row reimplementation of DKD with plain Python floats."""
    total = 0.0
    for srow, trow, y in zip(s.tolist(), t.tolist(), target.tolist()):
        def softmax(row):
            m = max(row)
            e = [math.exp((v - m) / T) for v in row]
            return [v / sum(e) for v in e]

        def others(row):
            kept = [v for i, v in enumerate(row) if i != y]
            return softmax(kept)

        ps, pt = softmax(srow), softmax(trow)
        tckd = _kl([pt[y], 1 - pt[y]], [ps[y], 1 - ps[y]])
        nckd = _kl(others(trow), others(srow))
        total += (alpha * tckd + beta * nckd) * T**2
    return total / len(target)


def test_dkd_by_hand():
    # t/T = [log 4, 0, log 3] -> p_t = [1/2, 1/8, 3/8]; student uniform; target class 0.
    T = 2.0
    student = torch.zeros(1, 3)
    teacher = torch.tensor([[T * math.log(4.0), 0.0, T * math.log(3.0)]])
    target = torch.tensor([0])
    tckd = 0.5 * math.log(0.5 / (1 / 3)) + 0.5 * math.log(0.5 / (2 / 3))
    nckd = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    assert approx(dkd(student, teacher, target, alpha=1.0, beta=0.0, temperature=T), tckd * T**2)
    assert approx(dkd(student, teacher, target, alpha=0.0, beta=1.0, temperature=T), nckd * T**2)
    assert approx(dkd(student, teacher, target, alpha=2.0, beta=8.0, temperature=T), (2 * tckd + 8 * nckd) * T**2)


def test_dkd_matches_loop_reference_and_defaults():
    s, t = seeded(6, 5, seed=3) * 3, seeded(6, 5, seed=4) * 3
    target = torch.tensor([0, 4, 2, 2, 1, 3])
    assert approx(dkd(s, t, target), _dkd_by_loop(s, t, target, 1.0, 8.0, 4.0))
    assert approx(dkd(s, t, target, alpha=0.5, beta=2.0, temperature=1.5), _dkd_by_loop(s, t, target, 0.5, 2.0, 1.5))


def test_dkd_is_zero_for_identical_logits_and_finite_for_confident_teacher():
    s = seeded(4, 6, seed=5)
    target = torch.tensor([0, 1, 2, 3])
    assert approx(dkd(s, s.clone(), target), 0.0)
    confident = torch.full((4, 6), -200.0).scatter(1, target.unsqueeze(1), 200.0)
    assert torch.isfinite(dkd(s, confident, target, temperature=1.0))


def test_dkd_warmup():
    assert dkd_warmup(1, 20) == pytest.approx(0.05)
    assert dkd_warmup(10, 20) == pytest.approx(0.5)
    assert dkd_warmup(20, 20) == 1.0
    assert dkd_warmup(45, 20) == 1.0
    assert dkd_warmup(3, 0) == 1.0


# ----------------------------------------------------------------------------- standardize


def test_standardize_by_hand_uses_the_unbiased_std():
    z = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 4.0], [5.0, 5.0, 5.0]])
    out = standardize(z)
    # row 0: mean 2, unbiased std 1; row 1: mean 4/3, unbiased variance (16/9 + 16/9 + 64/9) / 2 = 16/3
    assert torch.allclose(out[0], torch.tensor([-1.0, 0.0, 1.0]) / (1 + 1e-7), rtol=0, atol=1e-12)
    std1 = math.sqrt(((4 / 3) ** 2 * 2 + (8 / 3) ** 2) / 2)
    want1 = torch.tensor([-4 / 3, -4 / 3, 8 / 3]) / (1e-7 + std1)
    assert torch.allclose(out[1], want1, rtol=0, atol=1e-12)  # the biased std, sqrt(32/9), would differ
    assert torch.equal(out[2], torch.zeros(3))  # a constant row: 0 / 1e-7, not NaN


def test_standardize_is_shift_and_scale_invariant_and_rejects_one_class():
    z = seeded(4, 7, seed=30)
    assert torch.allclose(standardize(3 * z + 5), standardize(z), atol=1e-6)
    with pytest.raises(AutokdError, match=r"\(4, 1\)"):
        standardize(torch.zeros(4, 1))


# ----------------------------------------------------------------------------- dist


def test_dist_one_sample_three_classes_by_hand():
    # p_s = (.5, .3, .2), p_t = (.2, .3, .5) at T=1: centred (1/6, -1/30, -2/15) and its mirror image,
    # Pearson = (-39/900) / (42/900) = -13/14. One sample: every class column is constant -> intra = 1.
    student = torch.tensor([[0.5, 0.3, 0.2]]).log()
    teacher = torch.tensor([[0.2, 0.3, 0.5]]).log()
    inter, intra = 1 + 13 / 14, 1.0
    assert approx(dist(student, teacher, temperature=1.0), inter + intra)
    assert approx(dist(student, teacher, temperature=1.0, beta=2.0, gamma=0.5), 2 * inter + 0.5 * intra)


def test_dist_two_samples_two_classes_by_hand():
    # T=2. Student rows (3/4, 1/4) and (1/2, 1/2); teacher rows (1/4, 3/4) and (3/4, 1/4).
    # inter: row 0 correlates -1, row 1 is constant (0) -> 1 - (-1 + 0)/2 = 3/2.
    # intra: both class columns correlate -1 across the two samples -> 1 - (-1) = 2.
    T = 2.0
    ln3 = math.log(3.0)
    student = torch.tensor([[T * ln3, 0.0], [0.0, 0.0]])
    teacher = torch.tensor([[0.0, T * ln3], [T * ln3, 0.0]])
    assert approx(dist(student, teacher, temperature=T), T**2 * (1.5 + 2.0))
    assert approx(dist(student, teacher, temperature=T, beta=2.0, gamma=0.5), T**2 * (2 * 1.5 + 0.5 * 2.0))


def test_dist_keeps_the_temperature_squared_factor():
    s, t = seeded(6, 10, seed=31), seeded(6, 10, seed=32)
    for T in (2.0, 4.0):
        assert approx(dist(s * T, t * T, temperature=T), T**2 * dist(s, t, temperature=1.0))


# ----------------------------------------------------------------------------- ttm / wttm


def test_ttm_and_wttm_by_hand():
    # T=2 -> l=1/2. Row 0: softmax(t) = (.64, .36) -> p**l = (.8, .6), sum 1.4 -> p_t' = (4/7, 3/7);
    # student uniform. Row 1: uniform teacher (weight sqrt 2) and uniform student -> KL 0.
    teacher = torch.tensor([[0.64, 0.36], [0.5, 0.5]]).log()
    student = torch.tensor([[0.0, 0.0], [3.0, 3.0]])
    kl0 = 4 / 7 * math.log((4 / 7) / 0.5) + 3 / 7 * math.log((3 / 7) / 0.5)
    assert approx(ttm(student, teacher, temperature=2.0), kl0 / 2)  # summed over classes, batch mean
    # WTTM: each KL times its own, unnormalised weight (1.4 and sqrt 2), then the batch mean
    assert approx(wttm(student, teacher, temperature=2.0), (1.4 * kl0 + math.sqrt(2) * 0.0) / 2)


def test_ttm_is_kd_at_t1_against_the_softened_teacher_without_t_squared():
    s, t = seeded(5, 8, seed=33) * 2, seeded(5, 8, seed=34) * 2
    for T in (1.0, 2.5, 8.0):
        # (softmax(t)**(1/T)) renormalised = softmax(t / T); the student keeps T = 1; no T**2
        assert approx(ttm(s, t, temperature=T), kd(s, t / T, temperature=1.0))
    assert approx(ttm(s, t, temperature=1.0), wttm(s, t, temperature=1.0))  # l = 1: every weight is 1


# ----------------------------------------------------------------------------- golden values


def _softmax_row(row, T=1.0):
    m = max(row)
    e = [math.exp((v - m) / T) for v in row]
    return [v / sum(e) for v in e]


def _normalize_by_loop(z):
    """sunshangquan/logit-standardization-KD ``normalize``, written out: (z - mean) / (1e-7 + unbiased std)."""
    rows = []
    for row in z.tolist():
        mean = sum(row) / len(row)
        std = math.sqrt(sum((v - mean) ** 2 for v in row) / (len(row) - 1))
        rows.append([(v - mean) / (1e-7 + std) for v in row])
    return torch.tensor(rows)


def _kd_by_loop(s, t, T):
    """Reference ``kd_loss``: kl_div(log_softmax(s/T), softmax(t/T), none).sum(1).mean() * T**2."""
    total = 0.0
    for srow, trow in zip(s.tolist(), t.tolist()):
        total += _kl(_softmax_row(trow, T), _softmax_row(srow, T))
    return total / s.shape[0] * T**2


def _pearson_by_loop(a, b, eps=1e-8):
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    ca, cb = [v - ma for v in a], [v - mb for v in b]
    norm = math.sqrt(sum(v * v for v in ca)) * math.sqrt(sum(v * v for v in cb))
    return sum(x * y for x, y in zip(ca, cb)) / (norm + eps)


def _dist_by_loop(s, t, T, beta, gamma):
    """hunto/DIST_KD ``DIST``, written out: tau**2 * (beta * inter + gamma * intra) on softmax(z / tau)."""
    ys = [_softmax_row(row, T) for row in s.tolist()]
    yt = [_softmax_row(row, T) for row in t.tolist()]
    inter = 1 - sum(_pearson_by_loop(a, b) for a, b in zip(ys, yt)) / len(ys)
    cols_s, cols_t = list(zip(*ys)), list(zip(*yt))
    intra = 1 - sum(_pearson_by_loop(a, b) for a, b in zip(cols_s, cols_t)) / len(cols_s)
    return T**2 * inter * beta + T**2 * intra * gamma


def _ttm_reference(y_s, y_t, l, weighted):
    """zkxufo/TTM ``TTM`` / ``WTTM`` forward, as written there (pow, norm, kl_div none, sum, mean)."""
    p_s = F.log_softmax(y_s, dim=1)
    p_t = torch.pow(torch.softmax(y_t, dim=1), l)
    norm = torch.sum(p_t, dim=1)
    p_t = p_t / norm.unsqueeze(1)
    kl = torch.sum(F.kl_div(p_s, p_t, reduction="none"), dim=1)
    return torch.mean(norm * kl) if weighted else torch.mean(kl)


GOLDEN_T = (1.0, 2.0, 4.0, 7.5)


@pytest.mark.parametrize("T", GOLDEN_T)
def test_dist_matches_the_reference(T):
    s, t = seeded(8, 10, seed=40) * 3, seeded(8, 10, seed=41) * 3
    assert approx(dist(s, t, temperature=T), _dist_by_loop(s, t, T, 1.0, 1.0))
    assert approx(dist(s, t, temperature=T, beta=2.0, gamma=0.5), _dist_by_loop(s, t, T, 2.0, 0.5))
    # identical logits: not exactly 0, because of the reference's 1e-8 next to small norms, but close
    same = dist(s, s.clone(), temperature=T)
    assert approx(same, _dist_by_loop(s, s, T, 1.0, 1.0)) and 0 <= float(same) < 1e-3 * float(dist(s, t, temperature=T))


@pytest.mark.parametrize("T", GOLDEN_T)
def test_ttm_and_wttm_match_the_reference(T):
    s, t = seeded(8, 10, seed=42) * 3, seeded(8, 10, seed=43) * 3
    assert approx(ttm(s, t, temperature=T), _ttm_reference(s, t, 1 / T, weighted=False))
    assert approx(wttm(s, t, temperature=T), _ttm_reference(s, t, 1 / T, weighted=True))


@pytest.mark.parametrize("T", GOLDEN_T)
def test_kd_and_dkd_with_standardization_match_the_reference(T):
    s, t = seeded(8, 10, seed=44) * 3, seeded(8, 10, seed=45) * 3
    target = torch.tensor([0, 9, 3, 3, 5, 1, 7, 2])
    assert torch.allclose(standardize(s), _normalize_by_loop(s), rtol=0, atol=1e-12)
    ns, nt = _normalize_by_loop(s), _normalize_by_loop(t)
    assert approx(kd(standardize(s), standardize(t), temperature=T), _kd_by_loop(ns, nt, T))
    assert approx(dkd(standardize(s), standardize(t), target, alpha=9.0, beta=72.0, temperature=T),
                  _dkd_by_loop(ns, nt, target, 9.0, 72.0, T))
    # and without standardization, the plain reference KD
    assert approx(kd(s, t, temperature=T), _kd_by_loop(s, t, T))


@pytest.mark.parametrize("name,fn", [("kd", kd), ("ttm", ttm), ("wttm", wttm), ("dist", dist)])
def test_logit_losses_average_over_the_batch_not_the_classes(name, fn):
    s, t = seeded(4, 6, seed=46) * 2, seeded(4, 6, seed=47) * 2
    one = fn(s, t, temperature=2.0)
    # a batch of two copies gives the same value (a batch mean) ...
    assert approx(fn(torch.cat([s, s]), torch.cat([t, t]), temperature=2.0), one), name
    if name != "dist":
        # ... and each sample contributes its KL summed over the classes: the mean of the rows' losses
        rows = sum(fn(s[i:i + 1], t[i:i + 1], temperature=2.0) for i in range(4)) / 4
        assert approx(one, rows), name


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
    # f**p keeps the sign for odd p (no abs), as the references: [1, -2]/sqrt(5).
    a = [1 / math.sqrt(5), -2 / math.sqrt(5)]
    assert approx(at(torch.tensor([[[1.0, -2.0]]]), t, p=1), ((a[0] - b) ** 2 + (a[1] - b) ** 2) / 2)


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
    s = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    assert torch.isfinite(pkt(s, seeded(2, 2, seed=20)))


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


# ----------------------------------------------------------------------------- crd


def _crd_setup(seed=0, num_samples=20, feat_dim=4, num_negatives=5, momentum=0.5):
    torch.manual_seed(seed)
    memory = CRDMemory(6, 9, num_samples, feat_dim=feat_dim, num_negatives=num_negatives, momentum=momentum)
    student = seeded(3, 6, seed=seed + 100)
    teacher = seeded(3, 9, seed=seed + 200)
    index = torch.tensor([2, 7, 11])
    contrast_idx = torch.tensor([[2, 0, 5, 9, 13, 19], [7, 1, 2, 3, 4, 5], [11, 18, 17, 16, 0, 6]])
    return memory, student, teacher, index, contrast_idx


def _crd_by_hand(memory, student, teacher, contrast_idx):
    """The NCE formula written out, with Z estimated from these same scores."""
    n = memory.num_samples
    with torch.no_grad():
        s = F.normalize(memory.embed_student(student), dim=1)
        t = F.normalize(memory.embed_teacher(teacher), dim=1)
    total = 0.0
    for anchor, bank in ((s, memory.memory_teacher), (t, memory.memory_student)):
        scores = torch.stack([torch.exp(bank[idx] @ a / memory.nce_t) for a, idx in zip(anchor, contrast_idx)])
        z = float(scores.mean()) * n
        p = scores / z
        m = p.shape[1] - 1
        noise = m / n
        loss = 0.0
        for row in p.tolist():
            loss -= math.log(row[0] / (row[0] + noise + 1e-7))
            loss -= sum(math.log(noise / (v + noise + 1e-7)) for v in row[1:])
        total += loss / p.shape[0]
    return total


def test_crd_matches_formula_and_is_deterministic_with_contrast_idx():
    memory, student, teacher, index, contrast_idx = _crd_setup()
    expected = _crd_by_hand(memory, student, teacher, contrast_idx)
    loss = crd(student, teacher, index, memory, contrast_idx=contrast_idx)
    assert math.isfinite(loss.item()) and loss.item() > 0
    assert approx(loss, expected)
    memory2, student2, teacher2, index2, contrast_idx2 = _crd_setup()
    assert approx(crd(student2, teacher2, index2, memory2, contrast_idx=contrast_idx2), loss, rel=1e-12)


def test_crd_gradients_reach_student_and_heads_only():
    memory, student, teacher, index, contrast_idx = _crd_setup(seed=1)
    student.requires_grad_(True)
    teacher.requires_grad_(True)
    crd(student, teacher, index, memory, contrast_idx=contrast_idx).backward()
    assert student.grad is not None and float(student.grad.abs().sum()) > 0
    assert teacher.grad is None
    for head in (memory.embed_student, memory.embed_teacher):
        assert head.weight.grad is not None and float(head.weight.grad.abs().sum()) > 0
    assert not memory.memory_student.requires_grad and not memory.memory_teacher.requires_grad


def test_crd_memory_momentum_update():
    memory, student, teacher, index, contrast_idx = _crd_setup(seed=2, momentum=0.25)
    old_s, old_t = memory.memory_student.clone(), memory.memory_teacher.clone()
    with torch.no_grad():
        es = F.normalize(memory.embed_student(student), dim=1)
        et = F.normalize(memory.embed_teacher(teacher), dim=1)
    crd(student, teacher, index, memory, contrast_idx=contrast_idx)
    want_s = F.normalize(0.25 * old_s[index] + 0.75 * es, dim=1)
    want_t = F.normalize(0.25 * old_t[index] + 0.75 * et, dim=1)
    assert torch.allclose(memory.memory_student[index], want_s)
    assert torch.allclose(memory.memory_teacher[index], want_t)
    untouched = [i for i in range(memory.num_samples) if i not in index.tolist()]
    assert torch.equal(memory.memory_student[untouched], old_s[untouched])
    assert torch.equal(memory.memory_teacher[untouched], old_t[untouched])


def test_crd_normalisation_constant_is_estimated_once():
    memory, student, teacher, index, contrast_idx = _crd_setup(seed=3)
    assert float(memory.z_student) < 0 and float(memory.z_teacher) < 0
    crd(student, teacher, index, memory, contrast_idx=contrast_idx)
    z_s, z_t = float(memory.z_student), float(memory.z_teacher)
    assert z_s > 0 and z_t > 0
    crd(student * 2, teacher * 3, index, memory, contrast_idx=contrast_idx)
    assert float(memory.z_student) == z_s and float(memory.z_teacher) == z_t


def test_crd_memory_init_and_negative_sampling():
    torch.manual_seed(0)
    memory = CRDMemory(6, 9, num_samples=10, feat_dim=12, num_negatives=4096)
    assert memory.num_negatives == 9
    stdv = 1 / math.sqrt(12 / 3)
    for bank in (memory.memory_student, memory.memory_teacher):
        assert bank.shape == (10, 12)
        assert float(bank.abs().max()) <= stdv
    index = torch.tensor([0, 4, 9, 4])
    idx = memory.sample_indices(index)
    assert idx.shape == (4, 10)
    assert torch.equal(idx[:, 0], index)
    assert bool((idx[:, 1:] != index.unsqueeze(1)).all())
    assert int(idx.min()) >= 0 and int(idx.max()) <= 9
    # With K = N - 1 and no repeats of the positive, the uniform draws cover the others.
    torch.manual_seed(1)
    many = memory.sample_indices(torch.full((500,), 3))
    assert set(many[:, 1:].flatten().tolist()) == set(range(10)) - {3}


def test_crd_without_contrast_idx_is_seeded_and_finite():
    def run():
        memory, student, teacher, index, _ = _crd_setup(seed=4)
        torch.manual_seed(123)
        return crd(student, teacher, index, memory).item()

    first = run()
    assert math.isfinite(first) and first > 0
    assert first == run()


def test_crd_training_lowers_the_loss():
    # A few steps on the student features and heads make positives stand out from negatives.
    memory, student, teacher, index, contrast_idx = _crd_setup(seed=5, momentum=0.0)
    student.requires_grad_(True)
    opt = torch.optim.SGD([student, *memory.parameters()], lr=0.05)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = crd(student, teacher, index, memory, contrast_idx=contrast_idx)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[1]


def test_crd_rejects_bad_contrast_idx():
    memory, student, teacher, index, _ = _crd_setup(seed=6)
    with pytest.raises(AutokdError, match="contrast_idx"):
        crd(student, teacher, index, memory, contrast_idx=torch.zeros(3, 1, dtype=torch.long))


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

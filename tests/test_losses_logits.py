"""Tests of autokd.losses' logit losses: KD, DKD, logit standardization, DIST, TTM/WTTM, each
against its formula on hand-checkable inputs and against the reference implementations' code
(golden values), and their batch reduction."""

import math

import pytest
import torch
import torch.nn.functional as F

from autokd.errors import AutokdError
from autokd.losses import dist, dkd, dkd_warmup, kd, standardize, ttm, wttm

from loss_checks import approx, seeded

pytestmark = pytest.mark.usefixtures("float64")  # exact formulas in double precision


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


def test_dkd_leaves_the_target_out_of_nckd_at_small_temperatures():
    # Logit gaps / T far beyond 1000: mdistiller's "target - 1000" mask no longer hides the target
    # (its NCKD came out 0 here); leaving the column out keeps the non-target KL exact.
    s = torch.tensor([[30.0, 2.0, 1.0, 0.0]], dtype=torch.float64)
    t = torch.tensor([[30.0, 0.0, 1.0, 2.0]], dtype=torch.float64)
    target = torch.tensor([0])
    expected = _dkd_by_loop(s, t, target, 0.0, 1.0, 0.02)
    assert expected == pytest.approx(0.04, rel=1e-6)
    assert approx(dkd(s, t, target, alpha=0.0, beta=1.0, temperature=0.02), expected)


def test_dkd_refuses_targets_that_are_not_class_indices():
    s, t = seeded(2, 3, seed=1), seeded(2, 3, seed=2)
    with pytest.raises(AutokdError, match="integer class indices.*torch.float"):
        dkd(s, t, torch.tensor([0.0, 1.0]))
    with pytest.raises(AutokdError, match="from 0 to 2, got 0 to 3"):
        dkd(s, t, torch.tensor([0, 3]))


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


@pytest.mark.parametrize("epoch", [0, -5, float("nan"), True, "3"])
def test_dkd_warmup_refuses_an_epoch_that_does_not_count_from_one(epoch):
    """0 gave a DKD weight of 0, -5 a negative one (the optimiser maximised DKD), NaN a NaN loss."""
    with pytest.raises(AutokdError, match="needs the epoch counting from 1"):
        dkd_warmup(epoch, 5)
    assert dkd_warmup(float("inf"), 5) == 1.0 and dkd_warmup(epoch, 0) == 1.0  # (no warm-up: any epoch)

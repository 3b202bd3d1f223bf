"""Tests of autokd.losses' CRD (contrastive representation distillation): the loss against its
formula, gradients, the memory bank's momentum update, normalisation constant and negative
sampling, and that training with it lowers the loss."""

import math

import pytest
import torch
import torch.nn.functional as F

from autokd.errors import AutokdError
from autokd.losses import CRDMemory, crd

from loss_checks import approx, seeded

pytestmark = pytest.mark.usefixtures("float64")  # exact formulas in double precision


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

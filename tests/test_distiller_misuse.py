"""The Distiller in a user's own training loop, used the ways a loop gets it wrong: labels of
another integer type or floats, a teacher put back in train mode, CRD evaluated, a last batch
of one sample, the teacher passed as the student, a student with modules it froze itself, a
DKD warm-up without the epoch. Each either works as the references do or is refused by name."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autokd.config import PairLoss, RelationLoss, Strategy
from autokd.errors import AutokdError
from autokd.training.distiller import Distiller

SHAPE = (1, 40)


class Net(nn.Module):
    """A conv whose output is a one-position map (C, 1), BatchNorm (or not), dropout, a classifier."""

    def __init__(self, channels: int, seed: int, norm: bool = True):
        super().__init__()
        torch.manual_seed(seed)
        self.body = nn.Conv1d(1, channels, 40)
        self.bn = nn.BatchNorm1d(channels) if norm else nn.Identity()
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(channels, 10)

    def forward(self, x):
        return self.fc(self.drop(self.bn(self.body(x)).flatten(1)))


def batch(n: int = 8):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, *SHAPE, generator=g), torch.randint(0, 10, (n,), generator=g)


def test_labels_of_any_integer_type_work_and_float_indices_are_refused():
    distiller = Distiller(Net(8, 0), Net(4, 1), Strategy(alpha=0.5), SHAPE).eval()
    x, y = batch()
    expected = distiller(x, y).total
    for dtype in (torch.int32, torch.int16, torch.uint8):
        torch.testing.assert_close(distiller(x, y.to(dtype)).total, expected)
    one_hot = F.one_hot(y, 10).float()  # probabilities per class: CE takes them as they are
    torch.testing.assert_close(distiller(x, one_hot).total, expected)
    with pytest.raises(AutokdError, match=r"torch.float32 tensor of shape \(8,\).*integer class indices \(B,\)"):
        distiller(x, y.float())
    # cross-entropy skips -100 (its ignore_index) silently and fails on other indices in torch's words
    for bad, needle in ((torch.full((8,), -100), "from 0 to 9; got -100 to -100"),
                        (y.to(torch.uint8) + 200, "from 0 to 9; got 2"), (y[:4], r"shape \(4,\)\) for a batch of 8"),
                        (y.reshape(2, 4), "one per sample"), (-one_hot, "finite and >= 0"),
                        (one_hot[:, :5], "per-class probabilities must be")):
        with pytest.raises(AutokdError, match=needle):
            distiller(x, bad)


def test_a_teacher_put_back_in_train_mode_still_runs_frozen():
    teacher = Net(8, 0)
    distiller = Distiller(teacher, Net(4, 1), Strategy(alpha=1.0), SHAPE)
    x, y = batch()
    first = distiller.teacher_outputs(x).logits
    teacher.train()  # e.g. a shared evaluate() helper that ends with model.train()
    stats = teacher.bn.running_mean.clone()
    distiller(x, y)
    torch.testing.assert_close(distiller.teacher_outputs(x).logits, first)  # no dropout, running statistics
    torch.testing.assert_close(teacher.bn.running_mean, stats)
    assert not teacher.training


def test_crd_banks_learn_only_in_training():
    strategy = Strategy(alpha=0.0, relations=[RelationLoss(loss="crd", weight=0.8)])
    distiller = Distiller(Net(8, 0), Net(4, 1), strategy, SHAPE, num_train_samples=20)
    x, y = batch()
    index = torch.arange(8)
    memory = distiller.crd_memory.memory_student
    before = memory.clone()
    distiller.eval()
    with torch.no_grad():
        assert torch.isfinite(distiller(x, y, index=index).total)
    torch.testing.assert_close(memory, before)  # a validation batch never writes the training bank
    distiller.train()
    distiller(x, y, index=index)
    assert not torch.equal(memory[:8], before[:8])
    with pytest.raises(AutokdError, match=r"0 to 19 \(its memory bank's num_train_samples\), got 13 to 20"):
        distiller(x, y, index=torch.arange(13, 21))
    with pytest.raises(AutokdError, match="integer sample positions, got a torch.float32"):
        distiller(x, y, index=index.float())


def test_a_training_batch_of_one_through_a_batchnorm_projector_is_named():
    pair = PairLoss(teacher="body", student="body", loss="fitnet", weight=1.0)  # (4, 1) -> (8, 1): conv + BN
    distiller = Distiller(Net(8, 0), Net(4, 1, norm=False), Strategy(alpha=0.5, pairs=[pair]), SHAPE)
    x, y = batch(1)
    with pytest.raises(AutokdError, match=r"batch of one sample.*strategy.pairs\[0\] \(teacher body -> student "
                                          r"body\).*drop_last=True"):
        distiller(x, y)
    distiller.eval()
    assert torch.isfinite(distiller(x, y).total)  # evaluation uses the running statistics: fine


def test_the_teacher_as_the_student_or_sharing_its_weights_is_refused():
    model = Net(4, 0)
    with pytest.raises(AutokdError, match="same module"):
        Distiller(model, model, Strategy(alpha=0.5), SHAPE)
    other = Net(4, 1)
    other.fc = model.fc
    with pytest.raises(AutokdError, match=r"share 2 parameter tensor\(s\).*copy.deepcopy"):
        Distiller(model, other, Strategy(alpha=0.5), SHAPE)
    assert all(p.requires_grad for p in model.parameters())  # refused before the teacher was frozen
    model.fc.requires_grad_(False)  # frozen by the user: shared on purpose (a student reusing a frozen head)
    Distiller(model, other, Strategy(alpha=0.5), SHAPE)


def test_building_keeps_the_modules_the_user_put_in_eval_mode():
    student = Net(4, 1)
    student.bn.eval()  # a frozen BatchNorm in a training student
    Distiller(Net(8, 0), student, Strategy(alpha=0.5, pairs=[PairLoss(teacher="bn", student="bn", loss="at")]),
              SHAPE)
    assert student.training and not student.bn.training


def test_a_dkd_loss_measured_in_eval_mode_needs_no_epoch():
    """A validation loss is past any warm-up; only training needs the epoch (refused there by name)."""
    from autokd.config import Recipe
    from autokd.losses import dkd

    teacher, student = Net(8, 0), Net(4, 1)
    distiller = Distiller(teacher, student, Strategy(alpha=0.8, temperature=2.0, logit_loss="dkd",
                                                     recipe=Recipe(epochs=24)), SHAPE).eval()
    x, y = batch()
    with torch.no_grad():
        out = distiller(x, y)
        torch.testing.assert_close(out.parts["dkd"], 0.8 * dkd(student(x), teacher(x), y, temperature=2.0))
    with pytest.raises(AutokdError, match="needs each batch's epoch"):
        distiller.train()(x, y)

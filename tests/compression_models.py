"""Plain user students that compression used to mishandle (``compression_models:NAME``), for the
tests of pruning, quantization and their round trip through ``--save`` / ``load_student``.

Each takes an MNIST-1D input (batch, 1, 40) and returns (batch, num_classes) logits.
"""

import torch
import torch.nn.functional as F
from torch import nn


class Depthwise(nn.Module):
    """A depthwise-separable block: ``dw`` is a grouped conv with groups = channels."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = nn.Conv1d(1, 8, 5, stride=2, padding=2)
        self.dw = nn.Conv1d(8, 8, 5, stride=2, padding=2, groups=8)
        self.pw = nn.Conv1d(8, 16, 1)
        self.bn = nn.BatchNorm1d(16)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x):
        x = F.relu(self.stem(x))
        x = F.relu(self.bn(self.pw(self.dw(x))))
        return self.fc(x.mean(-1))


class Grouped(nn.Module):
    """A grouped conv that is not depthwise (groups=2, 4 channels per group)."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = nn.Conv1d(1, 8, 5, stride=2, padding=2)
        self.grouped = nn.Conv1d(8, 8, 3, padding=1, groups=2)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.fc(F.relu(self.grouped(F.relu(self.stem(x)))).mean(-1))


class Normed(nn.Module):
    """LayerNorm (and GroupNorm) after layers pruning shrinks."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.conv = nn.Conv1d(1, 8, 5, stride=2, padding=2)
        self.gn = nn.GroupNorm(1, 8)
        self.mid = nn.Linear(8, 16)
        self.norm = nn.LayerNorm(16)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x):
        x = F.relu(self.gn(self.conv(x))).mean(-1)
        return self.fc(F.relu(self.norm(self.mid(x))))


class FirstAndClassifier(nn.Module):
    """Only a first layer and the classifier: nothing would be quantized at 4 bits."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = nn.Conv1d(1, 8, 5, stride=2, padding=2)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.fc(F.relu(self.stem(x)).mean(-1))


class MidFirst(nn.Module):
    """Registers ``mid`` before ``stem``; the forward runs stem -> mid -> fc."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.mid = nn.Conv1d(8, 8, 3, padding=1)
        self.stem = nn.Conv1d(1, 8, 5, stride=2, padding=2)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.fc(F.relu(self.mid(F.relu(self.stem(x)))).mean(-1))


class FunctionalHead(nn.Module):
    """Logits from ``F.linear`` on a parameter: no Linear makes them (``mid`` is hidden)."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = nn.Conv1d(1, 8, 5, stride=2, padding=2)
        self.mid = nn.Linear(8, 16)
        self.head_w = nn.Parameter(torch.randn(num_classes, 16) * 0.1)

    def forward(self, x):
        return F.linear(F.relu(self.mid(F.relu(self.stem(x)).mean(-1))), self.head_w)


class Recurrent(nn.Module):
    """A GRU then the classifier: no layer to quantize besides the classifier (unless ``stem``)."""

    def __init__(self, num_classes=10, stem=False):
        super().__init__()
        self.stem = nn.Conv1d(1, 1, 3, padding=1) if stem else nn.Identity()
        self.gru = nn.GRU(1, 8, batch_first=True)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        out, _ = self.gru(self.stem(x).transpose(1, 2))
        return self.fc(out[:, -1])


class DilatedSame(nn.Module):
    """``padding="same"``: QAT builds, int8 conversion cannot."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = nn.Conv1d(1, 8, 5, stride=2, padding=2)
        self.conv = nn.Conv1d(8, 8, 3, padding="same", dilation=2)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.fc(F.relu(self.conv(F.relu(self.stem(x)))).mean(-1))


class Aliased(nn.Module):
    """One Linear at two paths (``b`` is ``a``)."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = nn.Conv1d(1, 8, 5, stride=2, padding=2)
        self.a = nn.Linear(8, 8)
        self.b = self.a
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.fc(F.relu(self.b(F.relu(self.a(F.relu(self.stem(x)).mean(-1))))))


class Circular(nn.Module):
    """``padding_mode="circular"``: not supported by quantized convolution."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = nn.Conv1d(1, 8, 5, stride=2, padding=2)
        self.conv = nn.Conv1d(8, 8, 3, padding=1, padding_mode="circular")
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.fc(F.relu(self.conv(F.relu(self.stem(x)))).mean(-1))


class SameFirst(nn.Module):
    """``padding="same"`` on the first layer: no int8 kernel takes it, but at 4 bits nothing is converted."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = nn.Conv1d(1, 8, 5, padding="same")
        self.conv = nn.Conv1d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.fc(F.relu(self.conv(F.relu(self.stem(x)))).mean(-1))


class Float64(nn.Module):
    """Float64 weights (and input cast to them): torch's fake quantization takes float32 only."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = nn.Conv1d(1, 8, 5, padding=2).double()
        self.fc = nn.Linear(8, num_classes).double()

    def forward(self, x):
        return self.fc(F.relu(self.stem(x.double())).mean(-1)).float()


class StandardisedConv(nn.Conv1d):
    """A weight-standardised convolution: a Conv1d subclass with a forward of its own."""

    def forward(self, x):
        w = self.weight - self.weight.mean(dim=(1, 2), keepdim=True)
        return F.conv1d(x, w, self.bias, self.stride, self.padding)


class SubclassedConvs(nn.Module):
    """Two StandardisedConv layers (which stay float when quantized), a hidden Linear and a classifier."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.c1 = StandardisedConv(1, 8, 3, padding=1)
        self.c2 = StandardisedConv(8, 8, 3, padding=1)
        self.mid = nn.Linear(8, 16)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x):
        return self.fc(F.relu(self.mid(F.relu(self.c2(F.relu(self.c1(x)))).mean(-1))))

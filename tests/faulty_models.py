"""Student models that break training on purpose, for the fault tests (``faulty_models:NAME``).

They behave like a tiny cnn1d during autokd's dummy forwards (batch 2, eval mode) and break only
in training, so the search's set-up succeeds and the fault hits inside a trial. The last three
break what comes around training instead: its measurement (``NoBatchOfOne``, ``NotCountable``)
or its optimizer (``NoParameters``).
"""

import os
import signal
from pathlib import Path

import torch

from autokd.models.mnist1d_nets import CNN1d


class _Faulty(CNN1d):
    def __init__(self, num_classes=10, channels=4):
        super().__init__(num_classes=num_classes, channels=channels)

    def forward(self, x):
        out = super().forward(x)
        if self.training and x.shape[0] > 2:
            return self.fault(out)
        return out

    def fault(self, out):
        raise NotImplementedError


class NanNet(_Faulty):
    """Logits become NaN: the loss is NaN."""

    def fault(self, out):
        return out * float("nan")


class RaisingNet(_Faulty):
    """A forward that raises."""

    def fault(self, out):
        raise ValueError("this layer is broken on purpose")


class OomNet(_Faulty):
    """Runs out of (pretend GPU) memory."""

    def fault(self, out):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


class DyingNet(_Faulty):
    """Kills its own process (a Ray worker) the first time it trains, then trains normally.

    The marker file named by AUTOKD_TEST_MARKER records that it died once.
    """

    def fault(self, out):
        marker = Path(os.environ["AUTOKD_TEST_MARKER"])
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return out


class NoBatchOfOne(CNN1d):
    """Refuses a batch of one (as a model with batch statistics or an assert on the batch does):
    trains and evaluates normally, and is measured at batch 2."""

    def forward(self, x):
        if x.shape[0] == 1:
            raise RuntimeError("this model needs a batch of more than one sample")
        return super().forward(x)


class NotCountable(CNN1d):
    """Runs, but not under torch's FLOP counter (a dispatch mode), as some custom kernels do."""

    def forward(self, x):
        from torch.utils._python_dispatch import is_in_torch_dispatch_mode

        if is_in_torch_dispatch_mode():
            raise RuntimeError("this kernel cannot run under a dispatch mode")
        return super().forward(x)


class NoParameters(torch.nn.Module):
    """Constant logits: nothing for an optimizer to train."""

    def __init__(self, num_classes=10, channels=4):
        super().__init__()
        self.num_classes = num_classes

    def forward(self, x):
        return torch.zeros(x.shape[0], self.num_classes)


class OnlyClassifier(torch.nn.Module):
    """Nothing to prune but the classifier (which pruning keeps): ``prune.of: student`` cannot apply."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.fc = torch.nn.Linear(40, num_classes)

    def forward(self, x):
        return self.fc(x.flatten(1))


class SeedDoomed(CNN1d):
    """Diverges (NaN logits in training) for some seeds only: whether is fixed by the first weights drawn."""

    def __init__(self, num_classes=10, channels=4):
        super().__init__(num_classes=num_classes, channels=channels)
        self.register_buffer("doomed", (self.fc.weight.sum() > 0).float())

    def forward(self, x):
        out = super().forward(x)
        if self.training and x.shape[0] > 2 and bool(self.doomed):
            return out * float("nan")
        return out

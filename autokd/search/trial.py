"""One search trial: train the student with a proposed strategy for the proxy length.

The same function runs in-process (``--workers 0``) and inside a Ray Tune trial; only the
``report`` callback differs. A strategy that breaks training (non-finite or exploding loss,
out of memory, an error inside a loss) is a FAIL with a readable reason, not a crash.
"""

from __future__ import annotations

import traceback
from dataclasses import asdict, dataclass
from typing import Callable, Collection, Optional

import torch

from autokd.errors import AutokdError
from autokd.training.fit import EpochStats, TrainingFailed
from autokd.training.run import PreparedTask, train_strategy
from autokd.training.teacher_cache import TeacherCache


@dataclass
class TrialOutcome:
    value: Optional[float]  # final validation accuracy, None when failed
    reason: Optional[str] = None  # why it failed
    steps: Optional[int] = None  # what it cost in training steps (None when it failed)
    footprint: Optional[dict] = None  # the shipped student's Footprint as a dict (None when it failed)

    @property
    def failed(self) -> bool:
        return self.value is None


def run_trial(
    prepared: PreparedTask,
    strategy,
    teacher_cache: Optional[TeacherCache],
    report: Callable[[EpochStats], None],
    report_at: Optional[Collection[int]] = None,
    measure: bool = True,
) -> TrialOutcome:
    """Train with ``strategy`` (its recipe is the proxy recipe); ``report`` sees the validation
    accuracy after each epoch in ``report_at`` and after the last (``None``: every epoch); the
    outcome's value is the deployed student's (a quantized one converted), measured after that.

    Exceptions that stop a trial on purpose (Optuna's TrialPruned, Tune's SystemExit) pass through.
    """
    import optuna

    try:
        strategy.validate()  # a sampled weight can overflow to inf: the trial fails, the search goes on
        result = train_strategy(prepared, strategy, teacher_cache=teacher_cache, on_epoch=report, evaluate_test=False,
                                validate_at=report_at, measure=measure)
    except optuna.TrialPruned:
        raise
    except AutokdError as exc:
        return TrialOutcome(None, f"invalid strategy: {exc}")
    except TrainingFailed as exc:
        return TrialOutcome(None, str(exc))
    except torch.OutOfMemoryError:
        return TrialOutcome(None, "out of memory")
    except Exception as exc:  # a strategy that makes a loss raise must not end the search
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return TrialOutcome(None, f"{type(exc).__name__}: {exc} (at {where.filename.rsplit('/', 1)[-1]}:{where.lineno})")
    footprint = asdict(result.footprint) if result.footprint is not None else None
    return TrialOutcome(result.val_acc, steps=result.steps, footprint=footprint)


def told_value(spec, outcome: TrialOutcome):
    """What the study is told for a finished trial: its accuracy, or with several objectives the
    list of their values (None when it failed)."""
    from autokd.search.objectives import trial_values

    if outcome.failed:
        return None
    values = trial_values(spec.objectives, outcome.value, outcome.footprint)
    return values if spec.multi_objective else values[0]

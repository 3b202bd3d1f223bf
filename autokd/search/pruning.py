"""One pruning rule for both back-ends: successive halving with a grace period of half the proxy,
and the epochs a trial reports (validates) at because of it."""

from __future__ import annotations

REDUCTION_FACTOR = 3


def grace_period(epochs: int) -> int:
    """Epochs every trial runs before it can be stopped (early epochs rank strategies poorly)."""
    return max(1, epochs // 2)


def report_epochs(epochs: int, enabled: bool = True) -> list[int]:
    """The epochs a trial must report before its last: the successive-halving rungs.

    Pruning decides only at rungs (grace period x 3^k), so validating after other epochs would cost
    time and change nothing; the last epoch is always reported.
    """
    if not enabled or epochs <= 1:
        return []
    rungs, rung = [], grace_period(epochs)
    while rung < epochs:
        rungs.append(rung)
        rung *= REDUCTION_FACTOR
    return rungs


def optuna_pruner(epochs: int, enabled: bool = True):
    import optuna

    if not enabled or epochs <= 1:
        return optuna.pruners.NopPruner()
    return optuna.pruners.SuccessiveHalvingPruner(min_resource=grace_period(epochs), reduction_factor=REDUCTION_FACTOR)


def tune_scheduler(epochs: int, enabled: bool = True):
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    if not enabled or epochs <= 1:
        return FIFOScheduler()
    # "epoch", not Tune's count of reports: trials report only at the rungs and the last epoch
    return ASHAScheduler(time_attr="epoch", max_t=epochs, grace_period=grace_period(epochs),
                         reduction_factor=REDUCTION_FACTOR)

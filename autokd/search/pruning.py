"""One pruning rule for both back-ends: successive halving with a grace period of half the proxy."""

from __future__ import annotations

REDUCTION_FACTOR = 3


def grace_period(epochs: int) -> int:
    """Epochs every trial runs before it can be stopped (early epochs rank strategies poorly)."""
    return max(1, epochs // 2)


def optuna_pruner(epochs: int, enabled: bool = True):
    import optuna

    if not enabled or epochs <= 1:
        return optuna.pruners.NopPruner()
    return optuna.pruners.SuccessiveHalvingPruner(min_resource=grace_period(epochs), reduction_factor=REDUCTION_FACTOR)


def tune_scheduler(epochs: int, enabled: bool = True):
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    if not enabled or epochs <= 1:
        return FIFOScheduler()
    return ASHAScheduler(time_attr="training_iteration", max_t=epochs, grace_period=grace_period(epochs),
                         reduction_factor=REDUCTION_FACTOR)

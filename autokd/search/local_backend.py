"""``--workers 0``: trials run one after another in this process, without Ray.

For debugging, and the baseline Ray's overhead is measured against: each trial runs on one
torch thread, as a Ray trial does on its one CPU. Pruning uses Optuna's successive-halving
pruner (the synchronous cousin of Tune's ASHA).
"""

from __future__ import annotations

from typing import Optional

from autokd.search.claims import NoNewStrategy, claim_trial
from autokd.search.ledger import interrupt_own_trials, record_result
from autokd.search.monitor import SearchMonitor
from autokd.search.objectives import trial_constraints
from autokd.search.pruning import report_epochs
from autokd.search.shipped_space import needs_footprint
from autokd.search.trial import run_trial, told_value


def run_local(study, space, prepared, teacher_cache, budget: int, monitor: SearchMonitor,
              pruning: bool = True) -> Optional[str]:
    """Trials one by one until the budget is taken; returns why it stopped early, if it did."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run(study, space, prepared, teacher_cache, budget, monitor, pruning)
    except BaseException:  # Ctrl-C or a kill: this process's unfinished trial is interrupted and re-queued
        interrupt_own_trials(study)
        raise
    finally:
        torch.set_num_threads(threads)


def _run(study, space, prepared, teacher_cache, budget, monitor, pruning) -> Optional[str]:
    import optuna

    while True:
        try:
            claim = claim_trial(study, space, budget)
        except NoNewStrategy as exc:
            return str(exc)
        if claim is None:
            return None
        trial = claim.trial
        monitor.trial_started()
        cost = {"steps": None}

        def report(stats, trial=trial, cost=cost):
            cost["steps"] = stats.steps
            if not space.spec.multi_objective:  # Optuna keeps no intermediate values with several objectives
                trial.report(stats.val_acc, stats.epoch)
            monitor.epoch()
            if pruning and stats.epoch < stats.epochs and trial.should_prune():
                raise optuna.TrialPruned()

        try:
            outcome = run_trial(prepared, claim.strategy, teacher_cache, report,
                                report_epochs(claim.strategy.recipe.epochs, pruning), measure=needs_footprint(space.spec))
        except optuna.TrialPruned:
            monitor.trial_finished(record_result(study, trial.number, pruned=True, steps=cost["steps"],
                                                 constraints=trial_constraints(space.spec, None)), None)
            continue
        state = record_result(study, trial.number, value=told_value(space.spec, outcome), reason=outcome.reason,
                              steps=outcome.steps if outcome.steps is not None else cost["steps"],
                              footprint=outcome.footprint, constraints=trial_constraints(space.spec, outcome.footprint))
        monitor.trial_finished(state, outcome.value)

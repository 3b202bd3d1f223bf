"""``--workers 0``: trials run one after another in this process, without Ray.

For debugging, and the baseline Ray's overhead is measured against: each trial runs on one
torch thread, as a Ray trial does on its one CPU. Pruning uses Optuna's successive-halving
pruner (the synchronous cousin of Tune's ASHA).
"""

from __future__ import annotations

from autokd.config.strategy import strategy_to_dict
from autokd.search.pruning import report_epochs
from autokd.search.monitor import SearchMonitor
from autokd.search.study import STRATEGY_ATTR, counts, interrupt_own_trials, mark_owner, record_result
from autokd.search.trial import run_trial


def run_local(study, space, prepared, teacher_cache, budget: int, monitor: SearchMonitor, pruning: bool = True) -> None:
    """Trials one by one in this process, each on one torch thread like a Ray trial's one CPU."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _run(study, space, prepared, teacher_cache, budget, monitor, pruning)
    except BaseException:  # Ctrl-C or a kill: this process's unfinished trial is interrupted and re-queued
        interrupt_own_trials(study)
        raise
    finally:
        torch.set_num_threads(threads)


def _run(study, space, prepared, teacher_cache, budget, monitor, pruning) -> None:
    import optuna

    while _started_or_done(study) < budget:
        trial = study.ask()
        mark_owner(study, trial._trial_id)
        strategy = space.suggest(trial)
        trial.set_user_attr(STRATEGY_ATTR, strategy_to_dict(strategy))
        monitor.trial_started()

        def report(stats, trial=trial):
            trial.report(stats.val_acc, stats.epoch)
            monitor.epoch()
            if pruning and stats.epoch < stats.epochs and trial.should_prune():
                raise optuna.TrialPruned()

        try:
            outcome = run_trial(prepared, strategy, teacher_cache, report, report_epochs(strategy.recipe.epochs, pruning))
        except optuna.TrialPruned:
            monitor.trial_finished(record_result(study, trial.number, pruned=True), None)
            continue
        state = record_result(study, trial.number, value=outcome.value, reason=outcome.reason)
        monitor.trial_finished(state, outcome.value)


def _started_or_done(study) -> int:
    c = counts(study)
    return c["finished"] + c["running"]

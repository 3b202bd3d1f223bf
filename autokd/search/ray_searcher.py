"""The Ray Tune ``Searcher`` that asks the Optuna study for every trial and tells it every outcome.

Imported only when a search runs on Ray (it imports Ray Tune at the top).
"""

from __future__ import annotations

from typing import Optional

from ray.tune.search import Searcher

from autokd.config.strategy import strategy_to_dict
from autokd.search.claims import NoNewStrategy, claim_trial
from autokd.search.interrupts import uninterruptible
from autokd.search.ledger import interrupt_own_trials, record_result, void_trial
from autokd.search.monitor import SearchMonitor
from autokd.search.objectives import trial_constraints
from autokd.search.study import METRIC_NAME as METRIC
from autokd.search.trial import TrialOutcome, told_value


def _footprint(result: dict):
    """The trial's footprint from its last result (Tune flattens nested dicts: ``footprint/params``)."""
    flat = {key.split("/", 1)[1]: value for key, value in result.items() if key.startswith("footprint/")}
    return result.get("footprint") or flat or None


class StudySearcher(Searcher):
    """Ask/tell between Tune and the Optuna study: each trial claimed from the study
    (:func:`~autokd.search.claims.claim_trial`), each result recorded in it."""

    def __init__(self, study, space, budget: int, epochs: int, monitor: SearchMonitor):
        super().__init__(metric=METRIC, mode="max")
        self.study, self.space, self.budget, self.epochs, self.monitor = study, space, budget, epochs, monitor
        self.live: dict[str, object] = {}
        self.stopped: Optional[str] = None  # why no more trials are asked for ("" once the budget is taken)
        self.reported: dict[int, set[int]] = {}  # epochs already recorded, by trial number

    # Tune pickles its search algorithm into its own experiment state when the Tuner starts. autokd
    # never restores from that state (a search resumes from the study), and the study's sampler need
    # not pickle (Optuna's NSGA-II holds a thread lock): the live objects stay in this process.
    _LIVE = ("study", "space", "monitor", "live")

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in self._LIVE}

    def suggest(self, trial_id: str) -> Optional[dict]:
        if self.stopped is not None:
            return Searcher.FINISHED
        try:
            claim = claim_trial(self.study, self.space, self.budget)
        except NoNewStrategy as exc:
            claim, self.stopped = None, str(exc)
        if claim is None:
            self.stopped = self.stopped or ""
            return Searcher.FINISHED
        self.live[trial_id] = claim.trial
        self.monitor.trial_started()
        return {"strategy": strategy_to_dict(claim.strategy), "number": claim.trial.number}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        trial = self.live.get(trial_id)
        if trial is not None and "failed" not in result:
            self._report(trial, result)
            self.monitor.epoch()

    def _report(self, trial, result: dict) -> None:
        step = int(result["epoch"])
        if self.space.spec.multi_objective:  # Optuna keeps no intermediate values with several objectives
            return
        if step not in self.reported.setdefault(trial.number, set()):
            self.reported[trial.number].add(step)
            with uninterruptible():  # never inside Optuna's storage (its locks) when Ctrl-C comes
                trial.report(result[METRIC], step)

    def on_trial_complete(self, trial_id: str, result: Optional[dict] = None, error: bool = False) -> None:
        trial = self.live.pop(trial_id, None)
        if trial is None:
            return
        if result and "failed" not in result and METRIC in result and not error:
            self._report(trial, result)  # Tune hands the last result to this method only
        self.reported.pop(trial.number, None)
        if error or not result:
            self._worker_died(trial)
        elif "failed" in result:
            self.monitor.trial_finished(record_result(self.study, trial.number, reason=str(result["failed"])), None)
        elif int(result.get("epoch", 0)) < self.epochs:
            steps = result.get("steps")
            state = record_result(self.study, trial.number, pruned=True, steps=steps,
                                  constraints=trial_constraints(self.space.spec, None))
            self.monitor.trial_finished(state, None)
        else:
            outcome = TrialOutcome(float(result[METRIC]), steps=result.get("steps"), footprint=_footprint(result))
            state = record_result(self.study, trial.number, value=told_value(self.space.spec, outcome),
                                  steps=outcome.steps, footprint=outcome.footprint,
                                  constraints=trial_constraints(self.space.spec, outcome.footprint))
            self.monitor.trial_finished(state, outcome.value)

    def _worker_died(self, trial) -> None:
        """A dead worker says nothing about the strategy: the trial is void and runs once more;
        dying a second time, it counts as failed."""
        if "retry_of" in trial.user_attrs:
            reason = "the trial's worker died again; not retried"
            self.monitor.trial_finished(record_result(self.study, trial.number, reason=reason), None)
            return
        frozen = self.study._storage.get_trial(trial._trial_id)
        void_trial(self.study, frozen, "the trial's worker died; retrying it once", requeue={"retry_of": trial.number})
        self.monitor.trial_finished("void", None)

    def interrupt_all(self) -> None:
        """Record the trials still in flight as interrupted (Ctrl-C) and re-queue them."""
        interrupt_own_trials(self.study)
        self.live.clear()

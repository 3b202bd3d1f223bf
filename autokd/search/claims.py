"""Claiming the next trial: within the budget, and a strategy no trial of the study has tried.

The one budget rule, used by both back-ends: a trial may run when the finished trials that count
plus the running trials that started before it are fewer than the budget. Each process checks
*after* it has started its trial (claim, then check), so of several processes that start trials
at the same moment, the later ones see the earlier ones and step back: the budget is exact under
concurrency, on every storage. A trial's start is stamped a moment before the storage shows it
(a process descheduled in between, on a busy machine, makes that moment long), so a trial that
passes is checked once more :data:`RECHECK_DELAY` later, by when an earlier-stamped trial that
the first check missed is visible. A trial that steps back is void ("over budget"); one that came
from the queue (a re-queued interrupted trial) is queued again.

A proposed strategy identical to one a counted or earlier-started trial holds (same parameters)
is not trained again: the trial is recorded void as a duplicate, naming the original, and the
sampler proposes again; after :data:`RANDOM_AFTER` duplicates in a row the proposals are drawn at
random (a model-based sampler that has converged keeps proposing its best point, while a knob it
no longer varies may still be open). The search stops with :class:`NoNewStrategy` once every
strategy of a finite space (choices only) is taken, or after :data:`MAX_PROPOSALS` duplicates in a row.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Optional

from autokd.config.strategy import Strategy, strategy_to_dict
from autokd.search.interrupts import uninterruptible
from autokd.search.ledger import (
    DUPLICATE_ATTR, STRATEGY_ATTR, is_void, mark_asker, mark_owner, param_key, tally, void_trial,
)

MAX_PROPOSALS = 100
RANDOM_AFTER = 10  # duplicates in a row after which the next proposals are drawn at random
RECHECK_DELAY = 0.1  # seconds; without it, three processes on a busy machine once overshot by one (CI, 2026-12-06)


class NoNewStrategy(Exception):
    """The sampler proposed only strategies the study already holds, :data:`MAX_PROPOSALS` times in a row."""


@dataclass
class Claim:
    trial: object  # optuna.Trial, RUNNING and owned by this process
    strategy: Strategy


@dataclass
class Verdict:
    over_budget: bool = False
    duplicate_of: Optional[int] = None

    @property
    def ok(self) -> bool:
        return not self.over_budget and self.duplicate_of is None


def check_claim(trials, number: int, budget: int) -> Verdict:
    """May trial ``number`` (RUNNING) run? ``trials``: every trial of the study, frozen."""
    from optuna.trial import TrialState

    mine = next(t for t in trials if t.number == number)
    order, key = (mine.datetime_start, mine.number), param_key(mine.params)
    ahead, duplicate = 0, None
    for t in trials:
        if t.number == number:
            continue
        holds = (t.state.is_finished() and not is_void(t)) or (
            t.state == TrialState.RUNNING and (t.datetime_start, t.number) < order)
        if holds:
            ahead += 1
            if duplicate is None and param_key(t.params) == key:
                duplicate = t.number
    if ahead >= budget:
        return Verdict(over_budget=True)
    return Verdict(duplicate_of=duplicate)


def _taken_keys(trials) -> set[str]:
    from optuna.trial import TrialState

    return {param_key(t.params) for t in trials
            if (t.state.is_finished() and not is_void(t)) or t.state == TrialState.RUNNING}


@contextmanager
def _proposer(study, duplicates: int, seed: int):
    """The study's own sampler proposes; after :data:`RANDOM_AFTER` duplicates in a row, a random sampler
    (seeded by the study's trial count: a seeded search stays reproducible) for this proposal."""
    if duplicates < RANDOM_AFTER:
        yield
        return
    import optuna

    own = study.sampler
    study.sampler = optuna.samplers.RandomSampler(seed=seed)
    try:
        yield
    finally:
        study.sampler = own


def claim_trial(study, space, budget: int) -> Optional[Claim]:
    """Start the next trial of ``study`` with a strategy from ``space``; None once the budget is taken.

    Raises :class:`NoNewStrategy` once every strategy of a finite space is taken, or after
    :data:`MAX_PROPOSALS` duplicates in a row."""
    size = space.size()
    for duplicates in range(MAX_PROPOSALS):
        trials = study.get_trials(deepcopy=False)
        c = tally(trials)
        if c.finished + c.running >= budget:
            return None
        if size is not None and len(_taken_keys(trials)) >= size:
            raise NoNewStrategy(f"all {size} strategies of the space have been tried (widen it, or lower --budget)")
        with _proposer(study, duplicates, seed=len(trials)):
            with uninterruptible():  # a trial is never left RUNNING without its owner's tag (but see mark_asker)
                mark_asker(study)
                trial = study.ask()
                mark_owner(study, trial._trial_id)
            strategy = space.suggest(trial)
        verdict = check_claim(study.get_trials(deepcopy=False), trial.number, budget)
        if verdict.ok:
            time.sleep(RECHECK_DELAY)
            verdict = check_claim(study.get_trials(deepcopy=False), trial.number, budget)
        if verdict.ok:
            trial.set_user_attr(STRATEGY_ATTR, strategy_to_dict(strategy))
            return Claim(trial, strategy)
        frozen = study._storage.get_trial(trial._trial_id)
        if verdict.over_budget:
            queued = "fixed_params" in frozen.system_attrs  # came from the queue: keep it queued
            void_trial(study, frozen, "over budget: other processes took the last slots",
                       requeue={} if queued else None)
            return None
        void_trial(study, frozen, f"duplicate of trial {verdict.duplicate_of}: not trained again",
                   **{DUPLICATE_ATTR: verdict.duplicate_of})
    raise NoNewStrategy(
        f"the sampler proposed only strategies already tried, {MAX_PROPOSALS} times in a row: "
        "the space looks exhausted (widen it, or lower --budget)")

"""What each trial of a study counts for, and how its end is recorded.

A study holds trials in Optuna's states. autokd adds one notion: a **void** trial, a FAIL that
says nothing about its strategy and does not count toward the budget: a trial cut short by an
interruption (its parameters are queued again), a duplicate of a strategy already tried, a trial
started when other processes had already taken the last slots of the budget. Void trials carry
the reason in the ``void`` user attribute (older studies mark interrupted ones ``interrupted``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional

from autokd.search.interrupts import uninterruptible
from autokd.search.owner import current_owner, is_alive

OWNER_ATTR = "autokd_owner"
VOID_ATTR = "void"
INTERRUPTED_ATTR = "interrupted"
DUPLICATE_ATTR = "duplicate_of"
FAIL_REASON_ATTR = "fail_reason"
STRATEGY_ATTR = "strategy"
REQUEUED_ATTR = "requeued_from"
STEPS_ATTR = "steps"  # the trial's cost: training steps, every model and stage of its scheme
FOOTPRINT_ATTR = "footprint"  # the shipped student's size and speed (autokd.compression.Footprint fields)


@dataclass
class TrialCounts:
    """Trials by what they count for; ``finished`` (complete + pruned + failed) is what the budget counts."""

    complete: int = 0
    pruned: int = 0
    failed: int = 0
    void: int = 0
    running: int = 0
    waiting: int = 0

    @property
    def finished(self) -> int:
        return self.complete + self.pruned + self.failed

    def add(self, state: str) -> None:
        setattr(self, state, getattr(self, state) + 1)


def is_void(trial) -> bool:
    from optuna.trial import TrialState

    return trial.state == TrialState.FAIL and bool(trial.user_attrs.get(VOID_ATTR) or trial.user_attrs.get(INTERRUPTED_ATTR))


def outcome(trial) -> str:
    """The :class:`TrialCounts` field a trial counts in."""
    from optuna.trial import TrialState

    if is_void(trial):
        return "void"
    return {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed",
            TrialState.RUNNING: "running", TrialState.WAITING: "waiting"}[trial.state]


def tally(trials) -> TrialCounts:
    out = TrialCounts()
    for t in trials:
        out.add(outcome(t))
    return out


def counts(study) -> TrialCounts:
    return tally(study.get_trials(deepcopy=False))


def param_key(params: dict) -> str:
    """Two trials with the same key ran the same strategy (floats compared exactly)."""
    return json.dumps(params, sort_keys=True, default=str)


# --- recording ------------------------------------------------------------------------------


def mark_owner(study, trial_id: int) -> None:
    study._storage.set_trial_system_attr(trial_id, OWNER_ATTR, current_owner().tag())


ASKER_ATTR_PREFIX = "autokd:asker:"  # + an owner tag -> when that process first asked this study for a trial
_asked: set[tuple[int, str]] = set()  # (study, owner) pairs already recorded by this process


def mark_asker(study) -> None:
    """Before this process first asks ``study`` for a trial: record it (one key per process, no
    lost updates). A process killed between ``ask`` and :func:`mark_owner` leaves an untagged
    RUNNING trial; knowing every process that may have asked for it lets a resume tell at once
    that they are all gone, instead of waiting out :data:`UNTAGGED_GRACE_SECONDS`."""
    import time

    tag = current_owner().tag()
    if (id(study._storage), study._study_id, tag) in _asked:
        return
    study._storage.set_study_system_attr(study._study_id, ASKER_ATTR_PREFIX + tag, time.time())
    _asked.add((id(study._storage), study._study_id, tag))


def record_result(study, number: int, *, value=None, pruned: bool = False, reason: Optional[str] = None,
                  steps: Optional[int] = None, footprint: Optional[dict] = None,
                  constraints: Optional[dict[str, float]] = None) -> str:
    """Tell the study how a trial ended (``value``: a number, or a list with several objectives;
    ``steps``: what it cost; ``footprint``: its student's size and speed; ``constraints``: its
    constraint values (:func:`~autokd.search.objectives.trial_constraints`), set on a complete or
    pruned trial before the study is told, so that the samplers read them); returns the
    :class:`TrialCounts` field it counts in."""
    with uninterruptible():  # Ctrl-C waits for the writes: never inside Optuna's storage (its locks)
        return _record(study, number, value, pruned, reason, steps, footprint, constraints)


def _record(study, number: int, value, pruned: bool, reason: Optional[str], steps: Optional[int],
            footprint: Optional[dict], constraints: Optional[dict[str, float]]) -> str:
    import optuna
    from optuna.trial import TrialState

    trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
    if steps is not None:
        study._storage.set_trial_user_attr(trial_id, STEPS_ATTR, int(steps))
    if footprint is not None:
        study._storage.set_trial_user_attr(trial_id, FOOTPRINT_ATTR, dict(footprint))
    if constraints and reason is None and _still_running(study, trial_id):
        trial = optuna.trial.Trial(study, trial_id)
        for key, violation in constraints.items():
            trial.set_constraint(key, violation)
    if reason is not None:
        study._storage.set_trial_user_attr(trial_id, FAIL_REASON_ATTR, reason)
        study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
        return "failed"
    if pruned:
        study.tell(number, state=TrialState.PRUNED, skip_if_finished=True)
        return "pruned"
    study.tell(number, value, skip_if_finished=True)  # a trial voided meanwhile keeps its record
    return "complete"


def orphaned(study) -> int:
    """Running trials whose owner process is gone (a search killed without cleaning up): they
    become void on the study's next search or resume."""
    from optuna.trial import TrialState

    tags = [t.system_attrs.get(OWNER_ATTR) for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
    return sum(1 for tag in tags if tag and not is_alive(tag))


def _still_running(study, trial_id: int) -> bool:
    from optuna.trial import TrialState

    return study._storage.get_trial(trial_id).state == TrialState.RUNNING


def void_trial(study, trial, reason: str, requeue: Optional[dict] = None, **attrs) -> None:
    """Record ``trial`` (running) as void with ``reason`` and user ``attrs``.

    ``requeue``: queue its parameters again, the queued trial carrying these user attributes
    (None: not queued)."""
    from optuna.trial import TrialState

    with uninterruptible():
        for key, value in {VOID_ATTR: reason, FAIL_REASON_ATTR: reason, **attrs}.items():
            study._storage.set_trial_user_attr(trial._trial_id, key, value)
        study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
        if requeue is not None and trial.params:
            study.enqueue_trial(trial.params, user_attrs={REQUEUED_ATTR: trial.number, **requeue},
                                skip_if_exists=False)


def interrupt(study, trial) -> bool:
    """A trial cut short by Ctrl-C, SIGTERM or its process's death: void, its parameters queued again.

    A trial caught while its strategy was still being drawn (no ``strategy`` attribute yet) trained
    nothing and holds at most part of a strategy: it is void and nothing is queued. Returns
    whether the trial was queued again."""
    if STRATEGY_ATTR in trial.user_attrs:
        void_trial(study, trial, "interrupted; parameters re-queued", requeue={}, **{INTERRUPTED_ATTR: True})
        return True
    void_trial(study, trial, "interrupted before its strategy was drawn; nothing to re-queue",
               **{INTERRUPTED_ATTR: True})
    return False


def interrupt_own_trials(study) -> int:
    """Record every RUNNING trial of this process as interrupted; returns how many.

    By owner, not by a back-end's list of live trials, so a trial the interruption caught between
    its start and its record is not left RUNNING."""
    from optuna.trial import TrialState

    me, n = current_owner().tag(), 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if t.system_attrs.get(OWNER_ATTR) == me:
            interrupt(study, t)
            n += 1
    return n


def recover_interrupted(study) -> tuple[int, int]:
    """Record RUNNING trials whose process is gone as interrupted; returns how many were queued
    again and how many were dropped (caught before their strategy was drawn)."""
    from optuna.trial import TrialState

    requeued = dropped = 0
    attrs = study._storage.get_study_system_attrs(study._study_id)
    askers = {k[len(ASKER_ATTR_PREFIX):]: v for k, v in attrs.items() if k.startswith(ASKER_ATTR_PREFIX)}
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not _owned_by_a_live_process(t, askers):
            if interrupt(study, t):
                requeued += 1
            else:
                dropped += 1
    return requeued, dropped


# a trial is tagged with its owner right after it starts; until then it belongs to whoever started it
UNTAGGED_GRACE_SECONDS = 120.0
CLOCK_SLACK_SECONDS = 5.0  # between the asker's clock and the storage's trial start


def _owned_by_a_live_process(trial, askers: dict[str, float]) -> bool:
    """Whether a RUNNING trial's process may still run it. An untagged trial (its process was
    killed between ``ask`` and the tag, or is tagging it now) belongs to one of the processes that
    asked the study before it started (``askers``): alive while one of them is and it is young;
    with no asker recorded (a study of an older autokd), while it is young."""
    import datetime

    tag = trial.system_attrs.get(OWNER_ATTR)
    if tag is None and trial.datetime_start is not None:
        if (datetime.datetime.now() - trial.datetime_start).total_seconds() >= UNTAGGED_GRACE_SECONDS:
            return False
        start = trial.datetime_start.timestamp()
        who = [a for a, at in askers.items() if isinstance(at, (int, float)) and at <= start + CLOCK_SLACK_SECONDS]
        return any(is_alive(a) for a in who) if who else True
    return is_alive(tag)

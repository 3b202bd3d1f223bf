"""Optuna studies as the single record of a search: settings, trials, budget and recovery.

A study stores its space file and settings in ``user_attrs["autokd"]``, so ``autokd resume NAME``
needs no flags. ``--budget N`` is the total number of finished trials (complete, pruned or
failed); trials cut short by an interruption are marked FAIL with ``interrupted`` set, are not
counted, and their parameters are queued again.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from dataclasses import asdict, dataclass
from typing import Optional

from autokd.errors import AutokdError, unknown

META_KEY = "autokd"
OWNER_ATTR = "autokd_owner"
INTERRUPTED_ATTR = "interrupted"
FAIL_REASON_ATTR = "fail_reason"
STRATEGY_ATTR = "strategy"


@dataclass
class StudySettings:
    """What a study was started with (stored with it; ``resume`` reads it back)."""

    space_text: str
    space_source: str
    sampler: str
    budget: int
    workers: int
    seed: int
    device: str = "auto"
    pruning: bool = True

    @property
    def fingerprint(self) -> str:
        from autokd.config.yaml_io import load_yaml_value

        data = load_yaml_value(self.space_text)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def study_names(storage) -> list[str]:
    import optuna

    return [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]


def load_existing_study(name: str, storage, sampler=None):
    """An existing study, or an AutokdError listing the studies that exist."""
    import optuna

    names = study_names(storage)
    if name not in names:
        if not names:
            raise AutokdError(f"no study named {name!r}: the storage holds no studies yet (run autokd search first)")
        raise unknown("study", name, names)
    return optuna.load_study(study_name=name, storage=storage, sampler=sampler)


def read_settings(study) -> StudySettings:
    meta = study.user_attrs.get(META_KEY)
    if not meta:
        raise AutokdError(f"study {study.study_name!r} was not made by autokd search (no settings stored)")
    return StudySettings(**meta)


def open_study(name: str, storage, settings: StudySettings, sampler, pruner=None):
    """Create the study, or load it and check it was made with the same space.

    Returns ``(study, created)``. The stored budget is updated to ``settings.budget``.
    """
    import optuna

    exists = name in study_names(storage)
    if exists:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
        old = _settings_of_new_study(study)
        if old.fingerprint != settings.fingerprint:
            raise AutokdError(
                f"study {name!r} was made with a different search space ({old.space_source}); "
                f"resume it with that space, or start a new study with --name"
            )
        if study.direction != optuna.study.StudyDirection.MAXIMIZE:
            raise AutokdError(f"study {name!r} does not maximise; it was not made by autokd")
        if old.budget != settings.budget or old.workers != settings.workers:
            study.set_user_attr(META_KEY, asdict(settings))
        return study, False
    try:
        study = optuna.create_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner, direction="maximize")
    except optuna.exceptions.DuplicatedStudyError:  # another process created it a moment ago
        return open_study(name, storage, settings, sampler, pruner)
    study.set_user_attr(META_KEY, asdict(settings))
    return study, True


def _settings_of_new_study(study, wait: float = 10.0) -> StudySettings:
    """Settings of an existing study; another process may have created it a moment ago and be
    about to store them, so wait a little before calling it foreign."""
    import time

    deadline = time.monotonic() + wait
    while META_KEY not in study.user_attrs and time.monotonic() < deadline:
        time.sleep(0.2)
    return read_settings(study)


def counts(study) -> dict[str, int]:
    """Trials by state; ``finished`` counts toward the budget (interrupted trials do not)."""
    from optuna.trial import TrialState

    out = {"complete": 0, "pruned": 0, "failed": 0, "interrupted": 0, "running": 0, "waiting": 0}
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.COMPLETE:
            out["complete"] += 1
        elif t.state == TrialState.PRUNED:
            out["pruned"] += 1
        elif t.state == TrialState.FAIL:
            out["interrupted" if t.user_attrs.get(INTERRUPTED_ATTR) else "failed"] += 1
        elif t.state == TrialState.RUNNING:
            out["running"] += 1
        elif t.state == TrialState.WAITING:
            out["waiting"] += 1
    out["finished"] = out["complete"] + out["pruned"] + out["failed"]
    return out


def owner_tag() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def mark_owner(study, trial_id: int) -> None:
    study._storage.set_trial_system_attr(trial_id, OWNER_ATTR, owner_tag())


def _owner_alive(tag: Optional[str]) -> bool:
    """Whether the process that runs a trial is still alive (unknown hosts count as alive)."""
    if not tag:
        return False
    host, _, pid = tag.rpartition(":")
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return int(pid) != os.getpid()  # our own pid on a stale trial: a pid reused after a crash


def recover_interrupted(study) -> int:
    """Mark RUNNING trials whose process is gone as FAIL (interrupted) and queue their params again."""
    from optuna.trial import TrialState

    recovered = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if _owner_alive(t.system_attrs.get(OWNER_ATTR)):
            continue
        fail_interrupted(study, t)
        recovered += 1
    return recovered


def interrupt_own_trials(study) -> int:
    """Record every RUNNING trial of this process as interrupted and queue its params again.

    For Ctrl-C and SIGTERM: by owner, not by a back-end's list of live trials, so a trial the
    interruption caught between ``study.ask`` and its start, or between its end and the record of
    it, is not left RUNNING. Returns how many there were."""
    from optuna.trial import TrialState

    me, n = owner_tag(), 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if t.system_attrs.get(OWNER_ATTR) == me:
            fail_interrupted(study, t)
            n += 1
    return n


def fail_interrupted(study, frozen_trial, requeue: bool = True) -> None:
    """Record a trial cut short by an interruption and queue its parameters again."""
    from optuna.trial import TrialState

    study._storage.set_trial_user_attr(frozen_trial._trial_id, INTERRUPTED_ATTR, True)
    study._storage.set_trial_user_attr(frozen_trial._trial_id, FAIL_REASON_ATTR, "interrupted; parameters re-queued")
    study.tell(frozen_trial.number, state=TrialState.FAIL)
    if requeue and frozen_trial.params:
        study.enqueue_trial(frozen_trial.params, user_attrs={"requeued_from": frozen_trial.number}, skip_if_exists=False)


def record_result(study, number: int, *, value: Optional[float] = None, pruned: bool = False,
                  reason: Optional[str] = None) -> str:
    """Tell the study how a trial ended; returns the state name used by the monitor."""
    from optuna.trial import TrialState

    if reason is not None:
        trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
        study._storage.set_trial_user_attr(trial_id, FAIL_REASON_ATTR, reason)
        study.tell(number, state=TrialState.FAIL)
        return "failed"
    if pruned:
        study.tell(number, state=TrialState.PRUNED)
        return "pruned"
    study.tell(number, value)
    return "complete"

"""Optuna studies as the single record of a search: finding, checking, creating, settings.

A study stores its :class:`SearchSettings` (space file text included) and the fingerprint of
the teacher it was searched with as study *system* attributes (``optuna studies`` does not
print them). A search that would mix two spaces or two teachers in one study is refused before
anything is written; a study is created, and a changed budget stored, only once the search's
set-up (data, models, teacher) has succeeded.
"""

from __future__ import annotations

import time
import warnings
from typing import Optional

from autokd.errors import AutokdError, short_repr, unknown
from autokd.search.ledger import counts  # (also re-exported: the study's trial counts)
from autokd.search.settings import SETTINGS_ATTR, SearchSettings, damaged

TEACHER_ATTR = "autokd:teacher"
LEGACY_SETTINGS_ATTR = "autokd"  # studies made before settings moved to system attributes
METRIC_NAME = "val_acc"


def study_names(storage) -> list[str]:
    import optuna

    return [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]


def find_study(name: str, storage, sampler=None, pruner=None):
    """The study called ``name``, or None."""
    import optuna

    if name not in study_names(storage):
        return None
    return optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)


def load_existing_study(name: str, storage, sampler=None, pruner=None):
    """An existing study, or an AutokdError listing the studies that exist."""
    study = find_study(name, storage, sampler, pruner)
    if study is None:
        names = study_names(storage)
        if not names:
            raise AutokdError(f"no study named {name!r}: the storage holds no studies yet (run autokd search first)")
        raise unknown("study", name, names)
    return study


def _system_attrs(study) -> dict:
    return study._storage.get_study_system_attrs(study._study_id)


def read_settings(study, wait: float = 0.0) -> SearchSettings:
    """The settings a study was made with. ``wait``: seconds to wait for them on a study another
    process has just created and is about to describe."""
    deadline = time.monotonic() + wait
    while True:
        attr, stored = SETTINGS_ATTR, _system_attrs(study).get(SETTINGS_ATTR)
        if stored is None:
            attr, stored = LEGACY_SETTINGS_ATTR, study.user_attrs.get(LEGACY_SETTINGS_ATTR)
        if stored is not None or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    if stored is None:
        raise AutokdError(f"study {study.study_name!r} was not made by autokd search (no settings stored)")
    return SearchSettings.from_dict(stored, study.study_name, attr)


def stored_teacher(study) -> Optional[dict]:
    """The record of the teacher the study was searched with (None before its first search),
    checked: a fingerprint, and further teachers' fingerprints where recorded."""
    stored = _system_attrs(study).get(TEACHER_ATTR)
    if stored is None:
        return None
    if not isinstance(stored, dict):
        problem = f"{TEACHER_ATTR} is {short_repr(stored)}, expected a mapping with the teacher's fingerprint"
    elif not isinstance(stored.get("fingerprint"), str):
        problem = f"{TEACHER_ATTR}.fingerprint is {short_repr(stored.get('fingerprint'))}, expected a text"
    elif "further" in stored and not (isinstance(stored["further"], list)
                                      and all(isinstance(f, str) for f in stored["further"])):
        problem = f"{TEACHER_ATTR}.further is {short_repr(stored['further'])}, expected a list of fingerprints"
    elif not isinstance(stored.get("data", ""), str):
        problem = f"{TEACHER_ATTR}.data is {short_repr(stored['data'])}, expected the data's fingerprint"
    else:
        return stored
    raise damaged(study.study_name, problem, "stored teacher record")


def check_same_search(study, settings: SearchSettings) -> SearchSettings:
    """Refuse to continue ``study`` with another space or directions; returns its stored settings."""
    old = read_settings(study, wait=10.0)
    stored_teacher(study)  # a damaged teacher record is refused before any set-up
    if old.space_fingerprint() != settings.space_fingerprint():
        raise AutokdError(_different_search(study.study_name, old, settings))
    wanted = study_directions(settings)
    if [d.name.lower() for d in study.directions] != wanted:
        raise AutokdError(f"study {study.study_name!r} does not {' and '.join(wanted)} its values as the space's "
                          f"objectives say; it was not made by autokd")
    return old


def _different_search(name: str, old: SearchSettings, new: SearchSettings) -> str:
    """Why ``new`` cannot continue study ``name``: the flags (objectives, constraints) that differ
    when the rest of the space is the same, else that the space differs."""
    from autokd.search.objectives import differing_flags

    changes = differing_flags(old.space_text, new.space_text)
    if not changes:
        return (f"study {name!r} was made with a different search space ({old.space_source}; "
                f"{_first_difference(old.space_text, new.space_text)}); resume it (autokd resume {name}: the "
                f"study keeps its space), search it with that space, or start a new study with --name")
    what = ", ".join(f"{flag} was {before}, now {after}" for flag, before, after in changes)
    return (f"study {name!r} was made with other objectives or constraints than this run: {what} (the space is "
            f"otherwise the same); search it with the study's values (flags, or the space's objectives and "
            f"constraints), continue it with autokd resume {name}, or start a new study with --name")


def _first_difference(old_text: str, new_text: str) -> str:
    """Where two space files' data first differ: ``space.weight_scale.high: the study's 1, this run's 2``."""
    from autokd.config.yaml_io import load_yaml_value

    def walk(old, new, path: str) -> Optional[str]:
        if isinstance(old, dict) and isinstance(new, dict):
            for key in [*old, *(k for k in new if k not in old)]:
                if key not in old or key not in new:
                    return f"{path}{key}: {'only this run' if key in new else 'only the study'} sets it"
                found = walk(old[key], new[key], f"{path}{key}.")
                if found:
                    return found
            return None
        if old != new:
            return f"{path.rstrip('.')}: the study's {short_repr(old, 60)}, this run's {short_repr(new, 60)}"
        return None

    return walk(load_yaml_value(old_text), load_yaml_value(new_text), "") or "the files differ"


def study_directions(settings: SearchSettings) -> list[str]:
    """Optuna's directions for the space's objectives (one maximised value by default)."""
    from autokd.search.objectives import directions, judging_of

    return directions(judging_of(settings.space_text).objectives)


def check_same_teacher(study, teacher, further=None) -> None:
    """Refuse a teacher (a :class:`TeacherInfo`) other than the one the study was searched with, and
    with ``further`` (the task's further teachers, when the search uses them) other further teachers."""
    stored = stored_teacher(study)
    if stored and stored.get("fingerprint") != teacher.fingerprint:
        raise AutokdError(
            f"study {study.study_name!r} was searched with another teacher (fingerprint {stored.get('fingerprint')}, "
            f"{stored.get('source')} {stored.get('path')}); this run's teacher has fingerprint {teacher.fingerprint} "
            f"({teacher.source} {teacher.path}). Restore that teacher (its checkpoint or cache file), or start a "
            f"new study with --name")
    now = [t.fingerprint for t in further] if further is not None else None
    if stored and now is not None and "further" in stored and stored["further"] != now:
        raise AutokdError(
            f"study {study.study_name!r} was searched with other further teachers (task.teachers, fingerprints "
            f"{', '.join(stored['further']) or 'none'}); this run's have {', '.join(now) or 'none'}. Restore those "
            f"teachers (their checkpoints or cache files), or start a new study with --name")


def check_same_data(study, fingerprint: str) -> None:
    """Refuse data other than the study was searched on (its trials were scored on that validation split)."""
    stored = (stored_teacher(study) or {}).get("data")
    if stored and fingerprint and stored != fingerprint:
        raise AutokdError(
            f"study {study.study_name!r} was searched on other data (fingerprint {stored}); this run's task data has "
            f"fingerprint {fingerprint}: the files, folder or generator changed since, and the study's trials were "
            f"scored on the old data. Restore that data, or start a new study with --name")


# what a later run of a study may change (stored: a resume goes on with them); the space, seed and warm start stay
RUN_SETTINGS = ("budget", "workers", "sampler", "device", "pruning", "confirm")


def open_study(name: str, storage, settings: SearchSettings, teacher, further=None, data: str = ""):
    """Create the study, or load it and store the run's :data:`RUN_SETTINGS`; returns ``(study, created)``.
    ``data`` is the task data's fingerprint, recorded with the teacher's.

    Call once the search's set-up succeeded: this is the first write to the storage.
    """
    import optuna

    study = find_study(name, storage)
    created = study is None
    if created:
        try:
            study = optuna.create_study(study_name=name, storage=storage, directions=study_directions(settings))
        except optuna.exceptions.DuplicatedStudyError:  # another process created it a moment ago
            study, created = find_study(name, storage), False
    if created:
        _write(study, SETTINGS_ATTR, settings.to_dict())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(metric_names(settings))  # optuna-dashboard labels its axes with them
    else:
        old = check_same_search(study, settings)
        check_same_teacher(study, teacher, further)
        check_same_data(study, data)
        idle = settings.budget <= counts(study).finished  # nothing to run: budget, sampler... stay as they are,
        keys = ("pruning", "confirm") if idle else RUN_SETTINGS  # but a --confirm or --no-pruning given is kept
        new = {key: getattr(settings, key) for key in keys}
        if new != {key: getattr(old, key) for key in keys}:
            _write(study, SETTINGS_ATTR, {**old.to_dict(), **new})
    stored = stored_teacher(study)
    if not stored or (further is not None and "further" not in stored) or (data and not stored.get("data")):
        record = {"fingerprint": teacher.fingerprint, "source": teacher.source, "path": teacher.path, "data": data}
        _write(study, TEACHER_ATTR, {**record, **({"further": [t.fingerprint for t in further]} if further else {})})
    return study, created


def metric_names(settings: SearchSettings) -> list[str]:
    from autokd.search.objectives import judging_of

    objectives = judging_of(settings.space_text).objectives
    return [METRIC_NAME, *objectives[1:]]


def _write(study, key: str, value) -> None:
    study._storage.set_study_system_attr(study._study_id, key, value)

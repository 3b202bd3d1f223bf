"""A search from start to end: checks, set-up, study, trials.

Everything that can be wrong with the input is checked before the storage is written: flags,
space, models, data, teacher. Only then is the study created (or its new budget stored).
Re-running the same search (or ``autokd resume NAME``) continues the study to its budget:
trials left RUNNING by a process that died are recorded as interrupted and re-queued first.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import replace
from typing import Callable, Iterator, Optional

from autokd.search.binding import bind_space
from autokd.search.interrupts import interrupts_as_keyboard, uninterruptible
from autokd.search.ledger import counts, recover_interrupted
from autokd.search.monitor import SearchMonitor
from autokd.search.owner import current_owner
from autokd.search.samplers import check_sampler_fits, make_sampler, run_seed
from autokd.search.settings import SearchSettings, check_study_name, check_workers, resume_command  # noqa: F401 (compare uses check_workers)
from autokd.search.space_file import SpaceFile
from autokd.search.study import check_same_search, check_same_data, check_same_teacher, find_study, open_study

Say = Callable[[str], None]
Status = Callable[[str, bool], None]


def run_search(space_file: SpaceFile, settings: SearchSettings, name: str, storage: Optional[str] = None,
               address: Optional[str] = None, say: Say = print, status: Status = lambda _t, _f: None):
    """Run the search ``settings`` describe on ``space_file``'s task, in the study ``name``; returns the study."""
    from autokd.search.pruning import optuna_pruner
    from autokd.search.storage import open_storage, storage_exists
    from autokd.training.run import prepare_task
    from autokd.training.students import teacher_cache_for

    check_study_name(name)
    store = open_storage(storage) if storage_exists(storage) else None  # a new file is made only to write
    existing = find_study(name, store) if store is not None else None
    before = check_same_search(existing, settings) if existing is not None else None
    settings = _own_unless_named(settings, before)
    _check_flags(settings, address)
    space = bind_space(space_file)
    check_sampler_fits(settings.sampler, space)
    stuck = f"its running trials run again on resume: {resume_command(name, storage, address)}"
    with interrupts_as_keyboard(note=stuck):  # Ctrl-C: trials re-queued, Ray shut down, the process ended
        prepared = prepare_task(space_file.task, settings.device, progress=say)
        if existing is not None:
            check_same_teacher(existing, prepared.teacher_info)
            check_same_data(existing, prepared.data.fingerprint)
        further = _further_teachers(space, prepared, existing, say)
        cache = teacher_cache_for(prepared, space.teacher_paths(), say=say)
        with uninterruptible():  # the study, its settings and its warm start: all or none (Ctrl-C waits)
            study, created = open_study(name, store or open_storage(storage), settings, prepared.teacher_info,
                                        further, prepared.data.fingerprint)  # the first write
            if settings.warm_start and created:
                _warm_start(study, space, prepared.task, say)
        epochs = space.base_recipe.epochs
        # --no-pruning or the space's `pruning: false`; Optuna prunes no multi-objective trial
        pruning = settings.pruning and space.spec.pruning and not space.spec.multi_objective
        study.sampler = make_sampler(settings.sampler, space, run_seed(settings.seed, created, current_owner().tag()))
        study.pruner = optuna_pruner(epochs, pruning)
        if before is not None and before.sampler != settings.sampler and counts(study).finished < settings.budget:
            say(f"sampler: study {name!r} was searched with {before.sampler}; this run and later resumes use "
                f"{settings.sampler} (the trials so far stay and count toward the budget)")
        if settings.warm_start and not created and not (before is not None and before.warm_start):  # resume: its own
            say(f"warm start: study {name!r} already exists and its first trials are set; --warm-start is ignored")
        if not _announce(study, settings, space, created, pruning, say):
            _confirm(study, settings, space, prepared, cache, say)
            return study
        monitor = SearchMonitor(study, settings.budget, status)
        with monitor.ticking():
            note = _run_trials(study, space, prepared, cache, settings, address, monitor, pruning)
        c = counts(study)
        if c.finished >= settings.budget or (note and not c.running):  # done, or nothing new is left to try
            monitor.show(force=True)
            _confirm(study, settings, space, prepared, cache, say)
        elif settings.confirm:
            say(f"--confirm {settings.confirm}: not yet, it runs once the study's budget is done")
    monitor.show(force=True)
    _explain_shortfall(study, settings.budget, note, say)
    return study


def _run_trials(study, space, prepared, cache, settings: SearchSettings, address: Optional[str],
                monitor: SearchMonitor, pruning: bool) -> Optional[str]:
    """Trials up to the budget, in this process (workers 0) or as Ray Tune trials; returns why they
    stopped early, if they did."""
    if settings.workers == 0:
        from autokd.search.local_backend import run_local

        return run_local(study, space, prepared, cache, settings.budget, monitor, pruning)
    from autokd.search.ray_backend import run_ray

    with ray_session(address, settings.workers) as workers:
        return run_ray(study, space, prepared, cache, settings.budget, workers, space.base_recipe.epochs, monitor, pruning)


OWN_UNLESS_NAMED = ("budget", "device", "sampler", "pruning", "confirm")  # --workers: every CPU unless named


def _own_unless_named(settings: SearchSettings, before: Optional[SearchSettings]) -> SearchSettings:
    """The run's settings with what it does not name (None: budget, device, sampler, pruning, --confirm)
    taken from the study it continues, or a new study's defaults."""
    own = before or SearchSettings(space_text="", space_source="")
    return replace(settings, **{key: getattr(own, key) for key in OWN_UNLESS_NAMED if getattr(settings, key) is None})


def _check_flags(settings: SearchSettings, address: Optional[str]) -> None:
    """The flags that need no space or data: workers, device, a Ray address that answers."""
    from autokd.training.run import resolve_device

    check_workers(settings.workers, address)
    resolve_device(settings.device)
    if settings.workers != 0 and (address or os.environ.get("RAY_ADDRESS")):
        from autokd.search.ray_backend import check_address

        check_address(address or os.environ["RAY_ADDRESS"])


def _further_teachers(space, prepared, existing, say: Say) -> Optional[list]:
    """The ensemble scheme's further teachers (loaded once, before the trials), checked against the
    study's; None when the space searches no ensemble."""
    if "ensemble" not in space.spec.schemes:
        return None
    from autokd.training.extra_teachers import extra_teachers

    further = [info for _, info in extra_teachers(prepared, say)]
    if existing is not None:
        check_same_teacher(existing, prepared.teacher_info, further)
    return further


def _confirm(study, settings: SearchSettings, space, prepared, cache, say: Say) -> None:
    """``--confirm K``: the top K trials re-run with more seeds once the budget is done or the space has no
    strategy left to try (each trial once: not again on resume)."""
    if not settings.confirm:
        return
    from autokd.search.confirm import CONFIRM_SEEDS, confirm_top

    ran = confirm_top(study, space, prepared, cache, settings.confirm, say)
    if ran:
        say(f"confirmation: {ran} leading trial(s) re-run with {CONFIRM_SEEDS} more seeds each; the leaderboard ranks "
            f"them by their mean")


def _warm_start(study, space, task, say: Say) -> None:
    from autokd.config.baselines import baselines_that_adapt
    from autokd.search.warm_start import enqueue_baselines

    from autokd.models.registry import keyword_defaults

    baselines, unplaced = baselines_that_adapt(None, space.pairs, space.base_recipe, task)
    student = {**keyword_defaults(task.student.model), **task.student.kwargs}  # what a baseline ships
    queued, misfits = enqueue_baselines(study, space, baselines, student)
    say(f"warm start: {len(queued)} baseline(s) queued as the first trials ({', '.join(queued) or 'none'})"
        + (f"; not expressible in this space: {', '.join(unplaced + misfits)}" if unplaced + misfits else ""))


def _announce(study, settings: SearchSettings, space, created: bool, pruning: bool, say: Say) -> bool:
    """Recover interrupted trials and say where the study stands; False when nothing is left to do."""
    from autokd.search.pruning import grace_period

    requeued, dropped = recover_interrupted(study)
    c = counts(study)
    say(f"study {study.study_name!r} ({'new' if created else 'resumed'}): {c.finished}/{settings.budget} trials done"
        + (f", {requeued} interrupted trial(s) re-queued" if requeued else "")
        + (f", {dropped} trial(s) interrupted before their strategy was drawn (void)" if dropped else ""))
    if c.finished >= settings.budget:
        say("budget already reached; raise --budget to run more trials (a lower --budget, or a --sampler, "
            "--workers or --device given now, is not stored)")
        return False
    epochs = space.base_recipe.epochs
    pairs = (", ".join(f"{s} <- one of {'/'.join(ts)} or none" for s, ts in space.matches) if space.matches is not None
             else ", ".join(f"{t}->{s}" for t, s in space.pairs) or "none")  # layer search: what each student layer may match
    say(f"space: {len(space.dimensions())} parameters, pairs {pairs}; "
        f"sampler {settings.sampler}; proxy {epochs} epoch{'s' if epochs != 1 else ''}; "
        + (f"pruning at epoch {grace_period(epochs)}" if pruning and epochs > 1 else "no pruning"))
    return True


def _explain_shortfall(study, budget: int, note: Optional[str], say: Say) -> None:
    """Say why a search ended before its budget was finished."""
    c = counts(study)
    if c.finished >= budget:
        return
    if note:
        say(f"stopped at {c.finished}/{budget} trials: {note}")
    elif c.running:
        say(f"stopped at {c.finished}/{budget} trials: {c.running} trial(s) still running in other processes "
            "hold the remaining budget")


@contextlib.contextmanager
def ray_session(address: Optional[str], workers: Optional[int]) -> Iterator[int]:
    """Join the cluster at ``address`` (or RAY_ADDRESS) or start a local Ray; yields the number of
    workers (``None``: every CPU of the cluster) and shuts down at the end what it started.

    Ray installs its own SIGTERM handler when it starts; autokd's is put back after it. An
    interrupted session that does not shut down in time is ended (:mod:`autokd.search.interrupts`)."""
    import ray

    from autokd.search.ray_backend import start_ray

    with interrupts_as_keyboard():  # the outermost block where none encloses it (compare): the shutdown is watched
        started = start_ray(address, workers)
        try:
            with interrupts_as_keyboard():
                yield workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        finally:
            if started:
                ray.shutdown()

"""A search from start to end: space, study, teacher, trials, leaderboard.

Re-running the same search (or ``autokd resume NAME``) continues the study to its budget:
trials left RUNNING by a crashed process are marked FAIL and re-queued first.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass
from typing import Callable, Optional

from autokd.data.spec import nominal_shape
from autokd.errors import AutokdError
from autokd.search.monitor import SearchMonitor
from autokd.search.samplers import make_sampler
from autokd.search.space import SearchSpace
from autokd.search.space_file import SpaceFile
from autokd.search.study import StudySettings, counts, open_study, recover_interrupted

Say = Callable[[str], None]
Status = Callable[[str, bool], None]


def default_study_name(space_source: str, sampler: str) -> str:
    from pathlib import Path

    return f"{Path(space_source).stem}-{sampler}"


def bind_space(space_file: SpaceFile) -> SearchSpace:
    """Resolve the space's layer pairs on the task's models (``auto``: equal-resolution stages)."""
    from autokd.models.pairs import auto_pairs
    from autokd.models.registry import build_model
    from autokd.models.taps import FeatureTaps

    task, spec = space_file.task, space_file.space
    shape, classes = nominal_shape(task.data)
    teacher = build_model(task.teacher.model, task.teacher.kwargs, classes, shape)
    student = build_model(task.student.model, task.student.kwargs, classes, shape)
    if spec.pairs == "auto":
        pairs = auto_pairs(teacher, student, shape)
        if not pairs and spec.pair_losses != ["none"]:
            raise AutokdError("pairs: auto found no teacher/student stages of equal resolution; list the pairs in the space file")
    else:
        pairs = [(p.teacher, p.student) for p in spec.pairs]
        FeatureTaps(teacher, [t for t, _ in pairs]).remove()  # unknown paths raise, listing the layers
        FeatureTaps(student, [s for _, s in pairs]).remove()
    _check_projectable(spec, pairs, teacher, student, shape)
    return SearchSpace(spec, pairs, task.recipes.proxy)


def _check_projectable(spec, pairs, teacher, student, shape) -> None:
    """Every pair a projector-needing loss (FitNets) may use must map student to teacher shape."""
    from autokd.losses import PAIR_LOSSES
    from autokd.models.projectors import make_projector
    from autokd.models.taps import list_layers

    needing = [loss for loss in spec.pair_losses if loss in PAIR_LOSSES and PAIR_LOSSES[loss].needs_projector]
    if not needing or not pairs:
        return
    t_shapes = {i.path: i.output_shape for i in list_layers(teacher, shape)}
    s_shapes = {i.path: i.output_shape for i in list_layers(student, shape)}
    for t, s in pairs:
        try:
            make_projector(s_shapes[s], t_shapes[t])
        except AutokdError as exc:
            raise AutokdError(f"pair {t} -> {s} cannot take {needing[0]}: {exc}; drop the pair or the loss") from None


@dataclass
class SearchRequest:
    name: str
    sampler: str = "tpe"
    budget: int = 100
    workers: int = 1
    storage: Optional[str] = None
    address: Optional[str] = None
    seed: int = 0
    device: str = "auto"
    pruning: bool = True


def check_workers(workers: int, address: Optional[str]) -> None:
    cpus = os.cpu_count() or 1
    if workers < 0:
        raise AutokdError(f"--workers must be >= 0 (0 runs trials in this process without Ray), got {workers}")
    if workers > cpus and not (address or os.environ.get("RAY_ADDRESS")):
        raise AutokdError(f"--workers {workers} is more than this machine's {cpus} CPUs; use at most {cpus} (or --address to use a cluster)")


def run_search(space_file: SpaceFile, request: SearchRequest, say: Say, status: Status):
    """Run ``request`` on ``space_file``'s task; returns the study."""
    from autokd.search.pruning import grace_period, optuna_pruner
    from autokd.search.storage import open_storage
    from autokd.training.run import prepare_task, teacher_cache_for

    from autokd.training.run import resolve_device

    check_workers(request.workers, request.address)
    resolve_device(request.device)  # bad input fails here, before the study is touched
    if request.workers and (request.address or os.environ.get("RAY_ADDRESS")):
        from autokd.search.ray_backend import check_address

        check_address(request.address or os.environ["RAY_ADDRESS"])
    space = bind_space(space_file)
    storage = open_storage(request.storage)
    settings = StudySettings(
        space_text=space_file.text, space_source=space_file.source, sampler=request.sampler,
        budget=request.budget, workers=request.workers, seed=request.seed, device=request.device,
        pruning=request.pruning,
    )
    sampler = make_sampler(request.sampler, space, seed=request.seed)
    epochs = space.base_recipe.epochs
    pruning = request.pruning and space.spec.pruning  # --no-pruning or the space's `pruning: false`
    study, created = open_study(request.name, storage, settings, sampler, optuna_pruner(epochs, pruning))
    recovered = recover_interrupted(study)
    c = counts(study)
    say(f"study {request.name!r} ({'new' if created else 'resumed'}): {c['finished']}/{request.budget} trials done"
        + (f", {recovered} interrupted trial(s) re-queued" if recovered else ""))
    if c["finished"] >= request.budget:
        say("budget already reached; raise --budget to run more trials")
        return study
    say(f"space: {len(space.dimensions())} parameters, pairs {', '.join(f'{t}->{s}' for t, s in space.pairs) or 'none'}; "
        f"sampler {request.sampler}; proxy {epochs} epochs; "
        + (f"pruning at epoch {grace_period(epochs)}" if pruning and epochs > 1 else "no pruning"))
    with _sigterm_as_interrupt(), _ray_session(request):  # Ray first: a bad --address fails before any training
        prepared = prepare_task(space_file.task, request.device, progress=say)
        cache = teacher_cache_for(prepared, space.teacher_paths())
        monitor = SearchMonitor(study, request.budget, status)
        if request.workers == 0:
            from autokd.search.local_backend import run_local

            run_local(study, space, prepared, cache, request.budget, monitor, pruning)
        else:
            from autokd.search.ray_backend import run_ray

            run_ray(study, space, prepared, cache, request.budget, request.workers, epochs, monitor, pruning)
    monitor.show(force=True)
    return study


@contextlib.contextmanager
def _ray_session(request: SearchRequest):
    """Join or start Ray for ``workers > 0``; shut down at the end what this process started."""
    if request.workers == 0:
        yield
        return
    import ray

    from autokd.search.ray_backend import start_ray

    started = start_ray(request.address, request.workers)
    try:
        yield
    finally:
        if started:
            ray.shutdown()


class _sigterm_as_interrupt:
    """SIGTERM takes the same clean path as Ctrl-C (trials re-queued, Ray shut down)."""

    def __enter__(self):
        self.previous = signal.getsignal(signal.SIGTERM)
        try:
            signal.signal(signal.SIGTERM, self._raise)
        except ValueError:  # not the main thread
            self.previous = None
        return self

    @staticmethod
    def _raise(signum, frame):
        raise KeyboardInterrupt

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)
        return False

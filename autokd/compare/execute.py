"""Running the full-length retrainings: parallel Ray tasks (local or a cluster), or in-process.

A run whose training diverges (:class:`~autokd.training.fit.TrainingFailed`), runs out of memory
or whose worker dies comes back as a failed result with its reason, and the other runs go on.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from typing import Callable, Optional

from autokd.config.strategy import MAX_SEED, Strategy
from autokd.errors import AutokdError


@dataclass
class Job:
    name: str
    kind: str
    strategy: Strategy  # its recipe carries the seed
    key: str
    validate_at: tuple[int, ...] = ()  # epochs validated besides the last (their accuracies: Outcome.curve)


@dataclass
class Outcome:
    """What one training run gave: accuracies, or the reason it failed."""

    val_acc: Optional[float]
    test_acc: Optional[float]
    seconds: float
    reason: Optional[str] = None  # set when training diverged
    steps: Optional[int] = None  # training steps, every model and stage of the scheme (the run's cost)
    footprint: Optional[dict] = None  # the shipped student's size and speed (autokd.compression.Footprint)
    curve: Optional[dict] = None  # {epoch: (val_acc, seconds into training)} of the validated epochs (validate_at)


@dataclass
class JobResult:
    job: Job
    outcome: Outcome


def _train(prepared, strategy: Strategy, threads: Optional[int] = None, validate_at: tuple[int, ...] = ()) -> Outcome:
    import torch

    from autokd.training.fit import TrainingFailed
    from autokd.training.run import train_strategy

    if threads:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    try:
        # validation only where asked and at the end: on small data it can cost more than an epoch
        result = train_strategy(prepared, strategy, validate_at=validate_at)
    except TrainingFailed as exc:
        return Outcome(None, None, time.perf_counter() - start, str(exc))
    except torch.OutOfMemoryError:
        return Outcome(None, None, time.perf_counter() - start, "out of memory")
    footprint = asdict(result.footprint) if result.footprint is not None else None
    curve = {s.epoch: (s.val_acc, s.seconds) for s in result.history} if validate_at else None
    return Outcome(result.val_acc, result.test_acc, result.seconds, steps=result.steps, footprint=footprint, curve=curve)


def _train_on_worker(prepared, strategy: Strategy, threads: int, validate_at: tuple[int, ...]) -> Outcome:
    """:func:`_train` in a Ray worker, on the data shipped by :func:`run_on_ray` (no copy of its own)."""
    from autokd.search.ray_shipping import in_worker

    return _train(in_worker(prepared), strategy, threads, validate_at)


def run_in_process(prepared, jobs: list[Job], on_done: Callable[[JobResult], None]) -> None:
    """The jobs one by one, on one torch thread like a Ray task (restored afterwards)."""
    import torch

    threads = torch.get_num_threads()
    try:
        for job in jobs:
            on_done(JobResult(job, _train(prepared, job.strategy, 1, job.validate_at)))
    finally:
        torch.set_num_threads(threads)


def run_on_ray(prepared, jobs: list[Job], workers: int, on_done: Callable[[JobResult], None]) -> None:
    """Every job as a Ray task of one CPU (plus a GPU share on GPU clusters); results as they finish.

    A task whose worker dies is run once more (``max_retries=1``); dying again, it is a failed run."""
    import ray

    gpus = ray.cluster_resources().get("GPU", 0)
    options = {"num_cpus": 1, "max_retries": 1}
    if gpus:
        options["num_gpus"] = min(1.0, gpus / max(workers, 1))
    from autokd.search.ray_shipping import for_workers

    remote = ray.remote(_train_on_worker).options(**options)
    # data and teacher travel once through the object store, the data held once for every worker
    prepared_ref = ray.put(for_workers(prepared))
    pending = {remote.remote(prepared_ref, job.strategy, 1, job.validate_at): job for job in jobs}
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(done[0])
            try:
                outcome = ray.get(done[0])
            except ray.exceptions.RayError as exc:  # the worker died twice (max_retries=1): record, go on
                outcome = Outcome(None, None, 0.0, f"the run's worker died ({type(exc).__name__})")
            on_done(JobResult(job, outcome))
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)


def run_jobs(prepared, jobs: list[Job], workers: Optional[int], on_done: Callable[[JobResult], None],
             address: Optional[str] = None) -> None:
    """``workers`` 0: the jobs one by one in this process; else as Ray tasks on the cluster at
    ``address`` (or ``RAY_ADDRESS``), or on a local Ray of ``workers`` CPUs (None: every CPU)
    started and shut down here."""
    if workers == 0:
        run_in_process(prepared, jobs, on_done)
        return
    from autokd.search.driver import ray_session

    with ray_session(address, workers) as cpus:
        run_on_ray(prepared, jobs, cpus, on_done)


def as_record(result: JobResult):
    """The run store's line for a finished job (:class:`~autokd.compare.results.RunRecord`)."""
    from autokd.compare.results import FAILED, OK, RunRecord

    j, o = result.job, result.outcome
    curve = {str(e): list(v) for e, v in o.curve.items()} if o.curve else None
    return RunRecord(j.name, j.kind, j.strategy.recipe.seed, o.val_acc, o.test_acc, o.seconds, j.key,
                     FAILED if o.reason else OK, o.reason, o.steps, o.footprint, curve)


def run_and_keep(prepared, todo: list[Job], store_of: Callable, workers: Optional[int], address: Optional[str],
                 status: Callable[[str, bool], None], describe: Callable[[JobResult], str]) -> None:
    """Run ``todo`` (see :func:`run_jobs`), adding each finished run to ``store_of(job)`` at once
    (an interruption loses no finished run) and telling ``status`` a progress line with ETA."""
    from autokd.formatting import format_seconds

    start, done = time.monotonic(), 0

    def on_done(result: JobResult) -> None:
        nonlocal done
        store_of(result.job).add(as_record(result))
        done += 1
        elapsed = time.monotonic() - start
        status(f"runs {done}/{len(todo)}  last: {describe(result)}  elapsed {format_seconds(elapsed)}  "
               f"eta {format_seconds(elapsed / done * (len(todo) - done))}", True)

    run_jobs(prepared, todo, workers, on_done, address)


def with_seed(strategy: Strategy, seed: int) -> Strategy:
    return replace(strategy, recipe=replace(strategy.recipe, seed=seed))


def seed_list(first: int, count: int) -> list[int]:
    """The recipe's seed and the ``count - 1`` after it, all within the largest seed."""
    if first + count - 1 > MAX_SEED:
        raise AutokdError(f"--seeds {count} from the recipe's seed {first} goes past the largest seed, 2**32 - 1; "
                          f"use at most {MAX_SEED - first + 1} seeds")
    return [first + i for i in range(count)]

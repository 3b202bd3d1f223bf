"""Running the full-length retrainings: parallel Ray tasks (local or a cluster), or in-process."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Optional

from autokd.config.strategy import Strategy


@dataclass
class Job:
    name: str
    kind: str
    strategy: Strategy  # its recipe carries the seed
    key: str


@dataclass
class JobResult:
    job: Job
    val_acc: float
    test_acc: float
    seconds: float


def _train(prepared, strategy: Strategy, threads: Optional[int] = None) -> tuple[float, float, float]:
    import torch

    from autokd.training.run import train_strategy

    if threads:
        torch.set_num_threads(threads)
    result = train_strategy(prepared, strategy, validate_at=())  # validation only at the end: it is all a run reports
    return result.val_acc, result.test_acc, result.seconds


def run_in_process(prepared, jobs: list[Job], on_done: Callable[[JobResult], None]) -> None:
    for job in jobs:
        on_done(JobResult(job, *_train(prepared, job.strategy)))


def run_on_ray(prepared, jobs: list[Job], workers: int, on_done: Callable[[JobResult], None]) -> None:
    """Every job as a Ray task of one CPU (plus a GPU share on GPU clusters); results as they finish."""
    import ray

    gpus = ray.cluster_resources().get("GPU", 0)
    options = {"num_cpus": 1, "max_retries": 1}
    if gpus:
        options["num_gpus"] = min(1.0, gpus / max(workers, 1))
    remote = ray.remote(_train).options(**options)
    prepared_ref = ray.put(prepared)  # data and teacher travel once through the object store
    pending = {remote.remote(prepared_ref, job.strategy, 1): job for job in jobs}
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(done[0])
            on_done(JobResult(job, *ray.get(done[0])))
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)


def run_jobs(prepared, jobs: list[Job], workers: int, on_done: Callable[[JobResult], None],
             address: Optional[str] = None) -> None:
    """``workers`` 0: the jobs one by one in this process; else as Ray tasks on the cluster at
    ``address`` (or ``RAY_ADDRESS``), or on a local Ray of ``workers`` CPUs started and shut down here."""
    if workers == 0:
        run_in_process(prepared, jobs, on_done)
        return
    import ray

    from autokd.search.ray_backend import start_ray

    started = start_ray(address, workers)
    try:
        run_on_ray(prepared, jobs, workers, on_done)
    finally:
        if started:
            ray.shutdown()


def with_seed(strategy: Strategy, seed: int) -> Strategy:
    return replace(strategy, recipe=replace(strategy.recipe, seed=seed))

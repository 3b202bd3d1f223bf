"""Trials as Ray Tune trials, with the Optuna study as the single source of truth.

A small Tune ``Searcher`` (:mod:`autokd.search.ray_searcher`) asks the study for each trial
(``study.ask``) and tells it the outcome: COMPLETE with the final validation accuracy, PRUNED
when ASHA stopped it early (never COMPLETE with an early value), FAIL with the reason when the
strategy broke training or the worker died. Data, teacher and cached teacher outputs reach the trials once through
Ray's object store (``tune.with_parameters``), the data and the cache shared by every worker
(:mod:`autokd.search.ray_shipping`).
"""

from __future__ import annotations

import os
import tempfile
from typing import Optional

from autokd.config.strategy import strategy_from_dict
from autokd.errors import AutokdError
from autokd.search.monitor import SearchMonitor
from autokd.search.shipped_space import needs_footprint
from autokd.search.study import METRIC_NAME as METRIC  # the study's metric is what Tune reports


def _trainable(config: dict, prepared=None, teacher_cache=None) -> None:
    """The Tune function trainable: one proxy training run, reporting at the pruning rungs and the end."""
    import torch
    from ray import tune

    from autokd.search.ray_shipping import in_worker
    from autokd.search.trial import run_trial

    torch.set_num_threads(max(1, int(config.get("threads", 1))))
    prepared, teacher_cache = in_worker(prepared), in_worker(teacher_cache)

    try:
        strategy = strategy_from_dict(config["strategy"])
    except AutokdError as exc:  # an invalid strategy fails its trial with the reason, not as a dead worker
        tune.report({METRIC: 0.0, "failed": f"invalid strategy: {exc}"})
        return
    measure = bool(config.get("measure"))
    # the last epoch is reported after training when the deployed student differs from the trained one
    # (compression) or its footprint is needed; else as before, from the training loop
    after = measure or not strategy.compression.empty

    def report(stats) -> None:
        if not (after and stats.epoch == stats.epochs):
            tune.report({METRIC: stats.val_acc, "epoch": stats.epoch, "train_loss": stats.train_loss,
                         "steps": stats.steps})

    outcome = run_trial(prepared, strategy, teacher_cache, report, config.get("report_at"), measure=measure)
    if outcome.failed:
        tune.report({METRIC: 0.0, "failed": outcome.reason})
    elif after:
        tune.report({METRIC: outcome.value, "epoch": strategy.recipe.epochs, "steps": outcome.steps,
                     "footprint": outcome.footprint})


def make_searcher(study, space, budget: int, epochs: int, monitor: SearchMonitor):
    """The Tune searcher bound to ``study`` (Ray Tune is imported here, not when this module loads)."""
    from autokd.search.ray_searcher import StudySearcher

    return StudySearcher(study, space, budget, epochs, monitor)


def start_ray(address: Optional[str], workers: Optional[int]) -> bool:
    """Connect to ``address`` (or ``RAY_ADDRESS``), else start a local Ray with ``workers`` CPUs
    (None: every CPU of this machine). Returns True when this process started Ray (and so must
    shut it down)."""
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")  # Ctrl-C reaches autokd, which re-queues trials
    address = address or os.environ.get("RAY_ADDRESS")
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR", "configure_logging": True}
    if address:
        check_address(address)
        try:
            ray.init(address=address, log_to_driver=False, logging_level="ERROR")
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise AutokdError(f"cannot connect to the Ray cluster at {address!r}: {first}") from None
        return False
    ray.init(address="local", num_cpus=workers or os.cpu_count() or 1, **quiet)
    return True


def check_address(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds on an address nothing listens on (``ray.init`` would wait for minutes)."""
    import socket

    if address == "auto":
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise AutokdError(f"Ray address {address!r} must look like HOST:PORT (or ray://HOST:PORT, or auto)")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise AutokdError(f"cannot reach the Ray cluster at {address!r}: {exc.strerror or exc}") from None


def run_ray(study, space, prepared, teacher_cache, budget: int, workers: int, epochs: int,
            monitor: SearchMonitor, pruning: bool = True) -> Optional[str]:
    """Run trials on the Ray cluster already started or joined (:func:`start_ray`) until the budget
    is taken; returns why it stopped early, if it did."""
    import ray
    from ray import tune

    from autokd.search.pruning import report_epochs, tune_scheduler
    from autokd.search.ray_shipping import for_workers

    gpus = ray.cluster_resources().get("GPU", 0)
    resources = {"cpu": 1, "gpu": min(1.0, gpus / workers)} if gpus else {"cpu": 1}
    # the data and the cache held once for every worker, not once per worker
    trainable = tune.with_parameters(_trainable, prepared=for_workers(prepared), teacher_cache=for_workers(teacher_cache))
    trainable = tune.with_resources(trainable, resources)
    searcher = make_searcher(study, space, budget, epochs, monitor)
    with tempfile.TemporaryDirectory(prefix="autokd-tune-") as tune_dir:
        tuner = tune.Tuner(
            trainable,
            param_space={"threads": 1, "report_at": report_epochs(epochs, pruning),
                         "measure": needs_footprint(space.spec)},
            tune_config=tune.TuneConfig(
                metric=METRIC, mode="max", search_alg=searcher, scheduler=tune_scheduler(epochs, pruning),
                num_samples=-1, max_concurrent_trials=workers, reuse_actors=True,  # the searcher says when to stop
            ),
            run_config=tune.RunConfig(
                name="search", storage_path=tune_dir, verbose=0,
                failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
            ),
        )
        try:
            tuner.fit()
        finally:
            searcher.interrupt_all()
    return searcher.stopped or None

"""What a comparison retrains: distinct strategies (contenders) and one job per contender and seed.

Two strategies are the same when their full-length forms are equal (the run key without the
seed). Trials of a study that found the same strategy count once, by the best of them, so
``top_k`` gives ``top_k`` distinct strategies when the study has them; a found strategy that is
also a baseline is one contender, named both ways (``trial 4 = kd``) and counted as found.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Optional

from autokd.config.baselines import Baseline
from autokd.compare.execute import Job, with_seed
from autokd.compare.results import BASELINE, FOUND, PROXY, RunRecord
from autokd.compare.store import run_key, strategy_key
from autokd.config.strategy import Recipe, Strategy
from autokd.search.export import full_length_strategy


@dataclass
class Contender:
    """One distinct strategy of the comparison."""

    kind: str  # FOUND or BASELINE
    strategy: Strategy  # full length; each run replaces its recipe's seed
    description: str
    key: str  # strategy_key: equal keys, equal strategies
    trial_number: Optional[int] = None  # found: the best trial that proposed it
    proxy_val: Optional[float] = None  # found: that trial's proxy validation accuracy
    baselines: list[str] = field(default_factory=list)  # the baselines that are this very strategy

    @property
    def name(self) -> str:
        found = [f"trial {self.trial_number}"] if self.kind == FOUND else []
        return " = ".join(found + self.baselines)


def found_contenders(entries, space_file, epochs: Optional[int], top_k: int) -> list[Contender]:
    """The best ``top_k`` distinct strategies among ``entries`` (a study's ranked complete trials)."""
    chosen: dict[str, Contender] = {}
    for entry in entries:
        strategy = full_length_strategy(space_file, entry.strategy, epochs)
        key = strategy_key(space_file.task, strategy)
        if key not in chosen:
            chosen[key] = Contender(FOUND, strategy, strategy.describe(), key, entry.number, entry.score)
            if len(chosen) == top_k:
                break
    return list(chosen.values())


def spread(entries: list, most: int) -> list:
    """At most ``most`` of ``entries`` (a Pareto front, most accurate first), spread evenly over it:
    the most and the least accurate kept."""
    if len(entries) <= most:
        return list(entries)
    if most == 1:
        return entries[:1]
    step = (len(entries) - 1) / (most - 1)
    return [entries[round(i * step)] for i in range(most)]


def shipped_baselines(found: list[Contender], baselines: list[Baseline], own: dict) -> list[Baseline]:
    """Each baseline again at every shipped student the found strategies use (their ``student``
    kwargs and ``compression``) other than the task's own (``own``: its student's kwargs), named
    ``NAME @ WHAT``."""
    from autokd.config.compression import Compression

    shipped, out = {}, []
    for c in found:
        s = c.strategy
        if {**own, **s.student} != own or not s.compression.empty:  # (the task's own size, written out: not)
            shipped.setdefault(json.dumps([s.student, asdict(s.compression)], sort_keys=True, default=str),
                               (s.student, s.compression))
    labels: dict[str, int] = {}
    for student, compression in shipped.values():
        what = ", ".join([" ".join(f"{k}={v}" for k, v in student.items())] * bool(student)
                         + [compression.describe()] * (not compression.empty))
        labels[what] = labels.get(what, 0) + 1
        what += f" #{labels[what]}" if labels[what] > 1 else ""  # two shipped students that read alike
        for b in baselines:
            if b.strategy.student or not b.strategy.compression.empty:
                continue  # a baseline that sets its own student stays as it is
            out.append(replace(b, name=f"{b.name} @ {what}", description=f"{b.description}; shipped as {what}",
                               strategy=replace(
                b.strategy, student=dict(student), compression=replace(compression) if compression else Compression())))
    return out


def fitting(prepared, contenders: list[Contender], generated: set[str]) -> tuple[list[Contender], list[str]]:
    """The contenders whose strategy fits the task's models (a baseline's pairs may name a layer a
    searched student lacks), and the names of those left out. Found strategies always fit; a
    baseline as the user wrote it (not in ``generated``, the copies at a searched student) that
    does not fit is an error naming it, before any training."""
    from autokd.errors import AutokdError

    kept, unfit = [], []
    for c in contenders:
        if c.kind == BASELINE:
            try:
                check_baseline(prepared, c.name, c.strategy)
            except AutokdError:
                if not set(c.baselines) <= generated:
                    raise
                unfit.append(c.name)
                continue
        kept.append(c)
    return kept, unfit


def check_baseline(prepared, name: str, strategy) -> None:
    """A baseline fits the task's models (its scheme's models, its student, its compression, its
    layers): else an AutokdError naming it, raised before any run (compare, calibrate)."""
    from autokd.errors import AutokdError
    from autokd.training.run import check_strategy

    try:
        check_strategy(prepared, strategy)
    except AutokdError as exc:
        raise AutokdError(f"baseline {name}: {exc}") from None


def with_baselines(found: list[Contender], baselines: list[Baseline], task) -> list[Contender]:
    """``found`` followed by the baselines; a baseline equal to a contender already there joins it."""
    contenders = list(found)
    by_key = {c.key: c for c in contenders}
    for b in baselines:
        key = strategy_key(task, b.strategy)
        if key in by_key:
            by_key[key].baselines.append(b.name)
        else:
            by_key[key] = Contender(BASELINE, b.strategy, b.description, key, baselines=[b.name])
            contenders.append(by_key[key])
    by_unique_name(contenders)  # runs, statistics and proxy values are matched by name
    return contenders


def by_unique_name(contenders: list[Contender]) -> dict[str, Contender]:
    """The contenders by name; two distinct strategies under one name would pool their runs, so that
    is an error (baseline names cannot hold the ' = ' and ' @ ' compare joins names with)."""
    from autokd.errors import AutokdError

    named: dict[str, Contender] = {}
    for c in contenders:
        if c.name in named:
            raise AutokdError(f"two different strategies are both named {c.name!r} in this comparison; rename the "
                              f"baseline(s) so that every compared strategy has a name of its own")
        named[c.name] = c
    return named


def proxy_jobs_for(contenders: list[Contender], proxy: Recipe, task) -> list[Job]:
    """One run at the search's proxy length (its recipe and seed) for each contender that has no
    proxy value of its own (the baselines; a found strategy has its trial's), for proxy fidelity
    over every compared strategy."""
    jobs = []
    for c in contenders:
        if c.proxy_val is None:
            strategy = replace(c.strategy, recipe=replace(proxy))
            jobs.append(Job(c.name, PROXY, strategy, run_key(task, strategy, proxy.seed)))
    return jobs


def jobs_for(contenders: list[Contender], seeds: list[int], task) -> list[Job]:
    """One run per contender and seed, keyed for the run store."""
    jobs = []
    for c in contenders:
        for seed in seeds:
            strategy = with_seed(c.strategy, seed)
            jobs.append(Job(c.name, c.kind, strategy, run_key(task, strategy, seed)))
    return jobs


def as_job(record: RunRecord, job: Job) -> RunRecord:
    """A stored run under the name and kind of the job it answers (stored runs are found by key)."""
    return replace(record, strategy=job.name, kind=job.kind)

"""What a calibration trains: varied strategies, each at full length over seeds and at every
candidate proxy length, as jobs for compare's executor (:mod:`autokd.compare.execute`).

Strategies: ``strategies`` drawn from the space by Optuna's RandomSampler (seeded: a resumed
calibration draws the same ones), plus the baselines the task can take. Each is trained

* at full length, as ``autokd export`` would write it (the task's full recipe), with seeds
  ``full.seed``, +1, ...: the ground truth is its mean TEST accuracy;
* at each proxy length E as a search trial runs it: the space's proxy recipe with ``epochs = E``
  and the proxy's seed, validated at the pruning rung (half of E) and at the end.

A schedule that anneals over the run (cosine) makes an E-epoch proxy a different run from the
first E epochs of a longer one, so there each length is a run of its own. With a schedule that
does not depend on the run's length (constant, step), one run at the longest length validated at
every shorter length and rung gives them all (its validation curve), for strategies that train
in one stage, compress nothing and have no parameter that follows the length (a DKD warm-up); the
others still run each length.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

from autokd.compare.execute import Job, seed_list, with_seed
from autokd.compare.store import run_key, strategy_key
from autokd.config.strategy import Recipe, Strategy
from autokd.errors import AutokdError

SAMPLED = "sampled"
BASELINE = "baseline"
FULL = "full"
PROXY = "proxy"
LENGTH_FRACTIONS = (1 / 8, 1 / 4, 1 / 2, 3 / 4)  # default lengths, as fractions of the full recipe
MIN_STRATEGIES = 3  # Spearman's rho needs three points


@dataclass
class Candidate:
    """One strategy of the calibration, at full length and at each proxy length."""

    name: str  # "sampled 3" or a baseline's name ("sampled 3 = kd": one strategy, several names)
    kind: str  # SAMPLED or BASELINE
    description: str
    full: Strategy  # with the full recipe (the seed is set per run)
    proxies: dict[int, Strategy]  # proxy length -> the strategy with that length's proxy recipe


@dataclass
class Reading:
    """Where one strategy's value at one proxy length is read: the run ``key`` of ``length``
    epochs, at ``epoch`` (its end, or a point of its curve), and its pruning ``rung``."""

    key: str
    length: int
    epoch: int
    rung: Optional[int]


@dataclass
class Plan:
    candidates: list[Candidate]
    lengths: list[int]
    full_seeds: list[int]
    proxy_seed: int
    anneals: bool  # the proxy schedule anneals over the run: every length is its own run
    jobs: list[Job]  # distinct by key
    full_keys: dict[tuple[str, int], str]  # (candidate, seed) -> run key
    readings: dict[tuple[str, int], Reading]  # (candidate, length) -> where its proxy value is


def rung_of(length: int) -> Optional[int]:
    """The epoch at which a search with pruning first decides (None: a 1-epoch proxy has no rung)."""
    from autokd.search.pruning import grace_period

    rung = grace_period(length)
    return rung if rung < length else None


def anneals(recipe: Recipe) -> bool:
    """Whether the learning rate at epoch e depends on the run's length (cosine: T_max = epochs; step:
    the milestones move with the length)."""
    return recipe.schedule == "cosine" or (recipe.schedule == "step" and bool(recipe.milestones))


def default_lengths(full_epochs: int, proxy_epochs: int) -> list[int]:
    """An eighth, a quarter, half and three quarters of the full recipe, and the task's proxy."""
    lengths = {max(1, round(full_epochs * f)) for f in LENGTH_FRACTIONS} | {proxy_epochs}
    return sorted(e for e in lengths if e <= full_epochs)


def check_lengths(lengths: list[int], full_epochs: int) -> list[int]:
    for e in lengths:
        if not 1 <= e <= full_epochs:
            raise AutokdError(f"--lengths {e}: a proxy length must be 1..{full_epochs} epochs (the task's full "
                              "recipe is the ground truth it is ranked against)")
    return sorted(set(lengths))


def draw_parameters(space, n: int, seed: int) -> list[dict]:
    """The parameters of ``n`` strategies drawn from ``space`` by Optuna's RandomSampler."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=seed))
    drawn = []
    for _ in range(n):
        trial = study.ask()
        space.suggest(trial)
        drawn.append(dict(trial.params))
        study.tell(trial, 0.0)
    return drawn


def sampled_candidates(space_file, lengths: list[int], n: int, seed: int, searched=None) -> list[Candidate]:
    """``n`` strategies from the space (``searched``: it bound already); at each length the space is
    searched with that proxy (a DKD warm-up is a share of it), and the full-length strategy is the
    one a search's trial exports."""
    from autokd.config.parse import to_mapping
    from autokd.search.binding import bind_space
    from autokd.search.export import full_length_strategy

    searched = searched or bind_space(space_file)
    spaces = {e: searched.at_proxy(space_file.task.recipes.proxy_at(e)) for e in lengths}
    out = []
    for i, params in enumerate(draw_parameters(searched, n, seed)):
        def pick(name, default, params=params):
            return params.get(name, default)

        full = full_length_strategy(space_file, to_mapping(searched.build(pick)))
        out.append(Candidate(f"sampled {i}", SAMPLED, full.describe(), full,
                             {e: spaces[e].build(pick) for e in lengths}))
    return out


def baseline_candidates(space_file, lengths: list[int], path: Optional[str],
                        pairs: list[tuple[str, str]]) -> tuple[list[Candidate], list[str]]:
    """The baselines the task can take (``pairs``: the bound space's layer pairs), each adapted to
    the full recipe and to every proxy length (a DKD warm-up is a share of the run); and the names
    left out."""
    from autokd.config.baselines import baselines_that_adapt

    task = space_file.task
    full, left_out = baselines_that_adapt(path, pairs, task.recipes.full, task)
    per_length = {e: {b.name: b.strategy for b in baselines_that_adapt(path, pairs, task.recipes.proxy_at(e),
                                                                       task)[0]} for e in lengths}
    return [Candidate(b.name, BASELINE, b.strategy.describe(), b.strategy, {e: per_length[e][b.name] for e in lengths})
            for b in full], left_out


def distinct_candidates(candidates: list[Candidate], task) -> list[Candidate]:
    """Candidates that are one strategy (at full length and at every proxy length) count once, by the
    first, named both ways (``sampled 3 = kd``, ``kd = hinton``): a strategy is one point of the ranking,
    however many names it has."""
    kept: dict[tuple, Candidate] = {}
    for c in candidates:
        key = (strategy_key(task, c.full), *(strategy_key(task, c.proxies[e]) for e in sorted(c.proxies)))
        first = kept.get(key)
        kept[key] = c if first is None else replace(first, name=f"{first.name} = {c.name}")
    return list(kept.values())


def _differ_only_in_length(proxies: dict[int, Strategy]) -> bool:
    """Whether a candidate's proxies are one strategy at several lengths: not when a parameter follows the
    length (a DKD warm-up, a share of the run), so a longer run's curve is not a shorter trial's run."""
    runs = list(proxies.values())
    return all(replace(s, recipe=replace(s.recipe, epochs=runs[0].recipe.epochs)) == runs[0] for s in runs)


def make_plan(space_file, candidates: list[Candidate], lengths: list[int], seeds: int) -> Plan:
    """The runs: every candidate at full length with ``seeds`` seeds and at every proxy length."""
    from autokd.training.schemes import SCHEMES

    task = space_file.task
    full_seeds = seed_list(task.recipes.full.seed, seeds)  # within the largest seed, as compare's
    proxy_seed, longest = task.recipes.proxy.seed, max(lengths)
    by_curve = not anneals(task.recipes.proxy_at(longest))
    jobs: dict[str, Job] = {}
    full_keys, readings = {}, {}

    def add(name: str, kind: str, strategy: Strategy, seed: int, validate_at=()) -> str:
        strategy = with_seed(strategy, seed)
        key = run_key(task, strategy, seed) + (f"@{','.join(map(str, validate_at))}" if validate_at else "")
        jobs.setdefault(key, Job(name, kind, strategy, key, tuple(validate_at)))
        return key

    for c in candidates:
        for seed in full_seeds:
            full_keys[(c.name, seed)] = add(c.name, FULL, c.full, seed)
        strategy = c.proxies[longest]
        if (by_curve and SCHEMES[strategy.scheme.kind].one_stage and strategy.compression.empty
                and _differ_only_in_length(c.proxies)):
            points = ({e for e in lengths} | {rung_of(e) for e in lengths}) - {None, longest}
            key = add(c.name, PROXY, strategy, proxy_seed, sorted(points))
            readings.update({(c.name, e): Reading(key, longest, e, rung_of(e)) for e in lengths})
            continue
        for e in lengths:
            rung = rung_of(e)
            key = add(c.name, PROXY, c.proxies[e], proxy_seed, (rung,) if rung else ())
            readings[(c.name, e)] = Reading(key, e, e, rung)
    return Plan(candidates, lengths, full_seeds, proxy_seed, not by_curve, list(jobs.values()), full_keys, readings)

"""The samplers a search can use: Optuna's TPE, random search and NSGA-II (``evolution``), and
the PPO controller.

Each run of a sampler on a study continues the study rather than restarting it: the first run on
a new study (the process that created it) is seeded with the search's ``--seed``, so it is
reproducible; every later run (a raised budget, a resume) and every parallel process draws from a
stream of its own, derived from the seed and the process's identity (:func:`run_seed`). A sampler
seeded again with the same seed would otherwise propose the very trials the first run did.
"""

from __future__ import annotations

import hashlib

from autokd.search.settings import SAMPLERS


def run_seed(seed: int, created: bool, owner_tag: str) -> int:
    """The sampler seed of one run: ``seed`` itself for the run that created the study, else a
    32-bit seed derived from ``seed`` and ``owner_tag`` (host, boot, pid, process start time)."""
    if created:
        return seed
    return int.from_bytes(hashlib.sha256(f"{seed}|{owner_tag}".encode()).digest()[:4], "big")


def _tpe(space, seed):
    import optuna

    # multivariate with the constant liar: several trials in flight do not all land on one point
    # constraints: each finished trial's values are set on it (Trial.set_constraint), which TPE
    # and NSGA-II read from the study (autokd.search.objectives.trial_constraints)
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True)


def _random(space, seed):
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


# NSGA-II with one objective is a plain evolutionary search; its default population (50) is half
# of a 100-trial budget, so a generation of 10 lets about ten of them evolve
EVOLUTION_POPULATION = 10


def _evolution(space, seed):
    import optuna

    return optuna.samplers.NSGAIISampler(population_size=EVOLUTION_POPULATION, seed=seed)


def _ppo(space, seed):
    from autokd.search.samplers.ppo import PPOSampler

    return PPOSampler(space, seed=seed)


def check_sampler_fits(name: str, space) -> None:
    """PPO learns from one reward: it takes neither several objectives nor constraints."""
    from autokd.errors import AutokdError

    spec = space.spec
    if name == "ppo" and (spec.multi_objective or spec.constraints):
        what = f"objectives {', '.join(spec.objectives)}" if spec.multi_objective else "constraints"
        raise AutokdError(f"--sampler ppo learns from one reward and does not take {what}; use --sampler tpe, "
                          f"random or evolution (NSGA-II), or search accuracy alone without constraints")


FACTORIES = {"tpe": _tpe, "random": _random, "ppo": _ppo, "evolution": _evolution}
assert tuple(FACTORIES) == SAMPLERS


def make_sampler(name: str, space, seed: int | None = None):
    """An Optuna sampler by name; ``space`` is the bound :class:`~autokd.search.space.SearchSpace`."""
    import warnings

    import optuna

    from autokd.errors import unknown

    if name not in FACTORIES:
        raise unknown("sampler", name, SAMPLERS)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return FACTORIES[name](space, seed)

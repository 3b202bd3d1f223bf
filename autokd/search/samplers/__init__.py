"""The samplers a search can use: Optuna's TPE and random search, and the PPO controller."""

from __future__ import annotations

SAMPLERS = ("tpe", "random", "ppo")


def make_sampler(name: str, space, seed: int | None = None):
    """An Optuna sampler by name; ``space`` is the bound :class:`~autokd.search.space.SearchSpace`."""
    import optuna

    from autokd.errors import unknown

    import warnings

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    if name == "tpe":
        # multivariate with the constant liar by default in Optuna 5: several trials in flight
        # do not all land on the same point
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "ppo":
        from autokd.search.samplers.ppo import PPOSampler

        return PPOSampler(space, seed=seed)
    raise unknown("sampler", name, SAMPLERS)

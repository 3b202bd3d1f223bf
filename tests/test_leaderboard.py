"""The leaderboard's parts that need no search: parameter importances."""

from __future__ import annotations

import optuna


def test_importances_need_five_complete_trials_and_are_the_same_for_the_same_study():
    """One complete trial gave every parameter the same importance, 1/n, as if it were measured."""
    from autokd.search.leaderboard import importances

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: t.suggest_float("a", 0, 1) + 0.1 * t.suggest_float("b", 0, 1), n_trials=1)
    assert importances(study) == {}
    study.optimize(lambda t: t.suggest_float("a", 0, 1) + 0.1 * t.suggest_float("b", 0, 1), n_trials=7)
    first = importances(study)
    assert set(first) == {"a", "b"} and first == importances(study) and first["a"] > first["b"]

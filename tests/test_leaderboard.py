"""The leaderboard's parts that need no search: parameter importances."""

from __future__ import annotations

import optuna
import pytest

from autokd.errors import AutokdError


def test_importances_need_five_complete_trials_and_are_the_same_for_the_same_study():
    """One complete trial gave every parameter the same importance, 1/n, as if it were measured."""
    from autokd.search.leaderboard import importances

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: t.suggest_float("a", 0, 1) + 0.1 * t.suggest_float("b", 0, 1), n_trials=1)
    assert importances(study) == {}
    study.optimize(lambda t: t.suggest_float("a", 0, 1) + 0.1 * t.suggest_float("b", 0, 1), n_trials=7)
    first = importances(study)
    assert set(first) == {"a", "b"} and first == importances(study) and first["a"] > first["b"]


def test_a_confirmed_trial_that_later_trials_outscored_no_longer_ranks_first():
    """After a raised budget, a trial confirmed at 53 % (value 54) ranked above unconfirmed 69 % trials
    and was the exported winner; confirmed trials no unconfirmed value beats still rank first."""
    from autokd.search.confirm import store_confirmation
    from autokd.search.leaderboard import ranked
    from autokd.search.ledger import STRATEGY_ATTR

    study = optuna.create_study(direction="maximize")
    for value in (54.35, 69.92, 69.42, 69.25):
        study.add_trial(optuna.trial.create_trial(value=value, params={}, distributions={},
                                                  user_attrs={STRATEGY_ATTR: {"alpha": 0.5}}))
    store_confirmation(study, 0, {"values": [54.35, 52.8, 52.8], "mean": 53.32, "se": 0.5})
    assert [e.number for e in ranked(study)] == [1, 2, 3, 0]
    store_confirmation(study, 1, {"values": [69.92, 68.0, 68.0], "mean": 68.64, "se": 0.6})
    assert [e.number for e in ranked(study)] == [1, 2, 3, 0]  # 68.64 confirmed ranks first, above 69.42
    store_confirmation(study, 2, {"values": [69.42, 69.0, 69.3], "mean": 69.24, "se": 0.1})
    assert [e.number for e in ranked(study)] == [2, 1, 3, 0]


def test_trials_that_differ_only_in_a_searched_lr_or_a_loss_parameter_read_apart():
    """Two DKD trials with other betas, or the same strategy at two learning rates, read alike."""
    from autokd.config.strategy import Strategy, strategy_to_dict
    from autokd.search.leaderboard import Entry, format_leaderboard

    def entry(number, strategy):
        return Entry(rank=number, number=number, value=50.0 - number, strategy=strategy_to_dict(strategy), seconds=1.0)

    beta2, beta8 = (Strategy(logit_loss="dkd", logit_params={"beta": b}) for b in (2.0, 8.0))
    lines = format_leaderboard([entry(1, beta2), entry(2, beta8)]).splitlines()[1:]
    assert "dkd(beta=2, " in lines[0] and "dkd(beta=8, " in lines[1]  # and the warmup the recipe gives it
    assert not any("lr=" in line for line in lines)  # one learning rate: not repeated on every line
    slow, fast = Strategy(), Strategy()
    slow.recipe.lr, fast.recipe.lr = 0.01, 0.05
    lines = format_leaderboard([entry(1, slow), entry(2, fast)]).splitlines()[1:]
    assert lines[0].endswith("kd T=4 alpha=0.9, lr=0.01") and lines[1].endswith("kd T=4 alpha=0.9, lr=0.05")
    for damaged in ([1], "x"):  # a damaged study's lr is reported as the strategy's error, not a traceback
        bad = entry(2, fast)
        bad.strategy["recipe"]["lr"] = damaged
        with pytest.raises(AutokdError, match="lr"):
            format_leaderboard([entry(1, slow), bad])

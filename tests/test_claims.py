"""Claiming trials without a search: a sampler stuck on one point does not end the search while the
space still has strategies (no training needed: the trials are told by hand)."""

from __future__ import annotations

import optuna
from conftest import PLAIN_SPACE, write_space

from autokd.search.binding import bind_space
from autokd.search.claims import RANDOM_AFTER, claim_trial
from autokd.search.ledger import DUPLICATE_ATTR, param_key
from autokd.search.space_file import load_space_file


class StuckSampler(optuna.samplers.BaseSampler):
    """Proposes the low end of every range and the first of every choice, always (as a converged TPE
    re-proposed its best categorical point once the continuous knob under another scheme was forgotten)."""

    def infer_relative_search_space(self, study, trial):
        return {}

    def sample_relative(self, study, trial, search_space):
        return {}

    def sample_independent(self, study, trial, param_name, distribution):
        if isinstance(distribution, optuna.distributions.CategoricalDistribution):
            return distribution.choices[0]
        return distribution.low


def test_a_sampler_that_keeps_proposing_a_tried_strategy_is_helped_by_random_proposals(tmp_path):
    """It stopped after 100 duplicates, "the space looks exhausted", with most of the budget unused."""
    space = bind_space(load_space_file(write_space(tmp_path / "s.yaml", space=PLAIN_SPACE)))
    assert space.size() is None  # continuous: never exhausted
    study = optuna.create_study(direction="maximize", sampler=StuckSampler())
    first = claim_trial(study, space, budget=5)
    study.tell(first.trial, 50.0)
    second = claim_trial(study, space, budget=5)
    assert second is not None and param_key(second.trial.params) != param_key(first.trial.params)
    duplicates = [t for t in study.trials if DUPLICATE_ATTR in t.user_attrs]
    assert len(duplicates) == RANDOM_AFTER and all(t.user_attrs[DUPLICATE_ATTR] == 0 for t in duplicates)
    assert isinstance(study.sampler, StuckSampler)  # the study's own sampler again

"""Export's strategy at full length: the parts of a trial that travel with it (no search needed)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from conftest import TINY_TASK, write_space

from autokd.config.strategy import Strategy, strategy_to_dict
from autokd.search.export import full_length_strategy
from autokd.search.space_file import load_space_file


@pytest.mark.parametrize("lr, kept", [(0.05, True), ({"low": 0.001, "high": 0.1, "log": True}, True), (None, False)])
def test_a_learning_rate_the_space_sets_travels_with_the_strategy(tmp_path, lr, kept):
    """A fixed lr in the space trained every trial, and export, compare and calibrate dropped it."""
    space_file = load_space_file(write_space(tmp_path / "s.yaml", task=TINY_TASK, space={"lr": lr}))
    full = space_file.task.recipes.full
    trial = Strategy(alpha=0.5, recipe=replace(space_file.task.recipes.proxy, lr=0.05))
    out = full_length_strategy(space_file, strategy_to_dict(trial))
    assert out.recipe.lr == (0.05 if kept else full.lr) and out.recipe.epochs == full.epochs
    assert full_length_strategy(space_file, strategy_to_dict(trial), epochs=3).recipe.epochs == 3


def test_an_exported_config_leaves_out_at_on_maps_of_one_position_so_train_takes_it(tmp_path, tiny_prepared):
    """A search may draw at or nst on a pair that pools to one position (always 0); export wrote it and
    `autokd train` refused the exported config."""
    import optuna

    from autokd.config import PairLoss, load_config
    from autokd.search.export import export_config
    from autokd.search.ledger import STRATEGY_ATTR
    from autokd.search.settings import SETTINGS_ATTR, SearchSettings
    from autokd.training.run import check_architecture

    space_file = load_space_file(write_space(tmp_path / "s.yaml", space={"pair_losses": ["at", "fitnet"]}))
    study = optuna.create_study(direction="maximize", storage=f"sqlite:///{tmp_path / 's.db'}", study_name="x")
    study._storage.set_study_system_attr(study._study_id, SETTINGS_ATTR,
                                         SearchSettings(space_file.text, space_file.source).to_dict())
    drawn = Strategy(alpha=0.5, pairs=[PairLoss("pool", "pool", "at"), PairLoss("stages.1", "stages.1", "fitnet")],
                     recipe=space_file.task.recipes.proxy)
    study.add_trial(optuna.trial.create_trial(value=50.0, params={}, distributions={},
                                              user_attrs={STRATEGY_ATTR: strategy_to_dict(drawn)}))
    text = export_config(study)
    assert "# Left out: at on pool -> pool, maps of one position where it is always 0" in text
    (tmp_path / "best.yaml").write_text(text)
    config = load_config(tmp_path / "best.yaml")
    assert [(p.teacher, p.loss) for p in config.strategy.pairs] == [("stages.1", "fitnet")]
    check_architecture(config.task, tiny_prepared.data, config.strategy)  # what train checks: accepted

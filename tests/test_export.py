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

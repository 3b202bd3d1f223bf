"""Recipes at another length: a step schedule's milestones move with the run (the proxy, a config's own
epochs, train --epochs), and schedules that do less than they say are warned about in a user's files."""

from __future__ import annotations

import copy

import pytest

from autokd.config import Recipe, load_config
from conftest import TINY_TASK, write_config, write_space


STEP_FULL = {"epochs": 240, "optimizer": "sgd", "lr": 0.05, "schedule": "step", "milestones": [150, 180, 210]}


def test_a_shorter_run_moves_a_step_schedules_milestones_with_it(tmp_path):
    """The proxy (a quarter of full), a config's own epochs and train --epochs kept milestones 150, 180,
    210 over 60 or 30 epochs: the learning rate never dropped, silently."""
    from autokd.search.space_file import load_space_file

    assert Recipe(**STEP_FULL).with_epochs(60).milestones == [38, 45, 53]
    assert Recipe(**STEP_FULL).with_epochs(3).milestones == [2, 2, 2]  # as far down in all, before the last epoch
    assert Recipe(**STEP_FULL).with_epochs(1).milestones == []
    task = {**copy.deepcopy(TINY_TASK), "recipes": {"full": STEP_FULL}}
    parsed = load_space_file(write_space(tmp_path / "s.yaml", task=task)).task
    assert (parsed.recipes.proxy.epochs, parsed.recipes.proxy.milestones) == (60, [38, 45, 53])
    own = {**copy.deepcopy(TINY_TASK), "recipes": {"full": STEP_FULL, "proxy": {"epochs": 30, "schedule": "cosine"}}}
    assert load_space_file(write_space(tmp_path / "o.yaml", task=own)).task.recipes.proxy.milestones == []
    write_space(tmp_path / "t.yaml", task=task)
    config = write_config(tmp_path / "c.yaml", {"alpha": 0.5, "recipe": {"epochs": 10}}, "t.yaml")
    assert load_config(config).strategy.recipe.milestones == [6, 8, 9]
    assert load_config(config, epochs=240).strategy.recipe.milestones == [150, 180, 210]  # from full's, not 10's
    exported = write_config(tmp_path / "e.yaml", {"alpha": 0.5, "recipe": STEP_FULL}, "t.yaml")  # every key written
    assert load_config(exported, epochs=60).strategy.recipe.milestones == [38, 45, 53]


@pytest.mark.parametrize("recipe, needle", [
    ({"epochs": 100, "schedule": "step", "milestones": [150]}, "milestones [150] are not before the run's last epoch (100)"),
    ({"epochs": 100, "schedule": "cosine", "milestones": [50]}, "milestones apply to schedule: step, but the schedule is cosine"),
    ({"epochs": 100, "schedule": "step"}, "schedule step without milestones never lowers the learning rate"),
])
def test_a_schedule_written_to_do_nothing_is_warned_about_in_a_users_files_and_still_reads(tmp_path, recipe, needle):
    """Warned, not refused: a study made with such a task (before the check) must stay usable, and so
    must the configs it exports."""
    import warnings

    from autokd.search.space_file import load_space_file, space_file_from_text

    task = {**copy.deepcopy(TINY_TASK), "recipes": {"full": recipe}}
    space = write_space(tmp_path / "s.yaml", task=task)
    escaped = needle.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")
    with pytest.warns(RuntimeWarning, match=escaped):
        load_space_file(space)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        space_file_from_text(space.read_text(), str(space))  # a stored study's task: read as it is
    write_space(tmp_path / "ok.yaml")
    config = write_config(tmp_path / "c.yaml", {"alpha": 0.5, "recipe": recipe}, "ok.yaml")
    with pytest.warns(RuntimeWarning, match=r"^c\.yaml: strategy\.recipe\."):
        load_config(config)


def test_milestones_that_never_acted_do_not_act_once_moved():
    """Milestones at or past a run's end (never lowering its rate) were clamped into a shorter or longer
    run, where they lowered it (gamma squared at epoch 3 of 4)."""
    from autokd.config.task import Recipes

    late = Recipe(epochs=8, schedule="step", milestones=[4, 8, 9])
    assert late.with_epochs(4).milestones == [2] and late.with_epochs(16).milestones == [8]
    assert Recipe(epochs=8, schedule="step", milestones=[8]).with_epochs(2).milestones == []
    cosine_proxy = Recipes(full=Recipe(epochs=8, schedule="step", milestones=[4, 6]),
                           proxy=Recipe(epochs=4, schedule="cosine"))
    assert cosine_proxy.proxy_at(2) == Recipe(epochs=2, schedule="cosine")  # no step milestones on a cosine proxy

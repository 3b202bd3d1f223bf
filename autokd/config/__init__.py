"""Plain-data configuration: tasks, strategies, recipes, and the YAML files that hold them."""

from autokd.config.files import load_config, load_task, resolve_space_path, shipped_spaces
from autokd.config.strategy import CE_ONLY, PairLoss, Recipe, RelationLoss, Strategy, strategy_from_dict, strategy_to_dict
from autokd.config.task import ModelSpec, Recipes, TaskSpec, TeacherSpec, task_from_dict

__all__ = [
    "CE_ONLY", "ModelSpec", "PairLoss", "Recipe", "Recipes", "RelationLoss", "Strategy", "TaskSpec",
    "TeacherSpec", "load_config", "load_task", "resolve_space_path", "shipped_spaces", "strategy_from_dict",
    "strategy_to_dict", "task_from_dict",
]

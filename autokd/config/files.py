"""Finding and reading the YAML files: shipped spaces, user spaces and train configs.

A train config holds ``task`` (a shipped space name such as ``default``, a path to a space or
config file, or an inline mapping) and ``strategy``. Strategy recipe keys that are absent are
taken from the task's full-length recipe.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Optional, Union

from autokd.config.strategy import Strategy, strategy_from_dict
from autokd.config.task import TaskSpec, check_schedules, task_from_dict
from autokd.config.yaml_io import load_yaml_file
from autokd.errors import ConfigError, short_repr, unknown

CONFIG_KEYS = ("task", "strategy")


# the shipped baseline sets live beside the spaces (autokd compare --baselines NAME)
SHIPPED_BASELINES = ("baselines", "scheme_baselines")


def shipped_spaces() -> dict[str, Path]:
    """Search spaces shipped with autokd (``search_spaces/*.yaml``, not the baseline sets), by name."""
    folder = resources.files("autokd.search_spaces")
    return {
        Path(entry.name).stem: Path(str(entry))
        for entry in folder.iterdir()
        if entry.name.endswith(".yaml") and Path(entry.name).stem not in SHIPPED_BASELINES
    }


def resolve_space_path(ref: Union[str, Path]) -> Path:
    """A shipped space name (``default``) or a path to a YAML file."""
    ref_str = str(ref)
    if len(ref_str) > 4096 or "\0" in ref_str:
        raise ConfigError(f"{short_repr(ref_str)} is not a space name or a path (at most 4096 characters, no NUL bytes)")
    spaces = shipped_spaces()
    if ref_str in spaces:
        return spaces[ref_str]
    path = Path(ref_str).expanduser()
    if path.exists() or ref_str.endswith((".yaml", ".yml")) or "/" in ref_str:
        if not path.exists():
            raise ConfigError(f"file not found: {path}")
        return path
    raise unknown("search space", ref_str, spaces)


def load_task(ref: Union[str, Path, dict], where: str = "task") -> TaskSpec:
    """A task from a shipped space name, a YAML file holding a ``task`` section, or a mapping."""
    if isinstance(ref, dict):
        return task_from_dict(ref, where)
    mapping, where = task_mapping(ref)
    task = task_from_dict(mapping, where)
    check_schedules(task, where)
    return task


def task_mapping(ref: Union[str, Path], relative_to: Union[str, Path, None] = None,
                 _via: Optional[Path] = None) -> tuple[dict, str]:
    """The raw ``task`` mapping a reference names, and where it was read (for error messages).

    ``ref``: a shipped space name (``default``) or a YAML file holding a ``task``; a relative path
    is taken relative to the folder of ``relative_to`` (the file that refers to it). A file whose
    own ``task`` is a reference (the shipped ``layer_search``: ``task: default``) is followed one
    level; a chain of two references is refused.
    """
    ref_str = str(ref)
    looks_like_a_path = ref_str.endswith((".yaml", ".yml")) or "/" in ref_str
    if relative_to is not None and looks_like_a_path and not Path(ref_str).expanduser().is_absolute():
        ref = Path(relative_to).expanduser().parent / ref_str
    path = resolve_space_path(ref)
    data = load_yaml_file(path)
    if "task" not in data:
        raise ConfigError(f"{path} has no 'task' section")
    if isinstance(data["task"], str) and _via is None:
        return task_mapping(data["task"], relative_to=path, _via=path)
    if isinstance(data["task"], str):
        raise ConfigError(f"{path}: task must be an inline mapping there (reached through {_via}, which names it "
                          f"as its task), not another reference")
    if not isinstance(data["task"], dict):
        raise ConfigError(f"{path}: task must be a mapping (or a shipped space name or file), "
                          f"not {short_repr(data['task'])}")
    return with_paths_resolved(data["task"], path), f"{path.name}: task"


DATA_PATHS = ("root", "path", "test_path")  # data keys that name files or folders


def with_paths_resolved(task, written_in: Union[str, Path]):
    """``task`` with a relative ``data.root``, ``data.path``, ``data.test_path``, ``teacher.checkpoint``
    or ``teachers[i].checkpoint`` made absolute, relative to the folder of the file it was ``written_in``
    (as a task file named in a config is), so a file means the same data and teachers from any working
    directory, and a study and an export store absolute paths. Anything else is left to the parser."""
    if not isinstance(task, dict):
        return task
    folder = Path(written_in).expanduser().absolute().parent
    out = dict(task)
    out["data"] = _resolved(task.get("data"), DATA_PATHS, folder)
    out["teacher"] = _resolved(task.get("teacher"), ("checkpoint",), folder)
    if isinstance(task.get("teachers"), list):
        out["teachers"] = [_resolved(entry, ("checkpoint",), folder) for entry in task["teachers"]]
    return {key: value for key, value in out.items() if key in task}


def _resolved(section, keys: tuple, folder: Path):
    """``section`` (a mapping; anything else as it is) with its relative path ``keys`` made absolute."""
    if not isinstance(section, dict):
        return section
    resolved = dict(section)
    for key in keys:
        value = section.get(key)
        if isinstance(value, str) and value and "\0" not in value and not Path(value).expanduser().is_absolute():
            resolved[key] = os.path.normpath(folder / value)
    return resolved


@dataclass
class Config:
    """A train config: the task and the strategy to train its student with."""

    task: TaskSpec
    strategy: Strategy
    source: str


def load_config(path: Union[str, Path], epochs: Optional[int] = None) -> Config:
    """The train config at ``path``; ``epochs`` overrides its recipe's length before the strategy is read, so
    what follows the length (a DKD warm-up the config leaves out) follows the override."""
    data = load_yaml_file(path)
    for key in data:
        if key not in CONFIG_KEYS:
            raise ConfigError(f"{path}: unknown top-level key {short_repr(key, 60)}; allowed: {', '.join(CONFIG_KEYS)}")
    for key in CONFIG_KEYS:
        if key not in data:
            raise ConfigError(f"{path}: missing top-level key {key!r}")
    task_ref = data["task"]
    if isinstance(task_ref, str):
        task = task_from_dict(*task_mapping(task_ref, relative_to=path))
    elif isinstance(task_ref, dict):
        task = load_task(with_paths_resolved(task_ref, path), where=f"{Path(path).name}: task")
    else:
        raise ConfigError(f"{path}: task must be a shipped space name, a path to a space file or a mapping, "
                          f"got {short_repr(task_ref, 60)}")
    check_schedules(task, f"{Path(path).name}: task")
    strategy_data, where = data["strategy"], f"{Path(path).name}: strategy"
    strategy = strategy_from_dict(strategy_data, base_recipe=task.recipes.full, where=where)
    stated = strategy_data.get("recipe") if isinstance(strategy_data.get("recipe"), dict) else {}
    strategy.recipe.check_schedule(f"{where}.recipe", written="schedule" in stated or "milestones" in stated)
    if epochs is not None and epochs != strategy.recipe.epochs:  # the length, its milestones moved with it:
        recipe = {**stated, "epochs": epochs}  # the config's own from its own, else the task's full recipe's
        if "milestones" in stated:
            recipe["milestones"] = strategy.recipe.with_epochs(epochs).milestones
        strategy = strategy_from_dict({**strategy_data, "recipe": recipe}, base_recipe=task.recipes.full, where=where)
    return Config(task=task, strategy=strategy, source=str(path))

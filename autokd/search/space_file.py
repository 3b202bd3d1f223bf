"""Reading a search-space file: the task and the space, validated together."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from autokd.config.files import resolve_space_path, task_mapping, with_paths_resolved
from autokd.config.task import TaskSpec, check_schedules, task_from_dict
from autokd.config.yaml_io import dump_yaml, load_yaml_file, load_yaml_text
from autokd.errors import ConfigError
from autokd.search.space import SpaceSpec, space_from_dict

SPACE_FILE_KEYS = ("task", "space")


@dataclass
class SpaceFile:
    task: TaskSpec
    space: SpaceSpec
    text: str  # the normalised YAML of task + space, stored with the study
    source: str


def load_space_file(ref: Union[str, Path], overrides: Optional[dict] = None) -> SpaceFile:
    """A shipped space by name (``default``) or a path to a space file; ``overrides``: keys of its
    ``space`` section replaced (``constraints`` merged), as command-line flags set them."""
    path = resolve_space_path(ref)
    data = load_yaml_file(path)
    if overrides:
        space = dict(data.get("space") or {}) if isinstance(data.get("space") or {}, dict) else data.get("space")
        if isinstance(space, dict):
            constraints = overrides.get("constraints")
            if constraints and isinstance(space.get("constraints"), dict):
                overrides = {**overrides, "constraints": {**space["constraints"], **constraints}}
            data = {**data, "space": {**space, **overrides}}
    if isinstance(data.get("task"), dict):  # a relative data.root: relative to this file, stored absolute
        data = {**data, "task": with_paths_resolved(data["task"], path)}
    space_file = space_file_from_dict(data, source=str(path))
    check_schedules(space_file.task, f"{path.name}: task")  # a user's file (a stored study's was checked then)
    return space_file


def space_file_from_text(text: str, source: str) -> SpaceFile:
    return space_file_from_dict(load_yaml_text(text, source), source)


def space_file_from_dict(data: dict, source: str) -> SpaceFile:
    name = Path(source).name
    for key in data:
        if key not in SPACE_FILE_KEYS:
            raise ConfigError(f"{name}: unknown top-level key {key!r}; allowed: {', '.join(SPACE_FILE_KEYS)}")
    if "task" not in data:
        raise ConfigError(f"{name}: missing top-level key 'task'")
    task_data, where = data["task"], f"{name}: task"
    if isinstance(task_data, str):  # a shipped space name or a file: the study stores the task inline
        task_data, where = task_mapping(task_data, relative_to=source)
    task = task_from_dict(task_data, where)
    space = space_from_dict(data.get("space"), f"{name}: space")
    text = dump_yaml({"task": task_data, "space": data.get("space") or {}})
    return SpaceFile(task=task, space=space, text=text, source=source)

"""A distillation task: data, teacher, student and the training recipes, as plain data.

The ``task`` section is shared by search-space files and train configs::

    task:
      name: mnist1d-cnn
      data: {name: mnist1d, num_samples: 30000, train_size: 4000}
      teacher: {model: cnn1d, kwargs: {channels: 64}, recipe: {epochs: 30}}
      teachers:                     # optional: more teachers, for the ensemble (multi-teacher) scheme
        - {model: cnn1d, kwargs: {channels: 48}, recipe: {epochs: 30, seed: 1}}
      student: {model: cnn1d, kwargs: {channels: 8}}
      recipes:
        full: {epochs: 20, optimizer: adam, lr: 0.01}
        proxy: {epochs: 5}          # other keys come from full; epochs defaults to full // 4
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, replace
from typing import Optional

from autokd.config.parse import convert, from_mapping, to_mapping
from autokd.config.strategy import Recipe, recipe_from_dict
from autokd.data.spec import DataSpec
from autokd.errors import ConfigError, key_text, short_repr


@dataclass
class ModelSpec:
    """A model by registry name, ``torchvision/NAME`` or ``package.module:callable``, with kwargs."""

    model: str
    kwargs: dict = field(default_factory=dict)


@dataclass
class TeacherSpec(ModelSpec):
    """The teacher: trained by autokd with ``recipe`` (and cached), or loaded from ``checkpoint``.

    The teacher trains on the whole training split (``data.train_size`` limits the student only).
    """

    checkpoint: Optional[str] = None
    recipe: Recipe = field(default_factory=Recipe)


@dataclass
class Recipes:
    full: Recipe = field(default_factory=Recipe)
    proxy: Recipe = field(default_factory=lambda: Recipe(epochs=5))

    def own_milestones(self) -> bool:
        """Whether the proxy's step milestones are its own (written), not the full recipe's moved."""
        derived = replace(self.proxy, milestones=self.full.with_epochs(self.proxy.epochs).milestones)
        return self.proxy.schedule == "step" and self.proxy != derived

    def proxy_at(self, epochs: int) -> Recipe:
        """The proxy at another length, as a space whose proxy says ``epochs: E`` trains it: milestones it
        takes from the full recipe move from the full recipe's (no rounding on rounding), its own from
        its own (:meth:`proxy_milestones` says what a space writes for it)."""
        if self.proxy.schedule != "step" or self.own_milestones():
            return self.proxy.with_epochs(epochs)
        return replace(self.proxy, epochs=epochs, milestones=self.full.with_epochs(epochs).milestones)

    def proxy_milestones(self, epochs: int) -> Optional[list[int]]:
        """The milestones a space's proxy at ``epochs`` writes to train :meth:`proxy_at` (None: not a
        step schedule)."""
        at = self.proxy_at(epochs)
        return at.milestones if at.schedule == "step" else None


@dataclass
class TaskSpec:
    name: str
    data: DataSpec
    teacher: TeacherSpec
    student: ModelSpec
    recipes: Recipes = field(default_factory=Recipes)
    teachers: list[TeacherSpec] = field(default_factory=list)  # more teachers (the ensemble scheme's)

    def with_teacher(self, index: int) -> "TaskSpec":
        """This task with ``teachers[index]`` as its teacher (to load, cache and key it like the teacher)."""
        return replace(self, teacher=self.teachers[index], teachers=[])

    def teacher_key(self) -> str:
        """Cache key of a trained teacher: (model, data, recipe, seed)."""
        payload = {
            "model": self.teacher.model,
            "kwargs": self.teacher.kwargs,
            # the teacher trains on all of train; whether files may be fetched does not change them
            "data": {**to_mapping(self.data), "train_size": None, "download": False},
            "recipe": to_mapping(self.teacher.recipe),
            "format": 1,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def task_from_dict(data: dict, where: str = "task") -> TaskSpec:
    """Parse and validate a ``task`` mapping; recipes may be partial (proxy inherits from full)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping, got {short_repr(data, 60)}")
    data = dict(data)
    for key in ("data", "teacher", "student"):
        if key not in data:
            raise ConfigError(f"missing key {where}.{key}")
    recipes = data.pop("recipes", None) or {}
    teacher = _teacher_from(data.pop("teacher"), f"{where}.teacher")
    teachers = convert(list[dict], data.pop("teachers", None) or [], f"{where}.teachers")
    task = from_mapping(TaskSpec, {**data, "teacher": {"model": ""}, "recipes": {}}, where)
    task.teacher = teacher
    task.teachers = [_teacher_from(t, f"{where}.teachers[{i}]") for i, t in enumerate(teachers)]
    if not isinstance(recipes, dict):
        raise ConfigError(f"{where}.recipes must be a mapping with keys full and proxy")
    for key in recipes:
        if key not in ("full", "proxy"):
            raise ConfigError(f"unknown key {where}.recipes.{key_text(key)}; allowed: full, proxy")
    full = recipe_from_dict(recipes.get("full") or {}, where=f"{where}.recipes.full")
    proxy_data = recipes.get("proxy") or {}  # epochs left out: a quarter of full (milestones moving with it)
    proxy = recipe_from_dict({"epochs": max(1, full.epochs // 4), **proxy_data}, base=full,
                             where=f"{where}.recipes.proxy")
    task.recipes = Recipes(full=full, proxy=proxy)
    _check_values(task, where)
    return task


def check_schedules(task: TaskSpec, where: str = "task") -> None:
    """The task's recipes' schedules do what they say (:meth:`Recipe.check_schedule`): checked where a
    user's file is read, not in a stored study's task (accepted when the study was made)."""
    written = [(task.teacher.recipe, f"{where}.teacher.recipe"), (task.recipes.full, f"{where}.recipes.full")]
    written += [(t.recipe, f"{where}.teachers[{i}].recipe") for i, t in enumerate(task.teachers)]
    for recipe, at in written:
        recipe.check_schedule(at)
    recipes = task.recipes
    if recipes.proxy.schedule != recipes.full.schedule or recipes.own_milestones():  # else said of full
        recipes.proxy.check_schedule(f"{where}.recipes.proxy", written=False)


def _teacher_from(data, where: str) -> TeacherSpec:
    convert(dict, data, where)  # a mapping, else a ConfigError (not a ValueError)
    data = dict(data)
    recipe = data.pop("recipe", None) or {}
    teacher = from_mapping(TeacherSpec, data, where)
    teacher.recipe = recipe_from_dict(recipe, where=f"{where}.recipe")
    return teacher


def _check_values(task: TaskSpec, where: str) -> None:
    """What the parser's types do not say: data bounds, paths, model kwargs as plain data."""
    from autokd.data.validate import check_path_text

    _validate_data(task.data, f"{where}.data")
    convert(str, task.name, f"{where}.name")
    _check_name_text(task.name, f"{where}.name")
    roles = [("teacher", task.teacher), *((f"teachers[{i}]", t) for i, t in enumerate(task.teachers)),
             ("student", task.student)]
    for role, spec in roles:
        if getattr(spec, "checkpoint", None) is not None:
            check_path_text(spec.checkpoint, f"{where}.{role}.checkpoint")
    for role, spec in roles:
        convert(str, spec.model, f"{where}.{role}.model")
        for key, value in spec.kwargs.items():
            if not isinstance(key, str) or not key.isidentifier():
                raise ConfigError(f"{where}.{role}.kwargs: {short_repr(key, 60)} is not a keyword name; "
                                  f"kwargs are name: value pairs")
            check_plain(value, f"{where}.{role}.kwargs.{key}")


def _check_name_text(name: str, where: str) -> None:
    """A task name is printed on one line and builds report and study names: no control characters."""
    import unicodedata

    bad = next((c for c in name if unicodedata.category(c) in ("Cc", "Zl", "Zp")), None)
    if bad is not None:
        raise ConfigError(f"{where} must be one line of text without control characters (newline, tab, ...); "
                          f"got {short_repr(name, 60)} (it holds {bad!r})")


_PLAIN = (str, int, float, bool, type(None))


def check_plain(value, where: str) -> None:
    """Model kwargs are plain data (finite numbers, strings, lists, mappings): they key the teacher cache
    as JSON."""
    stack = [(value, where)]
    while stack:
        item, at = stack.pop()
        if isinstance(item, dict):
            if not all(isinstance(k, str) for k in item):
                raise ConfigError(f"{at}: mapping keys must be strings, got {short_repr(list(item), 60)}")
            stack.extend((v, f"{at}.{k}") for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, f"{at}[{i}]") for i, v in enumerate(item))
        elif not isinstance(item, _PLAIN):
            raise ConfigError(f"{at} must be a number, string, list or mapping, got {short_repr(item)} "
                              f"({type(item).__name__})")
        elif isinstance(item, float) and not math.isfinite(item):
            raise ConfigError(f"{at} must be a finite number, got {item}")


def _validate_data(data: DataSpec, where: str) -> None:
    """The data section's values and bounds, checked before anything is read or generated."""
    from autokd.data.spec import DATASETS
    from autokd.data.validate import validate_spec
    from autokd.errors import unknown_at

    if data.name not in DATASETS:
        raise unknown_at(f"{where}.name", data.name, DATASETS)
    validate_spec(data, where)

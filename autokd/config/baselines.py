"""Hand-tuned baselines as data, adapted to a task's layer pairs.

A baseline is a strategy whose pairs name a position among the task's pairs (``all``,
``first``, ``middle``, ``last``) instead of module paths, so one file serves every task.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
import re
import unicodedata
from typing import Union

from autokd.config.baseline_schemes import DoesNotFit, fit_scheme
from autokd.config.files import SHIPPED_BASELINES
from autokd.config.strategy import Recipe, Strategy, strategy_from_dict
from autokd.config.yaml_io import load_yaml_file
from autokd.errors import ConfigError, did_you_mean, short_repr

POSITIONS = ("all", "first", "middle", "last")


@dataclass
class Baseline:
    name: str
    description: str
    strategy: Strategy


def default_baselines_path() -> Path:
    return Path(str(resources.files("autokd.search_spaces") / "baselines.yaml"))


def load_baselines(path: Union[str, Path, None], pairs: list[tuple[str, str]], recipe: Recipe,
                   task=None) -> list[Baseline]:
    """Baselines from ``path`` (default: the shipped file) adapted to ``pairs`` (and to ``task``'s
    models and teachers, for scheme baselines), trained with ``recipe``."""
    path, entries = _entries(path)
    return [adapt(name, entry, pairs, recipe, where=f"{path.name}: baselines.{name}", task=task)
            for name, entry in entries.items()]


def baselines_that_adapt(path: Union[str, Path, None], pairs: list[tuple[str, str]],
                         recipe: Recipe, task=None) -> tuple[list[Baseline], list[str]]:
    """Like :func:`load_baselines`, but a well-formed baseline the task cannot take (a feature loss
    on a task without pairs, a multi-teacher baseline on a task with one teacher, an assistant
    where teacher and student are not one architecture at two sizes) is left out: returns
    (baselines, names left out). A malformed entry is still an error."""
    path, entries = _entries(path)
    adapted, left_out = [], []
    for name, entry in entries.items():
        try:
            adapted.append(adapt(name, entry, pairs, recipe, where=f"{path.name}: baselines.{name}", task=task))
        except DoesNotFit:
            left_out.append(name)
    return adapted, left_out


def _entries(path: Union[str, Path, None]) -> tuple[Path, dict]:
    if path in SHIPPED_BASELINES:  # a shipped set by name
        path = default_baselines_path().with_name(f"{path}.yaml")
    elif path and not Path(path).expanduser().exists() and not _looks_like_a_file(str(path)):
        raise ConfigError(f"baselines {short_repr(str(path))}: no such file, and not a shipped set"
                          f"{did_you_mean(str(path), SHIPPED_BASELINES)}; give a baselines YAML file or one of "
                          f"{', '.join(SHIPPED_BASELINES)}")
    path = Path(path).expanduser() if path else default_baselines_path()
    data = load_yaml_file(path)
    if set(data) != {"baselines"} or not isinstance(data["baselines"], dict) or not data["baselines"]:
        raise ConfigError(f"{path}: expected one top-level key 'baselines' mapping names to strategies")
    for name in data["baselines"]:
        _check_name(name, path)
    return path, data["baselines"]


def _looks_like_a_file(text: str) -> bool:
    return text.endswith((".yaml", ".yml")) or "/" in text


# the labels compare and calibrate give their own strategies ("trial 17", "sampled 3")
_RESERVED = re.compile(r"(trial|sampled) [0-9]+")
# what compare and calibrate put between names: "trial 4 = kd" (one strategy, two names), "kd @ channels=8"
_JOINTS = (" = ", " @ ")


def _check_name(name, path: Path) -> None:
    if name is None:
        raise ConfigError(f"{path}: a baseline name is empty (null); name it")
    if not isinstance(name, str):  # YAML reads true, 1 as other types
        raise ConfigError(f"{path}: baseline name {short_repr(name)} was read as {type(name).__name__}, not text (YAML "
                          f"reads true, false, null and numbers so); quote the name as you wrote it")
    if not name.strip():
        raise ConfigError(f"{path}: a baseline name is empty ({name!r}); name it with some text")
    if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in name):  # not Cf: emoji joiners, RTL marks
        raise ConfigError(f"{path}: baseline name {name!r} holds a control character (a line break, a tab); name it "
                          f"with printable text on one line")
    if name != name.strip():
        raise ConfigError(f"{path}: baseline name {name!r} starts or ends with spaces (it would read like "
                          f"{name.strip()!r}); remove them")
    if _RESERVED.fullmatch(name):
        raise ConfigError(f"{path}: baseline name {name!r} is how compare and calibrate label their own strategies "
                          f"(trial N, sampled N); name it otherwise")
    for joint in _JOINTS:
        if joint in name:
            raise ConfigError(f"{path}: baseline name {name!r} holds {joint!r}, which compare and calibrate put "
                              f"between names (a strategy found and a baseline that are one: 'trial 4 = kd'; a "
                              f"baseline at a searched student: 'kd @ channels=8'); name it without {joint!r}")


def adapt(name: str, entry: dict, pairs: list[tuple[str, str]], recipe: Recipe, where: str, task=None) -> Baseline:
    """One baseline entry as a concrete strategy on ``pairs``."""
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a mapping (a strategy)")
    entry = dict(entry)
    if "recipe" in entry:
        raise ConfigError(f"{where}.recipe: a baseline trains with the recipe of the comparison that runs it (the "
                          f"task's student recipe at full length, the proxies for calibrate), so its own would be "
                          f"ignored; remove recipe")
    description = entry.pop("description", None)
    warmup_fraction = entry.pop("warmup_fraction", None)
    concrete = []
    for i, pair in enumerate(entry.pop("pairs", []) or []):
        if not isinstance(pair, dict) or "at" not in pair:
            raise ConfigError(f"{where}.pairs[{i}] must be a mapping with 'at' ({', '.join(POSITIONS)}), 'loss' and 'weight'")
        pair = dict(pair)
        chosen = sorted({"teacher", "student"} & set(pair))
        if chosen:
            raise ConfigError(f"{where}.pairs[{i}]: {' and '.join(chosen)} next to 'at' (which chooses the layers: "
                              f"{', '.join(POSITIONS)}) would override it; give 'at', 'loss', 'weight' (and "
                              f"'params') only")
        for teacher, student in select(pair.pop("at"), pairs, f"{where}.pairs[{i}].at"):
            concrete.append({"teacher": teacher, "student": student, **pair})
    entry["pairs"] = concrete
    if warmup_fraction is not None:
        if isinstance(warmup_fraction, bool) or not isinstance(warmup_fraction, (int, float)) or not 0 <= warmup_fraction <= 1:
            raise ConfigError(f"{where}.warmup_fraction must be a number in [0, 1], got {warmup_fraction!r}")
        entry["logit_params"] = {**(entry.get("logit_params") or {}), "warmup": max(1, round(warmup_fraction * recipe.epochs))}
    strategy = fit_scheme(strategy_from_dict(entry, base_recipe=recipe, where=where), task, where)
    return Baseline(name, str(description or strategy.describe()), replace(strategy, recipe=recipe))


def select(position: str, pairs: list[tuple[str, str]], where: str) -> list[tuple[str, str]]:
    if position not in POSITIONS:
        raise ConfigError(f"{where} is {position!r}; allowed: {', '.join(POSITIONS)}")
    if not pairs:
        raise DoesNotFit(f"{where}: the task has no layer pairs to put this loss on")
    if position == "all":
        return list(pairs)
    index = {"first": 0, "middle": (len(pairs) - 1) // 2, "last": len(pairs) - 1}[position]
    return [pairs[index]]

"""Reading and writing YAML files: safe loader only, errors with file and line."""

from __future__ import annotations

from pathlib import Path
import re
from typing import Any

import yaml

from autokd.errors import ConfigError


class _Loader(yaml.SafeLoader):
    """The safe loader, reading YAML 1.2 numbers too: ``1e-3`` is a float, not the string '1e-3'."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"""),
    list("-+0123456789"),
)


def load_yaml_file(path: str | Path) -> dict:
    """Load a YAML mapping from ``path`` with ``yaml.safe_load`` (no tags, nothing evaluated)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ConfigError(f"file not found: {path}")
    if path.is_dir():
        raise ConfigError(f"{path} is a folder, expected a YAML file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    return load_yaml_text(text, source=str(path))


def load_yaml_text(text: str, source: str = "<text>") -> dict:
    """Parse YAML text that must hold a mapping; syntax errors name the line."""
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}, line {mark.line + 1}, column {mark.column + 1}" if mark else source
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"YAML syntax error in {where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"YAML error in {source}: {exc}") from None
    if data is None:
        raise ConfigError(f"{source} is empty, expected a YAML mapping")
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must hold a YAML mapping at the top, not a {type(data).__name__}")
    return data


def dump_yaml(data: Any) -> str:
    """Plain block-style YAML, keys in the order given."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)


def load_yaml_value(text: str) -> Any:
    """Any YAML value (a scalar from the command line, or text autokd wrote itself)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass

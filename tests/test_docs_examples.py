"""Every YAML example in the README and docs/ parses as what it shows, on the default task.

A block is read the way a user would use it: a ``strategy`` block as a train config (with
``task: default`` when it names no task), a ``space`` block as a space file (likewise) bound to
the task's models, a ``baselines`` block as a baselines file adapted to the default task's pairs,
a ``task`` block alone as a task. A block whose ``task`` has no name is lines to paste into a
space file (what ``autokd calibrate`` prints): it is merged into the default space first.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def _blocks() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        text = page.read_text()
        for match in re.finditer(r"```yaml\n(.*?)```", text, re.S):
            line = text.count("\n", 0, match.start()) + 1
            found.append((f"{page.relative_to(REPO)}:{line}", match.group(1)))
    return found


BLOCKS = _blocks()


def _merged(base: dict, changes: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in changes.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def test_the_docs_have_yaml_examples():
    assert len(BLOCKS) >= 8, [where for where, _ in BLOCKS]


@pytest.mark.parametrize("where,text", BLOCKS, ids=[where for where, _ in BLOCKS])
def test_yaml_example_parses(where, text, tmp_path):
    from autokd.config import load_config, load_task
    from autokd.config.baselines import load_baselines
    from autokd.config.files import shipped_spaces
    from autokd.search.binding import bind_space
    from autokd.search.space_file import load_space_file

    data = yaml.safe_load(text)
    assert isinstance(data, dict), where
    path = tmp_path / "example.yaml"
    if isinstance(data.get("task"), dict) and "name" not in data["task"]:  # lines to paste into a space file
        data = _merged(yaml.safe_load(shipped_spaces()["default"].read_text()), data)
    if "baselines" in data:
        path.write_text(yaml.safe_dump(data))
        space = bind_space(load_space_file("default"))
        assert load_baselines(path, space.pairs, space.base_recipe), where
    elif "strategy" in data:
        path.write_text(yaml.safe_dump({"task": "default", **data}))
        assert load_config(path).strategy, where
    elif "space" in data:
        path.write_text(yaml.safe_dump({"task": "default", **data}))
        assert bind_space(load_space_file(path)).dimensions() is not None, where
    else:
        assert set(data) == {"task"}, where
        assert load_task(data["task"]).name, where

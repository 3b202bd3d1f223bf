"""A relative data.root means the folder next to the file that wrote it, from any working directory,
and the study stores the absolute path."""

from __future__ import annotations

import copy

import pytest
import yaml

from autokd.config import load_config, load_task
from autokd.errors import ConfigError
from autokd.search.space_file import load_space_file, space_file_from_text
from conftest import TINY_TASK


def _task(root) -> dict:
    task = copy.deepcopy(TINY_TASK)
    task["data"] = {**task["data"], "root": root}
    return task


def _write(path, data: dict):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_a_space_file_s_relative_root_is_next_to_it_and_stored_absolute(tmp_path, monkeypatch):
    space = _write(tmp_path / "project" / "space.yaml", {"task": _task("data/imgs"), "space": {}})
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    loaded = load_space_file(str(space))
    expected = str(tmp_path / "project" / "data" / "imgs")
    assert loaded.task.data.root == expected and expected in loaded.text
    assert space_file_from_text(loaded.text, loaded.source).task.data.root == expected  # resume reads it as stored
    assert load_task(str(space)).data.root == expected  # `autokd teacher --space FILE`


def test_a_config_s_roots_inline_or_in_a_task_file_are_relative_to_their_own_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    inline = _write(tmp_path / "configs" / "c.yaml", {"task": _task("../imgs"), "strategy": {"alpha": 0.5}})
    assert load_config(inline).task.data.root == str(tmp_path / "imgs")
    _write(tmp_path / "tasks" / "t.yaml", {"task": _task("imgs")})
    referring = _write(tmp_path / "configs" / "r.yaml", {"task": "../tasks/t.yaml", "strategy": {"alpha": 0.5}})
    assert load_config(referring).task.data.root == str(tmp_path / "tasks" / "imgs")


@pytest.mark.parametrize("root", ["/abs/imgs", "~/data", None])
def test_absolute_home_and_missing_roots_are_left_as_written(tmp_path, root):
    space = _write(tmp_path / "s.yaml", {"task": _task(root), "space": {}})
    assert load_space_file(str(space)).task.data.root == root


def test_a_root_that_is_not_a_string_is_still_the_parser_s_error(tmp_path):
    space = _write(tmp_path / "s.yaml", {"task": _task(5), "space": {}})
    with pytest.raises(ConfigError, match="root"):
        load_space_file(str(space))


def test_teacher_checkpoints_are_relative_to_their_file_too(tmp_path, monkeypatch):
    """A relative checkpoint was read from the working folder: `autokd train` on an export (which wrote it
    relative) run elsewhere loaded another teacher.pt, silently."""
    task = copy.deepcopy(TINY_TASK)
    task["teacher"]["checkpoint"] = "teacher.pt"
    task["teachers"] = [{"model": "cnn1d", "checkpoint": "../second.pt"}]
    space = _write(tmp_path / "project" / "space.yaml", {"task": task, "space": {}})
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    loaded = load_space_file(str(space))
    assert loaded.task.teacher.checkpoint == str(tmp_path / "project" / "teacher.pt")
    assert loaded.task.teachers[0].checkpoint == str(tmp_path / "second.pt")
    assert space_file_from_text(loaded.text, loaded.source).task.teacher.checkpoint == loaded.task.teacher.checkpoint
    config = _write(tmp_path / "configs" / "c.yaml", {"task": "../project/space.yaml", "strategy": {"alpha": 0.5}})
    assert load_config(config).task.teacher.checkpoint == str(tmp_path / "project" / "teacher.pt")

"""A user's code is fingerprinted by its source, so caches built on it notice when it changes: the teacher
cache and the cached stages of a scheme (born-again generations, assistants)."""

from __future__ import annotations

import copy
import importlib
import sys
from types import SimpleNamespace

import pytest
from conftest import TINY_TASK

from autokd.config import strategy_from_dict, task_from_dict
from autokd.training.stage_cache import stage_key
from autokd.user_code import source_fingerprint

NET = ("import torch.nn as nn\n\n"
       "class Net(nn.Module):\n"
       "    def __init__(self, num_classes=10):\n"
       "        super().__init__()\n"
       "        self.body = nn.Sequential(nn.Flatten(), nn.Linear(40, 8), nn.{act}())\n"
       "        self.fc = nn.Linear(8, num_classes)\n\n"
       "    def forward(self, x):\n"
       "        return self.fc(self.body(x))\n")


@pytest.fixture
def package(tmp_path, monkeypatch):
    """``fppkg`` re-exports ``Net`` from ``fppkg/net.py`` in its ``__init__``."""
    (tmp_path / "fppkg").mkdir()
    (tmp_path / "fppkg" / "__init__.py").write_text("from .net import Net\n")
    (tmp_path / "fppkg" / "net.py").write_text(NET.format(act="ReLU"))
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield tmp_path / "fppkg"
    for name in [m for m in sys.modules if m == "fppkg" or m.startswith("fppkg.")]:
        del sys.modules[name]


def test_a_re_exported_callable_is_fingerprinted_by_the_file_that_defines_it(package):
    """Only the package's __init__ was hashed: a changed net.py reused a teacher trained on the old code."""
    before = source_fingerprint("fppkg:Net")
    (package / "net.py").write_text(NET.format(act="Tanh"))
    assert source_fingerprint("fppkg:Net") != before
    (package / "net.py").write_text(NET.format(act="ReLU"))
    assert source_fingerprint("fppkg:Net") == before


def test_a_callable_in_its_own_module_hashes_as_that_file_alone(tmp_path, monkeypatch):
    """The fingerprint of the common case is unchanged (caches keyed by it stay valid)."""
    import hashlib

    (tmp_path / "fpsingle.py").write_text(NET.format(act="ReLU"))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert source_fingerprint("fpsingle:Net") == hashlib.sha256(NET.format(act="ReLU").encode()).hexdigest()[:16]
    finally:
        sys.modules.pop("fpsingle", None)


def test_a_scheme_stage_key_follows_the_student_s_and_assistant_s_source(package):
    """A born-again generation trained with the old student code was loaded into the new one."""
    task = copy.deepcopy(TINY_TASK)
    task["student"] = {"model": "fppkg:Net"}
    prepared = SimpleNamespace(task=task_from_dict(task), teacher_info=SimpleNamespace(fingerprint="t"),
                               data=SimpleNamespace(fingerprint="d"))
    strategy = strategy_from_dict({"alpha": 0.5, "scheme": {"kind": "born_again", "generations": 2}},
                                  base_recipe=prepared.task.recipes.full)
    before = stage_key(prepared, strategy, strategy.recipe, "born_again/1")
    assert stage_key(prepared, strategy, strategy.recipe, "born_again/1") == before
    (package / "net.py").write_text(NET.format(act="Tanh"))
    assert stage_key(prepared, strategy, strategy.recipe, "born_again/1") != before


def test_an_assistant_s_stage_key_follows_its_model_s_source(package):
    """The assistant's model named only inside the stage's name: its changed code reused the old assistant."""
    from autokd.training.schemes.assistant import assistant_key

    prepared = SimpleNamespace(task=task_from_dict(copy.deepcopy(TINY_TASK)), teacher_info=SimpleNamespace(fingerprint="t"),
                               data=SimpleNamespace(fingerprint="d"))
    strategy = strategy_from_dict({"alpha": 0.5, "scheme": {"kind": "assistant", "model": "fppkg:Net"}},
                                  base_recipe=prepared.task.recipes.full)
    before = assistant_key(prepared, strategy, strategy.recipe)
    (package / "net.py").write_text(NET.format(act="Tanh"))
    assert assistant_key(prepared, strategy, strategy.recipe) != before

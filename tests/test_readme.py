"""The README's Python example runs as written (on the tiny task, as the config an export writes)."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import torch
import yaml
from conftest import TINY_TASK

README = Path(__file__).resolve().parent.parent / "README.md"


def _python_blocks(section: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"## {section}")
    end = text.find("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start:end if end > 0 else None], re.S)


def test_the_training_loop_example_runs(tmp_path, monkeypatch):
    (block,) = _python_blocks("Using a strategy in your own training loop")
    config = {"task": copy.deepcopy(TINY_TASK),
              "strategy": {"temperature": 4.0, "alpha": 0.5,
                           "pairs": [{"teacher": "stages.1", "student": "stages.1", "loss": "fitnet", "weight": 1.0}],
                           "relations": [{"loss": "crd", "weight": 0.5}], "recipe": {"epochs": 2}}}
    (tmp_path / "best.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(block, str(README), "exec"), scope)  # noqa: S102 - the README's own code
    assert set(scope["out"].parts) == {"ce", "kd", "fitnet@stages.1", "crd"}
    assert torch.isfinite(scope["out"].total)
    assert all(p.grad is None for p in scope["prepared"].teacher.parameters())  # the teacher stays frozen

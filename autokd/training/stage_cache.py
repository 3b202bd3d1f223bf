"""Models trained as intermediate stages of a scheme (born-again generations), kept on disk.

A stage is keyed by everything that made it: the task, the teacher's fingerprint, the strategy
(its scheme left out, so generation 1 of a 3-generation run is generation 1 of a 2-generation
run), the recipe with its seed, and the stage's name. A repeated stage is loaded, not trained
again, and its training steps (kept in the file beside the weights) count as if it were, so a
run's cost does not depend on what was cached before. Files are written whole (a temporary file
renamed into place), so concurrent trials that train the same stage at once leave one good file;
an unreadable file, or one an older autokd wrote without the stage's steps, is trained again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from autokd.config.parse import to_mapping
from autokd.config.schemes import SingleScheme
from autokd.errors import AutokdError


def stage_key(prepared, strategy, recipe, stage: str, models: tuple = ()) -> str:
    """The stage's key; ``models``: further ``package.module:callable`` models it builds (an assistant),
    whose source is part of the key as the task's models' is."""
    payload = {"task": to_mapping(prepared.task), "teacher": prepared.teacher_info.fingerprint,
               "data": getattr(prepared.data, "fingerprint", ""),
               "strategy": to_mapping(replace(strategy, scheme=SingleScheme(), recipe=recipe)),
               "stage": stage, "format": 1}
    if torch.get_num_threads() != 1:  # another float sum order: what one thread trains is reproduced by one
        payload["threads"] = torch.get_num_threads()
    sources = user_code_sources([payload["task"], to_mapping(strategy), list(models)])
    if sources:  # changed model code must not reuse weights trained with the old code
        payload["sources"] = sources
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:24]


USER_CODE = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")  # package.module:callable


def user_code_sources(mappings: list) -> dict[str, str]:
    """The source fingerprint of every ``package.module:callable`` the mappings name (models, a stage's
    assistant or peers), by name."""
    from autokd.user_code import source_fingerprint

    found: dict[str, str] = {}

    def walk(value) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)
        elif isinstance(value, str) and USER_CODE.fullmatch(value) and value not in found:
            try:
                found[value] = source_fingerprint(value)
            except AutokdError:  # not importable code after all (the task's checks name real mistakes)
                found[value] = ""


    walk(mappings)
    return {name: fp for name, fp in found.items() if fp}


class StageCache:
    """``root``: the cache folder (None: nothing is kept)."""

    def __init__(self, root: Optional[Path]):
        self.folder = Path(root) / "stages" if root is not None else None

    def load(self, key: str, model: nn.Module) -> Optional[int]:
        """Fill ``model`` with the stage's weights and return the steps that trained it; None when
        the stage is not cached (or unreadable, or kept without its steps)."""
        path = self._path(key)
        if path is None or not path.is_file():
            return None
        try:
            kept = torch.load(path, map_location="cpu", weights_only=True)
            steps = kept.get("steps") if isinstance(kept, dict) else None
            if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
                return None  # not a stage file, or an older one without its cost: train it again
            model.load_state_dict(kept["weights"])
        except (OSError, RuntimeError, ValueError, EOFError, KeyError, TypeError, AttributeError):
            return None
        return steps

    def save(self, key: str, model: nn.Module, steps: int) -> None:
        """Keep the stage and the ``steps`` it was trained for; a cache that cannot be written only
        costs the stage again next time."""
        path = self._path(key)
        if path is None:
            return
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            os.close(fd)
            weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
            torch.save({"weights": weights, "steps": int(steps)}, tmp)
            os.chmod(tmp, 0o644)  # as the teachers: mkstemp's 0600 would hide it from the machine's other users
            os.replace(tmp, path)
            tmp = None
        except (OSError, RuntimeError):  # torch's zip writer reports a full disk as a RuntimeError
            return
        finally:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)

    def _path(self, key: str) -> Optional[Path]:
        return self.folder / f"{key}.pt" if self.folder is not None else None

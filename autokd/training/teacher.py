"""The teacher: loaded from a user checkpoint, or trained by autokd and cached by key."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import nn

from autokd.config.strategy import CE_ONLY
from autokd.config.task import TaskSpec
from autokd.errors import AutokdError
from autokd.models.registry import build_model
from autokd.training.distiller import Distiller
from autokd.training.fit import EpochStats, accuracy, fit


@dataclass
class TeacherInfo:
    source: str  # "checkpoint", "cache" or "trained"
    path: str
    val_acc: float
    test_acc: float


def build_teacher_model(task: TaskSpec, data) -> nn.Module:
    return build_model(task.teacher.model, task.teacher.kwargs, data.num_classes, data.input_shape)


def load_checkpoint(model: nn.Module, path: str) -> None:
    """Load a state dict saved with ``torch.save`` (safely: ``weights_only=True``) into ``model``."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise AutokdError(f"teacher checkpoint not found: {file}")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for files that are not checkpoints
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AutokdError(f"{file} is not a loadable PyTorch checkpoint (weights only): {first}") from None
    if isinstance(state, dict):
        for key in ("state_dict", "model", "model_state_dict"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise AutokdError(f"{file} holds no state dict (expected a mapping of parameter names to tensors)")
    _load_state(model, state, file)


def _load_state(model: nn.Module, state: dict, file: Path) -> None:
    """``load_state_dict`` with a one-line error naming what does not fit."""
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines()[1:] if ln.strip()]
        detail = lines[0] if lines else str(exc).splitlines()[0]
        if len(detail) > 300:
            detail = detail[:300] + "..."
        raise AutokdError(f"checkpoint {file} does not fit the teacher model: {detail}") from None


def teacher_cache_path(task: TaskSpec, cache_root: Path) -> Path:
    return cache_root / "teachers" / f"{task.teacher.model.replace('/', '_').replace(':', '_')}-{task.teacher_key()}.pt"


def get_teacher(
    task: TaskSpec,
    data,
    device,
    cache_root: Path,
    on_epoch: Optional[Callable[[EpochStats], None]] = None,
    retrain: bool = False,
) -> tuple[nn.Module, TeacherInfo]:
    """The task's teacher on ``device`` in eval mode, with its validation and test accuracy.

    ``data`` must be the teacher's data (all of the training split). A checkpoint named in the
    task wins; otherwise a cached teacher with the same key is reused, else one is trained.
    """
    model = build_teacher_model(task, data).to(device)
    if task.teacher.checkpoint:
        load_checkpoint(model, task.teacher.checkpoint)
        model.to(device)
        source, path = "checkpoint", str(Path(task.teacher.checkpoint).expanduser())
    else:
        path = teacher_cache_path(task, cache_root)
        if path.is_file() and not retrain:
            state = torch.load(path, map_location="cpu", weights_only=True)
            _load_state(model, state["state_dict"], path)
            model.to(device)
            source = "cache"
        else:
            torch.manual_seed(task.teacher.recipe.seed)
            model = build_teacher_model(task, data).to(device)
            distiller = Distiller(None, model, CE_ONLY, data.input_shape)
            fit(distiller, data, task.teacher.recipe, device, on_epoch=on_epoch)
            _save_atomic({"state_dict": model.state_dict(), "task": task.name}, path)
            source = "trained"
        path = str(path)
    model.eval().requires_grad_(False)
    info = TeacherInfo(source, path, accuracy(model, data, "val", device), accuracy(model, data, "test", device))
    return model, info


def _save_atomic(obj, path: Path) -> None:
    """Write to a temporary file and rename, so a killed process never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)

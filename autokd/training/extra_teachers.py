"""The task's further teachers (``task.teachers``), for the ensemble scheme.

Each is loaded, fetched from the teacher cache or trained exactly like the task's teacher (its
own key: model, data, recipe and seed), on all of the training split. They are loaded on first
use and kept on the prepared task, so a search or a compare loads them once, before its trials
(``prepare_extra_teachers``), and a task that never uses them never pays for them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Optional

from torch import nn

from autokd.training.teacher import TeacherInfo, get_teacher


def extra_teachers(prepared, progress: Optional[Callable[[str], None]] = None) -> list[tuple[nn.Module, TeacherInfo]]:
    """``task.teachers`` ready (frozen, on the device), with their accuracies; loaded once per prepared task."""
    if prepared.extra_teachers is not None:
        return prepared.extra_teachers
    from autokd.data import cache_dir, load_task_data

    task, say = prepared.task, progress or (lambda _text: None)
    root = prepared.cache_root or cache_dir()
    loaded = []
    if task.teachers:
        data = (prepared.data if task.data.train_size is None
                else load_task_data(replace(task.data, train_size=None), root, progress=progress))
        for i, spec in enumerate(task.teachers):
            say(f"teacher {i + 2} ({spec.model}): loading or training")
            model, info = get_teacher(task.with_teacher(i), data, prepared.device, root, progress=progress)
            say(f"teacher {i + 2} ({spec.model}, {info.source}): val {info.val_acc:.2f}%  test {info.test_acc:.2f}%")
            loaded.append((model, info))
    prepared.extra_teachers = loaded
    return loaded

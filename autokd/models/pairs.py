"""Pick teacher/student feature pairs automatically, by matching stage resolutions.

A model's *stage outputs* are found with one dummy forward (:func:`autokd.models.taps.trace`):

1. Candidates are the top-level children (``conv1``, ``layer1``, ``block2``, ...; not one named
   ``embedding``: in a pair that name is the classifier's input). A top-level
   ``nn.Sequential`` / ``nn.ModuleList`` whose children produce maps of more than one
   resolution (a stack of stages, such as ``CNN1d.stages``) is replaced by those children
   (``stages.0``, ``stages.1``, ...); one whose children all share a resolution (a ResNet
   ``layer1``) is a stage itself (a ``ModuleList``, which never runs itself, through its last child).
2. Only feature maps count: per-sample outputs ``(C, *spatial)`` with some spatial size > 1
   (so global pooling and classifier outputs are left out).
3. For each spatial resolution the last module to finish, in execution order, is kept.

Teacher and student stages are then paired by equal resolution, shallow to deep. Models without
feature maps (MLPs over a table's features or flattened signals) pair the blocks of their
top-level stacks instead, by position (``layers.0`` with ``layers.0``, ...).
"""

from __future__ import annotations

from torch import nn

from autokd.models.taps import EMBEDDING, trace

Shape = tuple[int, ...]


def _is_map(shape) -> bool:
    return shape is not None and len(shape) >= 2 and any(d > 1 for d in shape[1:])


def stage_layers(model: nn.Module, input_shape: tuple[int, ...]) -> list[tuple[str, Shape]]:
    """The model's stage outputs as ``(path, per-sample shape)``, in execution order."""
    traced = trace(model, tuple(input_shape))
    candidates: list[str] = []
    for name, child in model.named_children():
        if name == EMBEDDING:  # the name means the classifier's input in a pair: never a stage
            continue
        if isinstance(child, (nn.Sequential, nn.ModuleList)):
            kids = [f"{name}.{k}" for k, _ in child.named_children()]
            resolutions = {traced[k][0][1:] for k in kids if _is_map(traced[k][0])}
            if len(resolutions) > 1:
                candidates += kids
                continue
            if isinstance(child, nn.ModuleList) and kids:  # a list never runs itself: its last block ends the stage
                candidates.append(kids[-1])
                continue
        candidates.append(name)

    ran = sorted((traced[p][1], p) for p in candidates if traced[p][1] >= 0 and _is_map(traced[p][0]))
    last: dict[Shape, str] = {}
    for _, path in ran:
        resolution = traced[path][0][1:]
        last.pop(resolution, None)  # re-insert so the dict keeps the order of the kept modules
        last[resolution] = path
    return [(path, traced[path][0]) for path in last.values()]


def auto_pairs(teacher: nn.Module, student: nn.Module, input_shape: tuple[int, ...]) -> list[tuple[str, str]]:
    """``(teacher_path, student_path)`` for every resolution both models have a stage at.

    Ordered from shallow to deep (the teacher's execution order); empty when no resolution
    matches.
    """
    teacher_stages, student_stages = stage_layers(teacher, input_shape), stage_layers(student, input_shape)
    if not teacher_stages and not student_stages:
        return list(zip(vector_blocks(teacher, input_shape), vector_blocks(student, input_shape)))
    student_at = {shape[1:]: path for path, shape in student_stages}
    return [
        (path, student_at[shape[1:]])
        for path, shape in teacher_stages
        if shape[1:] in student_at
    ]


def vector_blocks(model: nn.Module, input_shape: tuple[int, ...]) -> list[str]:
    """The blocks of the model's top-level stacks (``nn.Sequential``/``nn.ModuleList``) that output
    one vector per sample, in execution order (an MLP's hidden layers)."""
    traced = trace(model, tuple(input_shape))
    blocks = []
    for name, child in model.named_children():
        if isinstance(child, (nn.Sequential, nn.ModuleList)) and name != EMBEDDING:
            blocks += [f"{name}.{k}" for k, _ in child.named_children()
                       if traced[f"{name}.{k}"][1] >= 0 and traced[f"{name}.{k}"][0] is not None
                       and len(traced[f"{name}.{k}"][0]) == 1]
    return sorted(blocks, key=lambda path: traced[path][1])

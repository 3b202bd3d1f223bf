"""Binding a space to the task's models: the layer pairs it matches, checked before any training."""

from __future__ import annotations

from autokd.data.spec import nominal_shape
from autokd.errors import AutokdError
from autokd.search.space import SearchSpace
from autokd.search.space_file import SpaceFile


def bind_space(space_file: SpaceFile) -> SearchSpace:
    """Resolve the space's layer pairs on the task's models (``auto``: equal-resolution stages)."""
    from autokd.models.pairs import auto_pairs
    from autokd.models.registry import build_model
    from autokd.models.taps import FeatureTaps

    task, spec = space_file.task, space_file.space
    shape, classes = nominal_shape(task.data)
    teacher = build_model(task.teacher.model, task.teacher.kwargs, classes, shape)
    student = build_model(task.student.model, task.student.kwargs, classes, shape)
    if spec.pairs == "auto":
        pairs = auto_pairs(teacher, student, shape)
        if not pairs and spec.pair_losses != ["none"]:
            raise AutokdError("pairs: auto found no teacher/student stages of equal resolution; list the pairs in the space file")
    else:
        pairs = [(p.teacher, p.student) for p in spec.pairs]
        FeatureTaps(teacher, [t for t, _ in pairs]).remove()  # unknown paths raise, listing the layers
        FeatureTaps(student, [s for _, s in pairs]).remove()
    _check_projectable(spec, pairs, teacher, student, shape)
    return SearchSpace(spec, pairs, task.recipes.proxy)


def _check_projectable(spec, pairs, teacher, student, shape) -> None:
    """Every pair a projector-needing loss (FitNets) may use must map student to teacher shape."""
    from autokd.losses import PAIR_LOSSES
    from autokd.models.projectors import make_projector
    from autokd.models.taps import list_layers

    needing = [loss for loss in spec.pair_losses if loss in PAIR_LOSSES and PAIR_LOSSES[loss].needs_projector]
    if not needing or not pairs:
        return
    t_shapes = {i.path: i.output_shape for i in list_layers(teacher, shape)}
    s_shapes = {i.path: i.output_shape for i in list_layers(student, shape)}
    for t, s in pairs:
        try:
            make_projector(s_shapes[s], t_shapes[t])
        except AutokdError as exc:
            raise AutokdError(f"pair {t} -> {s} cannot take {needing[0]}: {exc}; drop the pair or the loss") from None

"""What is shipped: the student a distillation starts from, and its compression around training.

``start_student`` builds the student a strategy distils (the task's student with the strategy's
``student`` kwargs, or a pruned copy of the teacher), fake-quantized when the strategy quantizes.
``train_shipped`` runs the scheme and, for ``prune.of: student``, prunes the trained student and
distils it again to recover. Schemes build their students through ``start_student`` (via
``build_distiller``), so compression combines with each of them.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Callable

import torch
from torch import nn

from autokd.compression import STEPS
from autokd.compression.prune import PruningError
from autokd.config.compression import Compression
from autokd.config.schemes import SingleScheme
from autokd.config.strategy import Strategy
from autokd.errors import AutokdError
from autokd.models.registry import build_model


def student_kwargs(prepared, strategy: Strategy) -> dict:
    """The student's model kwargs: the task's, overridden by the strategy's ``student``."""
    return {**prepared.task.student.kwargs, **strategy.student}


def student_architecture(prepared, strategy: Strategy) -> tuple[str, dict]:
    """(model name, kwargs) the strategy's student is built from before any pruning."""
    return architecture_of(prepared.task, strategy)


def architecture_of(task, strategy: Strategy) -> tuple[str, dict]:
    """:func:`student_architecture` from the task alone (before its data and teacher are ready)."""
    prune = strategy.compression.prune
    if prune is not None and prune.of == "teacher":
        return task.teacher.model, dict(task.teacher.kwargs)
    return task.student.model, {**task.student.kwargs, **strategy.student}


def example_input(prepared) -> torch.Tensor:
    return torch.zeros(2, *prepared.data.input_shape, device=prepared.device)


def start_student(prepared, strategy: Strategy, seed) -> nn.Module:
    """The student ``strategy`` distils, seeded, on the task's device, in training mode."""
    if seed is not None:
        torch.manual_seed(seed)
    prune = strategy.compression.prune
    if prune is not None and prune.of == "teacher":
        model = _pruned_teacher(prepared, prune)
    else:
        data = prepared.data
        model = build_model(prepared.task.student.model, student_kwargs(prepared, strategy), data.num_classes,
                            data.input_shape).to(prepared.device)
    return quantized(model, strategy.compression, prepared)


def quantized(model: nn.Module, compression: Compression, prepared) -> nn.Module:
    """``model`` fake-quantized when ``compression`` quantizes (checked to deploy, see
    :func:`~autokd.compression.quantize.check_deploys`), else as it is."""
    if compression.quantize is None:
        return model
    from autokd.compression.quantize import check_deploys

    try:
        model = STEPS["quantize"].apply(model, compression.quantize, example_input(prepared))
        check_deploys(model, example_input(prepared))  # a layer that cannot be deployed: refused before training
    except ValueError as exc:
        raise AutokdError(f"compression.quantize: {exc}") from exc
    except RuntimeError as exc:  # torch's fake quantization takes float32 models only (a float64 one, say)
        dtypes = sorted({str(p.dtype).replace("torch.", "") for p in model.parameters()} - {"float32"})
        raise AutokdError(f"compression.quantize: the student cannot be fake-quantized"
                          f"{' (its weights are ' + ', '.join(dtypes) + '; quantization needs float32)' if dtypes else ''}"
                          f": {' '.join(str(exc).split())[:200]}") from None
    return model


def _pruned_teacher(prepared, prune) -> nn.Module:
    teacher = copy.deepcopy(prepared.teacher)
    for parameter in teacher.parameters():
        parameter.requires_grad_(True)
    return pruned(teacher.train(), prune, prepared, "teacher")


def pruned(model: nn.Module, prune, prepared, whose: str) -> nn.Module:
    """``model`` pruned, checked to still run: torch-pruning may cut a layer it mis-traced (a Linear applied
    along another axis) and leave a model whose forward fails."""
    from autokd.models.checks import check_logits

    try:
        out = STEPS["prune"].apply(model, prune, example_input(prepared))
    except PruningError as exc:
        raise AutokdError(f"compression.prune (of the {whose}): {exc}") from exc
    name = prepared.task.teacher.model if whose == "teacher" else prepared.task.student.model
    check_logits(out, name, f"compression.prune (of the {whose}, amount {prune.amount:g}): the pruned",
                 tuple(prepared.data.input_shape), prepared.data.num_classes)
    return out


def prunes_trained_student(strategy: Strategy) -> bool:
    prune = strategy.compression.prune
    return prune is not None and prune.of == "student"


def train_shipped(job, train_scheme: Callable) -> object:
    """Run ``train_scheme(job)``; with ``prune.of: student`` train float first, prune, then
    distil the pruned (and, if asked, fake-quantized) student again from the task's teacher."""
    from autokd.training.schemes.base import counting_cost
    from autokd.training.students import LogitEnsemble, Trained, build_distiller, fit_cached

    strategy = job.strategy
    if not prunes_trained_student(strategy):
        return train_scheme(job)
    first = train_scheme(replace(job, strategy=replace(strategy, compression=Compression()), on_epoch=None,
                                 validate_at=()))
    if not isinstance(first.model, nn.Module) or isinstance(first.model, LogitEnsemble):
        raise AutokdError("compression.prune.of: student needs one trained student, not an ensemble of them")
    prune = strategy.compression.prune
    job.say(f"pruning {prune.amount:.0%} of the trained student's channels, then recovering")
    student = quantized(pruned(first.model, prune, job.prepared, "student"), strategy.compression, job.prepared)
    recipe = job.recipe.with_epochs(prune.recover_epochs or job.recipe.epochs)
    recovery = replace(strategy, scheme=SingleScheme())  # from the task's teacher, whatever the scheme was
    distiller = build_distiller(job.prepared, recovery, recipe.seed, student=student)
    result = fit_cached(distiller, job.prepared, recipe, job.teacher_cache,
                        counting_cost(job.on_epoch, first.steps), job.validate_at)
    return Trained(distiller.student, result.val_acc, result.history, first.steps + result.steps)


def check_shipped(prepared, strategy: Strategy) -> None:
    """The strategy's student builds, compresses (a pruned one can be saved and rebuilt, a quantized one
    deploys) and, for ``prune.of: student``, can be recovered from the task's teacher (an AutokdError
    before any training otherwise)."""
    from autokd.training.students import build_distiller

    student = None  # the plain student, built once
    if strategy.student:
        try:
            student = start_student(prepared, replace(strategy, compression=Compression()), 0)
        except (TypeError, ValueError) as exc:
            raise AutokdError(f"strategy.student {strategy.student}: the student "
                              f"{prepared.task.student.model} cannot be built with it ({exc})") from exc
    if strategy.compression.empty:
        return
    prune = strategy.compression.prune
    if student is None or (prune is not None and prune.of == "teacher"):  # that one starts from the teacher
        student = start_student(prepared, replace(strategy, compression=replace(strategy.compression, quantize=None)), 0)
    if prunes_trained_student(strategy):
        student = pruned(student, strategy.compression.prune, prepared, "student")
        build_distiller(prepared, replace(strategy, scheme=SingleScheme()), 0, student=quantized(
            student, strategy.compression, prepared)).close()
    else:
        quantized(student, strategy.compression, prepared)

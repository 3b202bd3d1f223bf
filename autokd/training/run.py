"""Training a student with a strategy on a task, end to end.

``prepare_task`` loads the data and the teacher once; ``train_strategy`` trains one student
per call (one seed) under the strategy's scheme (:mod:`autokd.training.schemes`). Search trials,
``autokd train`` and ``autokd compare`` all go through here.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Collection, Optional

import torch
from torch import nn

from autokd.config.strategy import PairLoss, Recipe, Strategy
from autokd.config.task import TaskSpec
from autokd.data import cache_dir, load_task_data
from autokd.compression import Footprint, deploy, footprint
from autokd.errors import AutokdError, short_repr
from autokd.losses import PAIR_LOSSES
from autokd.models.registry import build_model
from autokd.training.fit import EpochStats, accuracy
from autokd.training.schemes import SCHEMES, SchemeJob
from autokd.training.teacher import TeacherInfo, get_teacher
from autokd.training.shipping import check_shipped, train_shipped
from autokd.training.teacher_cache import TeacherCache

Progress = Callable[[str], None]


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda`` or ``cuda:N`` (N a GPU of this machine)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if not isinstance(name, str) or not re.fullmatch(r"cuda(:[0-9]{1,4})?", name):
        raise AutokdError(f"unknown device {short_repr(name, 60)}; allowed: auto, cpu, cuda, cuda:N")
    if not torch.cuda.is_available():
        raise AutokdError(f"device {name!r} asked for, but this machine has no CUDA GPU; use --device cpu or auto")
    count = torch.cuda.device_count()
    if ":" in name and int(name.split(":")[1]) >= count:
        raise AutokdError(f"device {name!r}: this machine has {count} CUDA GPU{'s' if count != 1 else ''} "
                          f"(cuda:0 to cuda:{count - 1})")
    return torch.device(name)


@dataclass
class PreparedTask:
    """A task with its data loaded and its teacher ready (frozen, on the device)."""

    task: TaskSpec
    data: object  # TaskData of the student (train_size applied)
    teacher: nn.Module
    teacher_info: TeacherInfo
    device: torch.device
    cache_root: Optional[Path] = None  # where schemes keep their intermediate stages (None: not kept)
    extra_teachers: Optional[list] = None  # task.teachers as (model, TeacherInfo), once loaded (extra_teachers.py)


def prepare_task(
    task: TaskSpec,
    device: str | torch.device = "auto",
    progress: Optional[Progress] = None,
    on_teacher_epoch: Optional[Callable[[EpochStats], None]] = None,
    cache_root: Optional[Path] = None,
    strategy: Optional[Strategy] = None,
) -> PreparedTask:
    """Load the data and load, fetch from cache or train the teacher; with ``strategy``, check first that its
    pairs and relations fit the models (:func:`check_architecture`)."""
    if isinstance(device, str):
        device = resolve_device(device)
    elif device.type == "cuda":  # a torch.device asking for a GPU is checked as its name is
        device = resolve_device(f"cuda:{device.index}" if device.index is not None else "cuda")
    cache_root = cache_root or cache_dir()
    say = progress or (lambda _msg: None)
    data = load_task_data(task.data, cache_root, progress=progress)  # None: cache warnings go to warnings.warn
    teacher_data = (data if task.data.train_size is None
                    else load_task_data(replace(task.data, train_size=None), cache_root, progress=progress))
    check_models(task, data)
    if strategy is not None:
        check_architecture(task, data, strategy)
    say(f"teacher {task.teacher.model}: loading or training")
    teacher, info = get_teacher(task, teacher_data, device, cache_root, on_epoch=on_teacher_epoch, progress=progress)
    say(f"teacher {task.teacher.model} ({info.source}): val {info.val_acc:.2f}%  test {info.test_acc:.2f}%")
    return PreparedTask(task, data, teacher, info, device, cache_root)


def check_models(task: TaskSpec, data) -> None:
    """Build both models and run one dummy forward through each, so that a bad model spec or a
    model whose forward does not return logits (batch, num_classes) fails before any training."""
    from autokd.models.checks import check_logits

    for role, spec in (("teacher", task.teacher), ("student", task.student)):
        model = build_model(spec.model, spec.kwargs, data.num_classes, data.input_shape)
        check_logits(model, spec.model, role, data.input_shape, data.num_classes)


def check_architecture(task: TaskSpec, data, strategy: Strategy) -> None:
    """The strategy's layer pairs and relations fit the teacher and the student it ships, built untrained:
    a mistake in a hand-written config fails here, before the teacher is loaded or trained (minutes), not
    after. (:func:`check_strategy` checks the rest, scheme and compression, once the teacher is ready.)"""
    shapes = _feature_shapes(task, strategy, data.input_shape, data.num_classes, max(len(data.train), 1))
    for i in idle_pairs(strategy, *shapes) if shapes else ():
        pair, (s, t) = strategy.pairs[i], (shapes[0][strategy.pairs[i].student], shapes[1][strategy.pairs[i].teacher])
        raise AutokdError(f"strategy.pairs[{i}] (teacher {pair.teacher} -> student {pair.student}, {pair.loss}): "
                          f"{pair.loss} compares maps over their positions, but student {s} and teacher {t} pool "
                          f"to one position, where it is always 0 (no gradient); pair layers with more than one "
                          f"position, or use fitnet or sp")


def _feature_shapes(task: TaskSpec, strategy: Strategy, input_shape, num_classes: int, train_samples: int):
    """The per-sample shapes of the layers the strategy's pairs and relations tap, student's and teacher's,
    on the models built untrained (None when it taps nothing, or its pairs name another model's layers)."""
    from autokd.config.compression import Compression
    from autokd.config.schemes import SingleScheme
    from autokd.training.distiller import Distiller
    from autokd.training.shipping import architecture_of

    if not (strategy.pairs or strategy.relations) or not SCHEMES[strategy.scheme.kind].pairs_on_teacher:
        return None
    teacher = build_model(task.teacher.model, task.teacher.kwargs, num_classes, input_shape)
    name, kwargs = architecture_of(task, strategy)
    try:
        student = build_model(name, kwargs, num_classes, input_shape)
    except (TypeError, ValueError) as exc:
        raise AutokdError(f"strategy.student {strategy.student}: the student {name} cannot be built with it ({exc})") from exc
    with Distiller(teacher, student, replace(strategy, scheme=SingleScheme(), compression=Compression()),
                   input_shape, num_train_samples=train_samples) as distiller:
        return distiller.feature_shapes


def idle_pairs(strategy: Strategy, s_shapes: dict, t_shapes: dict) -> list[int]:
    """The positions of the strategy's at or nst pairs on maps that pool to one position: 0 all along.
    A config's are refused (:func:`check_architecture`); a search may draw them among other choices."""
    from autokd.losses import one_position

    return [i for i, p in enumerate(strategy.pairs)
            if PAIR_LOSSES[p.loss].needs_positions and one_position(s_shapes[p.student], t_shapes[p.teacher])]


def without_idle_pairs(task: TaskSpec, strategy: Strategy) -> tuple[Strategy, list[PairLoss]]:
    """``strategy`` without its :func:`idle_pairs` (which train nothing), and those pairs: what an
    exported config holds, so that ``autokd train`` takes it."""
    from autokd.data.spec import nominal_shape

    if not any(PAIR_LOSSES[p.loss].needs_positions for p in strategy.pairs):
        return strategy, []
    shape, classes = nominal_shape(task.data)
    shapes = _feature_shapes(task, strategy, shape, classes, 1)
    idle = idle_pairs(strategy, *shapes) if shapes else []
    kept = [p for i, p in enumerate(strategy.pairs) if i not in idle]
    return replace(strategy, pairs=kept), [strategy.pairs[i] for i in idle]


def check_strategy(prepared: PreparedTask, strategy: Strategy) -> None:
    """Raise AutokdError if the strategy does not fit the task's models (layer paths, shapes, peers,
    the student's kwargs, compression)."""
    SCHEMES[strategy.scheme.kind].check(prepared, strategy)
    check_shipped(prepared, strategy)


@dataclass
class RunResult:
    val_acc: float
    test_acc: Optional[float]
    seed: int
    epochs: int
    seconds: float
    history: list[EpochStats] = field(default_factory=list)
    steps: int = 0  # model training steps, every stage of the scheme included (its cost)
    footprint: Optional[Footprint] = None  # the shipped student's size and speed (when measured)
    model: Optional[nn.Module] = None  # the trained student before deployment (only with keep_model)


def train_strategy(
    prepared: PreparedTask,
    strategy: Strategy,
    recipe: Optional[Recipe] = None,
    teacher_cache: Optional[TeacherCache] = None,
    on_epoch: Optional[Callable[[EpochStats], None]] = None,
    evaluate_test: bool = True,
    validate_at: Optional[Collection[int]] = None,
    progress: Optional[Progress] = None,
    measure: bool = True,
    keep_model: bool = False,
) -> RunResult:
    """Train one student with ``strategy`` under its scheme (and ``recipe``, default the strategy's own).

    ``teacher_cache`` may hold more features than the strategy needs; when None and the data
    allow it, the teacher's outputs are computed once here. ``validate_at``: the epochs after
    which validation accuracy is measured besides the last (``None``: every epoch; see ``fit``);
    with ``on_epoch`` it applies to the stage that trains the shipped model. ``progress`` hears
    a line per earlier stage (a born-again generation).

    Accuracies are those of the student as deployed (a quantized student converted to int8).
    ``measure``: record its :class:`Footprint`; ``keep_model``: hand back the trained model.
    """
    recipe = recipe or strategy.recipe
    start = time.perf_counter()
    job = SchemeJob(prepared, strategy, recipe, teacher_cache, on_epoch, validate_at, say=progress or (lambda _t: None))
    trained = train_shipped(job, SCHEMES[strategy.scheme.kind].train)
    shipped, device, val_acc = trained.model, prepared.device, trained.val_acc
    if not strategy.compression.empty:
        shipped = deploy(trained.model.eval(), strategy.compression)
        device = prepared.device if shipped is trained.model else torch.device("cpu")  # int8 kernels run on CPU
        val_acc = accuracy(shipped.to(device), prepared.data, "val", device)
    test_acc = accuracy(shipped, prepared.data, "test", device) if evaluate_test else None
    cost = footprint(trained.model, shipped, prepared.data.input_shape) if measure else None
    return RunResult(val_acc, test_acc, recipe.seed, recipe.epochs, time.perf_counter() - start,
                     trained.history, trained.steps, cost, trained.model if keep_model else None)

"""Binding a space to the task's models: the layer pairs it may use, checked before any training.

Every (teacher, student) layer pair a strategy of the space may use is tried once with every
pair loss of the space on dummy features of the layers' shapes (FitNets through its
projector), so a loss that cannot take a pair fails here with the pair named, not in a trial.
"""

from __future__ import annotations

from autokd.config.schemes import EnsembleScheme
from autokd.data.spec import nominal_shape
from autokd.errors import AutokdError, short_repr
from autokd.search.feasibility import check_constraints_reachable, check_quantize_reachable
from autokd.search.space import NONE, SEARCH, MatchSpec
from autokd.search.space_file import SpaceFile
from autokd.search.strategy_space import SearchSpace, dkd_warmup_epochs


def bind_space(space_file: SpaceFile) -> SearchSpace:
    """Resolve the space's layers on the task's models: ``auto`` pairs stages of equal
    resolution, ``search`` lets every student stage match any teacher stage."""
    from autokd.models.checks import check_logits, check_taps_train
    from autokd.models.pairs import auto_pairs
    from autokd.models.registry import build_model
    from autokd.models.taps import FeatureTaps

    task, spec = space_file.task, space_file.space
    shape, classes = nominal_shape(task.data)
    teacher = build_model(task.teacher.model, task.teacher.kwargs, classes, shape)
    student = build_model(task.student.model, task.student.kwargs, classes, shape)
    check_logits(teacher, task.teacher.model, "teacher", shape, classes)  # before any layer is traced
    check_logits(student, task.student.model, "student", shape, classes)
    if isinstance(spec.pairs, list):
        pairs = [(p.teacher, p.student) for p in spec.pairs]
        FeatureTaps(teacher, [t for t, _ in pairs]).remove()  # unknown paths raise, listing the layers
        FeatureTaps(student, [s for _, s in pairs]).remove()
    else:
        pairs = auto_pairs(teacher, student, shape)
    matches = _matches(spec.pairs, teacher, student, shape) if spec.pairs == SEARCH or isinstance(spec.pairs, MatchSpec) else None
    if matches is not None and spec.pair_losses == [NONE]:
        raise AutokdError("pairs: search needs pair_losses other than 'none' (the loss a matched pair takes)")
    if spec.pairs == "auto" and not pairs and spec.pair_losses != [NONE]:
        raise AutokdError("pairs: auto found no teacher/student stages of equal resolution; list the pairs, "
                          "or use pairs: search to match stages of any resolution")
    candidates = [(t, s) for s, teachers in matches for t in teachers] if matches is not None else pairs
    _check_losses_take_pairs(spec, candidates, teacher, student, shape)
    check_taps_train(student, [s for _, s in candidates], shape, of=" of the pairs")  # list_layers traces in eval
    _check_embeddings(spec, task, {"teacher": teacher, "student": student}, shape, classes)
    _check_peer_models(spec, shape, classes)
    _check_ensemble(spec, task)
    _check_stand_in_teachers(spec, task, candidates, student, shape, classes)
    _check_shipped(spec, task, shape, classes, [s for _, s in candidates])
    _check_measurable(spec, task, shape, classes)
    check_quantize_reachable(spec, task, shape, classes)
    check_constraints_reachable(spec, task, shape, classes)
    _warn_idle_logit_knobs(spec)
    proxy = task.recipes.proxy
    return SearchSpace(spec, pairs, proxy, dkd_warmup=dkd_warmup_epochs(proxy.epochs), matches=matches)


def _warn_idle_logit_knobs(spec) -> None:
    """A fixed ``alpha: 0`` drops the logit term: temperature, logit loss and standardization searched
    with it change nothing, and every trial of theirs trains the same student. Said, not refused."""
    import warnings

    if isinstance(spec.alpha, (int, float)) and not isinstance(spec.alpha, bool) and spec.alpha == 0:
        searched = [name for name, varies in (
            ("temperature", not isinstance(spec.temperature, (int, float))), ("logit_losses", len(spec.logit_losses) > 1),
            ("logit_standardization", isinstance(spec.logit_standardization, list)
             and len(set(spec.logit_standardization)) > 1)) if varies]
        if searched:
            warnings.warn(f"space.alpha is 0: the logit term is off, so the {', '.join(searched)} the space searches "
                          f"change nothing (trials differing in them train the same student); fix them, or search "
                          f"alpha", RuntimeWarning, stacklevel=3)


def _matches(pairs, teacher, student, shape) -> list[tuple[str, list[str]]]:
    """Each student layer with the teacher layers it may match (``search``: every stage)."""
    from autokd.models.pairs import stage_layers
    from autokd.models.taps import FeatureTaps

    if pairs == SEARCH:
        students = [path for path, _ in stage_layers(student, shape)]
        teachers = [path for path, _ in stage_layers(teacher, shape)]
        if not students or not teachers:
            raise AutokdError("pairs: search found no feature-map stages in the "
                              f"{'student' if not students else 'teacher'}; list the layers with "
                              "pairs: {student: [...], teacher: [...]}")
    else:
        students, teachers = pairs.student, pairs.teacher
        FeatureTaps(teacher, teachers).remove()  # unknown paths raise, listing the layers
        FeatureTaps(student, students).remove()
    return [(s, list(teachers)) for s in students]


def _choices(knob) -> list:
    """A scheme knob's values: its choices, or its one fixed value."""
    return knob if isinstance(knob, list) else [knob]


def _knob_models(knobs: dict, model_knob: str, kwargs_knob: str):
    """``(name, kwargs)`` of each model a kind's model and kwargs knobs may name (kwargs choices are
    stored as JSON text); none where the model knob is unset."""
    import itertools
    import json

    for name, kwargs in itertools.product(_choices(knobs.get(model_knob)), _choices(knobs.get(kwargs_knob))):
        if name is not None:
            yield name, json.loads(kwargs) if isinstance(kwargs, str) else kwargs or {}


def _check_peer_models(spec, shape, classes: int) -> None:
    """Every model a scheme of the space may add (a cohort's peers, a teacher assistant) builds and
    returns logits, with every kwargs choice."""
    from autokd.models.checks import check_logits
    from autokd.models.registry import build_model

    for kind, knobs in spec.scheme_knobs.items():
        for model_knob, kwargs_knob in (("peer_model", "peer_kwargs"), ("model", "kwargs")):
            role = f"{kind} peer" if model_knob == "peer_model" else kind
            for name, kwargs in _knob_models(knobs, model_knob, kwargs_knob):
                check_logits(build_model(name, kwargs, classes, shape), name, role, shape, classes)


def _check_embeddings(spec, task, models: dict, shape, classes: int) -> None:
    """Relation losses read the ``embedding`` (the input of the Linear that makes the logits) of the student
    and of each model in the teacher's place: the task's teacher where a scheme of the space reads it, an
    assistant or ensemble feature teacher a knob may name. One without it is refused here, not in a trial."""
    from autokd.models.registry import build_model
    from autokd.models.taps import classifier_path
    from autokd.training.schemes import SCHEMES

    if not spec.relation_losses:
        return
    ensemble = spec.scheme_knobs.get("ensemble", {}) if "ensemble" in spec.schemes else None
    reads_teacher = any(SCHEMES[kind].pairs_on_teacher for kind in spec.schemes) or (
        ensemble is not None and 0 in _choices(ensemble.get("feature_teacher", 0)))
    if not reads_teacher:
        models = {"student": models["student"]}  # the relations read a stand-in, checked below
    models.update({what: build_model(name, kwargs, classes, shape) for name, kwargs, what in _stand_ins(spec, task)})
    for role, model in models.items():
        try:
            classifier_path(model, shape)
        except AutokdError as exc:
            raise AutokdError(f"space.relation_losses {', '.join(spec.relation_losses)}: the {role}: {exc}") from None


def _check_shipped(spec, task, shape, classes: int, student_paths: list[str]) -> None:
    """Every student the space may ship builds, returns logits and has the layers its pairs tap;
    a pruned teacher (the student when ``prune.of`` is teacher) has them too."""
    from autokd.models.checks import check_logits
    from autokd.models.registry import build_model
    from autokd.models.taps import FeatureTaps
    from autokd.search.shipped_space import student_variants

    paths = list(dict.fromkeys(student_paths))
    if spec.prune is not None and spec.prune["of"] == "teacher":
        variants = [(task.teacher.model, dict(task.teacher.kwargs), "the pruned teacher (prune.of: teacher)")]
    elif spec.student:
        variants = [(task.student.model, {**task.student.kwargs, **kwargs}, f"the student with {kwargs}")
                    for kwargs in student_variants(spec)]
    elif spec.prune is not None:
        variants = [(task.student.model, dict(task.student.kwargs), "the student")]
    else:
        return
    for name, kwargs, what in variants:
        try:
            model = build_model(name, kwargs, classes, shape)
            check_logits(model, name, what, shape, classes)
            FeatureTaps(model, paths).remove()
            _check_prunable(spec, model, name, shape, classes)
        except AutokdError as exc:
            raise AutokdError(f"space.student/prune: {what} does not fit the space: {exc}") from None


def _check_prunable(spec, model, name: str, shape, classes: int) -> None:
    """The space's largest prune amount applies to ``model`` and leaves a model that runs."""
    import torch

    from autokd.compression.prune import PruningError, prune_channels
    from autokd.models.checks import check_logits
    from autokd.search.space import FloatRange

    if spec.prune is None:
        return
    amount = spec.prune["amount"]
    amount = amount.high if isinstance(amount, FloatRange) else max(amount) if isinstance(amount, list) else amount
    if not amount:
        return
    try:
        pruned = prune_channels(model, float(amount), torch.zeros(2, *shape))
    except PruningError as exc:
        raise AutokdError(f"prune amount {amount:g}: {exc}") from None
    check_logits(pruned, name, f"pruned by {amount:g}, the", shape, classes)


def _check_measurable(spec, task, shape, classes: int) -> None:
    """Objectives or constraints that read the student's MACs or latency need a student whose
    forward can be measured (a counted forward at batch 1, else 2): refused here, not in every trial."""
    from autokd.compression.measure import measurement_problem
    from autokd.models.registry import build_model
    from autokd.search.objectives import CONSTRAINTS, OBJECTIVES

    measured = ("macs", "latency_ms")  # the footprint fields a forward measures (params and size are counted)
    needs = [f"objective {name}" for name in spec.objectives[1:] if OBJECTIVES[name].footprint in measured]
    needs += [f"constraint {key}" for key in spec.constraints if CONSTRAINTS[key][0] in measured]
    if not needs:
        return
    spec_of = task.teacher if spec.prune is not None and spec.prune["of"] == "teacher" else task.student
    problem = measurement_problem(build_model(spec_of.model, spec_of.kwargs, classes, shape), shape)
    if problem:
        whose = "the pruned teacher" if spec_of is task.teacher else "the student"
        verb, them = ("need", "them") if len(needs) > 1 else ("needs", "it")
        raise AutokdError(f"the {' and '.join(needs)} {verb} the student's MACs or latency, but {whose} "
                          f"{short_repr(spec_of.model, 80)} cannot be measured ({problem}); drop {them} or use "
                          f"params or size")


def _check_stand_in_teachers(spec, task, pairs, student, shape, classes: int) -> None:
    """A model that takes the teacher's place in the pairs (the ensemble's feature teacher, a teacher
    assistant) has, with every knob choice, each teacher layer the pairs may tap, and its features
    fit their losses: refused here, not in every trial that draws it."""
    from autokd.models.registry import build_model
    from autokd.models.taps import FeatureTaps

    if not pairs or spec.pair_losses == [NONE]:
        return
    for name, kwargs, what in _stand_ins(spec, task):
        try:
            model = build_model(name, kwargs, classes, shape)
            FeatureTaps(model, list(dict.fromkeys(t for t, _ in pairs))).remove()
            _check_losses_take_pairs(spec, pairs, model, student, shape)
        except AutokdError as exc:
            raise AutokdError(f"space.scheme_knobs: {what} takes the teacher's place in the pairs but does not fit "
                              f"them: {exc}") from None


def _stand_ins(spec, task):
    """``(model, kwargs, description)`` of each model a scheme knob choice puts in the teacher's place."""
    knobs = spec.scheme_knobs
    for f in _choices(knobs["ensemble"].get("feature_teacher", 0)) if "ensemble" in knobs else []:
        if isinstance(f, int) and 1 <= f <= len(task.teachers):  # 0: the task's teacher, checked already
            t = task.teachers[f - 1]
            yield t.model, t.kwargs, f"ensemble.feature_teacher {f} (task.teachers[{f - 1}]: {t.model} {t.kwargs})"
    for name, kwargs in _knob_models(knobs.get("assistant", {}), "model", "kwargs"):
        yield name, kwargs, f"the assistant {name} {kwargs}"


def _check_ensemble(spec, task) -> None:
    """The ensemble scheme needs the task's further teachers, and its knobs must fit their number."""
    knobs = spec.scheme_knobs.get("ensemble")
    if knobs is None:
        return
    weights = knobs.get("weights", "equal")  # a fixed list of numbers is a tuple; a list is choices
    features = knobs.get("feature_teacher", 0)
    for w in _choices(weights):
        for f in _choices(features):
            scheme = EnsembleScheme(weights=list(w) if isinstance(w, tuple) else w, feature_teacher=f)
            problem = scheme.misfit(1 + len(task.teachers))
            if problem:
                raise AutokdError(f"space.scheme_knobs.ensemble: {problem}")


def _check_losses_take_pairs(spec, pairs, teacher, student, shape) -> None:
    """Every pair loss of the space must accept every pair a strategy may use."""
    import torch

    from autokd.losses import PAIR_LOSSES
    from autokd.models.projectors import make_projector
    from autokd.models.taps import list_layers

    losses = [PAIR_LOSSES[name] for name in spec.pair_losses if name != NONE]
    if not losses or not pairs:
        return
    t_shapes = {i.path: i.output_shape for i in list_layers(teacher, shape)}
    s_shapes = {i.path: i.output_shape for i in list_layers(student, shape)}
    for t, s in pairs:
        for info in losses:
            try:
                missing = next((p for p, shapes in ((t, t_shapes), (s, s_shapes)) if shapes.get(p) is None), None)
                if missing == "embedding":  # listed only where a Linear makes the logits
                    raise AutokdError("the model has no 'embedding' (no nn.Linear makes its logits)")
                if missing is not None:
                    raise AutokdError(f"layer {missing!r} gives no single tensor in an eval-mode forward pass (it "
                                      f"returns a tuple, or runs only in training, or never)")
                feature = torch.randn(2, *s_shapes[s])
                if info.needs_projector:
                    feature = make_projector(s_shapes[s], t_shapes[t])(feature)
                with torch.no_grad():
                    info.fn(feature, torch.randn(2, *t_shapes[t]), **info.params)
            except AutokdError as exc:
                raise AutokdError(f"pair {t} -> {s} cannot take {info.name}: {exc}; drop the pair or the loss") from None
    _check_some_loss_acts(losses, pairs, t_shapes, s_shapes)


def _check_some_loss_acts(losses: list, pairs, t_shapes: dict, s_shapes: dict) -> None:
    """Each student layer has some teacher layer and pair loss that is not always 0 on it (at and nst are 0
    on maps that pool to one position): a space where none is would train nothing there in every trial."""
    from autokd.losses import one_position

    acts: dict[str, bool] = {}
    for t, s in pairs:
        acts[s] = acts.get(s, False) or any(not (info.needs_positions and one_position(s_shapes[s], t_shapes[t]))
                                            for info in losses)
    idle = [s for s, ok in acts.items() if not ok]
    if idle:
        names = ", ".join(info.name for info in losses)
        raise AutokdError(f"student layer {idle[0]!r}: every pair the space may make there pools to one position, "
                          f"where {names} (comparing maps over positions) are always 0; add fitnet or sp to "
                          f"pair_losses, or pair layers with more than one position")

"""The Distiller: student + frozen teacher + the strategy's losses, as one ``nn.Module``.

Its forward on a batch returns the total loss and its named parts, so an exported strategy
drops into any PyTorch training loop::

    distiller = Distiller(teacher, student, strategy, input_shape=(1, 40))
    optimizer = torch.optim.Adam(distiller.trainable_parameters(), lr=1e-2)
    for x, y in loader:
        out = distiller(x, y)
        optimizer.zero_grad(); out.total.backward(); optimizer.step()

Features are tapped by module path with forward hooks; models are never rewritten, and
``close()`` (or leaving ``with Distiller(...) as distiller:``, or dropping the Distiller) removes
the hooks, so the trained student and the teacher leave as they came.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Iterator, NamedTuple, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from autokd.config.strategy import Strategy
from autokd.errors import AutokdError
from autokd.losses import EMBEDDING_LOSSES, LOGIT_LOSSES, PAIR_LOSSES, CRDMemory, crd, standardize
from autokd.models.projectors import make_projector
from autokd.models.checks import check_taps_train
from autokd.models.taps import EMBEDDING, FeatureTaps


@dataclass
class TeacherOutputs:
    """What the strategy needs from the teacher for one batch."""

    logits: torch.Tensor
    features: dict[str, torch.Tensor]


class DistillOutput(NamedTuple):
    total: torch.Tensor
    parts: dict[str, torch.Tensor]
    logits: torch.Tensor


CRD_MEMORY_PARAMS = ("feat_dim", "num_negatives", "nce_t", "momentum")


class ClosedOnExit:
    """``with obj:`` calls ``obj.close()`` on leaving (the Distiller and what wraps it)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Distiller(ClosedOnExit, nn.Module):
    """Student, frozen teacher, projectors and loss state for one strategy.

    ``input_shape`` is one sample's shape (e.g. ``(1, 40)``); it sizes the projectors with one
    dummy forward. ``num_train_samples`` sizes CRD's memory bank (needed only for CRD).
    ``teacher`` may be None when the strategy does not use one (cross-entropy only).
    """

    def __init__(
        self,
        teacher: Optional[nn.Module],
        student: nn.Module,
        strategy: Strategy,
        input_shape: Sequence[int],
        num_train_samples: Optional[int] = None,
    ):
        super().__init__()
        if strategy.needs_teacher and teacher is None:
            raise AutokdError("this strategy uses the teacher (alpha > 0, layer pairs or relations) but none was given")
        _check_apart(teacher, student)
        self.strategy = strategy
        self.student = student
        self.teacher = teacher
        if teacher is not None:
            teacher.eval().requires_grad_(False)
        info = LOGIT_LOSSES.get(strategy.logit_loss)  # a param that follows the length, left out (DKD's warm-up):
        self._logit_params = {**(info.length_defaults(strategy.recipe.epochs) if info else {}),  # this recipe's
                              **strategy.logit_params}
        self.student_paths = _unique([p.student for p in strategy.pairs] + ([EMBEDDING] if strategy.relations else []))
        self.teacher_paths = _unique([p.teacher for p in strategy.pairs] + ([EMBEDDING] if strategy.relations else []))
        self._closed = False
        self._teacher_taps: Optional[FeatureTaps] = None
        self._student_taps = FeatureTaps(student, self.student_paths)
        try:
            self._teacher_taps = FeatureTaps(teacher, self.teacher_paths) if teacher is not None else None
            self._build(input_shape, num_train_samples)
        except BaseException:
            self.close()  # a refused strategy leaves no hooks on the models
            raise
        weakref.finalize(self, _remove_taps, self._student_taps, self._teacher_taps)  # dropped without close()

    def _build(self, input_shape: Sequence[int], num_train_samples: Optional[int]) -> None:
        """The feature shapes, projectors and CRD memory the strategy needs (checked on the way)."""
        strategy, student = self.strategy, self.student
        self._part_names = _part_names(strategy)
        s_shapes, t_shapes = self._feature_shapes(input_shape)
        self.feature_shapes = (s_shapes, t_shapes)  # per-sample shapes of the tapped features: student's, teacher's
        check_taps_train(student, self.student_paths, input_shape)  # the losses read them in training
        self.projectors = nn.ModuleDict()
        for i, pair in enumerate(strategy.pairs):
            if PAIR_LOSSES[pair.loss].needs_projector:
                self.projectors[str(i)] = make_projector(s_shapes[pair.student], t_shapes[pair.teacher])
        self._normalising = {key for key, p in self.projectors.items()  # (found once, not per batch)
                             if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in p.modules())}
        _check_pairs(strategy, self.projectors, s_shapes, t_shapes)
        self.crd_memory: Optional[CRDMemory] = None
        crd_rel = next((r for r in strategy.relations if r.loss == "crd"), None)
        if crd_rel is not None:
            if not num_train_samples:
                raise AutokdError("CRD needs num_train_samples (the size of the training split) for its memory bank")
            kwargs = {k: v for k, v in crd_rel.params.items() if k in CRD_MEMORY_PARAMS}
            if "feat_dim" in kwargs:
                kwargs["feat_dim"] = int(kwargs["feat_dim"])
            if "num_negatives" in kwargs:
                kwargs["num_negatives"] = int(kwargs["num_negatives"])
            self.crd_memory = CRDMemory(s_shapes[EMBEDDING][0], t_shapes[EMBEDDING][0], num_train_samples, **kwargs)

    def _feature_shapes(self, input_shape):
        """Per-sample shapes of every tapped feature, from one dummy forward of each model."""
        dummy = torch.zeros(2, *input_shape, device=_device_of(self.student))
        s_shapes = _probe(self.student, self._student_taps, dummy, "student")
        t_shapes = _probe(self.teacher, self._teacher_taps, dummy, "teacher") if self.teacher is not None else {}
        return s_shapes, t_shapes

    def close(self) -> None:
        """Remove the feature hooks from the student and the teacher (they would slow every later
        forward of the trained student and hold its last features); the Distiller trains no more."""
        _remove_taps(self._student_taps, self._teacher_taps)
        self._closed = True

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        """Student, projector and CRD-head parameters (never the teacher's)."""
        yield from self.student.parameters()
        yield from self.projectors.parameters()
        if self.crd_memory is not None:
            yield from self.crd_memory.parameters()

    def train(self, mode: bool = True) -> "Distiller":
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()  # the teacher always runs with its running statistics
        return self

    @torch.no_grad()
    def teacher_outputs(self, x: torch.Tensor) -> TeacherOutputs:
        """Run the frozen teacher on a batch and collect the tapped features."""
        self._check_open()
        if self.teacher.training:  # put back in train mode by the caller (a shared evaluate helper...)
            self.teacher.eval()
        self._teacher_taps.clear()
        logits = self.teacher(x)
        feats = {p: t.detach() for p, t in self._teacher_taps.outputs.items()}
        self._teacher_taps.clear()
        return TeacherOutputs(logits=logits.detach(), features=feats)

    def forward(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        index: Optional[torch.Tensor] = None,
        teacher_outputs: Optional[TeacherOutputs] = None,
        epoch: Optional[int] = None,
    ) -> DistillOutput:
        """Total loss and its named parts for one batch.

        ``teacher_outputs``: cached teacher outputs for this batch (from a :class:`TeacherCache`),
        or None to run the teacher now. ``index``: the samples' positions in the training split
        (CRD only). ``epoch`` counts from 1 (DKD's warm-up: needed when it has one). ``y`` holds
        class indices (any integer type) or per-class probabilities (B, classes) for CE; the
        losses that read labels (DKD) need indices. The logit loss's part is named after
        it (``kd``, ``dkd``, ``dist``, ...); with logit standardization it sees both logits
        standardized, while CE always sees the raw student logits.
        """
        self._check_open()
        s = self.strategy
        self._student_taps.clear()
        logits = self.student(x)
        y = _labels(y, logits)
        s_feats = self._student_taps.outputs
        parts: dict[str, torch.Tensor] = {}
        if s.alpha < 1:
            parts["ce"] = (1 - s.alpha) * F.cross_entropy(logits, y)
        if s.needs_teacher:
            t = teacher_outputs if teacher_outputs is not None else self.teacher_outputs(x)
            if s.alpha > 0:
                parts[s.logit_loss] = s.alpha * self.logit_term(logits, t.logits, y, epoch)
            for i, pair in enumerate(s.pairs):
                feat = self._project(i, s_feats[pair.student])
                fn = PAIR_LOSSES[pair.loss].fn
                parts[self._part_names[i]] = pair.weight * fn(feat, t.features[pair.teacher], **pair.params)
            for j, rel in enumerate(s.relations):
                s_emb, t_emb = s_feats[EMBEDDING], t.features[EMBEDDING]
                if rel.loss == "crd":
                    if index is None:
                        raise AutokdError("CRD needs each batch's sample indices (index=...)")
                    value = crd(s_emb, t_emb, index, self.crd_memory,  # the banks learn only in training
                                update=self.training and torch.is_grad_enabled())
                else:
                    value = EMBEDDING_LOSSES[rel.loss].fn(s_emb, t_emb, **rel.params)
                parts[self._part_names[len(s.pairs) + j]] = rel.weight * value
        self._student_taps.clear()
        total = torch.stack(list(parts.values())).sum() if parts else logits.sum() * 0
        return DistillOutput(total=total, parts=parts, logits=logits)

    def _check_open(self) -> None:
        if self._closed:
            raise AutokdError("this Distiller was closed (its feature hooks removed); build a new one to train again")

    def logit_term(self, s_logits, t_logits, y, epoch):
        """The strategy's logit loss through its registry term, on standardized logits if asked."""
        s = self.strategy
        if s.logit_standardization:
            s_logits, t_logits = standardize(s_logits), standardize(t_logits)
        if epoch is None and not self.training:
            epoch = float("inf")  # a loss measured in eval mode (validation): past any warm-up
        return LOGIT_LOSSES[s.logit_loss].apply(s_logits, t_logits, y, s.temperature, epoch, self._logit_params)

    def _project(self, i: int, feat: torch.Tensor) -> torch.Tensor:
        """Pair ``i``'s student feature through its projector (if it has one)."""
        if str(i) not in self.projectors:
            return feat
        projector = self.projectors[str(i)]
        if projector.training and str(i) in self._normalising and feat.shape[0] * feat[0, 0].numel() == 1:
            pair = self.strategy.pairs[i]
            raise AutokdError(f"a training batch of one sample: the projector of strategy.pairs[{i}] (teacher "
                              f"{pair.teacher} -> student {pair.student}) normalises a one-position map with "
                              "BatchNorm, which needs two samples; drop such batches (DataLoader(drop_last=True))")
        return projector(feat)


def _check_pairs(strategy: Strategy, projectors: nn.ModuleDict, s_shapes: dict, t_shapes: dict) -> None:
    """Each pair's loss takes its features (through its projector, in eval mode: nothing is updated),
    tried on random ones of their shapes from a private generator: a pair that cannot is named here,
    before training, not as a bare shape error in the first batch."""
    generator = torch.Generator().manual_seed(0)
    for i, pair in enumerate(strategy.pairs):
        projector = projectors[str(i)] if str(i) in projectors else None
        was_training = projector.training if projector is not None else False
        try:
            with torch.no_grad():
                feat = torch.randn(2, *s_shapes[pair.student], generator=generator)
                if projector is not None:
                    feat = projector.eval()(feat.to(_device_of(projector)))
                target = torch.randn(2, *t_shapes[pair.teacher], generator=generator).to(feat.device)
                PAIR_LOSSES[pair.loss].fn(feat, target, **pair.params)
        except (AutokdError, RuntimeError, ValueError) as exc:
            raise AutokdError(f"strategy.pairs[{i}] (teacher {pair.teacher} -> student {pair.student}, {pair.loss}): "
                              f"{' '.join(str(exc).split())[:300]}") from None
        finally:
            if projector is not None:
                projector.train(was_training)


def _check_apart(teacher: Optional[nn.Module], student: nn.Module) -> None:
    """The teacher is frozen: one that is the student, or shares parameters with it, would freeze them too."""
    if teacher is None:
        return
    # a parameter the user froze already may be shared on purpose (a student reusing a frozen stem)
    shared = {id(p) for p in teacher.parameters() if p.requires_grad} & {id(p) for p in student.parameters()}
    if teacher is student or shared:
        raise AutokdError("the teacher and the student share " + ("everything: they are the same module"
                          if teacher is student else f"{len(shared)} parameter tensor(s)") +
                          "; the teacher is frozen, so the student would not learn there: give a separate copy "
                          "(copy.deepcopy(model))")


def _labels(y: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Class indices as int64 (from any integer type; each in 0..classes-1: cross-entropy would skip
    -100 and fail on others), or per-class probabilities (B, classes) as given (finite, >= 0)."""
    batch, classes = logits.shape[0], logits.shape[-1]
    what = f"labels y (a {y.dtype} tensor of shape {tuple(y.shape)}) for a batch of {batch} and {classes} classes"
    if not y.dtype.is_floating_point and not y.dtype.is_complex and y.dtype != torch.bool:
        low, high = (int(v) for v in torch.aminmax(y)) if y.numel() else (0, 0)  # one pass over the batch
        if y.shape != (batch,) or not 0 <= low <= high < classes:
            raise AutokdError(f"{what}: class indices must be one per sample, from 0 to {classes - 1}"
                              + (f"; got {low} to {high}" if y.numel() else ""))
        return y.long()
    if y.dtype.is_floating_point and y.dim() == 2:
        if y.shape != (batch, classes) or not bool(torch.isfinite(y).all()) or bool((y < 0).any()):
            raise AutokdError(f"{what}: per-class probabilities must be (batch, classes), finite and >= 0")
        return y
    raise AutokdError(f"{what}: must be integer class indices (B,) or per-class probabilities (B, classes)")


def _remove_taps(*taps: Optional[FeatureTaps]) -> None:
    for tap in taps:
        if tap is not None:
            tap.remove()


def _probe(model: nn.Module, taps: FeatureTaps, dummy: torch.Tensor, role: str) -> dict[str, tuple]:
    """Per-sample shapes of the tapped features in one eval-mode forward; a layer that gives no single
    tensor there (it runs only in training, never, or returns a tuple) is an AutokdError naming it.
    Every module's own mode is restored after (a BatchNorm the caller froze stays in eval)."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            taps.clear()
            model(dummy)
            outputs = dict(taps.outputs)
            taps.clear()
    finally:
        for module, mode in modes:
            module.training = mode
    bad = [p for p in taps.paths if not isinstance(outputs.get(p), torch.Tensor)]
    if bad:
        raise AutokdError(f"{role} layer(s) {', '.join(map(repr, bad))} give no single tensor in an eval-mode forward "
                          f"pass (the layer runs only in training, never, or returns a tuple); pair other layers")
    return {p: tuple(t.shape[1:]) for p, t in outputs.items()}


def _device_of(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _part_names(strategy: Strategy) -> list[str]:
    """Readable, unique names of the pair and relation parts: ``at@stages.1``, ``rkd``."""
    names = [f"{p.loss}@{p.student}" for p in strategy.pairs] + [r.loss for r in strategy.relations]
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return unique

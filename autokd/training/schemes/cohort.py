"""``mutual`` and ``online``: the student trains together with peers, each also learning from
the others (deep mutual learning, Zhang et al. CVPR 2018; online distillation from the cohort's
ensemble, KDCL, Guo et al. CVPR 2020).

:class:`Cohort` owns the student (inside its :class:`Distiller`, so the strategy's teacher terms
still apply to it) and the peers; its forward returns the total loss of all members and its named
parts, and it trains with the same ``fit`` as a single student. The shipped model is the student.
"""

from __future__ import annotations

from typing import Callable, Iterator, Optional

import torch
import torch.nn.functional as F
from torch import nn

from autokd.config.schemes import CohortScheme
from autokd.losses import ensemble_kl, mutual_kl
from autokd.models.checks import check_logits
from autokd.models.registry import build_model
from autokd.training.distiller import DistillOutput, Distiller, TeacherOutputs
from autokd.training.schemes.base import SchemeJob, WrappedDistiller, counting_cost
from autokd.training.shipping import student_kwargs
from autokd.training.students import Trained, build_distiller, build_student, fit_cached

# kind -> the peer loss: every member's logits in, one loss per member out
PEER_LOSSES: dict[str, Callable[[list[torch.Tensor], float], list[torch.Tensor]]] = {
    "mutual": mutual_kl,
    "online": ensemble_kl,
}


class Cohort(WrappedDistiller):
    """The student (with its teacher terms, through ``distiller``) and ``peers``, trained together.

    Member m's loss: its own terms (the student: the strategy's Distiller loss; a peer:
    cross-entropy) plus ``scheme.weight`` x the scheme's peer loss at ``scheme.temperature``."""

    def __init__(self, distiller: Distiller, peers: list[nn.Module], scheme: CohortScheme):
        super().__init__(distiller)
        self.peers = nn.ModuleList(peers)
        self.scheme = scheme

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        yield from self.distiller.trainable_parameters()
        yield from self.peers.parameters()

    def forward(self, x: torch.Tensor, y: torch.Tensor, index: Optional[torch.Tensor] = None,
                teacher_outputs: Optional[TeacherOutputs] = None, epoch: int = 1) -> DistillOutput:
        out = self.distiller(x, y, index=index, teacher_outputs=teacher_outputs, epoch=epoch)
        peer_logits = [peer(x) for peer in self.peers]
        parts = dict(out.parts)
        for i, logits in enumerate(peer_logits, 1):
            parts[f"peer{i}.ce"] = F.cross_entropy(logits, y)
        kind = self.scheme.kind
        for i, loss in enumerate(PEER_LOSSES[kind]([out.logits, *peer_logits], self.scheme.temperature)):
            parts[f"{'student' if i == 0 else f'peer{i}'}.{kind}"] = self.scheme.weight * loss
        return DistillOutput(total=torch.stack(list(parts.values())).sum(), parts=parts, logits=out.logits)


def build_peers(prepared, strategy, seed: int) -> list[nn.Module]:
    """``scheme.peers`` fresh float models (the task's student with the strategy's ``student``
    kwargs, or ``peer_model``), seeded apart from the student."""
    scheme = strategy.scheme
    model, kwargs = ((scheme.peer_model, scheme.peer_kwargs) if scheme.peer_model
                     else (prepared.task.student.model, student_kwargs(prepared, strategy)))
    return [build_student(prepared, seed + i, model, kwargs) for i in range(1, scheme.peers + 1)]


def build_cohort(prepared, strategy, seed: int) -> Cohort:
    distiller = build_distiller(prepared, strategy, seed)
    return Cohort(distiller, build_peers(prepared, strategy, seed), strategy.scheme).to(prepared.device)


def check(prepared, strategy) -> None:
    data, scheme = prepared.data, strategy.scheme
    if scheme.peer_model:  # a peer whose forward does not return logits fails here, named
        model = build_model(scheme.peer_model, scheme.peer_kwargs, data.num_classes, data.input_shape)
        check_logits(model, scheme.peer_model, "peer", data.input_shape, data.num_classes)
    build_cohort(prepared, strategy, seed=0)


def train(job: SchemeJob) -> Trained:
    cohort = build_cohort(job.prepared, job.strategy, job.recipe.seed)
    models = 1 + len(cohort.peers)
    result = fit_cached(cohort, job.prepared, job.recipe, job.teacher_cache, counting_cost(job.on_epoch, 0, models),
                        job.validate_at)
    return Trained(cohort.student, result.val_acc, result.history, result.steps * models)

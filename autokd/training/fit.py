"""The training loop: one student (through a Distiller) trained by a recipe."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Collection, Optional

import torch

from autokd.config.strategy import Recipe
from autokd.training.distiller import Distiller
from autokd.training.teacher_cache import TeacherCache


class TrainingFailed(RuntimeError):
    """The run broke down (non-finite or exploding loss): a property of the strategy, not a bug."""


@dataclass
class EpochStats:
    epoch: int
    epochs: int
    train_loss: float
    val_acc: float
    seconds: float
    steps: int = 0  # training steps so far (a scheme adds its earlier stages and other models)


@dataclass
class FitResult:
    val_acc: float
    history: list[EpochStats] = field(default_factory=list)
    seconds: float = 0.0
    steps: int = 0  # optimizer steps (batches trained)


# a loss this large has diverged even if it is still finite
DIVERGED_LOSS = 1e8


def make_optimizer(params, recipe: Recipe) -> torch.optim.Optimizer:
    params = list(params)
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay, nesterov=False)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    return torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)


def make_scheduler(optimizer, recipe: Recipe):
    """A per-epoch learning-rate schedule."""
    if recipe.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=recipe.epochs)
    if recipe.schedule == "step":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=recipe.milestones, gamma=recipe.gamma)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


@torch.no_grad()
def accuracy(model: torch.nn.Module, data, split: str, device, batch_size: int = 1024) -> float:
    """Top-1 accuracy in percent on ``split`` ('train', 'val' or 'test'), eval mode."""
    was_training = model.training
    model.eval()
    correct = total = 0
    for _, x, y in data.batches(split, batch_size, shuffle=False, device=device):
        correct += (model(x).argmax(1) == y).sum().item()
        total += len(y)
    model.train(was_training)
    return 100.0 * correct / max(total, 1)


def fit(
    distiller: Distiller,
    data,
    recipe: Recipe,
    device,
    teacher_cache: Optional[TeacherCache] = None,
    on_epoch: Optional[Callable[[EpochStats], None]] = None,
    validate_at: Optional[Collection[int]] = None,
) -> FitResult:
    """Train ``distiller``'s student on ``data.train`` for ``recipe.epochs``.

    Validation accuracy is measured after each epoch in ``validate_at`` and after the last one
    (``None``: after every epoch, for progress displays). On a small training set validation can
    cost more than the epoch itself, so callers that only need some epochs (a search trial: its
    pruning rungs; a full-length run: the end) say which. ``on_epoch`` sees the stats of each
    validated epoch (a search trial reports them; it may raise to stop). Raises
    :class:`TrainingFailed` when the loss becomes non-finite or explodes.
    """
    optimizer = make_optimizer(distiller.trainable_parameters(), recipe)
    scheduler = make_scheduler(optimizer, recipe)
    generator = torch.Generator().manual_seed(recipe.seed)
    start = time.perf_counter()
    history = []
    val_acc = 0.0
    steps = 0
    for epoch in range(1, recipe.epochs + 1):
        distiller.train()
        loss_sum = torch.zeros((), device=device)
        batches = 0
        for idx, x, y in data.batches("train", recipe.batch_size, shuffle=True, generator=generator, device=device):
            if len(y) == 1 < recipe.batch_size and batches:  # a last batch of one: BatchNorm cannot train on it
                continue
            cached = teacher_cache.lookup(idx.to(teacher_cache.logits.device)) if teacher_cache is not None else None
            out = distiller(x, y, index=idx, teacher_outputs=cached, epoch=epoch)
            optimizer.zero_grad(set_to_none=True)
            out.total.backward()
            optimizer.step()
            loss_sum += out.total.detach()
            batches += 1
        scheduler.step()
        steps += batches
        train_loss = loss_sum.item() / max(batches, 1)
        if not math.isfinite(train_loss) or train_loss > DIVERGED_LOSS:
            parts = ", ".join(f"{k}={v.item():.4g}" for k, v in out.parts.items())
            raise TrainingFailed(f"loss diverged to {train_loss:.4g} in epoch {epoch} (last batch: {parts})")
        if validate_at is not None and epoch != recipe.epochs and epoch not in validate_at:
            continue
        val_acc = accuracy(distiller.student, data, "val", device)
        stats = EpochStats(epoch, recipe.epochs, train_loss, val_acc, time.perf_counter() - start, steps)
        history.append(stats)
        if on_epoch is not None:
            on_epoch(stats)
    return FitResult(val_acc=val_acc, history=history, seconds=time.perf_counter() - start, steps=steps)

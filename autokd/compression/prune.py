"""Structured channel pruning by L1 importance, with the channels really removed.

Built on torch-pruning (``torch_pruning``, VainF/Torch-Pruning): its dependency graph follows
a channel through every layer that uses it (batch norm, the next convolution, residual adds,
concatenations), so any model it can trace is pruned consistently and comes out smaller and
faster, not masked (``torch.nn.utils.prune`` only masks: the tensors keep their shapes).

``prune_channels(model, amount, example)`` removes ``amount`` of the output channels of every
prunable layer (ranked by the L1 norm of the weights producing them, layer by layer), except the classifier
that produces the logits, so the model still predicts the same classes. Its parameter count
falls roughly by ``(1 - amount)**2`` (both the inputs and outputs of inner layers shrink).

A pruned model's shapes no longer match its builder's kwargs; :func:`resize_like` rebuilds them
from a saved state dict (see :mod:`autokd.compression.saved`).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
RESIZABLE = (*CONVS, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm, nn.PReLU)


class PruningError(ValueError):
    """The model cannot be pruned (or rebuilt) as asked."""


def output_layer(model: nn.Module, example: torch.Tensor) -> nn.Module:
    """The last Linear or convolution the forward calls: the classifier, never pruned."""
    called = []
    hooks = [m.register_forward_hook(lambda mod, _i, _o: called.append(mod))
             for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for hook in hooks:
            hook.remove()
    if not called:
        raise PruningError("the model has no Linear or convolution layer to prune")
    return called[-1]


def l1_filter_importance(tp):
    """The standard L1 filter norm (Li et al., ICLR 2017): a channel's importance is the L1 norm of
    the weights that produce it in the layer being pruned, not of the layers that consume it."""
    return tp.importance.MagnitudeImportance(p=1, normalizer=None, group_reduction="first")


def prune_channels(model: nn.Module, amount: float, example: torch.Tensor) -> nn.Module:
    """A copy of ``model`` with ``amount`` (0 to 0.9) of each prunable layer's channels removed.

    ``example`` is one input batch (its values do not matter). ``amount`` 0 returns an unchanged
    copy. Every layer keeps at least one channel (the amount is capped for very narrow models), and
    a small amount of a narrow layer may remove nothing. The copy is in the training mode ``model``
    was in."""
    import torch_pruning as tp

    pruned = copy.deepcopy(model)
    if amount == 0:
        return pruned
    was_training = pruned.training
    frozen = {name for name, p in pruned.named_parameters() if not p.requires_grad}
    for parameter in pruned.parameters():  # torch-pruning traces through autograd: a frozen model shows no graph
        parameter.requires_grad_(True)
    pruned.eval()
    classifier = output_layer(pruned, example)
    widths = [m.weight.shape[0] for m in pruned.modules()
              if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)) and m is not classifier]
    if not widths:
        raise PruningError("the model has no layer to prune besides its classifier")
    narrowest = min(widths)  # torch-pruning skips a layer it would empty: keep one channel of the narrowest
    ratio = min(float(amount), (narrowest - 1) / narrowest) if narrowest > 1 else float(amount)
    try:
        pruner = tp.pruner.MagnitudePruner(pruned, example, importance=l1_filter_importance(tp),
                                           pruning_ratio=ratio, ignored_layers=[classifier])
        pruner.step()
    except Exception as exc:  # torch-pruning's tracer meets a model it cannot follow
        raise PruningError(f"torch-pruning could not prune this model ({type(exc).__name__}: {exc})") from exc
    check_rebuilds(model, pruned, example)
    for name, parameter in pruned.named_parameters():
        parameter.requires_grad_(name not in frozen)
    pruned.train(was_training)
    return pruned


def check_rebuilds(model: nn.Module, pruned: nn.Module, example: torch.Tensor) -> None:
    """Refuse a pruning that ``load_student`` could not rebuild: ``model`` (as its builder makes it)
    resized by :func:`resize_like` to ``pruned``'s saved tensors must be ``pruned`` (each layer's settings,
    its outputs), else a saved student would come back as another model (or not at all)."""
    state = {name: tensor.detach().cpu() for name, tensor in pruned.state_dict().items()}
    trained = copy.deepcopy(pruned).cpu().eval()
    try:
        rebuilt = resize_like(copy.deepcopy(model).cpu(), state).eval()
    except PruningError as exc:
        raise PruningError(f"the pruned model could not be rebuilt from its saved weights: {exc}") from None
    for (path, layer), (_, other) in zip(trained.named_modules(), rebuilt.named_modules()):
        if type(layer) is not type(other) or layer.extra_repr() != other.extra_repr():
            raise PruningError(f"the pruned {path or 'model'} ({type(layer).__name__}({layer.extra_repr()})) would be "
                               f"rebuilt from its saved weights as {type(other).__name__}({other.extra_repr()}); "
                               f"this layer cannot be pruned and saved")
    rebuilt.load_state_dict(state)
    with torch.no_grad():
        x = example.detach().cpu()
        if not torch.allclose(trained(x), rebuilt(x), rtol=1e-4, atol=1e-5):
            raise PruningError("the pruned model rebuilt from its saved weights computes other outputs; this "
                               "model cannot be pruned and saved")


def resize_like(model: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    """``model`` (changed in place) with every layer whose saved tensors in ``state`` have other
    shapes rebuilt (zero) at those shapes, so that ``load_state_dict(state)`` fits.

    Handles the layers pruning shrinks (convolutions, depthwise ones included, Linear, batch, layer and
    group norm); another kind of layer whose shapes differ is a :class:`PruningError`."""
    for path, module in model.named_modules():
        prefix = f"{path}." if path else ""
        own = {name: t for name, t in [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]
               if t is not None}
        changed = {name for name, t in own.items() if prefix + name in state and state[prefix + name].shape != t.shape}
        if not changed:
            continue
        if not isinstance(module, RESIZABLE):
            raise PruningError(f"cannot rebuild {path or 'the model'} ({type(module).__name__}) at its saved shapes")
        depthwise = isinstance(module, CONVS) and module.groups > 1 and module.groups == module.in_channels == (
            module.out_channels)  # its channels follow its input's: groups = channels
        for name in own:
            saved = state.get(prefix + name)
            if saved is not None and saved.shape != own[name].shape:
                tensor = torch.zeros(saved.shape, dtype=own[name].dtype)  # finite: prepare() observes it
                if isinstance(own[name], nn.Parameter):
                    setattr(module, name, nn.Parameter(tensor, requires_grad=own[name].requires_grad))
                else:
                    setattr(module, name, tensor)
        _fix_sizes(module, depthwise)
    return model


def _fix_sizes(module: nn.Module, depthwise: bool) -> None:
    """The size attributes of a layer whose tensors were resized (a depthwise convolution keeps
    one group a channel, as torch-pruning prunes it; other grouped ones keep their groups)."""
    if isinstance(module, nn.Linear):
        module.out_features, module.in_features = module.weight.shape
    elif isinstance(module, CONVS):
        module.out_channels = module.weight.shape[0]
        if depthwise:
            module.groups = module.out_channels
        module.in_channels = module.weight.shape[1] * module.groups
    elif isinstance(module, nn.LayerNorm):
        module.normalized_shape = tuple(module.weight.shape)
    elif isinstance(module, nn.GroupNorm):
        module.num_channels = module.weight.shape[0]
    elif isinstance(module, nn.PReLU):
        module.num_parameters = module.weight.shape[0]
    else:
        module.num_features = module.weight.shape[0] if module.weight is not None else module.running_mean.shape[0]

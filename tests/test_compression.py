"""Compression steps: fake quantization, int8 conversion, structured pruning, footprints, and a
trained student saved and rebuilt (on tiny models and the tiny task)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from autokd.compression import quantize
from autokd.compression.measure import count_macs, count_params, deployed_bytes, footprint, latency_ms
from autokd.compression.prune import PruningError, prune_channels, resize_like
from autokd.models.registry import build_model


def _tiny_cnn(channels: int = 16) -> nn.Module:
    torch.manual_seed(0)
    return build_model("cnn1d", {"channels": channels, "depth": 3}, 10, (1, 40))


def _train_a_little(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 20) -> None:
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model.train()
    for _ in range(steps):
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


@pytest.mark.parametrize("bits", [8, 4])
def test_fake_quantized_weights_lie_on_the_int_grid_and_gradients_pass_straight_through(bits):
    model = quantize.prepare(_tiny_cnn(), bits)
    layer = model.stages[1][0].layer  # a Conv1d replaced at its own path, wrapped
    assert isinstance(model.stages[1][0], quantize.FakeQuantLayer) and quantize.bits_of(model) == bits
    fake = layer.weight_fake_quant
    q = layer.weight_fake_quant(layer.weight).detach()
    scale = fake.scale.view(-1, 1, 1)
    raw = q / scale
    assert torch.allclose(raw, raw.round(), atol=1e-3)  # on the grid: whole multiples of the per-channel scale
    steps = raw.round()
    assert steps.min() >= -(2 ** (bits - 1)) and steps.max() <= 2 ** (bits - 1) - 1
    assert len(fake.scale) == layer.weight.shape[0]  # one scale per output channel
    # straight-through: the fake-quantized weight's gradient is the upstream gradient where not clipped
    w = layer.weight.detach().clone().requires_grad_(True)
    upstream = torch.randn_like(w)
    (fake(w) * upstream).sum().backward()
    inside = (steps > -(2 ** (bits - 1))) & (steps < 2 ** (bits - 1) - 1)
    assert torch.allclose(w.grad[inside], upstream[inside])


def test_activation_observers_learn_in_training_only():
    model = quantize.prepare(_tiny_cnn(), 8)
    observer = model.stages[0][0].quant.activation_post_process
    x = torch.randn(32, 1, 40)
    model.train()
    model(x)
    scale = observer.scale.clone()
    model.eval()
    model(10 * x)  # evaluation on other data must not move the ranges
    assert torch.equal(observer.scale, scale)


def test_int8_conversion_predicts_like_the_fake_quantized_model():
    x, y = torch.randn(256, 1, 40), torch.randint(0, 10, (256,))
    model = quantize.prepare(_tiny_cnn(), 8)
    _train_a_little(model, x, y)
    model.eval()
    deployed = quantize.deploy(model)
    assert type(deployed.stages[0][0].layer).__module__.startswith("torch.ao.nn.quantized")  # a real int8 kernel
    with torch.no_grad():
        agree = (model(x).argmax(1) == deployed(x).argmax(1)).float().mean().item()
    assert agree >= 0.9
    assert quantize.bits_of(model) == 8 and model.stages[0][0].layer.weight.dtype == torch.float32  # model kept


def test_int4_is_simulated_and_counted_at_half_a_byte_with_an_8_bit_first_layer_and_a_float_classifier():
    float_model, x = _tiny_cnn(), torch.randn(2, 1, 40)
    model = quantize.prepare(_tiny_cnn(), 4, x)
    assert quantize.layer_bits(_tiny_cnn(), 4, x) == {"stages.0.0": 8, "stages.1.0": 4, "stages.2.0": 4, "fc": None}
    assert quantize.layer_bits(_tiny_cnn(), 8, x) == {"stages.0.0": 8, "stages.1.0": 8, "stages.2.0": 8, "fc": None}
    assert isinstance(model.fc, nn.Linear) and quantize.bits_of(model) == 4
    assert quantize.deploy(model).stages[0][0].layer.weight.dtype == torch.float32  # no int4 kernel: simulated
    first = float_model.stages[0][0].weight.numel()
    inner = float_model.stages[1][0].weight.numel() + float_model.stages[2][0].weight.numel()
    saved = deployed_bytes(float_model) - deployed_bytes(model)
    scales = 16 * 3 * 4  # a float scale per output channel of each quantized layer
    assert saved == pytest.approx(first * 3 + inner * 3.5 - scales, abs=1)


def test_pruning_removes_channels_and_amount_zero_is_the_identity():
    model, x = _tiny_cnn(32).eval(), torch.randn(4, 1, 40)
    same = prune_channels(model, 0.0, x).eval()
    assert count_params(same) == count_params(model) and torch.equal(same(x), model(x))
    pruned = prune_channels(model, 0.5, x).eval()
    assert pruned.stages[0][0].out_channels == 16 and pruned.fc.out_features == 10  # the classifier keeps its classes
    assert count_params(pruned) < 0.35 * count_params(model)
    assert count_macs(pruned, x[:1]) < 0.35 * count_macs(model, x[:1])
    assert pruned(x).shape == (4, 10)
    narrow = [prune_channels(_tiny_cnn(4), a, x).stages[0][0].out_channels for a in (0.3, 0.5, 0.7, 0.9)]
    assert narrow == sorted(narrow, reverse=True) and narrow[-1] == 1  # monotonic; a layer keeps one channel
    big, small = _tiny_cnn(256).eval(), prune_channels(_tiny_cnn(256), 0.75, x).eval()
    assert latency_ms(small, x[:1]) < latency_ms(big, x[:1])


def test_a_frozen_model_is_pruned_and_stays_frozen():
    model, x = _tiny_cnn(16).eval(), torch.randn(4, 1, 40)
    model.requires_grad_(False)  # as a trained teacher is handed over
    pruned = prune_channels(model, 0.5, x)
    assert count_params(pruned) < 0.35 * count_params(model)
    assert not any(p.requires_grad for p in pruned.parameters())
    with pytest.raises(PruningError, match="no layer to prune besides its classifier"):
        prune_channels(nn.Sequential(nn.Flatten(), nn.Linear(40, 10)), 0.5, x)


def test_pruning_keeps_the_channels_with_the_largest_l1_norm():
    model, x = _tiny_cnn(8).eval(), torch.randn(4, 1, 40)
    norms = model.stages[0][0].weight.detach().abs().sum(dim=(1, 2))
    kept = norms.argsort(descending=True)[:4].sort().values
    pruned = prune_channels(model, 0.5, x)
    assert torch.equal(pruned.stages[0][0].weight, model.stages[0][0].weight[kept])


def test_a_pruned_model_is_rebuilt_from_its_state_dict():
    model, x = _tiny_cnn(16), torch.randn(4, 1, 40)
    pruned = prune_channels(model, 0.5, x).eval()
    fresh = resize_like(_tiny_cnn(16), pruned.state_dict())
    fresh.load_state_dict(pruned.state_dict())
    assert torch.equal(fresh.eval()(x), pruned(x))
    with pytest.raises(PruningError, match="cannot rebuild"):
        resize_like(nn.Sequential(nn.Embedding(4, 3)), {"0.weight": torch.ones(2, 3)})  # not a layer pruning shrinks


def test_a_per_channel_prelu_is_pruned_with_its_channels():
    """torch-pruning shrinks a PReLU(C) with its conv; the rebuild check refused it (its size was not resized)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(1, 16, 5, padding=2), nn.PReLU(16), nn.Conv1d(16, 8, 3, padding=1),
                          nn.GroupNorm(2, 8), nn.Flatten(), nn.Linear(8 * 40, 10))
    x = torch.randn(4, 1, 40)
    pruned = prune_channels(model, 0.3, x).eval()
    assert pruned[1].num_parameters == pruned[0].out_channels < 16
    fresh = resize_like(copy.deepcopy(model), pruned.state_dict())
    fresh.load_state_dict(pruned.state_dict())
    assert torch.equal(fresh.eval()(x), pruned(x))


def test_a_model_that_refuses_a_batch_of_one_is_measured_at_two():
    from faulty_models import NoBatchOfOne

    from autokd.models.mnist1d_nets import CNN1d

    model = NoBatchOfOne(channels=4).train()
    cost = footprint(model, model, (1, 40))  # was: RuntimeError from the forward at batch 1, the run lost
    assert cost.macs == count_macs(CNN1d(channels=4), torch.zeros(1, 1, 40)) and cost.latency_ms > 0
    assert model.training  # the caller's model is left in its mode


def test_a_model_that_cannot_be_measured_is_recorded_as_unknown_with_a_warning():
    from faulty_models import NotCountable

    model = NotCountable(channels=4)
    with pytest.warns(RuntimeWarning, match=r"MACs could not be measured \(a forward at batch 1 failed: RuntimeError: "
                                            r"this kernel cannot run under a dispatch mode;.*recorded as unknown"):
        cost = footprint(model, model, (1, 40))
    assert cost.macs is None and cost.latency_ms > 0 and cost.params == count_params(model)


def test_a_bad_layer_of_a_quantized_student_lists_its_layers_not_quantization_internals():
    """The listing held every observer and fake quantizer (a 520-character line for a 3-layer student)."""
    from autokd.errors import AutokdError
    from autokd.models.taps import FeatureTaps

    model = quantize.prepare(_tiny_cnn(), 8)
    with pytest.raises(AutokdError) as info:
        FeatureTaps(model, ["stages.9"])
    message = str(info.value)
    assert "stages.1.0.layer" in message and "embedding" in message
    assert "activation_post_process" not in message and "fake_quant" not in message and ".quant" not in message
    FeatureTaps(model, ["stages.1.0.quant"]).remove()  # still accepted, only not listed

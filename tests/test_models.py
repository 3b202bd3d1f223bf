"""Model zoo, torchvision models, feature taps, projectors and automatic pairs (user models: test_models_user.py)."""

from __future__ import annotations


import pytest
import torch
from torch import nn

from autokd.errors import AutokdError
from autokd.models.pairs import auto_pairs, stage_layers
from autokd.models.projectors import make_projector
from autokd.models.registry import MODELS, build_model, list_models
from autokd.models.taps import EMBEDDING, FeatureTaps, LayerInfo, classifier_path, list_layers

SIGNAL, IMAGE = (1, 40), (3, 32, 32)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --- registry -----------------------------------------------------------------------------


def test_list_models_is_the_registry():
    assert list_models() == sorted(MODELS)
    assert {"cnn1d", "mlp1d", "resnet8x4", "resnet32x4", "resnet20", "resnet56", "resnet110",
            "wrn_16_2", "wrn_40_2"} <= set(list_models())


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_registry_model_builds_and_runs(name):
    shape = MODELS[name].default_input_shape
    model = build_model(name, None, num_classes=7, input_shape=shape)
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(2, *shape)).shape == (2, 7)


def test_mnist1d_nets_accept_unbatched_channel_signals():
    for name in ("cnn1d", "mlp1d"):
        model = build_model(name, None, 10, SIGNAL).eval()
        with torch.no_grad():
            assert model(torch.randn(3, 40)).shape == (3, 10)


def test_cnn1d_kwargs_and_width_multipliers():
    model = build_model("cnn1d", {"channels": 8, "depth": 2, "width_multipliers": [1, 2]}, 5, SIGNAL)
    stages = model.stages
    assert len(stages) == 2 and stages[0][0].out_channels == 8 and stages[1][0].out_channels == 16
    with pytest.raises(AutokdError, match="width_multipliers"):
        build_model("cnn1d", {"depth": 3, "width_multipliers": [1, 2]}, 5, SIGNAL)


def test_input_shape_sets_input_channels():
    model = build_model("resnet20", None, 10, (1, 28, 28)).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    mlp = build_model("mlp1d", {"width": 16}, 10, (2, 30))
    assert mlp.layers[0][0].in_features == 60
    with pytest.raises(AutokdError, match="input shape"):
        build_model("resnet8x4", None, 10, SIGNAL)


def test_unknown_kwarg_names_it_and_the_allowed_ones():
    with pytest.raises(AutokdError, match=r"'widht'.*allowed: channels, depth, kernel_size, width_multipliers"):
        build_model("cnn1d", {"widht": 3}, 10, SIGNAL)
    with pytest.raises(AutokdError, match=r"'depth'.*allowed: \(none\)"):
        build_model("resnet8x4", {"depth": 3}, 10, IMAGE)
    with pytest.raises(AutokdError, match="num_classes"):
        build_model("cnn1d", {"num_classes": 3}, 10, SIGNAL)


def test_bad_kwarg_value_is_an_autokd_error():
    with pytest.raises(AutokdError, match="cnn1d"):
        build_model("cnn1d", {"depth": 0}, 10, SIGNAL)
    with pytest.raises(AutokdError, match="cannot build model 'mlp1d'"):
        build_model("mlp1d", {"width": "wide"}, 10, SIGNAL)


def test_unknown_model_lists_registry():
    with pytest.raises(AutokdError, match=r"unknown model 'resnet8x5'.*did you mean 'resnet8x4'"):
        build_model("resnet8x5", None, 10, IMAGE)


@pytest.mark.parametrize("name, low, high", [("resnet8x4", 1.20e6, 1.26e6), ("resnet32x4", 7.35e6, 7.50e6)])
def test_published_parameter_counts(name, low, high):
    # RepDistiller / CRD report 1.23M and 7.43M parameters for CIFAR-100.
    assert low <= n_params(build_model(name, None, 100, IMAGE)) <= high


def test_stage_resolutions():
    x = torch.randn(2, *IMAGE)
    for name, paths in [("resnet8x4", ["layer1", "layer2", "layer3"]), ("wrn_16_2", ["block1", "block2", "block3"])]:
        model = build_model(name, None, 10, IMAGE).eval()
        with FeatureTaps(model, paths) as taps, torch.no_grad():
            model(x)
        assert [tuple(taps.outputs[p].shape[2:]) for p in paths] == [(32, 32), (16, 16), (8, 8)]


# --- torchvision ----------------------------------------------------------------------------


def test_torchvision_model_by_name():
    model = build_model("torchvision/resnet18", None, 10, IMAGE).eval()
    with torch.no_grad():
        assert model(torch.randn(2, *IMAGE)).shape == (2, 10)
    assert classifier_path(model) == "fc"


def test_torchvision_refuses_weights_and_unknown_names():
    with pytest.raises(AutokdError, match="never downloads weights"):
        build_model("torchvision/resnet18", {"weights": "IMAGENET1K_V1"}, 10, IMAGE)
    with pytest.raises(AutokdError, match="unknown torchvision classification model 'resnet19'"):
        build_model("torchvision/resnet19", None, 10, IMAGE)
    with pytest.raises(AutokdError, match="3-channel"):
        build_model("torchvision/resnet18", None, 10, SIGNAL)
    with pytest.raises(AutokdError, match="torchvision/resnet18"):
        build_model("torchvision/resnet18", {"no_such_arg": 1}, 10, IMAGE)


# --- taps -----------------------------------------------------------------------------------


def test_taps_match_a_manual_forward():
    model = build_model("cnn1d", None, 10, SIGNAL).eval()
    x = torch.randn(4, *SIGNAL)
    with FeatureTaps(model, ["stages.0", "stages.2", EMBEDDING]) as taps:
        logits = model(x)
    with torch.no_grad():
        s0 = model.stages[0](x)
        s2 = model.stages[2](model.stages[1](s0))
        emb = model.pool(s2).flatten(1)
    torch.testing.assert_close(taps.outputs["stages.0"], s0)
    torch.testing.assert_close(taps.outputs["stages.2"], s2)
    torch.testing.assert_close(taps.outputs[EMBEDDING], emb)
    torch.testing.assert_close(model.fc(taps.outputs[EMBEDDING]), logits)
    assert taps.outputs["stages.2"].requires_grad  # not detached


def test_taps_carry_gradient_and_are_removed():
    model = build_model("resnet8x4", None, 10, IMAGE)
    taps = FeatureTaps(model, ["layer2", EMBEDDING])
    model(torch.randn(2, *IMAGE))
    taps.outputs["layer2"].pow(2).mean().backward()
    assert model.layer1[0].conv1.weight.grad is not None
    taps.clear()
    assert taps.outputs == {}
    taps.remove()
    model(torch.randn(2, *IMAGE))
    assert taps.outputs == {}


def test_embedding_is_the_classifier_input():
    model = build_model("wrn_16_2", None, 10, IMAGE).eval()
    seen = {}
    model.fc.register_forward_pre_hook(lambda m, inp: seen.setdefault("x", inp[0]))
    with FeatureTaps(model, [EMBEDDING]) as taps, torch.no_grad():
        model(torch.randn(2, *IMAGE))
    assert classifier_path(model) == "fc"
    torch.testing.assert_close(taps.outputs[EMBEDDING], seen["x"])
    assert taps.outputs[EMBEDDING].shape == (2, 128)


def test_unknown_tap_path_lists_tappable_paths():
    model = build_model("mlp1d", None, 10, SIGNAL)
    with pytest.raises(AutokdError, match=r"'layers.9'.*tappable: layers, layers.0.*fc, embedding"):
        FeatureTaps(model, ["fc", "layers.9"])
    assert not model.fc._forward_hooks  # the hooks already placed are removed again


def test_no_classifier_no_embedding():
    with pytest.raises(AutokdError, match="no nn.Linear"):
        FeatureTaps(nn.Sequential(nn.Conv1d(1, 2, 3)), [EMBEDDING])


def test_list_layers_shapes_and_modes():
    model = build_model("cnn1d", {"channels": 8}, 10, SIGNAL)
    model.train()
    layers = {info.path: info for info in list_layers(model, SIGNAL)}
    assert model.training and all(m.training for m in model.modules())
    assert layers["stages.0"] == LayerInfo("stages.0", "Sequential", (8, 20))
    assert layers["stages.1.0"].output_shape == (8, 10) and layers["stages.1.0"].type_name == "Conv1d"
    assert layers["stages.2"].output_shape == (8, 5)
    assert layers["fc"].output_shape == (10,)
    assert layers[EMBEDDING].output_shape == (8,)
    assert list(layers)[-1] == EMBEDDING

    cifar = {i.path: i.output_shape for i in list_layers(build_model("resnet32x4", None, 100, IMAGE), IMAGE)}
    assert cifar["layer1"] == (64, 32, 32) and cifar["layer3"] == (256, 8, 8) and cifar[EMBEDDING] == (256,)


def test_list_layers_non_tensor_output_is_none():
    class Pair(nn.Module):
        def forward(self, x):
            return x, x

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.pair = Pair()
            self.fc = nn.Linear(40, 2)

        def forward(self, x):
            return self.fc(self.pair(x)[0].flatten(1))

    layers = {i.path: i.output_shape for i in list_layers(Net(), SIGNAL)}
    assert layers == {"pair": None, "fc": (2,), EMBEDDING: (40,)}


# --- projectors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "student, teacher, kinds",
    [
        ((16, 5), (16, 5), {"Identity"}),
        ((64,), (128,), {"Linear"}),
        ((16, 10), (32, 10), {"Conv1d", "BatchNorm1d"}),
        ((16, 20), (32, 10), {"Conv1d", "BatchNorm1d", "AdaptiveAvgPool1d"}),
        ((16, 5), (32, 10), {"Conv1d", "BatchNorm1d", "Interpolate"}),
        ((64, 32, 32), (256, 8, 8), {"Conv2d", "BatchNorm2d", "AdaptiveAvgPool2d"}),
        ((64, 8, 8), (64, 16, 16), {"Interpolate"}),
        ((64, 8, 8), (128,), {"AdaptiveAvgPool2d", "Flatten", "Linear"}),
        ((32, 5), (64,), {"AdaptiveAvgPool1d", "Flatten", "Linear"}),
    ],
)
def test_projector_output_shapes(student, teacher, kinds):
    proj = make_projector(student, teacher)
    assert {type(m).__name__ for m in proj.modules() if not isinstance(m, nn.Sequential)} == kinds
    assert proj(torch.randn(2, *student)).shape == (2, *teacher)


@pytest.mark.parametrize("student, teacher", [((16, 10), (16, 4, 4)), ((64,), (64, 8, 8)), ((), (4,))])
def test_projector_refuses_unmappable_shapes(student, teacher):
    with pytest.raises(AutokdError, match=rf"{student}.*{teacher}".replace("(", r"\(").replace(")", r"\)")):
        make_projector(student, teacher)


# --- automatic pairs ------------------------------------------------------------------------


def test_auto_pairs_cnn1d():
    teacher = build_model("cnn1d", {"channels": 64}, 10, SIGNAL)
    student = build_model("cnn1d", {"channels": 8}, 10, SIGNAL)
    assert auto_pairs(teacher, student, SIGNAL) == [("stages.0", "stages.0"), ("stages.1", "stages.1"),
                                                    ("stages.2", "stages.2")]
    assert stage_layers(student, SIGNAL) == [("stages.0", (8, 20)), ("stages.1", (8, 10)), ("stages.2", (8, 5))]


def test_auto_pairs_cifar():
    teacher = build_model("resnet32x4", None, 100, IMAGE)
    student = build_model("resnet8x4", None, 100, IMAGE)
    assert auto_pairs(teacher, student, IMAGE) == [("layer1", "layer1"), ("layer2", "layer2"), ("layer3", "layer3")]
    assert [p for p, _ in stage_layers(build_model("wrn_16_2", None, 10, IMAGE), IMAGE)] == ["block1", "block2", "relu"]


def test_auto_pairs_partial_and_empty():
    teacher = build_model("cnn1d", {"depth": 3}, 10, SIGNAL)
    student = build_model("cnn1d", {"depth": 2}, 10, SIGNAL)
    assert auto_pairs(teacher, student, SIGNAL) == [("stages.0", "stages.0"), ("stages.1", "stages.1")]
    assert auto_pairs(teacher, build_model("mlp1d", None, 10, SIGNAL), SIGNAL) == []



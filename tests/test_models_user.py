"""User models (package.module:callable) and the hardening around them: sys.exit, the size
bound, what forward returns."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from autokd.errors import AutokdError
from autokd.models.registry import build_model

SIGNAL = (1, 40)
TESTS = Path(__file__).parent  # faulty_models, for CLI subprocesses


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --- user models (package.module:callable) --------------------------------------------------

USER_MODULE = '''
import torch.nn as nn

def make_tiny(num_classes, hidden=4):
    return nn.Sequential(nn.Flatten(), nn.Linear(40, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))

class TinyNet(nn.Module):
    def __init__(self, num_classes=10, input_shape=(1, 40)):
        super().__init__()
        self.fc = nn.Linear(input_shape[-1], num_classes)

    def forward(self, x):
        return self.fc(x.flatten(1))

def no_classes():
    return nn.Linear(40, 3)

def broken(num_classes):
    raise RuntimeError("boom")

def not_a_module(num_classes):
    return 42

NOT_CALLABLE = 3
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    name = f"autokd_user_models_{tmp_path.name}".replace("-", "_")
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_user_callable(user_module):
    model = build_model(f"{user_module}:make_tiny", {"hidden": 6}, 3, SIGNAL)
    assert model(torch.randn(2, 1, 40)).shape == (2, 3) and model[1].out_features == 6
    net = build_model(f"{user_module}:TinyNet", None, 5, (1, 12))
    assert net.fc.in_features == 12 and net.fc.out_features == 5
    assert build_model(f"{user_module}:no_classes", None, 10, SIGNAL).out_features == 3


@pytest.mark.parametrize(
    "spec, message",
    [
        ("autokd_no_such_module_xyz:make", "cannot import module"),
        ("{mod}:missing", "has no attribute 'missing'"),
        ("{mod}:NOT_CALLABLE", "is not callable"),
        ("{mod}:broken", "failed: RuntimeError: boom"),
        ("{mod}:not_a_module", "not a torch.nn.Module"),
        ("{mod}:", "package.module:callable"),
    ],
)
def test_user_callable_errors(user_module, spec, message):
    spec = spec.format(mod=user_module)
    with pytest.raises(AutokdError, match=message) as info:
        build_model(spec, None, 10, SIGNAL)
    assert spec in str(info.value) and "\n" not in str(info.value)


def test_user_callable_bad_kwarg(user_module):
    with pytest.raises(AutokdError, match="unexpected keyword"):
        build_model(f"{user_module}:make_tiny", {"bogus": 1}, 10, SIGNAL)


# --- hardening: sys.exit, size bound, forward output ---------------------------------------

EXITING_MODULE = '''
import sys
sys.exit(3)
'''

ODD_MODULE = '''
import sys
import torch
import torch.nn as nn


def exits(num_classes):
    sys.exit("no model today")


class Tupled(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.fc = nn.Linear(40, num_classes)

    def forward(self, x):
        logits = self.fc(x.flatten(1))
        return logits, x.flatten(1)


class Dicted(Tupled):
    def forward(self, x):
        return {"logits": self.fc(x.flatten(1)), "features": x}


class Narrow(Tupled):
    def forward(self, x):
        return self.fc(x.flatten(1))[:, :3]


class Raising(Tupled):
    def forward(self, x):
        raise RuntimeError("forward is broken")


class IntLogits(Tupled):
    def forward(self, x):
        return self.fc(x.flatten(1)).long()


class NeedsRealTensors(nn.Module):
    """Builds only with real tensors (reads a value in __init__): the meta count gives up."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.fc = nn.Linear(40, num_classes)
        self.scale = float(torch.ones(1).item())

    def forward(self, x):
        return self.fc(x.flatten(1)) * self.scale
'''


@pytest.fixture
def odd_module(tmp_path, monkeypatch):
    name = f"autokd_odd_models_{tmp_path.name}".replace("-", "_")
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(ODD_MODULE))
    (tmp_path / f"{name}_exit.py").write_text(textwrap.dedent(EXITING_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_sys_exit_in_a_user_model_is_an_autokd_error(odd_module):
    with pytest.raises(AutokdError, match=r"cannot import module .*it called sys\.exit\(3\)"):
        build_model(f"{odd_module}_exit:make", None, 10, SIGNAL)
    with pytest.raises(AutokdError, match=r"exits.*failed: it called sys\.exit\('no model today'\)"):
        build_model(f"{odd_module}:exits", None, 10, SIGNAL)


def test_a_model_beyond_the_parameter_bound_is_refused_without_allocating():
    import time

    from autokd.models.registry import MAX_PARAMETERS, meta_parameter_count

    start = time.perf_counter()
    with pytest.raises(AutokdError) as info:
        build_model("cnn1d", {"channels": 200_000}, 10, SIGNAL)  # 400e9 parameters, 1.6 TB
    message = str(info.value)
    assert "'cnn1d'" in message and "400,004,200,010 parameters" in message and f"{MAX_PARAMETERS:,}" in message
    assert time.perf_counter() - start < 5
    assert meta_parameter_count(lambda: build_model("cnn1d", {"channels": 4}, 10, SIGNAL)) == n_params(
        build_model("cnn1d", {"channels": 4}, 10, SIGNAL))


def test_a_model_that_cannot_be_built_on_meta_still_builds(odd_module):
    from autokd.models.registry import meta_parameter_count

    assert meta_parameter_count(lambda: build_model(f"{odd_module}:NeedsRealTensors", None, 10, SIGNAL)) is None
    model = build_model(f"{odd_module}:NeedsRealTensors", None, 10, SIGNAL)
    assert model(torch.zeros(2, 1, 40)).shape == (2, 10)


def test_kwargs_in_build_errors_are_cut_short():
    with pytest.raises(AutokdError) as info:
        build_model("mlp1d", {"width": ["wide"] * 100_000}, 10, SIGNAL)
    assert "cannot build model 'mlp1d'" in str(info.value) and len(str(info.value)) < 600


@pytest.mark.parametrize(
    "attr,needles",
    [
        ("Tupled", ["a tuple of 2 (tensor (2, 10), tensor (2, 40))", "(2, 10)"]),
        ("Dicted", ["a dict with keys 'logits', 'features'"]),
        ("Narrow", ["a tensor of shape (2, 3)", "(batch, num_classes) = (2, 10)"]),
        ("Raising", ["forward pass on a dummy batch of shape (2, 1, 40) failed", "forward is broken"]),
        ("IntLogits", ["logits of dtype torch.int64", "expected floating-point logits"]),
    ],
)
def test_check_logits_names_the_model_and_what_it_returned(odd_module, attr, needles):
    from autokd.models.checks import check_logits

    name = f"{odd_module}:{attr}"
    model = build_model(name, None, 10, SIGNAL)
    model.train()
    with pytest.raises(AutokdError) as info:
        check_logits(model, name, "student", SIGNAL, 10)
    message = str(info.value)
    assert message.startswith(f"student model {name!r}") and "\n" not in message, message
    for needle in needles:
        assert needle in message, message
    assert model.training  # the mode is restored


@pytest.mark.parametrize("role", ["teacher", "student"])
def test_a_space_whose_model_cannot_run_is_refused_before_its_layers_are_traced(odd_module, tmp_path, role):
    """bind_space (search, calibrate) checks both models' logits before it looks for layer pairs."""
    from conftest import TINY_TASK, write_space

    from autokd.search.binding import bind_space
    from autokd.search.space_file import load_space_file

    task = {**TINY_TASK, role: {**TINY_TASK[role], "model": f"{odd_module}:Raising", "kwargs": {}}}
    space = load_space_file(write_space(tmp_path / "space.yaml", task=task, space={"pair_losses": ["none", "fitnet"]}))
    with pytest.raises(AutokdError, match=rf"^{role} model .*Raising.*forward pass on a dummy batch .* failed: "
                                          r"RuntimeError: forward is broken"):
        bind_space(space)


def test_listing_the_layers_of_a_model_that_cannot_run_says_why(odd_module):
    from autokd.models.taps import list_layers

    model = build_model(f"{odd_module}:Raising", None, 10, SIGNAL)
    with pytest.raises(AutokdError, match=r"a forward pass of Raising on a dummy batch of shape \(2, 1, 40\) failed: "
                                          r"RuntimeError: forward is broken"):
        list_layers(model, SIGNAL)


def test_check_logits_accepts_a_classifier_and_leaves_the_rng_alone():
    from autokd.models.checks import check_logits

    model = build_model("cnn1d", {"channels": 4}, 10, SIGNAL)
    state = torch.get_rng_state()
    check_logits(model, "cnn1d", "teacher", SIGNAL, 10)
    assert torch.equal(state, torch.get_rng_state())


# --- models with nothing to train; layers of odd models ---------------------------------------


@pytest.mark.parametrize("role", ["teacher", "student"])
def test_a_model_with_nothing_to_train_is_refused_before_training_naming_it_and_its_role(tmp_path, role):
    """Was: ValueError: optimizer got an empty parameter list (train, teacher), every trial failed (search)."""
    from conftest import TINY_TASK, run_cli, write_config, write_space

    from autokd.search.binding import bind_space
    from autokd.search.space_file import load_space_file

    task = {**TINY_TASK, role: {**TINY_TASK[role], "model": "faulty_models:NoParameters", "kwargs": {}}}
    write_space(tmp_path / "t.yaml", task=task, space={"pair_losses": ["none"], "relation_losses": []})
    write_config(tmp_path / "c.yaml", {"alpha": 0.0}, "t.yaml")
    expected = (f"{role} model 'faulty_models:NoParameters' has nothing to train: it has no parameters, so autokd "
                f"cannot train it; give it at least one trainable parameter (an nn.Linear, say)")
    proc = run_cli("train", "--config", "c.yaml", "--epochs", "1", cwd=tmp_path, env={"PYTHONPATH": str(TESTS)})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == f"error: {expected}"
    with pytest.raises(AutokdError) as info:
        bind_space(load_space_file(tmp_path / "t.yaml"))  # a search: refused before its study is created
    assert str(info.value) == expected


def test_check_logits_refuses_a_model_whose_parameters_are_all_frozen():
    from autokd.models.checks import check_logits

    model = build_model("cnn1d", {"channels": 4}, 10, SIGNAL).requires_grad_(False)
    with pytest.raises(AutokdError, match=rf"^assistant model 'cnn1d' has nothing to train: all its "
                                          rf"{n_params(model):,} parameters are frozen \(requires_grad=False\)"):
        check_logits(model, "cnn1d", "assistant", SIGNAL, 10)


def test_layers_of_a_model_without_layers_and_of_a_bare_linear_are_listed():
    from conftest import run_cli

    empty = run_cli("layers", "faulty_models:NoParameters", "--input-shape", "1,40", env={"PYTHONPATH": str(TESTS)})
    assert empty.returncode == 0 and "Traceback" not in empty.stderr, empty.stderr  # was: max() arg is an empty sequence
    assert empty.stdout.splitlines()[1] == "  (no layers to tap: NoParameters has no submodules and no nn.Linear classifier)"
    bare = run_cli("layers", "torch.nn:Linear", "--kwarg", "in_features=40", "--kwarg", "out_features=10",
                   "--input-shape", "40")
    assert bare.returncode == 0, bare.stderr
    assert bare.stdout.splitlines()[1].split() == ["embedding", "input", "of", "the", "model", "itself", "(Linear)", "40"]


LAZY_MODULE = '''
import torch.nn as nn

class Lazy(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv = nn.LazyConv1d(8, 3, padding=1)
        self.fc = nn.LazyLinear(num_classes)

    def forward(self, x):
        return self.fc(self.conv(x).relu().mean(-1))
'''


def test_a_lazy_model_is_built_with_its_parameters_made(tmp_path, monkeypatch):
    """Counting its parameters (autokd layers) or a pair on it (train) ended in a traceback:
    ValueError: Attempted to use an uninitialized parameter."""
    from conftest import run_cli

    from autokd.config import PairLoss, Strategy
    from autokd.training.distiller import Distiller

    (tmp_path / "lazy_models.py").write_text(LAZY_MODULE)
    listing = run_cli("layers", "lazy_models:Lazy", "--input-shape", "1,40", env={"PYTHONPATH": str(tmp_path)})
    assert listing.returncode == 0 and "Traceback" not in listing.stderr, listing.stderr
    assert listing.stdout.splitlines()[0] == "lazy_models:Lazy (122 parameters), input (1, 40)"
    monkeypatch.syspath_prepend(str(tmp_path))
    teacher, student = (build_model("lazy_models:Lazy", None, 10, SIGNAL) for _ in range(2))
    assert n_params(student) == 122 and type(student.conv) is nn.Conv1d  # what quantization recognises
    strategy = Strategy(alpha=0.5, pairs=[PairLoss("conv", "conv", "fitnet")])
    with Distiller(teacher, student, strategy, SIGNAL) as distiller:
        assert distiller(torch.randn(4, 1, 40), torch.tensor([0, 1, 2, 3])).total.isfinite()


def test_layers_refuses_num_classes_or_an_empty_shape_with_a_space():
    """--num-classes with --space was silently ignored (its default could not be told from a value given),
    and an empty --input-shape or --space read as not given."""
    from conftest import run_cli

    for args, needle in ((["--space", "default", "--num-classes", "3"], "not both: --num-classes and --space"),
                         (["cnn1d", "--input-shape", ""], "'--input-shape': is empty"),
                         (["--space", ""], "'--space': is empty")):
        proc = run_cli("layers", *args)
        assert proc.returncode == 2 and needle in proc.stderr, proc.stderr

"""Tests of autokd.config: strategy YAML round trip, recipe inheritance, strict validation with
messages that name the bad thing, and loading train configs / task references."""

from __future__ import annotations

import copy

import pytest
import yaml

from autokd.config import (
    PairLoss,
    Recipe,
    RelationLoss,
    Strategy,
    load_config,
    load_task,
    shipped_spaces,
    strategy_from_dict,
    strategy_to_dict,
    task_from_dict,
)
from autokd.config.yaml_io import dump_yaml, load_yaml_file, load_yaml_text
from autokd.errors import AutokdError, ConfigError

from conftest import TINY_TASK, write_config, write_space

# ----------------------------------------------------------------------------- round trip

ROUND_TRIP = [
    Strategy(),
    Strategy(alpha=0.0),
    Strategy(temperature=1 / 3, alpha=1.0, recipe=Recipe(epochs=7, optimizer="sgd", lr=0.05, momentum=0.8,
                                                        schedule="step", milestones=[3, 5], gamma=0.5, seed=3)),
    Strategy(
        temperature=2.5,
        alpha=0.25,
        logit_loss="dkd",
        logit_params={"alpha": 0.5, "beta": 6.0, "warmup": 5},
        pairs=[
            PairLoss(teacher="stages.1", student="stages.1", loss="fitnet", weight=100.0),
            PairLoss(teacher="stages.2", student="stages.2", loss="at", weight=1e-5, params={"p": 3}),
            PairLoss(teacher="stages.0", student="stages.0", loss="nst", weight=1e30),
        ],
        relations=[
            RelationLoss(loss="rkd", weight=0.7, params={"distance_weight": 20.0, "angle_weight": 40}),
            RelationLoss(loss="pkt", weight=30000.0),
            RelationLoss(loss="crd", weight=0.8, params={"feat_dim": 16, "num_negatives": 32}),
        ],
        recipe=Recipe(epochs=11, optimizer="adamw", lr=0.003, weight_decay=5e-4, batch_size=32, seed=9),
    ),
    Strategy(temperature=2.0, alpha=0.9, logit_standardization=True),
    Strategy(temperature=2.0, alpha=0.9, logit_loss="dkd", logit_params={"beta": 8.0, "warmup": 3},
             logit_standardization=True),
    Strategy(alpha=2 / 3, logit_loss="dist", logit_params={"beta": 2.0, "gamma": 0.5}, logit_standardization=True),
    Strategy(temperature=10.0, alpha=0.5, logit_loss="ttm"),
    Strategy(temperature=5.0, alpha=0.8, logit_loss="wttm", logit_standardization=False),
]


@pytest.mark.parametrize("strategy", ROUND_TRIP, ids=lambda s: s.describe())
def test_strategy_yaml_round_trip_is_exact(strategy):
    text = dump_yaml(strategy_to_dict(strategy))
    back = strategy_from_dict(yaml.safe_load(text))
    assert back == strategy
    # and through the project's own loader, twice
    again = strategy_from_dict(load_yaml_text(dump_yaml(strategy_to_dict(back))))
    assert again == strategy
    assert dump_yaml(strategy_to_dict(again)) == text


def test_logit_standardization_in_yaml_and_describe():
    text = dump_yaml(strategy_to_dict(Strategy(temperature=2.0, alpha=0.9, logit_standardization=True)))
    assert "logit_standardization: true" in text.splitlines()
    assert strategy_from_dict({"alpha": 0.9}).logit_standardization is False  # absent: off
    assert Strategy(temperature=2.0, alpha=0.9, logit_standardization=True).describe() == "kd+ls T=2 alpha=0.9"
    assert Strategy(alpha=0.5, logit_loss="dist").describe() == "dist T=4 alpha=0.5"
    with_params = Strategy(alpha=0.5, logit_loss="dist", logit_params={"beta": 2.0, "gamma": 0.125},
                           pairs=[PairLoss("t.1", "s.1", "at", 1000.0, {"p": 4.0})], relations=[RelationLoss("rkd", 1.0, {"angle_weight": 0.0})])
    assert with_params.describe() == "dist(beta=2, gamma=0.125) T=4 alpha=0.5 + at(s.1<-t.1, p=4)x1e+03 + rkd(angle_weight=0)x1"
    assert Strategy(alpha=0.0, logit_standardization=True).describe() == "ce only"
    with pytest.raises(ConfigError, match="logit_standardization must be true or false"):
        Strategy(logit_standardization=1).validate()  # a Strategy built in code skips the parser's check


# ----------------------------------------------------------------------------- recipes


def test_partial_recipe_overrides_the_tasks_full_recipe(tmp_path):
    space = write_space(tmp_path / "tiny.yaml")
    config = write_config(tmp_path / "c.yaml", {"alpha": 0.5, "recipe": {"lr": 0.002, "epochs": 5}}, "tiny.yaml")
    cfg = load_config(config)
    full = cfg.task.recipes.full
    assert cfg.strategy.recipe.lr == 0.002 and cfg.strategy.recipe.epochs == 5
    # everything else is the task's full recipe (not the Recipe() defaults)
    assert cfg.strategy.recipe.batch_size == full.batch_size == 64
    assert cfg.strategy.recipe == Recipe(**{**full.__dict__, "lr": 0.002, "epochs": 5})
    # no recipe at all: exactly the task's full recipe, and a copy of it
    cfg2 = load_config(write_config(tmp_path / "c2.yaml", {"alpha": 0.5}, space.name))
    assert cfg2.strategy.recipe == cfg2.task.recipes.full
    assert cfg2.strategy.recipe is not cfg2.task.recipes.full


def test_proxy_recipe_inherits_from_full():
    task = dict(copy.deepcopy(TINY_TASK))
    task["recipes"] = {"full": {"epochs": 8, "optimizer": "sgd", "lr": 0.05, "batch_size": 32, "seed": 4},
                       "proxy": {"epochs": 2, "lr": 0.1}}
    spec = task_from_dict(task)
    full, proxy = spec.recipes.full, spec.recipes.proxy
    assert (full.epochs, full.optimizer, full.lr, full.batch_size) == (8, "sgd", 0.05, 32)
    assert (proxy.epochs, proxy.lr) == (2, 0.1)
    assert (proxy.optimizer, proxy.batch_size, proxy.seed) == ("sgd", 32, 4)
    # a proxy without epochs is shorter than full
    task["recipes"] = {"full": {"epochs": 8, "optimizer": "sgd"}}
    spec = task_from_dict(task)
    assert spec.recipes.proxy.optimizer == "sgd"
    assert 1 <= spec.recipes.proxy.epochs < 8
    # the teacher's recipe does not leak into the student's
    assert spec.teacher.recipe.epochs == 3 and spec.teacher.recipe.lr == 0.01


# ----------------------------------------------------------------------------- validation

STRATEGY_ERRORS = [
    ({"temprature": 4}, ["strategy.temprature", "did you mean 'temperature'"]),
    ({"recipe": {"epoch": 3}}, ["strategy.recipe.epoch", "did you mean 'epochs'"]),
    ({"pairs": [{"teacher": "stages.1", "loss": "fitnet"}]}, ["missing key", "strategy.pairs[0].student"]),
    ({"relations": [{"weight": 1.0}]}, ["missing key", "strategy.relations[0].loss"]),
    ({"alpha": "high"}, ["strategy.alpha", "must be a number", "'high'"]),
    ({"pairs": {"teacher": "a"}}, ["strategy.pairs", "must be a list"]),
    ({"recipe": {"epochs": 2.5}}, ["strategy.recipe.epochs", "integer", "2.5"]),
    ({"alpha": 2}, ["strategy.alpha", "[0, 1]", "2"]),
    ({"alpha": -0.1}, ["strategy.alpha", "[0, 1]"]),
    ({"temperature": 0}, ["strategy.temperature", "> 0"]),
    ({"temperature": -1.5}, ["strategy.temperature", "> 0"]),
    ({"temperature": 1e160}, ["strategy.temperature", "at most 100", "1e+160"]),  # was an OverflowError
    ({"recipe": {"lr": 1e39}}, ["strategy.recipe.lr", "at most 3.4e+38", "1e+39"]),  # was a float32 overflow
    ({"recipe": {"weight_decay": 1e39}}, ["strategy.recipe.weight_decay", "at most 3.4e+38"]),
    ({"pairs": [{"teacher": "a", "student": "b", "loss": "fitnet", "weight": -1}]},
     ["strategy.pairs[0].weight", ">= 0", "-1"]),
    ({"relations": [{"loss": "rkd", "weight": -0.5}]}, ["strategy.relations[0].weight", ">= 0"]),
    ({"relations": [{"loss": "rkd", "weight": float("nan")}]}, ["strategy.relations[0].weight"]),
    ({"logit_loss": "kdd"}, ["strategy.logit_loss: unknown value 'kdd'", "did you mean 'kd'", "dkd", "kd"]),
    ({"pairs": [{"teacher": "a", "student": "b", "loss": "fitnett"}]},
     ["strategy.pairs[0].loss", "'fitnett'", "at", "fitnet", "nst", "sp"]),
    ({"relations": [{"loss": "rdk"}]}, ["strategy.relations[0].loss", "'rdk'", "crd", "pkt", "rkd", "sp"]),
    ({"relations": [{"loss": "rkd", "params": {"distance_wt": 1}}]},
     ["distance_wt", "'rkd'", "distance_weight", "angle_weight"]),
    ({"logit_loss": "dkd", "logit_params": {"gamma": 1}}, ["gamma", "'dkd'", "beta", "warmup"]),
    ({"logit_loss": "dist", "logit_params": {"delta": 1}}, ["strategy.logit_params.delta", "'dist'", "beta, gamma"]),
    ({"logit_loss": "wttm", "logit_params": {"beta": 1}}, ["strategy.logit_params.beta", "'wttm'", "allowed: none"]),
    ({"logit_loss": "ttm", "logit_params": {"temperature": 5}}, ["strategy.logit_params.temperature",
                                                                 "strategy's temperature"]),
    ({"logit_loss": "ttm", "logit_standardization": True},
     ["strategy.logit_standardization", "is true but its logit_loss 'ttm' does not", "kd, dkd, dist"]),
    ({"logit_loss": "wttm", "logit_standardization": True}, ["strategy.logit_standardization", "'wttm'"]),
    ({"logit_standardization": "yes"}, ["strategy.logit_standardization", "true or false", "'yes'"]),
    ({"logit_standardization": 1}, ["strategy.logit_standardization", "true or false"]),
    ({"logit_loss": "distt"}, ["strategy.logit_loss", "'distt'", "did you mean 'dist'", "ttm", "wttm"]),
    ({"pairs": [{"teacher": "a", "student": "b", "loss": "fitnet", "params": {"p": 2}}]},
     ["strategy.pairs[0].params.p", "'fitnet'", "none"]),
    ({"pairs": [{"teacher": "a", "student": "b", "loss": "at", "params": {"p": "two"}}]},
     ["strategy.pairs[0].params.p", "must be a number"]),
    ({"recipe": {"optimizer": "lamb"}}, ["strategy.recipe.optimizer", "'lamb'", "sgd", "adam", "adamw"]),
    ({"recipe": {"schedule": "poly"}}, ["strategy.recipe.schedule", "'poly'", "cosine", "step", "constant"]),
    ({"recipe": {"epochs": 0}}, ["strategy.recipe.epochs", "at least 1", "0"]),
    ({"recipe": {"lr": 0}}, ["strategy.recipe.lr", "> 0"]),
    ({"recipe": {"batch_size": 0}}, ["strategy.recipe.batch_size"]),
    # weights is a name or a list: a list's bad item is named (was "must be a string or a list, got a list")
    ({"scheme": {"kind": "ensemble", "weights": [float("nan"), 1]}},
     ["strategy.scheme.weights[0] must be a finite number", "nan"]),
    ({"scheme": {"kind": "ensemble", "weights": [1, "x"]}}, ["strategy.scheme.weights[1] must be a number", "'x'"]),
    ({"scheme": {"kind": "ensemble", "weights": 3}}, ["strategy.scheme.weights must be a string or a list", "3"]),
]


@pytest.mark.parametrize("data,needles", STRATEGY_ERRORS, ids=lambda v: str(v)[:60] if isinstance(v, dict) else "")
def test_strategy_validation_errors_name_the_bad_thing(data, needles):
    with pytest.raises(AutokdError) as info:
        strategy_from_dict(data)
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"


def test_shape_errors_are_config_errors():
    """Key / type / range problems are ConfigError (a subclass of AutokdError)."""
    for data in ({"temprature": 4}, {"alpha": "x"}, {"alpha": 2}, {"recipe": {"epochs": 0}}):
        with pytest.raises(ConfigError):
            strategy_from_dict(data)
    with pytest.raises(ConfigError, match="must be a mapping"):
        strategy_from_dict(["alpha", 0.5])


TASK_ERRORS = [
    (lambda t: t["data"].update(name="mnist2d"), ["task.data.name", "'mnist2d'", "did you mean 'mnist1d'", "cifar100"]),
    (lambda t: t["data"].update(num_sampels=10), ["task.data.num_sampels", "did you mean 'num_samples'"]),
    (lambda t: t["data"].update(num_samples="many"), ["task.data.num_samples", "integer"]),
    (lambda t: t.pop("student"), ["missing key task.student"]),
    (lambda t: t.pop("name"), ["missing key task.name"]),
    (lambda t: t.update(student="cnn1d"), ["task.student", "mapping"]),
    (lambda t: t.update(teacher="cnn1d"), ["task.teacher", "mapping"]),
    (lambda t: t["teacher"].update(chekpoint="x.pt"), ["task.teacher.chekpoint", "did you mean 'checkpoint'"]),
    (lambda t: t["teacher"]["recipe"].update(epochs=0), ["task.teacher.recipe.epochs", "at least 1"]),
    (lambda t: t["recipes"].update(medium={}), ["task.recipes.medium", "full, proxy"]),
    (lambda t: t["recipes"]["proxy"].update(optimizer="rmsprop"), ["task.recipes.proxy.optimizer", "'rmsprop'"]),
    (lambda t: t.update(name="tiny\nrun"), ["task.name", "control characters", "'tiny\\nrun'"]),
    (lambda t: t.update(name="tiny\trun\x1b[31m"), ["task.name", "control characters", "'\\t'"]),
]


@pytest.mark.parametrize("mutate,needles", TASK_ERRORS)
def test_task_validation_errors_name_the_bad_thing(mutate, needles):
    task = copy.deepcopy(TINY_TASK)
    mutate(task)
    with pytest.raises(AutokdError) as info:
        task_from_dict(task)
    assert "\n" not in str(info.value)
    for needle in needles:
        assert needle in str(info.value), f"{needle!r} not in {str(info.value)!r}"


@pytest.mark.parametrize(
    "text,needles",
    [
        ("strategy:\n  alpha: [0.5\n  temperature: 4\n", ["line 3", "bad.yaml"]),
        ("task: default\nstrategy:\n  alpha: 0.5\n    temperature: 4\n", ["line 4", "bad.yaml"]),
        ("", ["bad.yaml", "empty"]),
        ("# only a comment\n", ["empty"]),
        ("- task\n- strategy\n", ["mapping", "list"]),
        ("just a string\n", ["mapping", "str"]),
    ],
)
def test_bad_yaml_files(tmp_path, text, needles):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    for load in (load_yaml_file, load_config):
        with pytest.raises(ConfigError) as info:
            load(path)
        message = str(info.value)
        assert "\n" not in message
        for needle in needles:
            assert needle in message, f"{needle!r} not in {message!r}"


def test_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="folder"):
        load_yaml_file(tmp_path)
    bad_top = write_config(tmp_path / "c.yaml", {"alpha": 0.5}, "default")
    bad_top.write_text(bad_top.read_text() + "strategie: {}\n")
    with pytest.raises(ConfigError, match="strategie"):
        load_config(bad_top)
    with pytest.raises(ConfigError, match="missing top-level key 'strategy'"):
        (tmp_path / "nostrat.yaml").write_text("task: default\n")
        load_config(tmp_path / "nostrat.yaml")
    with pytest.raises(AutokdError, match=r"unknown search space 'defualt' \(did you mean 'default'\?\).*known:"):
        load_config(write_config(tmp_path / "c2.yaml", {"alpha": 0.5}, "defualt"))
    with pytest.raises(ConfigError, match="file not found"):
        load_config(write_config(tmp_path / "c3.yaml", {"alpha": 0.5}, "nowhere/space.yaml"))
    # an error in the strategy names the config file
    with pytest.raises(ConfigError, match=r"c4\.yaml: strategy\.alpha"):
        load_config(write_config(tmp_path / "c4.yaml", {"alpha": 3}, "default"))


def test_unknown_shipped_space_name():
    with pytest.raises(AutokdError) as info:
        load_task("no_such_space")
    message = str(info.value)
    assert "'no_such_space'" in message and "default" in message and "cifar100_resnet32x4_resnet8x4" in message


# ----------------------------------------------------------------------------- loading configs


def test_load_config_with_shipped_task_name(tmp_path):
    cfg = load_config(write_config(tmp_path / "c.yaml", {"alpha": 0.0}, "default"))
    assert cfg.task.name == load_task("default").name
    assert cfg.task.data.name == "mnist1d" and cfg.task.student.model == "cnn1d"
    assert cfg.strategy.alpha == 0.0 and not cfg.strategy.needs_teacher
    assert cfg.strategy.recipe == cfg.task.recipes.full


def test_load_config_with_relative_space_path(tmp_path, monkeypatch):
    sub = tmp_path / "spaces"
    write_space(sub / "tiny.yaml")
    config = write_config(tmp_path / "configs" / "c.yaml", {"alpha": 0.9, "temperature": 2}, "../spaces/tiny.yaml")
    # the path is relative to the config file, not to the working directory
    monkeypatch.chdir(sub)
    cfg = load_config(config)
    assert cfg.task.name == TINY_TASK["name"]
    assert cfg.task.data.num_samples == 1200 and cfg.task.data.train_size == 400
    assert cfg.strategy.temperature == 2.0
    # an absolute path works as well
    cfg_abs = load_config(write_config(tmp_path / "abs.yaml", {"alpha": 0.9}, (sub / "tiny.yaml").resolve()))
    assert cfg_abs.task == cfg.task


def test_load_config_with_inline_task(tmp_path, tiny_task):
    strategy = {"alpha": 0.5, "pairs": [{"teacher": "stages.1", "student": "stages.1", "loss": "fitnet", "weight": 2}]}
    cfg = load_config(write_config(tmp_path / "c.yaml", strategy, TINY_TASK))
    assert cfg.task == tiny_task
    assert cfg.strategy.pairs == [PairLoss("stages.1", "stages.1", "fitnet", 2.0)]
    assert cfg.source == str(tmp_path / "c.yaml")
    # errors inside an inline task name the config file
    bad = copy.deepcopy(TINY_TASK)
    bad["student"]["kwarg"] = {}
    with pytest.raises(ConfigError, match=r"c2\.yaml: task\.student\.kwarg.*did you mean 'kwargs'"):
        load_config(write_config(tmp_path / "c2.yaml", strategy, bad))


def test_space_file_without_task_section(tmp_path):
    path = tmp_path / "empty_space.yaml"
    path.write_text("space: {alpha: {low: 0, high: 1}}\n")
    with pytest.raises(ConfigError, match="no 'task' section"):
        load_task(path)


@pytest.mark.parametrize("name", sorted(shipped_spaces()))
def test_shipped_spaces_parse(name):
    """Every shipped space's task loads, also where the space names another space's task
    (layer_search: task: default), as `autokd layers --space` and `autokd teacher --space` read it."""
    task = load_task(name)
    assert task.name and task.teacher.model and task.student.model
    assert task.recipes.proxy.epochs <= task.recipes.full.epochs
    raw = load_yaml_file(shipped_spaces()[name])
    assert set(raw) >= {"task", "space"}
    assert task == (load_task(raw["task"]) if isinstance(raw["task"], str) else task_from_dict(raw["task"]))


def test_a_task_reference_is_followed_one_level(tmp_path):
    (tmp_path / "inline.yaml").write_text(yaml.safe_dump({"task": TINY_TASK, "space": {}}))
    (tmp_path / "one.yaml").write_text("task: inline.yaml\nspace: {}\n")
    (tmp_path / "two.yaml").write_text("task: one.yaml\nspace: {}\n")
    (tmp_path / "odd.yaml").write_text("task: [1, 2]\nspace: {}\n")
    assert load_task(tmp_path / "one.yaml") == load_task(tmp_path / "inline.yaml")
    with pytest.raises(ConfigError, match=r"one\.yaml: task must be an inline mapping there \(reached through .*two\.yaml"):
        load_task(tmp_path / "two.yaml")
    with pytest.raises(ConfigError, match=r"odd\.yaml: task must be a mapping .*not \[1, 2\]"):
        load_task(tmp_path / "odd.yaml")


def test_shipped_example_configs_parse():
    from pathlib import Path

    import autokd

    examples = Path(autokd.__file__).resolve().parent.parent / "search_spaces" / "examples"
    files = sorted(examples.glob("*.yaml"))
    if not files:
        pytest.skip("examples not present in this install")
    from autokd.search.space_file import load_space_file

    for path in files:
        if "space" in yaml.safe_load(path.read_text()):  # a space file (the data-source examples)
            assert load_space_file(path).task.recipes.proxy.epochs >= 1, path
            continue
        cfg = load_config(path)
        assert cfg.strategy.recipe.epochs >= 1, path
    fitnets = load_config(examples / "fitnets_hint.yaml")
    assert [p.loss for p in fitnets.strategy.pairs] == ["fitnet"]


def test_tiny_fixtures(tiny_config_file, tiny_space_file, tiny_task):
    cfg = load_config(tiny_config_file)
    assert cfg.task == tiny_task == load_task(tiny_space_file)
    assert cfg.strategy.alpha == 0.0 and cfg.strategy.recipe == tiny_task.recipes.full
    assert (tiny_task.recipes.full.epochs, tiny_task.recipes.proxy.epochs) == (3, 2)


def test_yaml_reads_exponent_only_numbers_as_floats():
    """YAML 1.1 (PyYAML's default) reads 1e-3 as a string; configs mean the number."""
    from autokd.config.yaml_io import load_yaml_text

    data = load_yaml_text("lr: 1e-3\nweight: 3E+2\nname: 1e-3x\nn: 7\n")
    assert data == {"lr": 0.001, "weight": 300.0, "name": "1e-3x", "n": 7}


def test_a_dkd_warm_up_left_out_is_a_twelfth_of_the_recipe():
    """It was DKD's 20 epochs whatever the recipe: a 10-epoch run never reached DKD's full weight."""
    assert strategy_from_dict({"logit_loss": "dkd"}, base_recipe=Recipe(epochs=60)).logit_params["warmup"] == 5
    assert strategy_from_dict({"logit_loss": "dkd", "recipe": {"epochs": 10}}).logit_params == {"warmup": 1}
    assert strategy_from_dict({"logit_loss": "dkd", "logit_params": {"warmup": 0}}).logit_params == {"warmup": 0}
    assert strategy_from_dict({"logit_loss": "kd"}).logit_params == {}


def test_train_epochs_override_is_applied_before_the_warm_up_is_worked_out(tmp_path):
    """`train --epochs 24` kept the warm-up worked out from the config's own 2 epochs (1, not 2)."""
    from conftest import write_config, write_space

    from autokd.config import load_config

    config = write_config(tmp_path / "c.yaml", {"alpha": 0.5, "logit_loss": "dkd"}, str(write_space(tmp_path / "s.yaml")))
    assert load_config(config, epochs=24).strategy.logit_params["warmup"] == 2
    assert load_config(config, epochs=24).strategy.recipe.epochs == 24
    assert load_config(config).strategy.logit_params["warmup"] == 1

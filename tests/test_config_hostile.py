"""Tests of autokd.config against hostile input: bounded echoes of bad values, YAML files that
repeat keys, bomb through aliases or are not regular files, non-finite and out-of-range numbers,
a loss listed twice. Ordinary parsing and validation: test_config.py."""

from __future__ import annotations

import copy
import re

import pytest

from autokd.config import load_config, load_task, strategy_from_dict, task_from_dict
from autokd.config.yaml_io import load_yaml_file, load_yaml_text
from autokd.errors import ConfigError

from conftest import TINY_TASK, write_space

# ----------------------------------------------------------------------------- bounded echoes


def test_short_repr_is_bounded_and_never_builds_the_whole_repr():
    import time

    from autokd.errors import short_repr

    assert short_repr({"a": 1, "b": [1, 2]}) == "{'a': 1, 'b': [1, 2]}"
    assert short_repr((1,)) == "(1,)" and short_repr(set()) == "set()" and short_repr("x") == "'x'"
    loop: list = []
    loop.append(loop)
    shared: list = ["lol"]
    for _ in range(60):  # 9**60 leaves: the full repr could never be built
        shared = [shared] * 9
    start = time.perf_counter()
    for value in (loop, shared, "a" * 10**7, list(range(10**6)), 10**5000, {"k": "v" * 10**6}):
        text = short_repr(value, limit=100)
        assert len(text) <= 100 and (text.endswith("...") or "digits" in text), text
    assert time.perf_counter() - start < 1.0
    assert "5001 digits" in short_repr(10**5000)


def test_unknown_names_echo_a_bounded_value():
    from autokd.errors import unknown

    message = str(unknown("model", "x" * 10**6, ["cnn1d", "mlp1d"]))
    assert len(message) < 300 and message.endswith("known: cnn1d, mlp1d"), message


# ----------------------------------------------------------------------------- YAML files


@pytest.mark.parametrize(
    "text,needles",
    [
        ("a: 1\nb: 2\na: 3\n", ["duplicate key 'a'", "line 3", "first at line 1"]),
        ("task:\n  data: {name: mnist1d, seed: 1, seed: 2}\n", ["duplicate key 'seed'", "line 2"]),
        ("strategy:\n  recipe:\n    lr: 0.1\n    epochs: 3\n    lr: 0.2\n", ["duplicate key 'lr'", "line 5", "first at line 3"]),
    ],
)
def test_duplicate_keys_are_errors_naming_key_and_line(tmp_path, text, needles):
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_yaml_file(path)
    for needle in needles + ["dup.yaml"]:
        assert needle in str(info.value), str(info.value)


def test_merge_keys_may_still_be_overridden():
    data = load_yaml_text("base: &b {lr: 0.1, epochs: 3}\nfull:\n  <<: *b\n  lr: 0.2\n")
    assert data["full"] == {"lr": 0.2, "epochs": 3}


def _alias_bomb(levels: int = 9) -> str:
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_at_the_source(tmp_path):
    import time

    start = time.perf_counter()
    with pytest.raises(ConfigError, match=r"expands to more than 100,000 values.*alias"):
        load_yaml_text(_alias_bomb())  # 9**9 = 387 million strings once expanded
    # the bomb inside a model's kwargs, in a real space file: refused before any message echoes it
    task = copy.deepcopy(TINY_TASK)
    task["student"]["kwargs"] = {"channels": 4}
    space = write_space(tmp_path / "bomb.yaml", task=task)
    text = space.read_text().replace("channels: 4", "channels: *l8")
    space.write_text(_alias_bomb() + text)
    with pytest.raises(ConfigError) as info:
        load_task(space)
    assert "expands to more than" in str(info.value) and len(str(info.value)) < 400
    assert time.perf_counter() - start < 2.0
    # a document just under the bound still loads
    assert len(load_yaml_text(_alias_bomb(5))["l4"]) == 9


def test_a_long_string_repeated_through_aliases_is_refused():
    text = 'a: &a "' + "x" * 1_000_000 + '"\nb: [' + ", ".join(["*a"] * 50) + "]\n"  # 1 MB -> 50 MB
    with pytest.raises(ConfigError, match="20,971,520 characters"):
        load_yaml_text(text)


def test_a_recursive_alias_and_deep_nesting_are_errors():
    with pytest.raises(ConfigError, match="line 1.*contains it"):
        load_yaml_text("a: &a [1, *a]\n")
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_yaml_text("a: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match="too many digits"):
        load_yaml_text("a: 1" + "0" * 5000 + "\n")


def test_a_fifo_is_refused_without_opening_it(tmp_path):
    import os
    import threading

    fifo = tmp_path / "space.yaml"
    os.mkfifo(fifo)
    outcome = []

    def load():
        try:
            load_yaml_file(fifo)
        except ConfigError as exc:
            outcome.append(str(exc))

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(timeout=10)
    if thread.is_alive():  # blocked in open(): release it before failing
        os.close(os.open(fifo, os.O_RDWR))
        pytest.fail("load_yaml_file opened a FIFO and blocked")
    assert outcome and "FIFO" in outcome[0] and "regular" in outcome[0], outcome


def test_devices_and_large_files_are_refused(tmp_path):
    import os

    if os.path.exists("/dev/null"):  # not /dev/zero: a regression would read it until the memory runs out
        with pytest.raises(ConfigError, match="/dev/null is a character device"):
            load_yaml_file("/dev/null")
    big = tmp_path / "big.yaml"
    with open(big, "wb") as handle:
        handle.truncate(11 * 1024 * 1024)  # sparse: nothing is written
    with pytest.raises(ConfigError, match=r"11,534,336 bytes.*at most 10,485,760"):
        load_config(big)
    (tmp_path / "latin1.yaml").write_bytes("a: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_yaml_file(tmp_path / "latin1.yaml")


# ----------------------------------------------------------------------------- numbers and sizes

NON_FINITE = [".nan", ".inf", "-.inf", "1e999"]


@pytest.mark.parametrize("literal", NON_FINITE)
@pytest.mark.parametrize(
    "template,where",
    [
        ("temperature: {v}", "strategy.temperature"),
        ("alpha: {v}", "strategy.alpha"),
        ("recipe: {{lr: {v}}}", "strategy.recipe.lr"),
        ("recipe: {{weight_decay: {v}}}", "strategy.recipe.weight_decay"),
        ("recipe: {{momentum: {v}}}", "strategy.recipe.momentum"),
        ("pairs: [{{teacher: a, student: b, loss: fitnet, weight: {v}}}]", "strategy.pairs[0].weight"),
        ("relations: [{{loss: rkd, params: {{angle_weight: {v}}}}}]", "strategy.relations[0].params.angle_weight"),
        ("logit_loss: dkd\nlogit_params: {{beta: {v}}}", "strategy.logit_params.beta"),
    ],
)
def test_non_finite_numbers_are_refused(template, where, literal):
    data = load_yaml_text(template.format(v=literal))
    with pytest.raises(ConfigError) as info:
        strategy_from_dict(data)
    assert where in str(info.value) and "finite number" in str(info.value), str(info.value)


@pytest.mark.parametrize("literal", NON_FINITE)
@pytest.mark.parametrize("key", ["test_fraction", "val_size"])
def test_non_finite_data_numbers_are_refused(key, literal):
    task = copy.deepcopy(TINY_TASK)
    task["data"][key] = load_yaml_text(f"v: {literal}")["v"]
    with pytest.raises(ConfigError, match=rf"task\.data\.{key} must be a finite number"):
        task_from_dict(task)


@pytest.mark.parametrize(
    "section,key,value,needles",
    [
        ("strategy", "seed", -1, ["strategy.recipe.seed", "[0, 2**32 - 1]", "-1"]),
        ("strategy", "seed", 2**32, ["strategy.recipe.seed", "4294967295", "4294967296"]),
        ("teacher", "seed", 2**40, ["task.teacher.recipe.seed", "[0, 2**32 - 1]"]),
        ("strategy", "epochs", 100_001, ["strategy.recipe.epochs", "at most 100,000"]),
        ("teacher", "epochs", 10**12, ["task.teacher.recipe.epochs", "at most 100,000"]),
        ("strategy", "batch_size", 2**20 + 1, ["strategy.recipe.batch_size", "at most 1,048,576"]),
        ("strategy", "milestones", [3, 10**9], ["strategy.recipe.milestones[1]", "at most 100,000"]),
    ],
)
def test_recipe_bounds(section, key, value, needles):
    with pytest.raises(ConfigError) as info:
        if section == "strategy":
            strategy_from_dict({"recipe": {key: value}})
        else:
            task = copy.deepcopy(TINY_TASK)
            task["teacher"]["recipe"][key] = value
            task_from_dict(task)
    for needle in needles:
        assert needle in str(info.value), str(info.value)
    assert strategy_from_dict({"recipe": {"seed": 2**32 - 1}}).recipe.seed == 2**32 - 1


@pytest.mark.parametrize(
    "changes,needles",
    [
        ({"seed": 2**32}, ["task.data.seed", "[0, 2**32 - 1]"]),
        ({"num_samples": 5_000_001}, ["task.data.num_samples", "5,000,000"]),
        ({"name": "imagefolder", "root": "/tmp", "image_size": 1025}, ["task.data.image_size", "1024"]),
        ({"val_size": 2e9}, ["task.data.val_size", "1,000,000,000"]),
        ({"train_size": 10**12}, ["task.data.train_size", "1,000,000,000"]),
        ({"root": "x" * 5000}, ["task.data.root", "4096 characters"]),
        ({"root": "a\0b"}, ["task.data.root", "NUL"]),
    ],
)
def test_data_bounds_fail_when_the_task_is_parsed(changes, needles):
    task = copy.deepcopy(TINY_TASK)
    task["data"].update(changes)
    with pytest.raises(ConfigError) as info:
        task_from_dict(task)
    message = str(info.value)
    assert len(message) < 300, message
    for needle in needles:
        assert needle in message, message


def test_huge_values_are_echoed_cut_short():
    for data in ({"recipe": {"optimizer": "x" * 10**6}}, {"alpha": "y" * 10**6},
                 {"pairs": [{"teacher": "a", "student": "b", "loss": "fitnet", "params": {"z" * 10**6: 1}}]},
                 {"z" * 10**6: 1}):
        with pytest.raises(ConfigError) as info:
            strategy_from_dict(data)
        assert len(str(info.value)) < 400, str(info.value)[:400]


def test_model_kwargs_must_be_plain_named_data():
    import datetime

    for kwargs, needle in (({1: 2}, "is not a keyword name"), ({"not a name": 2}, "is not a keyword name"),
                           ({"when": datetime.date(2020, 1, 1)}, "task.student.kwargs.when must be a number"),
                           ({"deep": {"x": [1, {2: 3}]}}, "task.student.kwargs.deep.x[1]: mapping keys must be strings"),
                           ({"scale": float("inf")}, "task.student.kwargs.scale must be a finite number, got inf"),
                           ({"deep": [1.0, float("nan")]}, "task.student.kwargs.deep[1] must be a finite number")):
        task = copy.deepcopy(TINY_TASK)
        task["student"]["kwargs"] = kwargs
        with pytest.raises(ConfigError, match=re.escape(needle)):
            task_from_dict(task)


def test_teacher_checkpoint_path_is_checked():
    task = copy.deepcopy(TINY_TASK)
    task["teacher"]["checkpoint"] = "a\0b.pt"
    with pytest.raises(ConfigError, match=r"task\.teacher\.checkpoint.*NUL"):
        task_from_dict(task)


def test_task_reference_of_the_wrong_type(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("task: [1, 2]\nstrategy: {alpha: 0.5}\n")
    with pytest.raises(ConfigError, match="task must be a shipped space name, a path to a space file or a mapping"):
        load_config(path)


# ----------------------------------------------------------------------------- strategies listing a loss twice


def test_a_pair_listed_twice_is_an_error_naming_both_indices():
    pair = {"teacher": "stages.1", "student": "stages.1", "loss": "fitnet"}
    other = {"teacher": "stages.1", "student": "stages.1", "loss": "at"}
    assert len(strategy_from_dict({"pairs": [pair, other]}).pairs) == 2  # another loss on the same pair is fine
    with pytest.raises(ConfigError, match=r"strategy\.pairs\[2\] repeats pairs\[0\].*'fitnet'"):
        strategy_from_dict({"pairs": [pair, other, {**pair, "weight": 3.0}]})


def test_a_relation_loss_listed_twice_is_an_error_naming_the_index():
    with pytest.raises(ConfigError, match=r"strategy\.relations\[1\] repeats relations\[0\].*'rkd'"):
        strategy_from_dict({"relations": [{"loss": "rkd"}, {"loss": "rkd", "weight": 2.0}]})


@pytest.mark.parametrize(
    "data,needles",
    [
        ({"relations": [{"loss": "crd", "params": {"feat_dim": 10**9}}]}, ["params.feat_dim", "1 to 4,096"]),
        ({"relations": [{"loss": "crd", "params": {"feat_dim": 12.5}}]}, ["params.feat_dim", "whole number"]),
        ({"relations": [{"loss": "crd", "params": {"num_negatives": 10**7}}]}, ["params.num_negatives", "65,536"]),
        ({"relations": [{"loss": "crd", "params": {"nce_t": 0}}]}, ["params.nce_t", "0.001 to 100"]),
        ({"pairs": [{"teacher": "a", "student": "b", "loss": "at", "params": {"p": 0}}]}, ["params.p", "0.5 to 16"]),
        ({"logit_loss": "dkd", "logit_params": {"warmup": -1}}, ["logit_params.warmup", "0 to 100,000"]),
        ({"logit_loss": "dist", "logit_params": {"beta": -1}}, ["logit_params.beta", "from 0 to 10,000"]),
        ({"logit_loss": "dist", "logit_params": {"gamma": 1e5}}, ["logit_params.gamma", "from 0 to 10,000"]),
        ({"relations": [{"loss": "rkd", "params": {"angle_weight": -5}}]}, ["params.angle_weight", "from 0"]),
    ],
)
def test_loss_parameters_have_bounds(data, needles):
    with pytest.raises(ConfigError) as info:
        strategy_from_dict(data)
    for needle in needles:
        assert needle in str(info.value), str(info.value)


@pytest.mark.parametrize("section,key", [("data", "val_size"), ("data", "test_fraction"), ("full", "lr"), ("full", "gamma")])
def test_integers_beyond_the_float_range_are_one_line_errors(section, key):
    task = copy.deepcopy(TINY_TASK)
    (task["data"] if section == "data" else task["recipes"]["full"])[key] = 10**400  # float() overflows
    with pytest.raises(ConfigError) as info:
        task_from_dict(task)
    assert key in str(info.value) and "401 digits" in str(info.value) and len(str(info.value)) < 200, str(info.value)


def test_yaml_reads_numbers_and_booleans_as_yaml_1_2():
    """YAML 1.1's octal (010 = 8), base-60 (1:00 = 60) and yes/no/on/off booleans gave silently other
    values: a recipe of 010 epochs trained 8, a seed 1:00 was 60."""
    recipe = strategy_from_dict(load_yaml_text("recipe: {epochs: 010, batch_size: 064, seed: 0x10}")).recipe
    assert (recipe.epochs, recipe.batch_size, recipe.seed) == (10, 64, 16)
    with pytest.raises(ConfigError, match=r"strategy.recipe.seed .*'1:00'"):
        strategy_from_dict(load_yaml_text("recipe: {seed: 1:00}"))
    with pytest.raises(ConfigError, match=r"strategy.logit_standardization .*'yes'"):
        strategy_from_dict(load_yaml_text("logit_standardization: yes"))
    with pytest.raises(ConfigError, match="an integer has too many digits"):  # (its dump was a traceback)
        load_yaml_text("v: 0x" + "f" * 4400)
    values = load_yaml_text("v: [true, False, 'on', off, no, 1_000, 1e-3, 0o17, +5, 1.5, .5, 1e3, 2024-01-01]")["v"]
    assert values == [True, False, "on", "off", "no", 1000, 0.001, 15, 5, 1.5, 0.5, 1000.0, "2024-01-01"]
    assert [type(v) for v in values[5:9]] == [int, float, int, int]


def test_text_autokd_writes_reads_back_as_written():
    """The writer quoted by YAML 1.1's rules only: '0o17', '+.5', '1e3' were written plain and read back as
    numbers by autokd's YAML 1.2 reader (an exported config changed a model kwarg)."""
    from autokd.config.yaml_io import dump_yaml

    data = {"kwargs": {"a": ["0o17", "+.5", "-.5", "1e3", "yes", "010", "1:00", "on", "plain", "1_000", "0x1f",
                             "true", "", "12abc", "2024-01-01"], "b": [10, 1e-5, 0.5, True, None]}}
    text = dump_yaml(data)
    assert load_yaml_text(text) == data and "- 10\n" in text and "- 0.5\n" in text and "- plain\n" in text

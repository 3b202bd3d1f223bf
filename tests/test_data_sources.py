"""A user's own data: arrays (.npz, .npy folders), tables (CSV, Parquet), Python callables; their
checks; and caches keyed by the data's content and a user model's source."""

from __future__ import annotations

import copy
import json
import re

import numpy as np
import pytest
import torch
import yaml

from autokd.data import cache_dir, load_task_data
from autokd.data.spec import DataSpec
from autokd.errors import AutokdError, ConfigError
from conftest import run_cli

RECIPE = {"epochs": 1, "lr": 0.01, "batch_size": 64, "seed": 0}
SIGNAL_MODELS = {"teacher": {"model": "cnn1d", "kwargs": {"channels": 8}, "recipe": RECIPE},
                 "student": {"model": "cnn1d", "kwargs": {"channels": 4}},
                 "recipes": {"full": RECIPE, "proxy": {"epochs": 1}}}
TABLE_MODELS = {"teacher": {"model": "mlp1d", "kwargs": {"width": 32}, "recipe": RECIPE},
                "student": {"model": "mlp1d", "kwargs": {"width": 8}},
                "recipes": {"full": RECIPE, "proxy": {"epochs": 1}}}
SPACE = {"temperature": 4.0, "alpha": {"low": 0.1, "high": 0.9}, "logit_losses": ["kd"],
         "pair_losses": ["none", "fitnet"], "relation_losses": [], "pruning": False}


def _signals(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(0, 1, (n, 2, 24)).astype(np.float32) + y[:, None, None]
    return x, y


def _table(n: int, seed: int = 0):
    import pandas as pd

    rng = np.random.default_rng(seed)
    a = rng.normal(0, 1, n)
    colour = rng.choice(["red", "green", "blue"], n)
    label = np.where(a + (colour == "red") > 0.5, "yes", "no")
    return pd.DataFrame({"a": a, "b": rng.integers(0, 100, n), "colour": colour, "flag": rng.random(n) > 0.5,
                         "label": label})


def _write_npz(path, n=300, **extra):
    x, y = _signals(n)
    xt, yt = _signals(100, seed=1)
    np.savez(path, x_train=x, y_train=y, x_test=xt, y_test=yt, **extra)
    return path


def _task(name: str, data: dict, models: dict = SIGNAL_MODELS) -> dict:
    return {"name": name, "data": {"val_size": 50, **data}, **copy.deepcopy(models)}


def _space_file(folder, task: dict, space: dict = SPACE):
    path = folder / "space.yaml"
    path.write_text(yaml.safe_dump({"task": task, "space": space}, sort_keys=False))
    return path


def _train_and_search(folder, task: dict, space: dict = SPACE, env=None) -> dict:
    space_path = _space_file(folder, task, space)
    (folder / "config.yaml").write_text(yaml.safe_dump({"task": "space.yaml", "strategy": {"alpha": 0.5}}))
    trained = run_cli("train", "--config", "config.yaml", "--out", "r.json", cwd=folder, env=env)
    assert trained.returncode == 0 and "Traceback" not in trained.stderr, trained.stderr
    searched = run_cli("search", "--space", space_path, "--budget", "2", "--workers", "0", "--storage", "s.db",
                       "--name", "s", cwd=folder, env=env)
    assert searched.returncode == 0 and "Traceback" not in searched.stderr, searched.stderr
    return json.loads((folder / "r.json").read_text())


def test_signals_in_an_npz_file_train_and_search(tmp_path):
    _write_npz(tmp_path / "signals.npz")
    result = _train_and_search(tmp_path, _task("npz", {"name": "arrays", "path": "signals.npz"}))
    assert 0 <= result["test_mean"] <= 100


def test_npy_folder_with_renamed_keys_and_its_own_validation_split(tmp_path):
    x, y = _signals(200)
    folder = tmp_path / "arrays"
    folder.mkdir()
    for name, value in {"X": x, "Y": y, "x_test": x[:50], "y_test": y[:50], "x_val": x[:30], "y_val": y[:30]}.items():
        np.save(folder / f"{name}.npy", value)
    spec = DataSpec(name="arrays", path=str(folder), keys={"x_train": "X", "y_train": "Y"}, train_size=120)
    data = load_task_data(spec, cache_dir())
    assert (len(data.train), len(data.val), len(data.test)) == (120, 30, 50) and data.input_shape == (2, 24)
    _train_and_search(tmp_path, _task("npy", {"name": "arrays", "path": "arrays", "keys": {"x_train": "X",
                                                                                          "y_train": "Y"}}))


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_mixed_type_table_trains_and_searches(tmp_path, fmt):
    frame = _table(400)
    path = tmp_path / f"t.{fmt}"
    frame.to_csv(path, index=False) if fmt == "csv" else frame.to_parquet(path)
    spec = DataSpec(name="table", path=str(path), label="label", val_size=50)
    data = load_task_data(spec, cache_dir())
    assert data.class_names == ("no", "yes") and data.input_shape == (2 + 3 + 2,)  # a, b; colour x3; flag x2
    fit = data.train.x[:, :2]
    assert abs(float(fit.mean())) < 0.2 and abs(float(fit.std()) - 1) < 0.2  # standardised on the training part
    _train_and_search(tmp_path, _task(fmt, {"name": "table", "path": path.name, "label": "label"}, TABLE_MODELS),
                      {**SPACE, "pair_losses": ["none", "fitnet", "sp"]})


def test_a_table_with_its_own_test_file_and_chosen_features(tmp_path):
    _table(300).to_csv(tmp_path / "train.csv", index=False)
    _table(80, seed=2).to_csv(tmp_path / "test.csv", index=False)
    spec = DataSpec(name="table", path=str(tmp_path / "train.csv"), test_path=str(tmp_path / "test.csv"),
                    label="label", features=["a", "colour"], val_size=40)
    data = load_task_data(spec, cache_dir())
    assert len(data.test) == 80 and data.input_shape == (4,)


def test_a_python_callable_returns_the_data(tmp_path):
    (tmp_path / "my_data.py").write_text(
        "import numpy as np\n"
        "def load():\n"
        "    rng = np.random.default_rng(0)\n"
        "    y = rng.integers(0, 3, 300)\n"
        "    x = rng.normal(0, 1, (300, 2, 24)).astype('float32') + y[:, None, None]\n"
        "    return {'x_train': x[:200], 'y_train': y[:200], 'x_test': x[200:], 'y_test': y[200:]}\n")
    _train_and_search(tmp_path, _task("py", {"name": "python", "callable": "my_data:load"}))


@pytest.mark.parametrize("keys, needle", [
    ({"x_train": "X"}, "returned a mapping without 'X' (it has x_train, y_train, x_test, y_test)"),
    ({"y_train": "labels"}, "returned a mapping without 'labels' (it has"),
    # validation read from the training arrays: accepted, and the search ranked on its training data
    ({"x_val": "x_train", "y_val": "y_train"}, "data.keys: x_train and x_val would both be read from 'x_train'"),
    ({"x_train": "x_test"}, "data.keys: x_train and x_test would both be read from 'x_test'"),
])
def test_a_python_mapping_without_a_renamed_key_names_only_the_missing_ones(tmp_path, monkeypatch, keys, needle):
    (tmp_path / "autokd_test_keyed_data.py").write_text(
        "import numpy as np\n"
        "def load():\n"
        "    x, y = np.zeros((10, 3), 'float32'), np.array([0, 1] * 5)\n"
        "    return {'x_train': x, 'y_train': y, 'x_test': x, 'y_test': y}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = DataSpec(name="python", callable="autokd_test_keyed_data:load", keys=keys, val_size=2)
    with pytest.raises(AutokdError) as info:
        load_task_data(spec, cache_dir())
    assert needle in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_a_python_source_is_named_quoted_in_what_its_arrays_break(tmp_path, monkeypatch):
    (tmp_path / "autokd_test_one_class.py").write_text(
        "import numpy as np\n"
        "def load():\n"
        "    return {'x_train': np.zeros((10, 3), 'float32'), 'y_train': np.zeros(10, int)}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(AutokdError, match=r"^data\.callable 'autokd_test_one_class:load'.*a single class"):
        load_task_data(DataSpec(name="python", callable="autokd_test_one_class:load", val_size=2), cache_dir())


@pytest.mark.parametrize("arrays, needle", [
    ({"x_train": np.zeros((10, 3), "float32"), "y_train": np.zeros(9, int)}, "x_train has 10 samples but y_train has 9"),
    ({"x_train": np.zeros((10, 3), "float32"), "y_train": np.full(10, 0.5)}, "not whole numbers"),
    ({"x_train": np.zeros((10, 3), "float32"), "y_train": np.array([0, 2] * 5)}, "classes [1] of 0..2 never occur"),
    ({"x_train": np.full((10, 3), np.nan, "float32"), "y_train": np.array([0, 1] * 5)}, "30 NaN or infinite"),
    ({"x_train": np.zeros((0, 3), "float32"), "y_train": np.zeros(0, int)}, "x_train is empty"),
    ({"x_train": np.zeros((10, 3), "float32"), "y_train": np.array([0, 1] * 5),
      "x_test": np.zeros((4, 3), "float32"), "y_test": np.array([0, 1, 2, 1])}, "y_test has label 2"),
    ({"x_train": np.zeros((10, 3), "float32"), "y_train": np.array([0, 1] * 5),
      "x_test": np.zeros((4, 5), "float32"), "y_test": np.array([0, 1, 0, 1])}, "different shapes"),
    ({"X": np.zeros((10, 3), "float32"), "y_train": np.array([0, 1] * 5)}, "has no x_train"),
    ({"x_train": np.zeros(10, "float32"), "y_train": np.array([0, 1] * 5)}, "one array per sample"),
    ({"x_train": np.zeros((10, 3), "float32"), "y_train": np.zeros(10, int)}, "a single class"),
    # cast to int64 before any check: wrapped around to a "negative label -9223372036854775808" after a NumPy warning
    ({"x_train": np.zeros((10, 3), "float32"), "y_train": np.array([0, 1e20] * 5)}, "largest label is 1e+20"),
    ({"x_train": np.zeros((10, 3), "float32"), "y_train": np.array([0, 2**63 + 5] * 5, "uint64")},
     "largest label is 9223372036854775813"),
    ({"x_train": np.zeros((10, 3), "complex64"), "y_train": np.array([0, 1] * 5)}, "holds complex numbers"),
    # the same pixels as bytes in train and as floats in test were scaled apart (test 44 % against 100 %)
    ({"x_train": np.zeros((10, 3), "uint8"), "y_train": np.array([0, 1] * 5),
      "x_test": np.zeros((4, 3), "float32"), "y_test": np.array([0, 1, 0, 1])},
     "x_train is uint8 (bytes, scaled to [0, 1]) but x_test is float32 (used as given)"),
    # finite in float64, infinite once training's float32 holds it (a NumPy warning, then a wrong validation)
    ({"x_train": np.zeros((10, 3)), "y_train": np.array([0, 1] * 5), "x_val": np.full((4, 3), 1e39),
      "y_val": np.array([0, 1, 0, 1])}, "x_val holds 12 value(s) beyond float32's range"),
    # renamed keys the file lacks: the test split was held out of train instead, silently
    ({"x_train": np.zeros((10, 3), "float32"), "y_train": np.array([0, 1] * 5), "keys": {"x_test": "Xte", "y_test": "yte"}},
     "has no array for data.keys {x_test: 'Xte', y_test: 'yte'}"),
])
def test_bad_arrays_are_one_line_errors(tmp_path, arrays, needle):
    keys = arrays.pop("keys", {})
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(AutokdError) as info:
        load_task_data(DataSpec(name="arrays", path=str(tmp_path / "bad.npz"), val_size=2, keys=keys), cache_dir())
    assert needle in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_files_that_are_not_npz_archives_say_what_they_are(tmp_path):
    (tmp_path / "text.npz").write_text("x,y\n1,2\n")
    np.save(tmp_path / "one.npy", np.zeros((4, 3)))
    np.savez(tmp_path / "scalar.npz", x_train=np.float32(3.0), y_train=np.array([0, 1]))
    for name, needle in (("text.npz", "not a .npz file (a zip archive of arrays"), ("one.npy", "a single .npy array"),
                         ("scalar.npz", "x_train is a single value (3.0), not an array")):
        with pytest.raises(AutokdError, match=re.escape(needle)):
            load_task_data(DataSpec(name="arrays", path=str(tmp_path / name), val_size=2), cache_dir())


def test_a_test_hold_out_that_takes_a_class_out_of_train_is_refused(tmp_path):
    y = np.array([0, 1] * 5 + [2])  # class 2 has one sample: find a seed that holds it out as test
    seed = next(s for s in range(100) if 10 in np.random.default_rng(s).permutation(11)[:2])
    np.savez(tmp_path / "few.npz", x_train=np.zeros((11, 3), "float32"), y_train=y)
    spec = DataSpec(name="arrays", path=str(tmp_path / "few.npz"), val_size=2, test_fraction=0.2, seed=seed)
    with pytest.raises(AutokdError, match=re.escape("leaves no training sample of class(es) ['2']")):
        load_task_data(spec, cache_dir())  # it said "y_test has label 2, but y_train's classes are 0..1"


def test_a_class_whose_only_sample_goes_to_validation_is_warned_about(tmp_path):
    """Training went on with no sample of it, silently."""
    y = np.array([0, 1] * 5 + [2])
    seed = next(s for s in range(100) if 10 in torch.randperm(11, generator=torch.Generator().manual_seed(s))[:2])
    np.savez(tmp_path / "few.npz", x_train=np.zeros((11, 3), "float32"), y_train=y, x_test=np.zeros((3, 3), "float32"),
             y_test=np.array([0, 1, 2]))
    said = []
    load_task_data(DataSpec(name="arrays", path=str(tmp_path / "few.npz"), val_size=2, seed=seed), cache_dir(),
                   progress=said.append)
    assert [m for m in said if m.startswith("warning: class(es) 2 have no training sample")], said


def test_damaged_array_files_are_one_line_errors(tmp_path):
    folder = tmp_path / "objects"
    folder.mkdir()
    np.save(folder / "x_train.npy", np.zeros((10, 3), "float32"))
    np.save(folder / "y_train.npy", np.array(["a", "b"] * 5, dtype=object), allow_pickle=True)
    _write_npz(tmp_path / "whole.npz")
    (tmp_path / "cut.npz").write_bytes((tmp_path / "whole.npz").read_bytes()[:300])
    for path, needle in ((folder, "y_train.npy is not a readable .npy array"), (tmp_path / "cut.npz", "BadZipFile")):
        with pytest.raises(AutokdError, match=re.escape(needle)):  # were tracebacks
            load_task_data(DataSpec(name="arrays", path=str(path), val_size=2), cache_dir())


def test_python_data_as_bfloat16_or_sparse_tensors_loads(tmp_path, monkeypatch):
    (tmp_path / "autokd_test_odd_tensors.py").write_text(
        "import torch\n"
        "def load():\n"
        "    x, y = torch.arange(30.0).reshape(10, 3), torch.tensor([0, 1] * 5)\n"
        "    return x.bfloat16(), y, x.to_sparse(), y\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    data = load_task_data(DataSpec(name="python", callable="autokd_test_odd_tensors:load", val_size=2), cache_dir())
    assert data.test.x.dtype == data.train.x.dtype == torch.float32
    assert data.test.x[:, 0].tolist() == [0.0, 3.0, 6.0, 9.0, 12.0, 15.0, 18.0, 21.0, 24.0, 27.0]


@pytest.mark.parametrize("data, needle", [
    ({"name": "arrays"}, "data.path is required for data arrays"),
    ({"name": "table", "path": "t.csv"}, "data.label is required"),
    ({"name": "python"}, "data.callable is required"),
    ({"name": "python", "callable": "no_colon"}, "'package.module:function'"),
    ({"name": "mnist1d", "path": "x.npz"}, "data.path applies to data arrays, table, not mnist1d"),
    ({"name": "arrays", "path": "x.npz", "label": "y"}, "data.label applies to data table, not arrays"),
    ({"name": "arrays", "path": "x.npz", "keys": {"x_tr": "X"}}, "data.keys: 'x_tr'"),
    ({"name": "table", "path": "t.csv", "label": "y", "features": []}, "data.features must list"),
    ({"name": "arrays", "path": "x.npz", "augment": True}, "augment: true (crop and flip)"),
])
def test_bad_data_sections_are_config_errors(data, needle):
    from autokd.config.task import task_from_dict

    with pytest.raises(ConfigError) as info:
        task_from_dict(_task("bad", data))
    assert needle in str(info.value), str(info.value)


def test_a_table_missing_values_or_label_column_is_refused(tmp_path):
    frame = _table(50)
    frame.loc[3, "a"] = np.nan
    frame.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(AutokdError, match=r"missing values in \{'a': 1\}"):
        load_task_data(DataSpec(name="table", path=str(tmp_path / "t.csv"), label="label", val_size=5), cache_dir())
    with pytest.raises(AutokdError, match="data.label 'outcome' is not a column"):
        load_task_data(DataSpec(name="table", path=str(tmp_path / "t.csv"), label="outcome", val_size=5), cache_dir())


def test_a_table_of_values_too_large_to_standardise_is_refused_without_warnings(tmp_path):
    import warnings

    frame = _table(50)
    frame["a"] = frame["a"].astype(float)
    frame.loc[:24, "a"], frame.loc[25:, "a"] = 1e308, -1e308
    frame.to_csv(tmp_path / "t.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's overflow warnings were printed before the error
        with pytest.raises(AutokdError, match=r"column 'a' holds values too large to standardise \(up to 1e\+308\)"):
            load_task_data(DataSpec(name="table", path=str(tmp_path / "t.csv"), label="label", val_size=5), cache_dir())


def _teacher_runs(folder, env) -> list[str]:
    out = run_cli("teacher", "--space", "space.yaml", cwd=folder, env=env)
    assert out.returncode == 0, out.stderr
    return [line for line in out.stdout.splitlines() if line.startswith("teacher ")] + [out.stderr]


def test_a_changed_array_file_or_model_source_retrains_the_teacher_and_an_unchanged_one_reuses_it(tmp_path):
    env = {"AUTOKD_CACHE": str(tmp_path / "cache")}
    _write_npz(tmp_path / "d.npz")
    (tmp_path / "my_models.py").write_text("from autokd.models.mnist1d_nets import cnn1d\n")
    task = _task("cache", {"name": "arrays", "path": "d.npz"})
    task["teacher"]["model"] = "my_models:cnn1d"
    _space_file(tmp_path, task)
    assert ", trained)" in _teacher_runs(tmp_path, env)[0]
    assert ", cache)" in _teacher_runs(tmp_path, env)[0]  # unchanged: reused
    x, y = _signals(300, seed=5)  # same names, shapes and size: other content
    xt, yt = _signals(100, seed=1)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=xt, y_test=yt)
    first, *_, stderr = _teacher_runs(tmp_path, env)
    assert ", trained)" in first and "the data changed since; training it again" in stderr, stderr
    assert ", cache)" in _teacher_runs(tmp_path, env)[0]
    (tmp_path / "my_models.py").write_text("from autokd.models.mnist1d_nets import cnn1d  # edited\n")
    first, *_, stderr = _teacher_runs(tmp_path, env)
    assert ", trained)" in first and "the teacher model's source file changed" in stderr, stderr


def test_a_changed_image_folder_retrains_the_teacher(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)

    def write_images(seed: int) -> None:
        rng = np.random.default_rng(seed)
        for part, n in (("train", 12), ("test", 4)):
            for label in ("cat", "dog"):
                folder = tmp_path / "images" / part / label
                folder.mkdir(parents=True, exist_ok=True)
                for i in range(n):
                    pixels = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
                    Image.fromarray(pixels).save(folder / f"{i}.png")

    env = {"AUTOKD_CACHE": str(tmp_path / "cache")}
    write_images(0)
    task = _task("images", {"name": "imagefolder", "root": "images", "image_size": 8, "val_size": 4},
                 {**SIGNAL_MODELS, "teacher": {"model": "mlp1d", "kwargs": {"width": 8}, "recipe": RECIPE},
                  "student": {"model": "mlp1d", "kwargs": {"width": 4}}})
    _space_file(tmp_path, task, {**SPACE, "pair_losses": ["none"]})
    assert ", trained)" in _teacher_runs(tmp_path, env)[0]
    assert ", cache)" in _teacher_runs(tmp_path, env)[0]
    write_images(1)  # same file names, other pixels
    first, *_, stderr = _teacher_runs(tmp_path, env)
    assert ", trained)" in first and "the data changed" in stderr
    assert rng is not None


def test_the_shipped_data_source_examples_generate_their_data_and_search(tmp_path):
    """make_data.py writes the files; arrays_space.yaml and table_space.yaml (recipes cut to one
    epoch) run a small search on them."""
    import subprocess
    import sys
    from pathlib import Path

    import autokd

    examples = Path(autokd.__file__).resolve().parent.parent / "search_spaces" / "examples"
    if not (examples / "make_data.py").is_file():
        pytest.skip("examples not present in this install")
    made = subprocess.run([sys.executable, str(examples / "make_data.py"), "--out", str(tmp_path / "data")],
                          capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    for name in ("arrays_space", "table_space"):
        spec = yaml.safe_load((examples / f"{name}.yaml").read_text())
        spec["task"]["teacher"]["recipe"]["epochs"] = 1
        spec["task"]["recipes"] = {"full": {"epochs": 1}, "proxy": {"epochs": 1}}
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        out = run_cli("search", "--space", f"{name}.yaml", "--budget", "2", "--workers", "0", "--storage", "s.db",
                      "--name", name, cwd=tmp_path)
        assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr


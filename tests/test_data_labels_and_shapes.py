"""Labels and sample shapes read from a user's arrays: numbers in object arrays, digit names, float16
labels, images stored channels last."""

from __future__ import annotations

import numpy as np
import pytest

from autokd.data import cache_dir, load_task_data
from autokd.data.spec import DataSpec


OBJECT_LABELS = """
import numpy as np

def load():
    y = np.arange(240) % 12
    x = np.zeros((240, 1, 4), "float32")
    return {"x_train": x, "y_train": y.astype(object), "x_test": x[:24], "y_test": y[:24].astype(object)}

def digit_names():
    y = np.arange(240) % 12
    x = np.zeros((240, 1, 4), "float32")
    return {"x_train": x, "y_train": y.astype(str), "x_test": x[:24], "y_test": y[:24]}
"""


def test_whole_numbers_in_an_object_array_are_labels_not_names_sorted_as_text(tmp_path, monkeypatch):
    """Labels 0..11 as Python ints in an object array (a pandas object column) were numbered as the
    text names '0', '1', '10', '11', '2', ...: label 10 became class 2, silently."""
    (tmp_path / "autokd_test_object_labels.py").write_text(OBJECT_LABELS)
    monkeypatch.syspath_prepend(str(tmp_path))
    for fn in ("load", "digit_names"):  # digit names: numbered as the numbers they are
        data = load_task_data(DataSpec(name="python", callable=f"autokd_test_object_labels:{fn}", val_size=12),
                              cache_dir())
        assert data.class_names == tuple(str(i) for i in range(12))
        assert data.test.y.tolist() == list(range(12)) * 2


def test_images_stored_channels_last_are_warned_about(tmp_path):
    """(N, 8, 8, 3) images trained as 8 channels of 8x3, without a word."""
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "hwc.npz", x_train=rng.integers(0, 255, (40, 8, 8, 3), dtype=np.uint8),
             y_train=np.arange(40) % 2)
    with pytest.warns(RuntimeWarning, match=r"samples of shape \(8, 8, 3\) are read channels first.*np\.moveaxis"):
        data = load_task_data(DataSpec(name="arrays", path=str(tmp_path / "hwc.npz"), val_size=4), cache_dir())
    assert data.input_shape == (8, 8, 3)


def test_float16_labels_load_without_a_warning(tmp_path):
    import warnings

    np.savez(tmp_path / "f16.npz", x_train=np.zeros((40, 1, 4), "float32"), y_train=(np.arange(40) % 3).astype(np.float16))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # was: RuntimeWarning: overflow encountered in cast (MAX_CLASSES in float16)
        data = load_task_data(DataSpec(name="arrays", path=str(tmp_path / "f16.npz"), val_size=4), cache_dir())
    assert data.num_classes == 3

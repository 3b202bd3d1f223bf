"""Tests of autokd.data: MNIST-1D generation and cache, splits, batching, augmentation, spec
validation. Image folders and torchvision sets: test_data_images.py. Runs in a few seconds."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

import autokd.data.mnist1d as m1d
from autokd.data import (
    DataSpec,
    Split,
    cache_dir,
    describe,
    iterate_batches,
    load_task_data,
    random_crop,
    random_hflip,
    split_indices,
    standard_augment,
)
from autokd.errors import AutokdError


N = 600  # small MNIST-1D: 480 train / 120 test


@pytest.fixture
def gen_counter(monkeypatch):
    """Count calls of the real MNIST-1D generator."""
    calls = []
    real = m1d.generate

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(m1d, "generate", counting)
    return calls


def small_spec(**kw) -> DataSpec:
    kw.setdefault("num_samples", N)
    return DataSpec(name="mnist1d", **kw)


# ----------------------------------------------------------------------------- cache dir


def test_cache_dir_env_and_default(monkeypatch, tmp_path):
    monkeypatch.setenv("AUTOKD_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("AUTOKD_CACHE")
    assert cache_dir() == Path("~/.cache/autokd").expanduser()


# ----------------------------------------------------------------------------- MNIST-1D


def test_mnist1d_shapes_dtypes_labels(fresh_cache, gen_counter):
    messages = []
    data = load_task_data(small_spec(val_size=0.25), progress=messages.append)
    assert messages == [f"generating MNIST-1D ({N} samples)..."]
    assert len(gen_counter) == 1
    assert data.input_shape == (1, 40) and data.num_classes == 10 and data.augment is False
    assert (len(data.train), len(data.val), len(data.test)) == (360, 120, 120)
    for split in (data.train, data.val, data.test):
        assert split.x.dtype == torch.float32 and split.x.shape[1:] == (1, 40)
        assert split.y.dtype == torch.int64
        assert int(split.y.min()) >= 0 and int(split.y.max()) <= 9
    assert set(data.train.y.tolist()) == set(range(10))
    assert describe(data) == "mnist1d: train 360 / val 120 / test 120, input (1, 40), 10 classes, augment off"


def test_mnist1d_cache_created_and_reused(fresh_cache, gen_counter):
    first = load_task_data(small_spec())
    files = list((fresh_cache / "mnist1d").glob("*.npz"))
    assert len(files) == 1 and f"_n{N}_" in files[0].name
    assert not list((fresh_cache / "mnist1d").glob("*.tmp"))  # temp file replaced, not left behind
    mtime = files[0].stat().st_mtime_ns
    messages = []
    second = load_task_data(small_spec(), progress=messages.append)
    assert len(gen_counter) == 1 and messages == []  # read from cache, not regenerated
    assert files[0].stat().st_mtime_ns == mtime
    assert torch.equal(first.train.x, second.train.x) and torch.equal(first.test.y, second.test.y)
    # another key (seed) is another file
    load_task_data(small_spec(seed=1))
    assert len(gen_counter) == 2 and len(list((fresh_cache / "mnist1d").glob("*.npz"))) == 2


def test_mnist1d_explicit_cache_dir_argument(tmp_path, gen_counter, monkeypatch):
    monkeypatch.setenv("AUTOKD_CACHE", str(tmp_path / "unused"))
    load_task_data(small_spec(), cache_dir=tmp_path / "explicit")
    assert list((tmp_path / "explicit" / "mnist1d").glob("*.npz"))
    assert not (tmp_path / "unused").exists()


def test_mnist1d_corrupt_cache_regenerated(fresh_cache, gen_counter):
    good = load_task_data(small_spec())
    (path,) = (fresh_cache / "mnist1d").glob("*.npz")
    path.write_bytes(b"not a zip file")
    again = load_task_data(small_spec())
    assert len(gen_counter) == 2
    assert torch.equal(good.train.x, again.train.x)  # regeneration is deterministic
    assert np.load(path)["x"].shape == (480, 40)  # and the file is whole again


def test_mnist1d_keeps_global_rng_state(fresh_cache):
    random.seed(123)
    np.random.seed(123)
    torch.manual_seed(123)
    py, nps, ts = random.getstate(), np.random.get_state(), torch.get_rng_state()
    load_task_data(small_spec())
    assert random.getstate() == py
    after = np.random.get_state()
    assert after[0] == nps[0] and np.array_equal(after[1], nps[1]) and after[2:] == nps[2:]
    assert torch.equal(torch.get_rng_state(), ts)


def test_mnist1d_train_size_and_test_untouched(fresh_cache):
    full = load_task_data(small_spec(val_size=100))
    cut = load_task_data(small_spec(val_size=100, train_size=50))
    assert (len(cut.train), len(cut.val), len(cut.test)) == (50, 100, 120)
    assert torch.equal(full.val.x, cut.val.x)  # validation does not depend on train_size
    assert torch.equal(full.test.x, cut.test.x)
    assert set(cut.train.origin.tolist()) <= set(full.train.origin.tolist())
    with pytest.raises(AutokdError, match="train_size"):
        load_task_data(small_spec(val_size=100, train_size=381))


def test_mnist1d_batches_helper_no_augment(fresh_cache):
    data = load_task_data(small_spec())
    idx, x, y = next(data.batches("train", 32, shuffle=False))
    assert torch.equal(x, data.train.x[idx]) and torch.equal(y, data.train.y[idx])


# ----------------------------------------------------------------------------- splits


def test_split_disjoint_sized_deterministic():
    tr, va = split_indices(1000, 0.2, None, seed=7)
    assert (len(tr), len(va)) == (800, 200)
    assert set(tr.tolist()).isdisjoint(va.tolist())
    assert sorted(tr.tolist() + va.tolist()) == list(range(1000))  # carved from this set only
    tr2, va2 = split_indices(1000, 0.2, None, seed=7)
    assert torch.equal(tr, tr2) and torch.equal(va, va2)
    tr3, _ = split_indices(1000, 0.2, None, seed=8)
    assert not torch.equal(tr, tr3)
    assert tr.dtype == torch.int64


def test_split_independent_of_global_rng():
    torch.manual_seed(0)
    np.random.seed(0)
    a = split_indices(500, 50, None, seed=3)
    torch.manual_seed(999)
    np.random.seed(999)
    state = torch.get_rng_state()
    b = split_indices(500, 50, None, seed=3)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert torch.equal(torch.get_rng_state(), state)  # global RNG not consumed


def test_split_val_count_and_train_size():
    tr, va = split_indices(100, 30, None, seed=0)
    assert (len(tr), len(va)) == (70, 30)
    small, va_small = split_indices(100, 30, 20, seed=0)
    assert len(small) == 20 and torch.equal(va, va_small)
    assert set(small.tolist()) <= set(tr.tolist())
    assert len(split_indices(100, 30, 70, seed=0)[0]) == 70
    with pytest.raises(AutokdError, match="train_size"):
        split_indices(100, 30, 71, seed=0)


@pytest.mark.parametrize("val_size", [0, -0.1, 100, 150, 2.5, "0.1", True])
def test_split_bad_val_size(val_size):
    with pytest.raises(AutokdError, match="val_size"):
        split_indices(100, val_size, None, seed=0)


# ----------------------------------------------------------------------------- batches


def make_split(n=23):
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1).expand(n, 1, 4).contiguous()
    return Split(x, torch.arange(n) % 10)


@pytest.mark.parametrize("shuffle", [False, True])
def test_iterate_batches_covers_each_index_once(shuffle):
    split = make_split()
    seen = []
    for idx, x, y in iterate_batches(split, 5, shuffle=shuffle, generator=torch.Generator().manual_seed(0)):
        assert idx.dtype == torch.int64 and len(idx) <= 5
        assert torch.equal(x[:, 0, 0], idx.float())  # idx maps back to the right samples
        assert torch.equal(y, split.y[idx])
        seen.extend(idx.tolist())
    assert sorted(seen) == list(range(23))
    assert (seen == list(range(23))) != shuffle


def test_iterate_batches_shuffle_reproducible_and_drop_last():
    split = make_split()
    order = lambda seed: [i for b in iterate_batches(split, 4, shuffle=True, generator=torch.Generator().manual_seed(seed)) for i in b[0].tolist()]
    assert order(1) == order(1) and order(1) != order(2)
    batches = list(iterate_batches(split, 5, shuffle=False, drop_last=True))
    assert [len(b[0]) for b in batches] == [5, 5, 5, 5]
    assert [len(b[0]) for b in iterate_batches(split, 5, shuffle=False)] == [5, 5, 5, 5, 3]


def test_iterate_batches_uint8_to_normalised_float():
    x = torch.full((6, 3, 2, 2), 255, dtype=torch.uint8)
    split = Split(x, torch.zeros(6, dtype=torch.long))
    norm = ((0.5, 0.5, 0.5), (0.5, 0.25, 0.5))
    _, xb, _ = next(iterate_batches(split, 6, shuffle=False, normalize=norm))
    assert xb.dtype == torch.float32
    assert torch.allclose(xb[:, 0], torch.ones(6, 2, 2)) and torch.allclose(xb[:, 1], torch.full((6, 2, 2), 2.0))


# ----------------------------------------------------------------------------- augmentation


def test_random_crop_keeps_shape_dtype_and_shifts():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(1, 256, (16, 3, 8, 8), dtype=torch.uint8)
    out = random_crop(x, 4, g)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert not torch.equal(out, x)
    assert (out == 0).any()  # zero padding shows up
    # every sample is a shifted window of its zero-padded original
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for i in range(16):
        assert any(
            torch.equal(out[i], padded[i, :, r : r + 8, c : c + 8]) for r in range(9) for c in range(9)
        )
    assert torch.equal(random_crop(x, 4, torch.Generator().manual_seed(0)), out)  # seeded


def test_random_hflip_exact_mirrors():
    x = torch.rand(64, 3, 5, 7)
    out = random_hflip(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    flipped = [torch.equal(out[i], x[i].flip(-1)) for i in range(64)]
    kept = [torch.equal(out[i], x[i]) for i in range(64)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 0 < sum(flipped) < 64


def test_standard_augment_float_batch():
    x = torch.rand(8, 3, 32, 32)
    out = standard_augment(x, torch.Generator().manual_seed(1))
    assert out.shape == x.shape and out.dtype == torch.float32 and not torch.equal(out, x)


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(num_samples=50), "num_samples"),
        (dict(num_samples=600.5), "num_samples"),
        (dict(test_fraction=0.0), "test_fraction"),
        (dict(test_fraction=1.0), "test_fraction"),
        (dict(test_fraction=-0.2), "test_fraction"),
        (dict(train_size=-5), "train_size"),
        (dict(train_size=0), "train_size"),
        (dict(val_size=0), "val_size"),
        (dict(val_size=480), "val_size"),
        (dict(seed=-1), "seed"),
        (dict(augment=True), "augment"),
        (dict(download="yes"), "download"),
    ],
)
def test_bad_spec_values(fresh_cache, kwargs, field):
    with pytest.raises(AutokdError, match=rf"data\.{field}") as err:
        load_task_data(small_spec(**kwargs))
    value = list(kwargs.values())[0]
    assert repr(value).lower() in str(err.value).lower()


def test_unknown_dataset_name(fresh_cache):
    with pytest.raises(AutokdError, match=r"unknown dataset 'cifar-10'.*did you mean 'cifar10'"):
        load_task_data(DataSpec(name="cifar-10"))


# ----------------------------------------------------------------------------- hardening


def test_unwritable_mnist1d_cache_keeps_the_data_in_memory_and_warns_once(tmp_path, gen_counter):
    blocked = tmp_path / "cache-is-a-file"
    blocked.write_text("not a folder")  # works as root too, unlike a read-only folder
    messages = []
    first = load_task_data(small_spec(), cache_dir=blocked, progress=messages.append)
    warnings_seen = [m for m in messages if m.startswith("warning:")]
    assert len(warnings_seen) == 1 and "MNIST-1D cache" in warnings_seen[0] and "in memory" in warnings_seen[0]
    second = load_task_data(small_spec(train_size=100), cache_dir=blocked, progress=messages.append)
    assert len(gen_counter) == 1 and len([m for m in messages if m.startswith("warning:")]) == 1
    assert torch.equal(first.test.x, second.test.x)


def test_unwritable_mnist1d_cache_without_progress_is_a_warning(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("x")
    with pytest.warns(RuntimeWarning, match="in memory for this run only"):
        data = load_task_data(small_spec(seed=7), cache_dir=blocked)
    assert len(data.train) > 0


@pytest.mark.parametrize(
    "kwargs,needles",
    [
        (dict(num_samples=5_000_001), ["data.num_samples", "5,000,000"]),
        (dict(seed=2**32), ["data.seed", "[0, 2**32 - 1]"]),
        (dict(val_size=3e9), ["data.val_size", "1,000,000,000"]),
        (dict(val_size=float("nan")), ["data.val_size"]),
        (dict(name="imagefolder", root="/nowhere", image_size=4096), ["data.image_size", "1 to 1024"]),
    ],
)
def test_spec_bounds(fresh_cache, kwargs, needles):
    kwargs = {"num_samples": N, **kwargs}
    with pytest.raises(AutokdError) as err:
        load_task_data(DataSpec(**kwargs))
    for needle in needles:
        assert needle in str(err.value), str(err.value)


def test_largest_seed_is_accepted():
    from autokd.data import validate_spec

    validate_spec(small_spec(seed=2**32 - 1))

"""Tests of autokd.data: MNIST-1D generation and cache, splits, batching, augmentation,
image folders and torchvision sets (offline), spec validation. Runs in a few seconds."""

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
def cache(tmp_path, monkeypatch):
    """AUTOKD_CACHE pointed at a fresh temp folder."""
    root = tmp_path / "cache"
    monkeypatch.setenv("AUTOKD_CACHE", str(root))
    return root


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


def test_mnist1d_shapes_dtypes_labels(cache, gen_counter):
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


def test_mnist1d_cache_created_and_reused(cache, gen_counter):
    first = load_task_data(small_spec())
    files = list((cache / "mnist1d").glob("*.npz"))
    assert len(files) == 1 and f"_n{N}_" in files[0].name
    assert not list((cache / "mnist1d").glob("*.tmp"))  # temp file replaced, not left behind
    mtime = files[0].stat().st_mtime_ns
    messages = []
    second = load_task_data(small_spec(), progress=messages.append)
    assert len(gen_counter) == 1 and messages == []  # read from cache, not regenerated
    assert files[0].stat().st_mtime_ns == mtime
    assert torch.equal(first.train.x, second.train.x) and torch.equal(first.test.y, second.test.y)
    # another key (seed) is another file
    load_task_data(small_spec(seed=1))
    assert len(gen_counter) == 2 and len(list((cache / "mnist1d").glob("*.npz"))) == 2


def test_mnist1d_explicit_cache_dir_argument(tmp_path, gen_counter, monkeypatch):
    monkeypatch.setenv("AUTOKD_CACHE", str(tmp_path / "unused"))
    load_task_data(small_spec(), cache_dir=tmp_path / "explicit")
    assert list((tmp_path / "explicit" / "mnist1d").glob("*.npz"))
    assert not (tmp_path / "unused").exists()


def test_mnist1d_corrupt_cache_regenerated(cache, gen_counter):
    good = load_task_data(small_spec())
    (path,) = (cache / "mnist1d").glob("*.npz")
    path.write_bytes(b"not a zip file")
    again = load_task_data(small_spec())
    assert len(gen_counter) == 2
    assert torch.equal(good.train.x, again.train.x)  # regeneration is deterministic
    assert np.load(path)["x"].shape == (480, 40)  # and the file is whole again


def test_mnist1d_keeps_global_rng_state(cache):
    random.seed(123)
    np.random.seed(123)
    torch.manual_seed(123)
    py, nps, ts = random.getstate(), np.random.get_state(), torch.get_rng_state()
    load_task_data(small_spec())
    assert random.getstate() == py
    after = np.random.get_state()
    assert after[0] == nps[0] and np.array_equal(after[1], nps[1]) and after[2:] == nps[2:]
    assert torch.equal(torch.get_rng_state(), ts)


def test_mnist1d_train_size_and_test_untouched(cache):
    full = load_task_data(small_spec(val_size=100))
    cut = load_task_data(small_spec(val_size=100, train_size=50))
    assert (len(cut.train), len(cut.val), len(cut.test)) == (50, 100, 120)
    assert torch.equal(full.val.x, cut.val.x)  # validation does not depend on train_size
    assert torch.equal(full.test.x, cut.test.x)
    assert set(cut.train.origin.tolist()) <= set(full.train.origin.tolist())
    with pytest.raises(AutokdError, match="train_size"):
        load_task_data(small_spec(val_size=100, train_size=381))


def test_mnist1d_batches_helper_no_augment(cache):
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


# ----------------------------------------------------------------------------- image folder


def make_image_folder(root: Path, classes=("cat", "dog", "frog"), per_class=3, test_classes=None, size=(10, 12)):
    from PIL import Image

    for part, names in (("train", classes), ("test", test_classes or classes)):
        for ci, name in enumerate(names):
            folder = root / part / name
            folder.mkdir(parents=True)
            for k in range(per_class):
                arr = np.full((size[1], size[0], 3), 20 * ci + k, dtype=np.uint8)
                ext = "png" if k % 2 == 0 else "jpg"
                Image.fromarray(arr).save(folder / f"{k}.{ext}")
    return root


def test_image_folder_loads(tmp_path, cache):
    root = make_image_folder(tmp_path / "imgs")
    data = load_task_data(DataSpec(name="imagefolder", root=str(root), image_size=8, val_size=2))
    assert data.num_classes == 3 and data.class_names == ("cat", "dog", "frog")
    assert data.input_shape == (3, 8, 8) and data.augment is True
    assert (len(data.train), len(data.val), len(data.test)) == (7, 2, 9)
    assert data.train.x.dtype == torch.uint8 and data.train.x.shape == (7, 3, 8, 8)
    assert sorted(data.test.y.tolist()) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    mean, std = data.normalize
    assert len(mean) == 3 and all(s > 0 for s in std)
    idx, x, y = next(data.batches("train", 4, shuffle=True, generator=torch.Generator().manual_seed(0)))
    assert x.shape == (4, 3, 8, 8) and x.dtype == torch.float32
    _, xt, _ = next(data.batches("test", 9, shuffle=False))
    expected = (data.test.x.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.allclose(xt, expected, atol=1e-5)  # no augmentation on test


def test_image_folder_class_mismatch(tmp_path, cache):
    root = make_image_folder(tmp_path / "imgs", test_classes=("cat", "dog", "horse"))
    with pytest.raises(AutokdError, match="frog.*horse"):
        load_task_data(DataSpec(name="imagefolder", root=str(root)))


def test_image_folder_missing(tmp_path, cache):
    (tmp_path / "only" / "train" / "a").mkdir(parents=True)
    with pytest.raises(AutokdError, match=r"test not found"):
        load_task_data(DataSpec(name="imagefolder", root=str(tmp_path / "only")))
    (tmp_path / "only" / "test" / "a").mkdir(parents=True)
    with pytest.raises(AutokdError, match="no images found"):
        load_task_data(DataSpec(name="imagefolder", root=str(tmp_path / "only")))
    with pytest.raises(AutokdError, match="does not exist"):
        load_task_data(DataSpec(name="imagefolder", root=str(tmp_path / "nowhere")))


# ----------------------------------------------------------------------------- torchvision


@pytest.fixture
def no_network(monkeypatch):
    """Any socket connection fails the test."""
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture
def spy_cifar100(monkeypatch):
    """Replace torchvision's CIFAR100 with a recorder returning tiny fake data."""
    import torchvision.datasets as tvd

    calls = []

    class FakeCIFAR100:
        classes = [f"c{i}" for i in range(100)]

        def __init__(self, root, train=True, download=False, **kw):
            calls.append(dict(root=root, train=train, download=download))
            n = 12 if train else 5
            self.data = np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
            self.targets = list(range(n))

    monkeypatch.setattr(tvd, "CIFAR100", FakeCIFAR100)
    return calls


def test_torchvision_missing_without_download(tmp_path, cache, no_network, spy_cifar100):
    with pytest.raises(AutokdError) as err:
        load_task_data(DataSpec(name="cifar100", root=str(tmp_path)))
    msg = str(err.value)
    assert "CIFAR-100 not found under" in msg and str(tmp_path) in msg
    assert "cifar-100-python" in msg and "download: true" in msg and "--download" in msg
    assert spy_cifar100 == []  # nothing constructed, nothing fetched


def test_torchvision_root_required(cache):
    with pytest.raises(AutokdError, match=r"data\.root is required"):
        load_task_data(DataSpec(name="cifar10"))


def test_torchvision_real_class_missing_files(tmp_path, cache, no_network):
    # the folder exists but the files do not: torchvision's own error becomes an AutokdError
    (tmp_path / "MNIST" / "raw").mkdir(parents=True)
    with pytest.raises(AutokdError, match="MNIST not found"):
        load_task_data(DataSpec(name="mnist", root=str(tmp_path)))


def test_torchvision_loads_with_download_off(tmp_path, cache, spy_cifar100, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "cifar-100-python").mkdir()
    data = load_task_data(DataSpec(name="cifar100", root="~", val_size=2))
    assert [c["download"] for c in spy_cifar100] == [False, False]
    assert {c["root"] for c in spy_cifar100} == {str(tmp_path)}  # ~ expanded
    assert data.num_classes == 100 and data.input_shape == (3, 32, 32) and data.augment is True
    assert data.train.x.dtype == torch.uint8 and data.train.x.shape == (10, 3, 32, 32)
    assert len(data.val) == 2 and len(data.test) == 5
    assert describe(data).startswith("cifar100: train 10 / val 2 / test 5, input (3, 32, 32), 100 classes")


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
def test_bad_spec_values(cache, kwargs, field):
    with pytest.raises(AutokdError, match=rf"data\.{field}") as err:
        load_task_data(small_spec(**kwargs))
    value = list(kwargs.values())[0]
    assert repr(value).lower() in str(err.value).lower()


def test_unknown_dataset_name(cache):
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


def _png_bytes(size=(32, 32)) -> bytes:
    """A PNG of noise (incompressible: its image data is most of the file)."""
    import io

    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "content,needle",
    [
        (b"this is not an image at all", "not an image PIL can identify"),
        (_png_bytes()[:1500], "cannot read image"),  # truncated in the middle of the image data
        (_png_bytes()[:33] + b"\x00" * 40, "cannot read image"),  # a header, then garbage chunks
    ],
    ids=["garbage", "truncated", "broken-chunks"],
)
def test_a_corrupt_image_is_an_error_naming_the_file(tmp_path, cache, content, needle):
    root = make_image_folder(tmp_path / "imgs")
    bad = root / "train" / "dog" / "broken.png"
    bad.write_bytes(content)
    with pytest.raises(AutokdError) as err:
        load_task_data(DataSpec(name="imagefolder", root=str(root), image_size=8, val_size=2))
    message = str(err.value)
    assert str(bad) in message and needle in message and "\n" not in message, message


def _declared_huge_png(width=60_000, height=60_000) -> bytes:
    """A PNG header declaring a 3.6-gigapixel image (a few bytes that would decode to 10 GB)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_a_png_declaring_a_huge_size_is_refused_before_decoding(tmp_path, cache):
    root = make_image_folder(tmp_path / "imgs")
    bomb = root / "test" / "frog" / "bomb.png"
    bomb.write_bytes(_declared_huge_png())
    with pytest.raises(AutokdError) as err:
        load_task_data(DataSpec(name="imagefolder", root=str(root), image_size=8, val_size=2))
    assert str(bomb) in str(err.value) and "decompression bomb" in str(err.value), str(err.value)


@pytest.mark.parametrize("limit", [100, 50])
def test_a_decompression_bomb_is_an_error_naming_the_file(tmp_path, cache, monkeypatch, limit):
    from PIL import Image

    root = make_image_folder(tmp_path / "imgs")  # 10x12 = 120 pixels each
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)  # over the limit: a warning; over twice: an error
    with pytest.raises(AutokdError) as err:
        load_task_data(DataSpec(name="imagefolder", root=str(root), image_size=8, val_size=2))
    message = str(err.value)
    assert "possible decompression bomb" in message and "/train/cat/0." in message, message
    assert "120 pixels" in message and "\n" not in message


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
def test_spec_bounds(cache, kwargs, needles):
    kwargs = {"num_samples": N, **kwargs}
    with pytest.raises(AutokdError) as err:
        load_task_data(DataSpec(**kwargs))
    for needle in needles:
        assert needle in str(err.value), str(err.value)


def test_largest_seed_is_accepted():
    from autokd.data import validate_spec

    validate_spec(small_spec(seed=2**32 - 1))

"""Tests of autokd.data's image sources: image folders (loading, class mismatch, corrupt files,
decompression bombs) and torchvision sets read offline (never a download unless asked)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from autokd.data import DataSpec, describe, load_task_data
from autokd.errors import AutokdError



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


def test_image_folder_loads(tmp_path, fresh_cache):
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


def test_image_folder_class_mismatch(tmp_path, fresh_cache):
    root = make_image_folder(tmp_path / "imgs", test_classes=("cat", "dog", "horse"))
    with pytest.raises(AutokdError, match="frog.*horse"):
        load_task_data(DataSpec(name="imagefolder", root=str(root)))


def test_image_folder_missing(tmp_path, fresh_cache):
    (tmp_path / "only" / "train" / "a").mkdir(parents=True)
    with pytest.raises(AutokdError, match=r"test not found"):
        load_task_data(DataSpec(name="imagefolder", root=str(tmp_path / "only")))
    (tmp_path / "only" / "test" / "a").mkdir(parents=True)
    with pytest.raises(AutokdError, match="no images found"):
        load_task_data(DataSpec(name="imagefolder", root=str(tmp_path / "only")))
    with pytest.raises(AutokdError, match="does not exist"):
        load_task_data(DataSpec(name="imagefolder", root=str(tmp_path / "nowhere")))


def test_an_image_folder_with_one_class_is_refused(tmp_path, fresh_cache):
    root = make_image_folder(tmp_path / "imgs", classes=("cat",), per_class=2)
    with pytest.raises(AutokdError) as err:
        load_task_data(DataSpec(name="imagefolder", root=str(root), image_size=8, val_size=1))
    message = str(err.value)
    assert str(root / "train") in message and "single class ('cat')" in message, message
    assert "two or more" in message and "\n" not in message


@pytest.mark.parametrize("part", ["train", "test"])
def test_an_empty_class_folder_is_named(tmp_path, fresh_cache, part):
    root = make_image_folder(tmp_path / "imgs", classes=("cat", "dog"), per_class=2)
    (root / "train" / "frog").mkdir()
    (root / "test" / "frog").mkdir()
    (root / ("test" if part == "train" else "train") / "frog" / "0.png").write_bytes(
        (root / "train" / "cat" / "0.png").read_bytes())
    with pytest.raises(AutokdError) as err:
        load_task_data(DataSpec(name="imagefolder", root=str(root), image_size=8, val_size=1))
    message = str(err.value)
    assert f"no images found in class folder {root / part / 'frog'}:" in message, message
    assert "\n" not in message


def test_several_empty_class_folders_are_named_in_one_line(tmp_path, fresh_cache):
    root = make_image_folder(tmp_path / "imgs", classes=("cat", "dog"), per_class=2)
    for name in ("emu", "frog"):
        (root / "train" / name).mkdir()
        (root / "test" / name).mkdir()
    (root / "train" / "frog" / "notes.txt").write_text("not an image")
    with pytest.raises(AutokdError) as err:
        load_task_data(DataSpec(name="imagefolder", root=str(root), image_size=8, val_size=1))
    message = str(err.value)
    assert f"class folders 'emu', 'frog' of {root / 'train'}" in message and "\n" not in message, message


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


def test_torchvision_missing_without_download(tmp_path, fresh_cache, no_network, spy_cifar100):
    with pytest.raises(AutokdError) as err:
        load_task_data(DataSpec(name="cifar100", root=str(tmp_path)))
    msg = str(err.value)
    assert "CIFAR-100 not found under" in msg and str(tmp_path) in msg
    assert "cifar-100-python" in msg and "download: true" in msg and "--download" in msg
    assert spy_cifar100 == []  # nothing constructed, nothing fetched


def test_torchvision_root_required(fresh_cache):
    with pytest.raises(AutokdError, match=r"data\.root is required"):
        load_task_data(DataSpec(name="cifar10"))


def test_torchvision_real_class_missing_files(tmp_path, fresh_cache, no_network):
    # the folder exists but the files do not: torchvision's own error becomes an AutokdError
    (tmp_path / "MNIST" / "raw").mkdir(parents=True)
    with pytest.raises(AutokdError, match="MNIST not found"):
        load_task_data(DataSpec(name="mnist", root=str(tmp_path)))


def test_torchvision_loads_with_download_off(tmp_path, fresh_cache, spy_cifar100, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "cifar-100-python").mkdir()
    data = load_task_data(DataSpec(name="cifar100", root="~", val_size=2))
    assert [c["download"] for c in spy_cifar100] == [False, False]
    assert {c["root"] for c in spy_cifar100} == {str(tmp_path)}  # ~ expanded
    assert data.num_classes == 100 and data.input_shape == (3, 32, 32) and data.augment is True
    assert data.train.x.dtype == torch.uint8 and data.train.x.shape == (10, 3, 32, 32)
    assert len(data.val) == 2 and len(data.test) == 5
    assert describe(data).startswith("cifar100: train 10 / val 2 / test 5, input (3, 32, 32), 100 classes")




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
def test_a_corrupt_image_is_an_error_naming_the_file(tmp_path, fresh_cache, content, needle):
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


def test_a_png_declaring_a_huge_size_is_refused_before_decoding(tmp_path, fresh_cache):
    root = make_image_folder(tmp_path / "imgs")
    bomb = root / "test" / "frog" / "bomb.png"
    bomb.write_bytes(_declared_huge_png())
    with pytest.raises(AutokdError) as err:
        load_task_data(DataSpec(name="imagefolder", root=str(root), image_size=8, val_size=2))
    assert str(bomb) in str(err.value) and "decompression bomb" in str(err.value), str(err.value)


@pytest.mark.parametrize("limit", [100, 50])
def test_a_decompression_bomb_is_an_error_naming_the_file(tmp_path, fresh_cache, monkeypatch, limit):
    from PIL import Image

    root = make_image_folder(tmp_path / "imgs")  # 10x12 = 120 pixels each
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)  # over the limit: a warning; over twice: an error
    with pytest.raises(AutokdError) as err:
        load_task_data(DataSpec(name="imagefolder", root=str(root), image_size=8, val_size=2))
    message = str(err.value)
    assert "possible decompression bomb" in message and "/train/cat/0." in message, message
    assert "120 pixels" in message and "\n" not in message


# ----------------------------------------------------------------------------- deep images, symlinks


def test_16_bit_grayscale_images_are_scaled_to_8_bits(tmp_path, fresh_cache):
    from PIL import Image

    from autokd.data.imagefolder import load_image_folder

    root = make_image_folder(tmp_path / "imgs", classes=("cat", "dog"), per_class=1)
    for name, value in (("a.png", 65535), ("b.png", 257 * 100), ("c.tif", 257 * 7)):  # PIL mode I;16
        Image.fromarray(np.full((6, 6), value, dtype=np.uint16)).save(root / "train" / "cat" / name)
    x = load_image_folder(str(root), image_size=6)["x"]
    assert x.shape == (5, 3, 6, 6)  # cat: 0.png, a.png, b.png, c.tif; dog: 0.png
    assert [int(v) for v in x[1:4, :, 0, 0].unique(dim=1).flatten()] == [255, 100, 7]  # were all clipped to 255


@pytest.mark.parametrize("dtype,mode", [(np.float32, "F"), (np.int32, "I")])
def test_float_or_32_bit_images_are_refused_naming_the_file_and_mode(tmp_path, fresh_cache, dtype, mode):
    from PIL import Image

    root = make_image_folder(tmp_path / "imgs")
    deep = root / "test" / "dog" / "deep.tif"
    Image.fromarray(np.full((6, 6), 1000, dtype=dtype)).save(deep)
    with pytest.raises(AutokdError) as err:
        load_task_data(DataSpec(name="imagefolder", root=str(root), image_size=8, val_size=2))
    message = str(err.value)
    assert f"image {deep} has PIL mode {mode!r}" in message and "convert the images to 8-bit" in message, message
    assert "\n" not in message


def test_symlinked_folders_and_files_are_listed_once_each(tmp_path, fresh_cache):
    from autokd.data.imagefolder import load_image_folder

    root = make_image_folder(tmp_path / "imgs", classes=("cat", "dog"), per_class=2)
    extra = make_image_folder(tmp_path / "extra", classes=("more",), per_class=3) / "train" / "more"
    (root / "train" / "cat" / "again").symlink_to(".")  # a loop to its own folder
    (root / "train" / "dog" / "up").symlink_to("..")  # a loop to the part holding it
    (root / "train" / "cat" / "more").symlink_to(extra)  # elsewhere: followed
    (root / "train" / "cat" / "more2").symlink_to(extra)  # the same folder again: once
    (root / "train" / "dog" / "link.png").symlink_to(root / "test" / "cat" / "0.png")  # a file: kept
    data = load_image_folder(str(root), image_size=8)
    assert sorted(data["y"].tolist()) == [0, 0, 0, 0, 0, 1, 1, 1]  # each was listed dozens of times
    assert len(data["y_test"]) == 4


# ----------------------------------------------------------------------------- corrupt torchvision files


@pytest.mark.parametrize("content", [b"\x07" * 100, b"\x00\x00\x08\x03" + b"\x00\x00\xea\x60" + b"\x00" * 50],
                         ids=["garbage", "truncated"])
def test_corrupt_mnist_files_are_an_error_naming_the_folder(tmp_path, fresh_cache, no_network, content):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (raw / name).write_bytes(content)
    with pytest.raises(AutokdError) as err:
        load_task_data(DataSpec(name="mnist", root=str(tmp_path)))
    message = str(err.value)
    assert f"MNIST files in {raw} cannot be read (" in message and "corrupt or truncated" in message, message
    assert "delete them" in message and "\n" not in message


def test_image_folder_normalisation_does_not_depend_on_train_size(tmp_path, fresh_cache):
    """The cached teacher (trained on the whole training split) was fed a train_size subset normalised
    with the subset's own statistics: 100 % accurate on its data, 65 % as fed during distillation."""
    root = make_image_folder(tmp_path / "imgs", per_class=6)
    whole = load_task_data(DataSpec(name="imagefolder", root=str(root), image_size=8, val_size=3))
    subset = load_task_data(DataSpec(name="imagefolder", root=str(root), image_size=8, val_size=3, train_size=2))
    assert len(subset.train) == 2 and len(whole.train) == 15
    assert subset.normalize == whole.normalize
    assert torch.equal(subset.val.x, whole.val.x)

"""Image folders (``root/train/<class>/*`` and ``root/test/<class>/*``) loaded into memory.

Images are converted to RGB, resized to ``image_size`` square and stored as uint8
(N, 3, S, S). 16-bit grayscale images are scaled to 8 bits by the fixed factor 255/65535; 32-bit
integer or floating-point images (no fixed 8-bit scale) are refused, naming the file.
Normalisation statistics are computed from the training split by the loader.

A class folder's files are listed once each: a symbolic link to a folder is followed, unless
it leads back to a folder the listing already holds (a loop, such as ``cat/again -> .``).
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import torch

from ..errors import AutokdError, short_repr


def _open_part(folder: Path, image_size: int):
    """torchvision's ``ImageFolder`` over one part (train or test), every class folder holding images."""
    from torchvision import transforms
    from torchvision.datasets import ImageFolder

    if not folder.is_dir():
        raise AutokdError(
            f"image folder {folder} not found: data.root must hold train/<class>/ and "
            f"test/<class>/ folders of images"
        )
    transform = transforms.Compose(
        [transforms.Resize((image_size, image_size)), transforms.PILToTensor()]
    )

    class Folder(ImageFolder):  # the listing without symbolic link loops
        make_dataset = staticmethod(_list_images)

    try:  # allow_empty: an empty class folder is named below, not only inside torchvision's text
        ds = Folder(str(folder), transform=transform, loader=_load_rgb, allow_empty=True)
    except (FileNotFoundError, ValueError) as exc:
        raise AutokdError(
            f"no images found in {folder}: expected one sub-folder per class holding "
            f".png/.jpg files ({_first_line(exc)})"
        ) from None
    counts = Counter(target for _, target in ds.samples)
    empty = [name for i, name in enumerate(ds.classes) if not counts[i]]
    if len(empty) == 1:
        where = folder / empty[0]
        where = where if str(where).isprintable() else short_repr(str(where), 300)
        raise AutokdError(f"no images found in class folder {where}: every class folder "
                          f"needs .png/.jpg images; add some or remove the folder")
    if empty:
        raise AutokdError(f"no images found in the class folders {_names(empty)} of {folder}: every class "
                          f"folder needs .png/.jpg images; add some or remove those folders")
    return ds


def _list_images(directory, class_to_idx, extensions=None, is_valid_file=None, allow_empty=False):
    """torchvision's ``make_dataset`` (same order), but each folder walked once: a symbolic link
    to a folder already walked, or to one holding the class folder, is not followed again."""
    from torchvision.datasets.folder import has_file_allowed_extension

    valid = is_valid_file or (lambda path: has_file_allowed_extension(path, extensions))
    samples = []
    for name in sorted(class_to_idx):
        top = os.path.join(directory, name)
        if os.path.isdir(top):
            samples += [(path, class_to_idx[name]) for path in _walk_once(top) if valid(path)]
    if not samples and not allow_empty:
        raise FileNotFoundError(f"Found no valid file in the class folders of {directory}")
    return samples


def _walk_once(top: str) -> List[str]:
    """The files under ``top`` (symbolic links to folders followed), each folder walked once."""
    real_top = Path(os.path.realpath(top))
    seen = {str(real_top)}
    listing = []
    for root, dirs, files in os.walk(top, followlinks=True):
        keep = []
        for name in sorted(dirs, key=lambda d: (os.path.islink(os.path.join(root, d)), d)):  # real ones first
            real = os.path.realpath(os.path.join(root, name))
            if real not in seen and not real_top.is_relative_to(real):  # not a loop back up
                seen.add(real)
                keep.append(name)
        dirs[:] = keep
        listing.append((root, files))
    return [os.path.join(root, name) for root, files in sorted(listing) for name in sorted(files)]


SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")  # PIL's unsigned 16-bit grayscale modes


def _load_rgb(path: str):
    """The image as RGB: 8-bit modes converted as PIL does; 16-bit grayscale (PIL's ``I;16``, or
    ``I`` read from a PNG, which holds at most 16 bits) scaled by 255/65535; other modes of more
    than 8 bits (32-bit integers, floats) refused: converting them would clip every value above 255."""
    from PIL import Image

    with open(path, "rb") as f:
        image = Image.open(f)
        if image.mode in SIXTEEN_BIT or (image.mode == "I" and image.format == "PNG"):
            pixels = np.asarray(image, dtype=np.float64)
            return Image.fromarray(np.round(np.clip(pixels, 0, 65535) / 257.0).astype(np.uint8)).convert("RGB")
        if image.mode in ("I", "F") or image.mode.startswith(("I;", "F;")):
            kind = "floating-point" if image.mode.startswith("F") else "signed or 32-bit integer"
            raise AutokdError(f"image {path} has PIL mode {image.mode!r} ({kind} pixels, with no fixed "
                              f"8-bit scale); convert the images to 8-bit (mode L or RGB, 0..255) first")
        return image.convert("RGB")


def _load_part(ds, folder: Path, image_size: int, progress: Optional[Callable[[str], None]]):
    """The images and labels of an opened part: (x uint8 (N, 3, S, S), y int64)."""
    n = len(ds)
    if progress is not None:
        progress(f"loading {n} images from {folder}...")
    x = torch.empty((n, 3, image_size, image_size), dtype=torch.uint8)
    y = torch.empty(n, dtype=torch.long)
    for i in range(n):
        x[i], y[i] = read_image(ds, i)
    return x, y


def _names(names: List[str]) -> str:
    """Class folder names for a one-line message: at most 10, each quoted (so odd names stay one line)."""
    shown = ", ".join(short_repr(name, 60) for name in names[:10])
    return shown + (f" and {len(names) - 10} more" if len(names) > 10 else "")


def read_image(ds, i: int):
    """Sample ``i`` of the ImageFolder ``ds`` as (uint8 image, label); a corrupt, truncated or
    over-large image (a decompression bomb: PIL's warning counts as an error here) is an
    AutokdError naming the file."""
    from PIL import Image

    file = ds.samples[i][0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return ds[i]
    except AutokdError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise AutokdError(f"image {file} is refused as a possible decompression bomb: {_first_line(exc)}") from None
    except Image.UnidentifiedImageError:
        raise AutokdError(f"cannot read image {file}: not an image PIL can identify (corrupt, or another format)") from None
    except Exception as exc:  # truncated data, broken chunks (SyntaxError / ValueError), unreadable file...
        raise AutokdError(f"cannot read image {file}: {type(exc).__name__}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200] + ("..." if len(text) > 200 else "")


def load_image_folder(
    root: Optional[str],
    image_size: int = 32,
    progress: Optional[Callable[[str], None]] = None,
) -> Dict[str, object]:
    """Load ``root/train`` and ``root/test``: ``x``/``x_test`` uint8 (N, 3, S, S),
    ``y``/``y_test`` int64 and ``classes``. Both parts must have the same class folders."""
    if root is None or str(root).strip() == "":
        raise AutokdError("data.root is required for imagefolder: a folder with train/ and test/")
    base = Path(os.path.expanduser(str(root)))
    if not base.is_dir():
        raise AutokdError(f"data.root {base} does not exist (imagefolder needs train/ and test/ in it)")
    for part in ("train", "test"):
        if not (base / part).is_dir():
            raise AutokdError(
                f"image folder {base / part} not found: data.root must hold train/<class>/ and "
                f"test/<class>/ folders of images"
            )
    train = _open_part(base / "train", image_size)
    if len(train.classes) < 2:
        raise AutokdError(f"image folder {base / 'train'} holds a single class ({_names(train.classes)}); "
                          f"a classifier needs two or more class folders")
    test = _open_part(base / "test", image_size)
    classes = list(train.classes)
    if classes != list(test.classes):
        only_train: List[str] = sorted(set(classes) - set(test.classes))
        only_test: List[str] = sorted(set(test.classes) - set(classes))
        raise AutokdError(
            f"class folders of {base / 'train'} and {base / 'test'} differ: "
            f"only in train: {only_train or 'none'}; only in test: {only_test or 'none'}"
        )
    x, y = _load_part(train, base / "train", image_size, progress)
    x_test, y_test = _load_part(test, base / "test", image_size, progress)
    return {"x": x, "y": y, "x_test": x_test, "y_test": y_test, "classes": classes}


def channel_stats(x: torch.Tensor, chunk: int = 4096):
    """Per-channel mean and std of uint8 images (N, C, H, W), scaled to [0, 1].

    Computed in float64 chunks, so no float copy of the whole set is made. A channel with
    (near) zero spread gets std 1.
    """
    c = x.shape[1]
    total = torch.zeros(c, dtype=torch.float64)
    total_sq = torch.zeros(c, dtype=torch.float64)
    count = 0
    for start in range(0, len(x), chunk):
        part = x[start : start + chunk].to(torch.float64).div_(255.0)
        total += part.sum(dim=(0, 2, 3))
        total_sq += part.pow(2).sum(dim=(0, 2, 3))
        count += part.numel() // c
    mean = total / max(count, 1)
    var = (total_sq / max(count, 1) - mean.pow(2)).clamp_min(0.0)
    std = var.sqrt()
    std = torch.where(std < 1e-6, torch.ones_like(std), std)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)

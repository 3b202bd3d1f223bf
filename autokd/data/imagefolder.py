"""Image folders (``root/train/<class>/*`` and ``root/test/<class>/*``) loaded into memory.

Images are converted to RGB, resized to ``image_size`` square and stored as uint8
(N, 3, S, S). Normalisation statistics are computed from the training split by the loader.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from pathlib import Path
from typing import Callable, Dict, List, Optional

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
    try:  # allow_empty: an empty class folder is named below, not only inside torchvision's text
        ds = ImageFolder(str(folder), transform=transform, allow_empty=True)
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

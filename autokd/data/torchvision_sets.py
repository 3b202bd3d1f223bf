"""CIFAR-10/100, MNIST and FashionMNIST from a local folder, held in memory as uint8 tensors.

Files are read from ``root``; they are fetched only when ``download`` is explicitly on.
"""

from __future__ import annotations

import os
import pickle
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import torch

from ..errors import AutokdError


@dataclass(frozen=True)
class SetInfo:
    """What autokd knows about one torchvision set."""

    title: str  # display name, e.g. "CIFAR-100"
    class_name: str  # torchvision.datasets attribute
    folder: str  # sub-folder of root that holds the files
    mean: Tuple[float, ...]
    std: Tuple[float, ...]
    input_shape: Tuple[int, int, int]


SETS: Dict[str, SetInfo] = {
    "cifar10": SetInfo("CIFAR-10", "CIFAR10", "cifar-10-batches-py",
                       (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), (3, 32, 32)),
    "cifar100": SetInfo("CIFAR-100", "CIFAR100", "cifar-100-python",
                        (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), (3, 32, 32)),
    "mnist": SetInfo("MNIST", "MNIST", os.path.join("MNIST", "raw"),
                     (0.1307,), (0.3081,), (1, 28, 28)),
    "fashionmnist": SetInfo("FashionMNIST", "FashionMNIST", os.path.join("FashionMNIST", "raw"),
                            (0.2860,), (0.3530,), (1, 28, 28)),
}

# what torchvision's readers raise on a garbage or truncated file (MNIST asserts its header)
CORRUPT = (AssertionError, ValueError, EOFError, IndexError, KeyError, TypeError, struct.error,
           pickle.UnpicklingError, zlib.error)


def resolve_root(name: str, root: Optional[str]) -> Path:
    """``root`` with ``~`` expanded; an AutokdError when it is not set."""
    if root is None or str(root).strip() == "":
        raise AutokdError(
            f"data.root is required for {name}: the local folder holding (or to receive) its files"
        )
    return Path(os.path.expanduser(str(root)))


def not_found(info: SetInfo, root: Path, detail: str = "") -> AutokdError:
    """The error for files missing under ``root`` while download is off."""
    return AutokdError(
        f"{info.title} not found under {root} (expected {info.folder}{os.sep}){detail}; "
        f"pass download: true in the task's data section (or --download) to fetch it, "
        f"or point root at a folder that has it"
    )


def _as_uint8_images(data) -> torch.Tensor:
    """torchvision's ``.data`` -> uint8 (N, C, H, W): CIFAR is NHWC numpy, MNIST is (N, H, W)."""
    x = torch.as_tensor(np.asarray(data)) if not isinstance(data, torch.Tensor) else data
    x = x.to(torch.uint8)
    if x.dim() == 3:
        return x.unsqueeze(1).contiguous()
    return x.permute(0, 3, 1, 2).contiguous()


def _open(info: SetInfo, root: Path, train: bool, download: bool):
    """Construct the torchvision data set; its 'not found' errors become AutokdErrors."""
    import torchvision.datasets as tvd

    cls = getattr(tvd, info.class_name)
    try:
        return cls(root=str(root), train=train, download=download)
    except RuntimeError as exc:  # torchvision's "not found or corrupted" (a failed check) or download error
        if not any(word in str(exc).lower() for word in ("not found", "download")):
            raise corrupt(info, root, exc) from exc  # a reader's tensor of the wrong size: a truncated file
        if download:
            raise AutokdError(f"could not fetch {info.title} into {root}: {exc}") from exc
        raise not_found(info, root, " or its files are incomplete or corrupted") from exc
    except OSError as exc:
        if download:  # a network failure, or a fetched archive that does not unpack
            raise AutokdError(f"could not fetch {info.title} into {root}: {_describe(exc)}") from exc
        raise corrupt(info, root, exc) from exc
    except CORRUPT as exc:  # the readers' asserts and parse errors on garbage or truncated files
        raise corrupt(info, root, exc) from exc


def corrupt(info: SetInfo, root: Path, exc: BaseException) -> AutokdError:
    """The error for files that are present under ``root`` but cannot be read."""
    return AutokdError(
        f"{info.title} files in {root / info.folder} cannot be read ({_describe(exc)}): they are corrupt "
        f"or truncated; delete them and fetch them again (download: true or --download), or point root "
        f"at a folder with good copies"
    )


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return type(exc).__name__ + (f": {text[:150]}" if text else "")


def load_torchvision_set(
    name: str,
    root: Optional[str],
    download: bool = False,
    progress: Optional[Callable[[str], None]] = None,
) -> Dict[str, object]:
    """Load both parts of set ``name``: ``x``/``x_test`` uint8 (N, C, H, W), ``y``/``y_test``
    int64, and ``classes`` (list of class names).

    With ``download`` off nothing is fetched: a missing folder raises an AutokdError telling
    how to fix it.
    """
    info = SETS[name]
    root_path = resolve_root(name, root)
    if not download and not (root_path / info.folder).is_dir():
        raise not_found(info, root_path)
    if progress is not None:
        progress(f"loading {info.title} from {root_path}...")
    out: Dict[str, object] = {}
    for train, suffix in ((True, ""), (False, "_test")):
        ds = _open(info, root_path, train, bool(download))
        out["x" + suffix] = _as_uint8_images(ds.data)
        out["y" + suffix] = torch.as_tensor(np.asarray(ds.targets), dtype=torch.long)
        if train:
            out["classes"] = list(ds.classes)
    return out

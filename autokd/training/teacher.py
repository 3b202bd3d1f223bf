"""The teacher: loaded from a user checkpoint, or trained by autokd and cached by key.

The cache lives under ``<cache>/teachers/``. A cached file that cannot be read is trained again
(saying why); a cache folder that cannot be written keeps the trained teacher in memory for the
rest of this process (saying so once) instead of failing or training it again.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import nn

from autokd.config.strategy import CE_ONLY
from autokd.config.task import TaskSpec
from autokd.errors import AutokdError, short_repr
from autokd.models.checks import check_logits
from autokd.models.registry import build_model
from autokd.outputs import write_atomic
from autokd.training.distiller import Distiller
from autokd.training.fit import EpochStats, TrainingFailed, accuracy, fit

Progress = Callable[[str], None]

# Teachers trained in this process whose cache file could not be written: cache path -> state dict.
_KEPT_IN_MEMORY: dict[str, dict] = {}


@dataclass
class TeacherInfo:
    source: str  # "checkpoint", "cache", "trained" or "memory" (trained earlier in this process, not cached)
    path: str  # the checkpoint or cache file; "" when the cache could not be written
    val_acc: float
    test_acc: float
    fingerprint: str = ""  # teacher_fingerprint of the weights: equal weights, equal fingerprint


def teacher_fingerprint(model: nn.Module) -> str:
    """16 hex digits of a SHA-256 over the state dict: names, dtypes, shapes and bytes, in name order."""
    digest = hashlib.sha256()
    for name, value in sorted(model.state_dict().items()):
        if not isinstance(value, torch.Tensor):
            digest.update(f"{name}\0{type(value).__name__}\0".encode())
            continue
        tensor = value.detach().to("cpu").contiguous()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()[:16]


def build_teacher_model(task: TaskSpec, data) -> nn.Module:
    return build_model(task.teacher.model, task.teacher.kwargs, data.num_classes, data.input_shape)


def load_checkpoint(model: nn.Module, path: str) -> None:
    """Load a state dict saved with ``torch.save`` (safely: ``weights_only=True``) into ``model``.

    A state dict saved from ``nn.DataParallel`` (every key prefixed ``module.``) loads as the bare model's."""
    file = Path(path).expanduser()
    if not file.is_file():
        if file.exists():
            raise AutokdError(f"teacher checkpoint {file} is not a regular file (a folder, a FIFO or a device?)")
        raise AutokdError(f"teacher checkpoint not found: {file}")
    try:
        with warnings.catch_warnings():  # torch warns before refusing a TorchScript archive: the error says it
            warnings.simplefilter("ignore")
            state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for files that are not checkpoints
        raise AutokdError(f"{file} is not a loadable PyTorch checkpoint: {_unloadable(file, exc)}") from None
    if isinstance(state, dict):
        for key in ("state_dict", "model", "model_state_dict"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise AutokdError(f"{file} holds no state dict (expected a mapping of parameter names to tensors)")
    _load_state(model, _without_data_parallel(state, model), file)


SAVE_STATE_DICT = "save the weights with torch.save(model.state_dict(), path)"


def _unloadable(file: Path, exc: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` refused ``file``, in words."""
    text = str(exc)
    if "TorchScript" in text:
        return f"it is a TorchScript archive (torch.jit.save), not a state dict; {SAVE_STATE_DICT} instead"
    unsafe = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if unsafe:
        return (f"it holds a pickled {unsafe.group(1)} object (a whole model saved with torch.save(model)?), not a "
                f"state dict, and autokd does not unpickle objects (that can run arbitrary code); "
                f"{SAVE_STATE_DICT} instead")
    with open(file, "rb") as handle:
        head = handle.read(512)
    if not head.startswith((b"PK\x03\x04", b"\x80")):  # torch.save writes a zip archive (a pickle before torch 1.6)
        what = ("an empty file" if not head else "a text file" if _is_text(head)
                else "neither a zip archive nor a pickle")
        return f"it is {what}; expected what torch.save(model.state_dict(), path) writes"
    detail = next((" ".join(line.split()) for line in text.splitlines() if line.strip()), "")[:200]
    return f"damaged or truncated? ({type(exc).__name__}: {detail})"


def _is_text(head: bytes) -> bool:
    """Whether a file's first bytes look like text: no control bytes but tabs and line ends."""
    return all(b >= 32 or b in b"\t\n\r" for b in head)


def _without_data_parallel(state: dict, model: nn.Module) -> dict:
    """``state`` without the ``module.`` prefix ``nn.DataParallel`` and DistributedDataParallel put
    on every key, when every key has it and the model's keys do not (torch's metadata follows)."""
    prefix = "module."
    own = model.state_dict()
    if not state or not all(isinstance(k, str) and k.startswith(prefix) for k in state) or \
            all(k.startswith(prefix) for k in own):
        return state
    stripped = OrderedDict((k[len(prefix):], v) for k, v in state.items())
    metadata = getattr(state, "_metadata", None)
    if metadata is not None:
        stripped._metadata = OrderedDict(("" if k == "module" else k[len(prefix):] if k.startswith(prefix) else k, v)
                                         for k, v in metadata.items())
    return stripped


def _load_state(model: nn.Module, state: dict, file: Path) -> None:
    """``load_state_dict`` with a one-line error naming what does not fit: a few missing and
    unexpected keys (with their counts) and the first size mismatches."""
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise AutokdError(f"checkpoint {file} does not fit the teacher model: {_misfit(str(exc))}") from None


def _misfit(text: str) -> str:
    """torch's load_state_dict error in one line: a few missing and unexpected keys, and the first
    size mismatches (``missing keys 'a', 'b' (2 in all); size mismatch for c (checkpoint [8], model [16])``)."""
    parts, sizes = [], []
    for line in (ln.strip() for ln in text.splitlines()[1:] if ln.strip()):
        keys = re.match(r"(Missing|Unexpected) key\(s\) in state_dict: (.*)$", line)
        size = re.match(r"size mismatch for (.+?): copying a param with shape torch\.Size\((.*?)\) from checkpoint, "
                        r"the shape in current model is torch\.Size\((.*?)\)", line)
        if keys:
            names = re.findall(r'"([^"]*)"', keys.group(2))
            shown = ", ".join(short_repr(n, 60) for n in names[:3]) + (", ..." if len(names) > 3 else "")
            parts.append(f"{keys.group(1).lower()} keys {shown} ({len(names)} in all)")
        elif size:
            sizes.append(f"{short_repr(size.group(1), 60)} (checkpoint {size.group(2)}, model {size.group(3)})")
        elif len(parts) < 4:
            parts.append(" ".join(line.split())[:120].rstrip(". "))
    if sizes:
        more = f" and {len(sizes) - 2} more" if len(sizes) > 2 else ""
        parts.append(f"size mismatch for {', '.join(sizes[:2])}{more}")
    detail = "; ".join(parts) or " ".join(text.split())
    return detail if len(detail) <= 300 else detail[:300] + "..."


def teacher_content(task: TaskSpec, data) -> dict:
    """What the cache key adds to the spec: a hash of the data as loaded, and of a
    ``package.module:callable`` teacher's source file (so changed files or code retrain it)."""
    from autokd.user_code import source_fingerprint

    model = task.teacher.model
    return {"data": getattr(data, "fingerprint", ""), "model_source": source_fingerprint(model) if ":" in model else ""}


def _stem(task: TaskSpec) -> str:
    return f"{task.teacher.model.replace('/', '_').replace(':', '_')}-{task.teacher_key()}"


def teacher_cache_path(task: TaskSpec, cache_root: Path, content: Optional[dict] = None) -> Path:
    """``<cache>/teachers/MODEL-SPECKEY-CONTENTKEY.pt``: the spec's key and the content's."""
    content_key = hashlib.sha256(json.dumps(content or {}, sort_keys=True).encode()).hexdigest()[:12]
    return cache_root / "teachers" / f"{_stem(task)}-{content_key}.pt"


def _why_retrained(task: TaskSpec, path: Path, content: dict) -> Optional[str]:
    """When a teacher of this very spec is cached for other content: what changed."""
    for other in sorted(path.parent.glob(f"{_stem(task)}-*.pt")):
        if other == path:
            continue
        try:
            old = torch.load(other, map_location="cpu", weights_only=True).get("content") or {}
        except Exception:
            continue
        changed = [what for key, what in (("data", "the data"), ("model_source", "the teacher model's source file"))
                   if old.get(key) != content.get(key)]
        if changed:
            return (f"a teacher of this task is cached for other content ({other.name}), but {' and '.join(changed)} "
                    f"changed since; training it again")
    return None


def get_teacher(
    task: TaskSpec,
    data,
    device,
    cache_root: Path,
    on_epoch: Optional[Callable[[EpochStats], None]] = None,
    retrain: bool = False,
    progress: Optional[Progress] = None,
) -> tuple[nn.Module, TeacherInfo]:
    """The task's teacher on ``device`` in eval mode, with its validation and test accuracy.

    ``data`` must be the teacher's data (all of the training split). A checkpoint named in the
    task wins; otherwise a cached teacher with the same key is reused, else one is trained.
    ``progress`` hears why a cached teacher is trained again, or that the cache could not be
    written (default: :func:`warnings.warn`). A teacher whose training diverges is an AutokdError.
    """
    say = progress or _warn
    if task.teacher.checkpoint:
        model = build_teacher_model(task, data)
        check_logits(model, task.teacher.model, "teacher", data.input_shape, data.num_classes)
        load_checkpoint(model, task.teacher.checkpoint)
        source, path = "checkpoint", str(Path(task.teacher.checkpoint).expanduser())
    else:
        model, source, path = _cached_or_trained(task, data, device, Path(cache_root), on_epoch, retrain, say)
    model.to(device).eval().requires_grad_(False)
    info = TeacherInfo(source, path, accuracy(model, data, "val", device), accuracy(model, data, "test", device),
                       teacher_fingerprint(model))
    return model, info


def _cached_or_trained(task, data, device, cache_root: Path, on_epoch, retrain: bool, say: Progress):
    """(model, source, path): from this process's memory, the cache file, or trained now."""
    content = teacher_content(task, data)
    path = teacher_cache_path(task, cache_root, content)
    if not retrain:
        kept = _KEPT_IN_MEMORY.get(str(path))
        if kept is not None:
            model = build_teacher_model(task, data)
            model.load_state_dict(kept)
            return model, "memory", ""
        model = _read_cached(task, data, path, say)
        if model is not None:
            return model, "cache", str(path)
        why = _why_retrained(task, path, content) if path.parent.is_dir() else None
        if why:
            say(why)
    model = train_teacher(task, data, device, on_epoch)
    return model, "trained", str(path) if _save_teacher(model, task, path, say, content) else ""


def _read_cached(task: TaskSpec, data, path: Path, say: Progress) -> Optional[nn.Module]:
    """The cached teacher at ``path``; None when there is none or it cannot be read (said why)."""
    if not path.is_file():
        return None
    model = build_teacher_model(task, data)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        _load_state(model, state["state_dict"], path)
    except Exception as exc:  # truncated zip, not a mapping, no state_dict, wrong shapes, ...
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        say(f"the cached teacher {path} cannot be read ({type(exc).__name__}: {reason}); training it again")
        return None
    return model


def train_teacher(task: TaskSpec, data, device, on_epoch=None) -> nn.Module:
    """Train the task's teacher from its recipe; divergence is an AutokdError naming the knob."""
    recipe = task.teacher.recipe
    torch.manual_seed(recipe.seed)
    model = build_teacher_model(task, data)
    check_logits(model, task.teacher.model, "teacher", data.input_shape, data.num_classes)  # the RNG is untouched
    model.to(device)
    distiller = Distiller(None, model, CE_ONLY, data.input_shape)
    try:
        # without a progress display only the last epoch is validated (4,000 samples an epoch add up)
        fit(distiller, data, recipe, device, on_epoch=on_epoch, validate_at=None if on_epoch else ())
        model.zero_grad(set_to_none=True)  # a frozen teacher carries no gradient of its last step
    except TrainingFailed as exc:
        raise AutokdError(
            f"the teacher {short_repr(task.teacher.model, 80)} diverged while training: {exc}; lower task.teacher.recipe.lr "
            f"(now {recipe.lr:g}) or change its optimizer or schedule"
        ) from None
    return model


def _save_teacher(model: nn.Module, task: TaskSpec, path: Path, say: Progress, content: Optional[dict] = None) -> bool:
    """Cache the trained teacher atomically; when that fails keep it in memory for this process
    and say so (once: the next request in this process finds it in memory)."""
    payload = {"state_dict": model.state_dict(), "task": task.name, "content": dict(content or {})}

    def write(tmp: Path) -> None:
        try:
            torch.save(payload, tmp)
        except RuntimeError as exc:  # torch's zip writer reports a full disk as a RuntimeError
            raise OSError(" ".join(str(exc).split())[:200]) from None

    try:
        write_atomic(path, write, "the trained teacher", create_folder=True)
        return True
    except AutokdError as exc:
        _KEPT_IN_MEMORY[str(path)] = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        say(f"warning: {exc}; the teacher is kept in memory for this run only")
        return False


def _warn(message: str) -> None:
    warnings.warn(message, RuntimeWarning, stacklevel=3)

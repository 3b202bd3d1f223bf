"""Writing what autokd produces (configs, results, reports, caches) so that any failure is one
clear :class:`AutokdError` line: a missing or read-only folder, a full disk, a path that is a folder.

Files are written to a temporary name beside the target and renamed, so a killed process never
leaves half a file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Union

from autokd.errors import AutokdError

PathLike = Union[str, Path]


def os_error_text(exc: OSError) -> str:
    """``exc`` as a short phrase: ``Permission denied``, ``No space left on device``."""
    return exc.strerror or str(exc) or type(exc).__name__


def make_folder(path: PathLike, what: str) -> Path:
    """Create the folder ``path`` (and its parents) for ``what``; an OSError becomes one error line."""
    folder = Path(path).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise AutokdError(f"cannot write {what} into {folder}: it is a file, not a folder") from None
    except OSError as exc:
        raise AutokdError(f"cannot create the folder {folder} for {what}: {os_error_text(exc)}") from None
    if not os.access(folder, os.W_OK):
        raise AutokdError(f"cannot write {what} into {folder}: the folder is not writable")
    return folder


def write_atomic(path: PathLike, write: Callable[[Path], None], what: str, create_folder: bool = False) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it to ``path``.

    The folder must exist unless ``create_folder``; every OSError (read-only folder, full disk,
    ``path`` a folder) becomes an AutokdError naming ``what`` and the path.
    """
    target = Path(path).expanduser()
    if target.is_dir():
        raise AutokdError(f"cannot write {what} to {target}: it is a folder")
    if target.exists() and not target.is_file():  # a device, FIFO or socket is never replaced
        raise AutokdError(f"cannot write {what} to {target}: it is not a regular file")
    if create_folder:
        make_folder(target.parent, what)
    elif not target.parent.is_dir():
        raise AutokdError(f"cannot write {what} to {target}: the folder {target.parent} does not exist")
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a written file gets the usual mode
        write(Path(tmp))
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        raise AutokdError(f"cannot write {what} to {target}: {os_error_text(exc)}") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
    return target


def _umask() -> int:
    """The process's umask, read without changing it where Linux tells (os.umask sets it to read it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text(path: PathLike, text: str, what: str, create_folder: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; see :func:`write_atomic`."""
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), what, create_folder)


def first_line(path: PathLike, most: int = 400) -> str:
    """The start of a file's first line (at most ``most`` bytes, undecodable bytes replaced): where
    autokd's configs and copies say who wrote them."""
    with open(path, "rb") as handle:
        return handle.readline(most).decode("utf-8", errors="replace")


def check_replaceable(path: PathLike, option: str, what: str, written_by_autokd: Callable[[Path], bool]) -> None:
    """Refuse ``option PATH`` when it names a file autokd did not write (``written_by_autokd`` says):
    a task file, a teacher checkpoint or data named by mistake would be replaced, not kept. A missing
    or empty file, or one autokd wrote (an earlier run's output), may be replaced."""
    target = Path(path).expanduser()
    try:
        if not target.is_file() or target.stat().st_size == 0 or written_by_autokd(target):
            return
    except OSError:
        return  # unreadable: the write itself will say why
    raise AutokdError(f"{option} {path} exists and is not {what} autokd wrote; it would be replaced: name a new "
                      f"file (or remove that one yourself)")

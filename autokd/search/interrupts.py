"""Ctrl-C and SIGTERM as one clean path, and the few steps an interruption must not split.

Inside :func:`interrupts_as_keyboard` both signals raise ``KeyboardInterrupt`` (the search then
records its running trials as interrupted, re-queues them and shuts Ray down); SIGINT keeps
being ignored where the parent process ignored it. Inside :func:`uninterruptible` (starting a
trial and tagging it with its owner) a signal is held and raised when the block ends, so no
trial is ever left RUNNING without an owner to recover it.

In an ``autokd`` command an interruption always ends the process (:func:`end_stuck_processes`):
if it is still running ``force_after`` seconds after the first signal (its clean-up hung, or a
library swallowed the ``KeyboardInterrupt``), a watchdog ends the processes it started and then
itself, exit code 130, saying where it was stuck. The trials it left running are recovered by
the study's next search or resume (their owner is gone). A program that uses autokd as a
library is never ended so.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from typing import Iterator, Optional

FORCE_AFTER = 15.0  # seconds an interrupted command may take to stop cleanly

_held: list[int] = []  # signals received inside an uninterruptible block, raised at its end
_depth = 0
_last: list[int] = []  # the last signal turned into KeyboardInterrupt
_ending: dict = {"after": None}  # force_after of blocks that name none (end_stuck_processes sets it)
# the outermost block's force_after (None: not watched) and note, and its watchdog once armed
_watch: dict = {"outermost": False, "after": None, "note": "", "timer": None}


def end_stuck_processes(after: Optional[float] = FORCE_AFTER) -> None:
    """From now on, end this process ``after`` seconds after an interruption that has not stopped it
    (None: never). The command line calls this; a library caller's process is left alone."""
    _ending["after"] = after


def _raise_interrupt(signum, frame) -> None:
    _arm_watchdog()
    if _depth:
        _held.append(signum)
        return
    _last[:] = [signum]
    raise KeyboardInterrupt


def _arm_watchdog() -> None:
    if _watch["outermost"] and _watch["after"] is not None and _watch["timer"] is None:
        _watch["timer"] = threading.Timer(_watch["after"], _force_exit, args=(_watch["after"], _watch["note"]))
        _watch["timer"].daemon = True
        _watch["timer"].start()


def _force_exit(after: float, note: str) -> None:
    """The watchdog: the interrupted process did not stop in time."""
    import faulthandler
    import tempfile

    where = os.path.join(tempfile.gettempdir(), f"autokd-stuck-{os.getpid()}.txt")
    try:
        with open(where, "w") as out:
            faulthandler.dump_traceback(out, all_threads=True)
    except OSError:
        where = "not saved"
    ended = end_descendants()
    sys.stderr.write(f"error: still stopping {after:.0f} s after the interruption: ended {ended} child "
                     f"process(es) and this one (where it was stuck: {where}){'; ' + note if note else ''}\n")
    sys.stderr.flush()
    os._exit(130)


def end_descendants(pid: Optional[int] = None) -> int:
    """SIGKILL every process descended from ``pid`` (this one by default), deepest first; returns
    how many. Read from /proc: elsewhere nothing is ended (Ray's own processes share the fate of
    the process that started them)."""
    root = os.getpid() if pid is None else pid
    children: dict[int, list[int]] = {}
    try:
        entries = [entry for entry in os.listdir("/proc") if entry.isdigit()]
    except OSError:
        return 0
    for entry in entries:
        try:
            with open(f"/proc/{entry}/stat") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    for child in reversed(found):
        with contextlib.suppress(OSError):
            os.kill(child, signal.SIGKILL)
    return len(found)


def _redeliver(previous_hook):
    """An unraisable-exception hook: a KeyboardInterrupt raised while Python ran a finalizer (a
    garbage-collected database connection) is swallowed there, with a traceback; deliver the
    signal again instead (from a thread, a moment later: raised here it would be swallowed too), so
    that the code running next is interrupted, silently."""
    import os
    import threading
    import time

    def send(signum: int) -> None:
        time.sleep(0.01)
        os.kill(os.getpid(), signum)

    def hook(unraisable) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt) and _last:
            threading.Thread(target=send, args=(_last[0],), daemon=True).start()
            return
        previous_hook(unraisable)

    return hook


@contextlib.contextmanager
def interrupts_as_keyboard(force_after: Optional[float] = None, note: str = "") -> Iterator[None]:
    """SIGTERM (and SIGINT, unless ignored) raise ``KeyboardInterrupt``, deferred by :func:`uninterruptible`;
    the process is ended ``force_after`` seconds (default: as :func:`end_stuck_processes` set, else
    never) after the first one if it has not left the outermost block by then (see the module's
    docstring), its last line ending with ``note``.

    Ray installs its own SIGTERM handler when it starts: enter this again after ``ray.init``."""
    outermost = not _watch["outermost"]
    if outermost:
        after = force_after if force_after is not None else _ending["after"]
        _watch.update(outermost=True, after=after, note=note)
    previous: dict[int, object] = {}
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            if sig == signal.SIGINT and signal.getsignal(sig) is signal.SIG_IGN:
                continue  # a background job: Ctrl-C at the terminal is not meant for it
            previous[sig] = signal.signal(sig, _raise_interrupt)
    except ValueError:  # not the main thread: leave signals alone
        pass
    previous_hook = sys.unraisablehook
    if previous:
        sys.unraisablehook = _redeliver(previous_hook)
    try:
        yield
    finally:
        sys.unraisablehook = previous_hook
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        if outermost:  # stopped in time
            if _watch["timer"] is not None:
                _watch["timer"].cancel()
            _watch.update(outermost=False, after=None, note="", timer=None)


@contextlib.contextmanager
def uninterruptible() -> Iterator[None]:
    """Hold interruptions until the block ends (only under :func:`interrupts_as_keyboard`)."""
    global _depth
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if not _depth and _held:
            _held.clear()
            raise KeyboardInterrupt


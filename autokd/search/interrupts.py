"""Ctrl-C and SIGTERM as one clean path, and the few steps an interruption must not split.

Inside :func:`interrupts_as_keyboard` both signals raise ``KeyboardInterrupt`` (the search then
records its running trials as interrupted, re-queues them and shuts Ray down); SIGINT keeps
being ignored where the parent process ignored it. Inside :func:`uninterruptible` (starting a
trial and tagging it with its owner) a signal is held and raised when the block ends, so no
trial is ever left RUNNING without an owner to recover it.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from typing import Iterator

_held: list[int] = []  # signals received inside an uninterruptible block, raised at its end
_depth = 0
_last: list[int] = []  # the last signal turned into KeyboardInterrupt


def _raise_interrupt(signum, frame) -> None:
    if _depth:
        _held.append(signum)
        return
    _last[:] = [signum]
    raise KeyboardInterrupt


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
def interrupts_as_keyboard() -> Iterator[None]:
    """SIGTERM (and SIGINT, unless ignored) raise ``KeyboardInterrupt``, deferred by :func:`uninterruptible`.

    Ray installs its own SIGTERM handler when it starts: enter this again after ``ray.init``."""
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


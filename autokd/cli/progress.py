"""Progress lines on stderr: one line rewritten in place on a terminal (cut to its width), plain
lines otherwise."""

from __future__ import annotations

import shutil
import sys
import threading
import time


class Progress:
    """``status(text)`` rewrites the current line (terminal) or prints at most every ``every`` s;
    ``say(text)`` prints a line that stays."""

    def __init__(self, stream=None, every: float = 5.0):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.every = every
        self._last = 0.0
        self._open = False
        self._lock = threading.Lock()  # the search's heartbeat writes from its own thread

    def status(self, text: str, force: bool = False) -> None:
        with self._lock:
            self._status(text, force)

    def _status(self, text: str, force: bool) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + _fit(text))
            self.stream.flush()
            self._open = True
        elif force or time.monotonic() - self._last >= self.every:
            self._last = time.monotonic()
            print(text, file=self.stream, flush=True)

    def say(self, text: str) -> None:
        with self._lock:
            if self._open:
                self.stream.write("\r\033[K")
                self._open = False
            print(text, file=self.stream, flush=True)



def _fit(text: str) -> str:
    """``text`` cut to the terminal's width, so a rewritten line never wraps (a wrapped line would
    be left behind on the screen at every update)."""
    width = shutil.get_terminal_size(fallback=(80, 24)).columns
    return text if len(text) < width else text[: max(width - 2, 1)] + "…"

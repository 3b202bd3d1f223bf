"""The live progress line: rewritten in place on a terminal, never wider than it."""

from __future__ import annotations

import io
import os

from autokd.cli.progress import Progress


def test_a_status_line_is_cut_to_the_terminal_width(monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    master, slave = os.openpty()
    with os.fdopen(slave, "w") as tty:
        progress = Progress(stream=tty)
        progress.status("trials 3/100  running 2  " + "x" * 200)
        tty.flush()
        written = os.read(master, 4096).decode()
    os.close(master)
    line = written.split("\x1b[K", 1)[1]
    assert len(line) < 40 and line.startswith("trials 3/100") and line.endswith("…")


def test_plain_lines_when_not_a_terminal():
    stream = io.StringIO()
    progress = Progress(stream=stream, every=0)
    progress.status("a" * 300, force=True)
    progress.say("done")
    assert stream.getvalue() == "a" * 300 + "\ndone\n"  # a log keeps the whole line

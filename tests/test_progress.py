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


def test_the_search_line_keeps_coming_while_a_long_trial_reports_nothing():
    """A 1-epoch trial on big data showed no line for 11 minutes (lines came from epochs and trials)."""
    import time

    import optuna

    from autokd.search.monitor import SearchMonitor

    lines = []
    monitor = SearchMonitor(optuna.create_study(direction="maximize"), 10, lambda text, force: lines.append((text, force)))
    with monitor.ticking(every=0.05):
        time.sleep(1.3)
    shown = len(lines)
    assert shown >= 5 and all(text.startswith("trials 0/10") and not force for text, force in lines)
    assert "elapsed 0s" in lines[0][0] and "elapsed 1s" in lines[-1][0]
    time.sleep(0.3)
    assert len(lines) == shown  # the heartbeat ends with the block

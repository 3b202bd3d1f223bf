"""An interruption always ends the process: the watchdog of autokd.search.interrupts.

Each case is a real Python subprocess sent a real SIGINT (CI once saw an interrupted search that
never stopped; the cause was not found, so whatever hangs, the process must end).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

HEAD = """
import subprocess, sys, time
from autokd.search.interrupts import interrupts_as_keyboard
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
"""
READY = "print(child.pid, flush=True)  # inside the block: the signal may come"

CASES = {
    "a clean-up that hangs": """
with interrupts_as_keyboard(force_after=1.0):
    READY
    try:
        time.sleep(120)
    except KeyboardInterrupt:
        time.sleep(120)
""",
    "an interruption swallowed": """
from autokd.search.interrupts import end_stuck_processes
end_stuck_processes(1.0)  # as the command line does
with interrupts_as_keyboard():
    READY
    for _ in range(120):
        try:
            time.sleep(1)
        except KeyboardInterrupt:
            pass
""",
}


def _start(body: str) -> tuple[subprocess.Popen, int]:
    code = textwrap.dedent(HEAD + body).replace("READY", READY)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    child = int(proc.stdout.readline())
    time.sleep(0.1)  # into the sleep after the line
    return proc, child


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_interrupted_process_that_does_not_stop_is_ended_with_its_children(case):
    proc, child = _start(CASES[case])
    try:
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        _out, err = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        if _alive(child):
            os.kill(child, signal.SIGKILL)
    assert proc.returncode == 130 and took < 10, (proc.returncode, took, err)
    assert err.startswith("error: still stopping 1 s after the interruption: ended 1 child process(es)"), err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not _alive(child)
    stuck = err.split("where it was stuck: ", 1)[1].split(")", 1)[0]
    try:
        assert 'File "<string>"' in open(stuck).read()  # the stacks, for a bug report
    finally:
        os.remove(stuck)


def test_a_library_callers_process_is_never_ended():
    """Only the command line asks for the watchdog: a notebook using autokd is not killed."""
    from autokd.search import interrupts

    with interrupts.interrupts_as_keyboard():
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
        assert interrupts._watch["timer"] is None


def test_a_process_that_stops_in_time_is_not_ended():
    body = """
try:
    with interrupts_as_keyboard(force_after=1.0):
        READY
        time.sleep(120)
except KeyboardInterrupt:
    pass
time.sleep(2.5)  # well past force_after: the watchdog was called off when the block ended
child.kill()
print("finished", flush=True)
"""
    proc, child = _start(body)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "finished" in out and err == "", err

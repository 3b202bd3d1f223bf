"""Which process owns a running trial, and whether that process is still alive.

A trial is tagged with its owner when it starts: host, boot id, process id and the process's
start time. The start time makes the tag survive PID reuse: a trial whose process died is not
mistaken for a live one when a new process later gets the same PID (and a reboot is detected by
the boot id). Where ``/proc`` is missing (not Linux), the tag holds the PID alone and liveness is
judged by the PID.
"""

from __future__ import annotations

import functools
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

SEPARATOR = "|"


@dataclass(frozen=True)
class Owner:
    host: str
    boot: str  # /proc/sys/kernel/random/boot_id, "" where unknown
    pid: int
    start: str  # start time of the process in clock ticks since boot, "" where unknown

    def tag(self) -> str:
        return SEPARATOR.join((self.host, self.boot, str(self.pid), self.start))

    @classmethod
    def parse(cls, tag: Optional[str]) -> Optional["Owner"]:
        """An owner from its tag; also reads the older ``host:pid`` tags; None for anything else (a
        tag damaged or written by another tool: no owner, so the trial counts as left behind)."""
        if not tag or not isinstance(tag, str):
            return None
        parts = tag.split(SEPARATOR)
        if len(parts) == 4 and _pid(parts[2]) is not None:
            return cls(parts[0], parts[1], _pid(parts[2]), parts[3])
        host, _, pid = tag.rpartition(":")
        return cls(host, "", _pid(pid), "") if _pid(pid) is not None else None


def _pid(text: str) -> Optional[int]:
    """A process id written in ASCII digits (``str.isdigit`` also takes '²', which ``int`` refuses)."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 20 else None


def process_start_time(pid: int) -> str:
    """Field 22 of ``/proc/PID/stat`` (start time in clock ticks since boot), "" if unreadable."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = text.rpartition(")")[2].split()  # the command name in parentheses may hold spaces
    return fields[19] if len(fields) > 19 else ""


@functools.lru_cache(maxsize=1)
def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def current_owner() -> Owner:
    pid = os.getpid()  # not cached: a forked child is another owner
    return Owner(socket.gethostname(), boot_id(), pid, process_start_time(pid))


def is_alive(tag: Optional[str]) -> bool:
    """Whether the process named by ``tag`` may still be running its trial.

    No tag: nobody runs it. Another host: it cannot be checked from here, so it counts as alive.
    """
    owner = Owner.parse(tag)
    if owner is None:
        return False
    if owner.host != socket.gethostname():
        return True
    if owner.boot and boot_id() and owner.boot != boot_id():
        return False  # the machine rebooted since
    if owner.pid == os.getpid():
        me = current_owner()
        return bool(owner.start) and owner.start == me.start  # else an earlier process had our PID
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # a process of another user has this PID: compare start times below
    except (OverflowError, ValueError):
        return False
    if not owner.start:
        return True  # an old tag or no /proc: the PID is all there is to go by
    return process_start_time(owner.pid) == owner.start

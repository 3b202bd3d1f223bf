"""What every benchmark script records about its run, how it writes its report, and how it ends
the processes it started.

Imported by the scripts in this folder (each puts this folder on ``sys.path`` first, so they run
as plain ``python benchmarks/NAME.py`` from the repository root). Reports are documents of
:mod:`autokd.document` (the model ``autokd compare``'s report uses), written as Markdown.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import signal
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Callable, Optional, Sequence

from autokd.document import Block, Code, Document, Paragraph, to_markdown

PACKAGES = ("torch", "ray", "optuna", "stable_baselines3", "autokd")


def load_average() -> Optional[list[float]]:
    """The 1, 5 and 15 minute load averages (above the CPU count: other work competed for the CPUs)."""
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None


def _version(package: str) -> Optional[str]:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_info(packages: Sequence[str] = PACKAGES) -> dict:
    """CPUs, platform, Python and the versions of ``packages``, for a report's header."""
    return {
        "cpu_count": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "processor": platform.processor() or platform.machine(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        **{package: _version(package) for package in packages},
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "AUTOKD_CACHE": os.environ.get("AUTOKD_CACHE"),
    }


PACKAGE_NAMES = {"torch": "torch", "ray": "Ray", "optuna": "Optuna", "stable_baselines3": "stable-baselines3"}


def machine_text(machine: dict, packages: Sequence[str] = ("torch",)) -> str:
    """A report's machine line from :func:`machine_info`'s dict: CPUs, processor, platform,
    Python and the versions of ``packages``."""
    usable = f" ({machine['affinity_cpus']} usable)" if machine.get("affinity_cpus") is not None else ""
    versions = "".join(f", {PACKAGE_NAMES.get(p, p)} {machine.get(p)}" for p in packages)
    return (f"{machine['cpu_count']} CPUs{usable}, {machine['processor']}, {machine['platform']}, "
            f"Python {machine['python']}{versions}")


def command_paragraph(command: str) -> Paragraph:
    return Paragraph(["Command: ", Code(command), " (from the repository root)"])


def run_paragraph(report: dict, load_note: str = "") -> Paragraph:
    """Date, machine, workers x threads, load averages and wall time of a calibration-style run."""
    return Paragraph(
        f"Date {report['date']}. Machine: {machine_text(report['machine'])}; {report['workers']} worker process(es) x "
        f"{report['threads']} torch thread(s). Load average at start {report['load_average_at_start']}, at "
        f"end {report['load_average_at_end']}{load_note}. Wall time {report['wall_s']:.0f} s.")


def dated_paragraph(report: dict, machine_note: str = "") -> Paragraph:
    """Date, machine (and ``machine_note``), load averages at start and end of a one-process benchmark."""
    return Paragraph(f"Date {report['date']}. Machine: {machine_text(report['machine'])}{machine_note}. Load average "
                     f"{report['load_average_at_start']} at start, {report['load_average_at_end']} at end.")


def markdown(blocks: Sequence[Block]) -> str:
    """Blocks as Markdown (for the console, and for the report files)."""
    return to_markdown(Document("", list(blocks)))


def write_markdown(path: Path, blocks: Sequence[Block]) -> None:
    from autokd.outputs import write_text

    write_text(path, markdown(blocks), "the benchmark report")


def new_report(benchmark: str, **fields) -> dict:
    """A benchmark's report as it starts: its name, the UTC date, the exact command, the machine
    and the load average now, then ``fields``; :func:`write_report` ends it."""
    return {"benchmark": benchmark, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": command_line(), "machine": machine_info(), "load_average_at_start": load_average(), **fields}


def write_report(out_dir: Path, stem: str, report: dict, blocks: Callable[[dict], Sequence[Block]]) -> Path:
    """A benchmark's end: ``report`` stamped with the load average now, written as OUT/STEM.json,
    and ``blocks(report)`` as OUT/STEM.md; returns the Markdown file's path."""
    report["load_average_at_end"] = load_average()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{stem}.json").write_text(json.dumps(report, indent=1, default=str))
    write_markdown(out_dir / f"{stem}.md", blocks(report))
    return out_dir / f"{stem}.md"


def fmt(value, spec: str = ".2f") -> str:
    """``value`` formatted, or ``-`` when missing (None or NaN)."""
    return "-" if value is None or (isinstance(value, float) and value != value) else format(value, spec)


def command_line() -> str:
    """The command that is running, with the interpreter relative to the working folder when it can be."""
    exe = Path(sys.executable)
    try:
        exe = exe.relative_to(Path.cwd())
    except ValueError:
        pass
    return shlex.join([str(exe), *sys.argv])


def session_processes(sid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the processes in session ``sid``: a CLI run started with
    ``start_new_session=True`` leads its own session, and the Ray processes it starts stay in it."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
            if int(fields[3]) != sid:
                continue
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, IndexError, ValueError):
            continue
        out.append((int(entry.name), cmd))
    return sorted(out)


def end_session(sid: int, grace: float = 10.0) -> list[tuple[int, str]]:
    """SIGTERM, then SIGKILL, what is left in one run's session (only that run's processes).

    Returns what was found there before the first signal."""
    found = session_processes(sid)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid, _ in session_processes(sid):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while session_processes(sid) and time.monotonic() < deadline:
            time.sleep(0.2)
    return found


def rho(x: Sequence[float], y: Sequence[float]) -> Optional[float]:
    """Spearman's rho of two rankings (autokd's own statistic), None with < 3 points or a constant input."""
    from autokd.compare.stats import spearman

    return spearman(x, y).rho

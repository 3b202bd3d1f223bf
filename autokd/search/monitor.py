"""Live progress of a search: trials done / budget, running, pruned, failed, best, elapsed, ETA."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Callable, Iterator, Optional

from autokd.formatting import format_seconds
from autokd.search.ledger import counts


class SearchMonitor:
    def __init__(self, study, budget: int, write: Callable[[str, bool], None]):
        self.study = study
        self.budget = budget
        self.write = write  # write(text, force)
        self.start = time.monotonic()
        self.state = counts(study)
        self.start_finished = self.state.finished
        self.running = 0
        from autokd.search.leaderboard import judging

        self.rules = judging(study)
        self.best = _best_feasible(study, self.rules)
        self._news = False  # a trial finished since the last line was forced out

    def trial_started(self) -> None:
        self.running += 1
        # a finished trial's line goes out when its successor has started, so "running" counts
        # the busy workers rather than dipping by one at every finish
        self.show(force=self._news)

    def epoch(self) -> None:
        self.show()

    def trial_finished(self, state: str, value: Optional[float]) -> None:
        self.running = max(0, self.running - 1)
        self.state.add(state)
        if value is not None:  # read back: only a trial within the study's constraints is the best
            self.best = _best_feasible(self.study, self.rules)
        self._news = True
        self.show()

    def line(self) -> str:
        s = self.state
        elapsed = time.monotonic() - self.start
        done_here = s.finished - self.start_finished
        left = max(self.budget - s.finished, 0)
        eta = f"{format_seconds(elapsed / done_here * left)}" if done_here else "?"
        best = f"{self.best:.2f}%" if self.best is not None else "-"
        return (
            f"trials {s.finished}/{self.budget}  running {self.running}  pruned {s.pruned}  "
            f"failed {s.failed}  best val {best}  elapsed {format_seconds(elapsed)}  eta {eta}"
        )

    def show(self, force: bool = False) -> None:
        if force:
            self._news = False
        self.write(self.line(), force)

    @contextlib.contextmanager
    def ticking(self, every: float = 1.0) -> Iterator[None]:
        """Offer the line every ``every`` seconds while the block runs (the writer decides how often it
        shows): a heartbeat while a long trial runs, which reports nothing until its first epoch ends."""
        stop = threading.Event()

        def tick() -> None:
            while not stop.wait(every):
                try:
                    self.write(self.line(), False)
                except OSError:  # stderr closed: the search goes on without its line
                    return

        ticker = threading.Thread(target=tick, name="autokd-search-heartbeat", daemon=True)
        ticker.start()
        try:
            yield
        finally:
            stop.set()
            ticker.join()


def _best_feasible(study, rules) -> Optional[float]:
    """The best validation accuracy of a complete trial that meets the constraints (as show and studies say)."""
    from autokd.search.leaderboard import complete_entries

    return max((e.value for e in complete_entries(study) if rules.feasible(e.footprint)), default=None)


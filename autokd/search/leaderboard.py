"""Reading a finished (or running) study: ranked strategies, failures, parameter importances."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from autokd.search.ledger import FAIL_REASON_ATTR, STEPS_ATTR, STRATEGY_ATTR, is_void


@dataclass
class Entry:
    rank: int
    number: int
    value: float
    strategy: dict
    seconds: Optional[float]
    steps: Optional[int] = None  # training steps, every model and stage of its scheme (None: not recorded)


def ranked(study) -> list[Entry]:
    """Complete trials, best validation accuracy first (ties: the earlier trial)."""
    from optuna.trial import TrialState

    trials = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if STRATEGY_ATTR in t.user_attrs]
    trials.sort(key=lambda t: (-t.value, t.number))
    return [
        Entry(i + 1, t.number, t.value, t.user_attrs[STRATEGY_ATTR],
              (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_start and t.datetime_complete else None,
              t.user_attrs.get(STEPS_ATTR))
        for i, t in enumerate(trials)
    ]


def failures(study) -> list[tuple[int, str]]:
    """Failed trials (not the void ones: interrupted, duplicates) with their reasons."""
    from optuna.trial import TrialState

    return [
        (t.number, t.user_attrs.get(FAIL_REASON_ATTR, "unknown"))
        for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        if not is_void(t)
    ]


def importances(study) -> dict[str, float]:
    """Optuna's parameter importances (its default evaluator); empty when too few trials are complete."""
    import warnings

    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "few trials in some regimes": expected early in a search
        try:
            return optuna.importance.get_param_importances(study)
        except (RuntimeError, ValueError):
            return {}


def describe_strategy(data: dict) -> str:
    from autokd.config.strategy import strategy_from_dict

    return strategy_from_dict(data).describe()


def format_leaderboard(entries: list[Entry], top: int = 10) -> str:
    if not entries:
        return "no complete trials yet"
    lines = [f"{'rank':>4}  {'trial':>5}  {'val acc':>7}  {'steps':>7}  {'time':>6}  strategy"]
    for e in entries[:top]:
        steps = f"{e.steps:>7,}" if e.steps is not None else f"{'-':>7}"
        seconds = f"{e.seconds:>5.0f}s" if e.seconds is not None else f"{'-':>6}"
        lines.append(f"{e.rank:>4}  {e.number:>5}  {e.value:>6.2f}%  {steps}  {seconds}  {describe_strategy(e.strategy)}")
    return "\n".join(lines)

"""Confirming the leaders against seed noise (``--confirm K``).

The best of many noisy proxy values is biased upward (the winner's curse). Once a search has its
budget, its top ``K`` trials by proxy value are trained again at the proxy, with
:data:`CONFIRM_SEEDS` more seeds each (the proxy recipe's seed + 1, + 2); the mean over the
trial's own value and these, with its standard error, is what the leaderboard, ``export`` and
``compare --top-k`` rank by (confirmed trials first). The runs are kept in the study, one system
attribute per trial (``autokd:confirmed:<number>``: two processes confirming one study at once
never overwrite each other's), so a resume does not repeat them; the proxy's seed noise (the
pooled within-strategy standard deviation) is computed from them when read.

Cost: ``K x CONFIRM_SEEDS`` proxy runs, trained one after another in the search's process on one
thread each (on the default task about 5 s each: 30 s for ``--confirm 3``).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import replace
from typing import Callable, Optional

CONFIRMED_ATTR = "autokd:confirmed"  # studies of earlier versions: every trial in one attribute
CONFIRMED_PREFIX = CONFIRMED_ATTR + ":"  # one attribute per confirmed trial
CONFIRM_SEEDS = 2
DIVERGED_VALUE = 0.0  # a confirmation seed that diverges ships no usable student: it counts as 0 % accuracy
MAX_CONFIRM = 50


def confirmed(study) -> dict:
    """``{"trials": {number: {"values", "mean", "se"}}, "noise": sd or None}`` from the study."""
    attrs = study._storage.get_study_system_attrs(study._study_id)
    legacy = (attrs.get(CONFIRMED_ATTR) or {}).get("trials") or {}
    trials = {int(k): v for k, v in legacy.items()}
    trials.update({int(key[len(CONFIRMED_PREFIX):]): value for key, value in attrs.items()
                   if key.startswith(CONFIRMED_PREFIX)})
    return {"trials": trials, "noise": pooled_sd(list(trials.values()))}


def confirmation(values: list[float], diverged: int = 0) -> dict:
    """One trial's confirmation as stored in the study: its values (the trial's own first; a seed that
    diverged as :data:`DIVERGED_VALUE`), their mean and se, and how many seeds diverged."""
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return {"values": list(values), "mean": mean, "se": se, **({"diverged": diverged} if diverged else {})}


def pooled_sd(entries: list[dict]) -> Optional[float]:
    """The within-strategy standard deviation pooled over the confirmed trials (the proxy's seed noise)."""
    entries = [e for e in entries if len(e["values"]) > 1 and not e.get("diverged")]  # a failure is not seed noise
    squares = sum(statistics.variance(e["values"]) * (len(e["values"]) - 1) for e in entries)
    dof = sum(len(e["values"]) - 1 for e in entries)
    return math.sqrt(squares / dof) if dof else None


def confirm_top(study, space, prepared, teacher_cache, k: int, say: Callable[[str], None]) -> int:
    """Confirm the top ``k`` feasible trials by proxy value that are not confirmed yet; returns how
    many were run. A run that fails (diverges) ends that trial's confirmation with the runs so far."""
    import torch

    from autokd.config.strategy import strategy_from_dict
    from autokd.search.leaderboard import complete_entries, judging
    from autokd.training.fit import TrainingFailed
    from autokd.training.run import train_strategy

    if k <= 0:
        return 0
    rules = judging(study)
    pool = sorted((e for e in complete_entries(study) if rules.feasible(e.footprint)), key=lambda e: (-e.value, e.number))
    done = confirmed(study)["trials"]
    todo = [e for e in pool[:k] if e.number not in done]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for i, entry in enumerate(todo, 1):
            strategy = strategy_from_dict(entry.strategy)
            values, diverged = [entry.value], 0
            for extra in range(1, CONFIRM_SEEDS + 1):
                recipe = replace(strategy.recipe, seed=strategy.recipe.seed + extra)
                try:
                    result = train_strategy(prepared, replace(strategy, recipe=recipe), teacher_cache=teacher_cache,
                                            evaluate_test=False, validate_at=(), measure=False)
                except TrainingFailed:  # the strategy ships no usable student with this seed
                    values.append(DIVERGED_VALUE)
                    diverged += 1
                    continue
                values.append(result.val_acc)
            summary = confirmation(values, diverged)
            store_confirmation(study, entry.number, summary)
            say(f"confirmed {i}/{len(todo)}: trial {entry.number} val {entry.value:.2f}% -> mean {summary['mean']:.2f} "
                f"± {summary['se']:.2f}% over {len(values)} seeds"
                + (f" ({diverged} diverged, counted as {DIVERGED_VALUE:g}%)" if diverged else ""))
    finally:
        torch.set_num_threads(threads)
    return len(todo)


def store_confirmation(study, number: int, summary: dict) -> None:
    """Keep one trial's confirmation (its own attribute: nothing else in the study is read or rewritten)."""
    study._storage.set_study_system_attr(study._study_id, f"{CONFIRMED_PREFIX}{number}", summary)

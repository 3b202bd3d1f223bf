"""Exporting a ranked strategy as a train config that ``autokd train --config`` accepts unchanged."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional

from autokd.config.strategy import strategy_from_dict, strategy_to_dict
from autokd.config.yaml_io import dump_yaml, load_yaml_value
from autokd.errors import AutokdError
from autokd.search.leaderboard import ranked
from autokd.search.space_file import space_file_from_text
from autokd.search.study import read_settings


def full_length_strategy(space_file, stored: dict, epochs=None):
    """A trial's strategy (as stored with it) with the task's full-length recipe.

    A learning rate the space sets (searched or fixed) travels with the strategy; ``epochs`` overrides the
    length.
    """
    full = space_file.task.recipes.full
    strategy = strategy_from_dict(stored)
    if space_file.space.lr is not None:  # a fixed lr was dropped: export, compare and calibrate trained at another
        full = replace(full, lr=strategy.recipe.lr)
    if epochs is not None:
        full = full.with_epochs(epochs)
    return replace(strategy, recipe=full)


EXPORT_MARK = "# Exported by autokd from study "  # how an exported config begins


def is_exported(path: Path) -> bool:
    """A file ``autokd export`` wrote (its first line says so): only such a file is replaced by ``-o``."""
    from autokd.outputs import first_line

    return first_line(path).startswith(EXPORT_MARK)


def export_config(study, rank: int = 1, trial: Optional[int] = None) -> str:
    """YAML text of the rank-``rank`` strategy (or of trial number ``trial``) with the task inline
    and the full-length recipe."""
    settings = read_settings(study)
    entries = ranked(study)
    if trial is not None:
        entry = _trial_entry(study, trial)
        rank = entry.rank
    else:
        if not entries:
            raise AutokdError(_nothing_to_export(study))
        if not 1 <= rank <= len(entries):
            where = "beyond the leaderboard" if rank > len(entries) else "not a rank (1 is the best)"
            raise AutokdError(f"--rank {rank} is {where}: study {study.study_name!r} has "
                              f"{len(entries)} ranked trial(s), so rank must be 1..{len(entries)}")
        entry = entries[rank - 1]
    where = f"rank {rank} of {len(entries)}" if rank else "not ranked: its student breaks a constraint"
    space_file = space_file_from_text(settings.space_text, settings.space_source)
    from autokd.training.run import without_idle_pairs

    strategy, idle = without_idle_pairs(space_file.task, full_length_strategy(space_file, entry.strategy))
    task = load_yaml_value(settings.space_text)["task"]
    header = (
        f"{EXPORT_MARK}{comment_safe(study.study_name)!r}, trial {entry.number} "
        f"({where}):\n"
        f"# validation accuracy {entry.value:.2f}% after the {space_file.task.recipes.proxy.epochs}-epoch proxy run"
        + (f" (confirmed: mean {entry.confirmed['mean']:.2f} ± {entry.confirmed['se']:.2f}% over "
           f"{len(entry.confirmed['values'])} seeds"
           + (f", {entry.confirmed['diverged']} diverged: counted as 0%" if entry.confirmed.get("diverged") else "")
           + ")" if entry.confirmed else "") + ".\n"
        f"# Space: {comment_safe(settings.space_source)}; sampler: {comment_safe(settings.sampler)}. "
        f"The recipe below is the task's full length.\n"
        + "".join(f"# Left out: {comment_safe(f'{p.loss} on {p.teacher} -> {p.student}')}, maps of one position "
                  f"where it is always 0 (the trial drew it; it trained nothing)\n" for p in idle)
        + "# Train it: autokd train --config THIS_FILE [--seeds 3]\n"
    )
    return header + dump_yaml({"task": task, "strategy": strategy_to_dict(strategy)})


def _nothing_to_export(study) -> str:
    from autokd.search.leaderboard import complete_entries

    done = complete_entries(study)
    if not done:
        return f"study {study.study_name!r} has no complete trial yet; nothing to export"
    return (f"study {study.study_name!r} has no complete trial that meets its constraints ({len(done)} infeasible); "
            f"export one anyway with --trial N (e.g. --trial {done[0].number})")


def _trial_entry(study, number: int):
    """Trial ``number``'s leaderboard entry (rank 0 when infeasible); an error when it is not complete."""
    from autokd.search.leaderboard import complete_entries

    ranks = {e.number: e.rank for e in ranked(study)}
    done = complete_entries(study)
    for entry in done:
        if entry.number == number:
            return replace(entry, rank=ranks.get(number, 0))
    shown = ", ".join(str(e.number) for e in done[:20]) + (" ..." if len(done) > 20 else "")
    raise AutokdError(f"--trial {number}: study {study.study_name!r} has no complete trial {number}; "
                      f"complete trials: {shown or 'none yet'}")


def comment_safe(text: str) -> str:
    """``text`` on one line: characters that could end a YAML comment line (newlines, line and
    paragraph separators) or that do not print are written as escapes."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))

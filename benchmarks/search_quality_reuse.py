"""What search_quality.py takes from earlier invocations instead of running it again.

Two sources:

* ``--keep``: the work folder of an interrupted invocation (its SQLite studies, search records and
  run store). Which invocation filled it is kept in ``WORK/invocation.json``.
* ``--import-report FILE``: an earlier *report* of this benchmark (its JSON, committed with the
  results). Its searches that this invocation plans (same study name, same space text, budget,
  seeds, baselines and pruning) are taken whole: trials, curve and the winners' retraining, and
  the baselines' runs are written into the new run store (:func:`seed_run_store`), so they are
  read back, not trained again. So the repeats of a benchmark too long for one sitting are added
  in later ones, each run once. Training is seeded (a run is keyed by task, strategy, recipe and
  seed, as ``autokd compare`` reuses it), so a new winner is paired with the imported baselines
  seed by seed.
"""

from __future__ import annotations

import datetime
import json
import shutil
import sys
from pathlib import Path

from common import command_line

# settings that must match for an imported search to belong to this benchmark
_SAME_SETTINGS = ("budget", "seeds", "baselines", "no_pruning")


def prepare_work_dir(work: Path, keep: bool) -> None:
    """The benchmark's own files in the work folder; without --keep, the previous run's are removed
    and this invocation is recorded as the one that fills it."""
    work.mkdir(parents=True, exist_ok=True)
    if keep:
        return
    for name in ("studies.db", "space.yaml", "searches.json", "invocation.json"):
        (work / name).unlink(missing_ok=True)
    for name in ("compare", "logs"):
        shutil.rmtree(work / name, ignore_errors=True)
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    (work / "invocation.json").write_text(json.dumps({"date": started, "command": command_line()}))


def earlier_invocation(work: Path) -> dict:
    """The invocation that filled the work folder ({} when unknown)."""
    try:
        return json.loads((work / "invocation.json").read_text())
    except (OSError, ValueError):
        return {}


def load_saved_runs(work: Path) -> dict:
    path = work / "searches.json"
    return json.loads(path.read_text()) if path.exists() else {}


def save_run(work: Path, name: str, run: dict) -> None:
    """Keep each search's record (wall time, load) in the work folder, for --keep."""
    runs = load_saved_runs(work)
    runs[name] = run
    (work / "searches.json").write_text(json.dumps(runs, indent=1))


def keep_note(earlier: dict, reused: list[str]) -> str:
    """What --keep took from the invocation that filled the work folder."""
    who = (f"the invocation of {earlier['date']} (`{earlier['command']}`)" if earlier.get("date")
           else "an earlier invocation")
    return (f"--keep: searches {', '.join(reused)} were run by {who}; their wall times and loads are from it, and "
            f"finished retraining runs were read from its run store. The run times in the header are this invocation's.")


def import_report(path: Path, args, space_sha256: str, planned: list[str]) -> dict[str, dict]:
    """The planned searches, with their retraining, found in the earlier report ``path``; exits with
    a message when that report belongs to another benchmark set-up."""
    try:
        prev = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        sys.exit(f"error: cannot read --import-report {path}: {exc}")
    if prev.get("benchmark") != "search_quality" or "studies" not in prev:
        sys.exit(f"error: --import-report {path} is not a search_quality report")
    if prev["space"]["sha256"] != space_sha256:
        sys.exit(f"error: --import-report {path} searched another space (sha {prev['space']['sha256'][:12]}, "
                 f"this one {space_sha256[:12]})")
    for key in _SAME_SETTINGS:
        if prev["settings"].get(key) != getattr(args, key):
            sys.exit(f"error: --import-report {path} ran with {key}={prev['settings'].get(key)!r}, "
                     f"this invocation with {getattr(args, key)!r}")
    origin = {"date": prev["date"], "command": prev["command"], "report": str(path)}
    return {name: {**st, "retrain": _int_seeds(st["retrain"]), "imported_from": origin}
            for name, st in prev["studies"].items() if name in planned and "retrain" in st}


def _int_seeds(retrain: dict) -> dict:
    """Runs are keyed by seed; JSON turned the keys into strings."""
    def runs(by_seed: dict) -> dict:
        return {int(seed): run for seed, run in by_seed.items()}

    return {**retrain, "winner": {**retrain["winner"], "runs": runs(retrain["winner"]["runs"])},
            "baselines": {name: {**b, "runs": runs(b["runs"])} for name, b in retrain["baselines"].items()}}


def import_note(imported: dict[str, dict]) -> str:
    origin = next(iter(imported.values()))["imported_from"]
    return (f"--import-report: searches {', '.join(imported)} and their winners' retraining were taken from the "
            f"report of {origin['date']} (`{origin['command']}`), not run again; the other searches and their "
            f"retraining ran in this invocation. The baselines of the comparison are the first study's.")


def seed_run_store(imported: dict[str, dict], store_path: Path, space_path: Path, baselines) -> int:
    """Write the imported baselines' runs into this invocation's run store, so that the retraining
    reads them instead of training them again; returns how many were written."""
    from autokd.compare.execute import with_seed
    from autokd.compare.results import BASELINE, RunRecord
    from autokd.compare.store import RunStore, run_key
    from autokd.config.baselines import load_baselines
    from autokd.search.binding import bind_space
    from autokd.search.space_file import space_file_from_text

    space_file = space_file_from_text(space_path.read_text(), str(space_path))  # as the searches read it
    task, recipe = space_file.task, space_file.task.recipes.full
    runs = next(iter(imported.values()))["retrain"]["baselines"]
    store, written = RunStore(store_path), 0
    for b in load_baselines(baselines, bind_space(space_file).pairs, recipe):
        for seed, run in runs.get(b.name, {}).get("runs", {}).items():
            key = run_key(task, with_seed(b.strategy, seed), seed)
            if key not in store:
                store.add(RunRecord(b.name, BASELINE, seed, run["val"], run["test"], run["seconds"], key))
                written += 1
    return written

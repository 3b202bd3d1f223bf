"""``autokd search``, ``resume``, ``studies``, ``show`` and ``export``."""

from __future__ import annotations

import click

from autokd.cli.options import download_option, not_empty, space_option
from autokd.cli.progress import Progress
from autokd.search.settings import MAX_SEED, SAMPLERS, WARM_STARTS

storage_option = click.option(
    "--storage", default=None, callback=not_empty,
    help="Optuna storage: a URL (sqlite:///x.db, postgresql://...) or a file (.db, .sqlite or .sqlite3: SQLite; "
         ".journal or .log: Optuna's journal file). "
         "Default: studies/autokd.db under the current folder.",
)


def _finite(ctx, param, value):
    """click's FloatRange lets nan and inf through."""
    import math

    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number > 0", ctx=ctx, param=param)
    return value


def _finish(study, progress: Progress, top: int = 10) -> None:
    from autokd.search.leaderboard import empty_text, format_leaderboard, judging, noise_line, ranked
    from autokd.search.study import counts

    progress.say("")
    rules = judging(study)
    entries = ranked(study, rules)
    empty = "" if entries else empty_text(rules, counts(study).complete)  # the trials read again only when empty
    click.echo(f"leaderboard of {study.study_name!r} (validation accuracy at the proxy length):")
    click.echo(format_leaderboard(entries, top, empty=empty))
    if noise_line(study):
        click.echo(noise_line(study))
    if entries:  # with no feasible complete trial, export has nothing to write
        click.echo(f"\nnext: autokd export {study.study_name} -o best.yaml && autokd train --config best.yaml")


def _run(space_file, settings, name: str, storage, address) -> None:
    from autokd.search.driver import run_search
    from autokd.search.settings import resume_command
    from autokd.search.storage import open_storage, storage_exists
    from autokd.search.study import find_study

    progress = Progress(every=10.0)
    try:
        study = run_search(space_file, settings, name, storage, address, progress.say,
                           lambda text, force: progress.status(text, force))
    except KeyboardInterrupt:
        if storage_exists(storage) and find_study(name, open_storage(storage)) is not None:
            progress.say("\ninterrupted: running trials were recorded as interrupted and will run again on resume.\n"
                         f"resume with: {resume_command(name, storage, address)}")
        else:
            progress.say("\ninterrupted before the study was created: nothing was recorded; run the same command again")
        raise SystemExit(130)
    _finish(study, progress)


@click.command()
@space_option
@click.option("--budget", type=click.IntRange(min=1), default=None,
              help="Total finished trials (complete + pruned + failed) the study should hold. Default: 100 for a "
                   "new study, the study's own when it goes on.")
@click.option("--sampler", type=click.Choice(SAMPLERS), default=None,
              help="tpe: Optuna TPE; random: random search; ppo: a PPO controller (stable-baselines3); "
                   "evolution: Optuna's NSGA-II, population 10. Default: tpe for a new study, the study's own "
                   "when it goes on; naming another switches the study to it (resume follows).")
@click.option("--workers", type=int, default=None,
              help="Trials at once, each a Ray Tune trial on one CPU (default: every CPU of this machine, or of "
                   "the cluster with --address); 0 runs them one by one in this process, without Ray.")
@click.option("--name", default=None, help="Study name (letters, digits, '.', '_', '-'). Default: SPACE-SAMPLER (e.g. default-tpe).")
@storage_option
@click.option("--address", default=None, callback=not_empty,
              help="Join this Ray cluster (else RAY_ADDRESS, else a local Ray is started).")
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True,
              help="Seed of the sampler's first run on a new study (later runs continue with streams of their own).")
@click.option("--pruning/--no-pruning", default=None,
              help="--no-pruning runs every trial to the end of the proxy (as a space with `pruning: false` does); "
                   "stored with the study, as --pruning (the default for a new study) is: later runs and resumes "
                   "that name neither go on with the study's own.")
@click.option("--warm-start", type=click.Choice(WARM_STARTS), default=None,
              help="baselines: a new study's first trials are the shipped baselines the space can express "
                   "(each costs one trial of the budget).")
@click.option("--objectives", default=None,
              help="accuracy, then any of params, size, latency, macs (comma-separated): a multi-objective "
                   "search with a Pareto front (as the space's `objectives`).")
@click.option("--max-params", type=click.IntRange(min=1), default=None,
              help="Constraint: a student with more parameters is infeasible (as the space's constraints).")
@click.option("--max-size-kb", type=click.FloatRange(min=0, min_open=True), default=None, callback=_finite,
              help="Constraint: a student larger than this as deployed (KiB) is infeasible.")
@click.option("--max-latency-ms", type=click.FloatRange(min=0, min_open=True), default=None, callback=_finite,
              help="Constraint: a student slower than this (ms at batch 1 on one CPU thread) is infeasible.")
@click.option("--confirm", type=click.IntRange(0, 50), default=None,
              help="Once the budget is done, re-run the top K trials at the proxy with 2 more seeds each (K x 2 "
                   "proxy runs); the leaderboard, export and compare rank them first, by their mean. Default: 0 "
                   "for a new study, the study's own when it goes on (a raised budget confirms the new leaders).")
@click.option("--device", default=None, callback=not_empty,
              help="auto (CUDA when present), cpu, cuda or cuda:N. Default: auto for a new study, the study's own "
                   "when it goes on.")
@download_option
def search(space, budget, sampler, workers, name, storage, address, seed, pruning, warm_start, objectives,
           max_params, max_size_kb, max_latency_ms, confirm, device, download):
    """Search distillation strategies on a task; re-running it continues the study to its budget."""
    from autokd.search.settings import SearchSettings, default_study_name
    from autokd.search.space_file import load_space_file

    space_file = load_space_file(space, _space_overrides(objectives, max_params, max_size_kb, max_latency_ms))
    space_file.task.data.download = space_file.task.data.download or download
    name = name if name is not None else default_study_name(space_file.source, sampler or "tpe")
    settings = SearchSettings(space_text=space_file.text, space_source=space_file.source, sampler=sampler,
                              budget=budget, workers=workers, seed=seed, device=device, pruning=pruning,
                              warm_start=warm_start, confirm=confirm)
    _run(space_file, settings, name, storage, address)


def _space_overrides(objectives, max_params, max_size_kb, max_latency_ms) -> dict:
    """The space keys the flags set (checked here, so an error names the flag)."""
    from autokd.search.objectives import check_objectives

    overrides = {"objectives": check_objectives(objectives, "--objectives")} if objectives is not None else {}
    limits = {"max_params": max_params, "max_size_kb": max_size_kb, "max_latency_ms": max_latency_ms}
    constraints = {key: value for key, value in limits.items() if value is not None}
    return {**overrides, **({"constraints": constraints} if constraints else {})}


@click.command()
@click.argument("name")
@storage_option
@click.option("--budget", type=click.IntRange(min=1), default=None, help="A new total budget (default: the stored one).")
@click.option("--workers", type=int, default=None, help="Trials at once (default: the stored setting).")
@click.option("--address", default=None, callback=not_empty, help="Join this Ray cluster.")
@click.option("--device", default=None, callback=not_empty,
              help="auto, cpu, cuda or cuda:N (default: the stored setting; a new one is stored).")
def resume(name, storage, budget, workers, address, device):
    """Continue an interrupted study to its budget, with the space and settings it stored."""
    from dataclasses import replace

    from autokd.search.space_file import space_file_from_text
    from autokd.search.storage import open_storage
    from autokd.search.study import load_existing_study, read_settings

    settings = read_settings(load_existing_study(name, open_storage(storage, create=False)))
    space_file = space_file_from_text(settings.space_text, settings.space_source)
    if workers is None:
        from autokd.search.settings import check_workers

        check_workers(settings.workers, address, stored=True)
    settings = replace(settings, budget=budget or settings.budget,
                       workers=settings.workers if workers is None else workers, device=device or settings.device)
    _run(space_file, settings, name, storage, address)


@click.command()
@storage_option
def studies(storage):
    """List the studies in the storage: sampler, trials by state, best validation accuracy of a
    trial that meets the study's constraints."""
    from autokd.search.storage import open_storage, storage_exists
    from autokd.search.study import study_names

    if not storage_exists(storage):
        click.echo("no studies yet (autokd search creates one)")
        return
    store = open_storage(storage, create=False)
    names = study_names(store)
    if not names:
        click.echo("no studies yet (autokd search creates one)")
        return
    header = ("study", "sampler", "done/budget", "complete", "pruned", "failed", "best val")
    rows = [_study_row(name, store) for name in names]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:  # the name and sampler left-aligned, the numbers right-aligned, a note last
        cells = [cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        click.echo(" ".join(cells) + (f"  {row[len(header)]}" if len(row) > len(header) and row[-1] else ""))


def _study_row(name: str, store) -> tuple[str, ...]:
    """The cells of one line of ``autokd studies``, a note last; a damaged study is listed with a
    note and hides no other."""
    from autokd.errors import AutokdError
    from autokd.search.objectives import judging_of
    from autokd.search.settings import DamagedSettings
    from autokd.search.study import counts, load_existing_study, read_settings

    study = load_existing_study(name, store)
    c = counts(study)
    sampler, budget, best, note = "?", "?", None, ""
    try:
        s = read_settings(study)
        sampler, budget, rules = s.sampler, s.budget, judging_of(s.space_text)
    except DamagedSettings:
        note = f"damaged settings (autokd show {name} says what)"
    except AutokdError:  # a study some other tool made in the same storage: its values need not be accuracies
        note = "not made by autokd search"
    else:
        best = _best_feasible(study, rules)
        if best is None and c.complete and rules.constraints:
            note = f"no feasible trial ({rules.limits})"
    shown = name if name.isprintable() else repr(name)[1:-1]  # another tool's name may hold a newline
    return (shown, str(sampler), f"{c.finished}/{budget}", str(c.complete), str(c.pruned), str(c.failed),
            f"{best:.2f}%" if best is not None else "-", note)


def _best_feasible(study, rules):
    """The best validation accuracy of a complete trial that meets the constraints (as show ranks them)."""
    from autokd.search.leaderboard import ranked

    return max((e.value for e in ranked(study, rules)), default=None)


@click.command()
@click.argument("name")
@storage_option
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True)
def show(name, storage, top):
    """Print a study's leaderboard (with several objectives, its Pareto front), parameter
    importances and failed trials."""
    from autokd.search.leaderboard import (
        empty_text, failures, format_leaderboard, front, importances, noise_line, ranked,
    )
    from autokd.search.ledger import orphaned
    from autokd.search.objectives import judging_of
    from autokd.search.storage import open_storage
    from autokd.search.study import counts, load_existing_study, read_settings

    study = load_existing_study(name, open_storage(storage, create=False))
    c, s = counts(study), read_settings(study)
    stale = orphaned(study) if c.running else 0
    click.echo(f"study {name!r}: space {s.space_source}, sampler {s.sampler}, {c.finished}/{s.budget} trials "
               f"({c.complete} complete, {c.pruned} pruned, {c.failed} failed"
               + (f"; {c.void} void: interrupted and re-queued, or duplicates not trained again" if c.void else "")
               + (f"; {c.running} running" if c.running else "")
               + (f", {stale} of them left by a search that was killed (void on the next search or resume)"
                  if stale else "") + ")")
    rules = judging_of(s.space_text)
    feasible = ranked(study, rules)
    if rules.constraints:
        click.echo(f"constraints: {rules.limits}; {c.complete - len(feasible)} complete trial(s) infeasible "
                   f"(not ranked)")
    if rules.multi_objective:
        click.echo(f"Pareto front over {', '.join(rules.objectives)} (feasible trials; export one with "
                   f"autokd export {name} --trial N):")
        click.echo(format_leaderboard(front(study, rules), top=1000, empty="no feasible complete trials yet"))
        click.echo("\nby validation accuracy:")
    click.echo(format_leaderboard(feasible, top, empty=empty_text(rules, c.complete)))
    if noise_line(study):
        click.echo(noise_line(study))
    imp = importances(study)
    if imp:
        click.echo("\nparameter importances (Optuna's default evaluator):")
        for param, value in list(imp.items())[:12]:
            click.echo(f"  {param:<32} {value:6.3f}  {'#' * int(round(value * 40))}")
    fails = failures(study)
    if fails:
        click.echo(f"\nfailed trials ({len(fails)}):")
        for number, reason in fails[:20]:
            click.echo(f"  trial {number}: {reason}")


@click.command()
@click.argument("name")
@storage_option
@click.option("--rank", type=int, default=None, help="Which strategy of the leaderboard  [default: 1]")
@click.option("--trial", "trial_number", type=click.IntRange(min=0), default=None,
              help="Export this trial (any complete one, e.g. a point of the Pareto front) instead of a rank.")
@click.option("-o", "--out", "out_path", type=click.Path(dir_okay=False), default=None, callback=not_empty,
              help="Write here (default: print).")
def export(name, storage, rank, trial_number, out_path):
    """Write a study's best (or rank-K, or trial-N) strategy as a config for autokd train."""
    from autokd.errors import AutokdError
    from autokd.search.export import export_config
    from autokd.search.storage import open_storage
    from autokd.search.study import load_existing_study

    if rank is not None and trial_number is not None:
        raise AutokdError(f"give --rank or --trial, not both (--rank {rank}, --trial {trial_number})")
    if out_path:
        from autokd.outputs import check_replaceable
        from autokd.search.export import is_exported

        check_replaceable(out_path, "-o", "a config", is_exported)  # not the space or task file named by mistake
    text = export_config(load_existing_study(name, open_storage(storage, create=False)),
                         1 if rank is None else rank, trial_number)
    if out_path:
        from autokd.outputs import write_text

        write_text(out_path, text, "the exported config")
        click.echo(f"wrote {out_path}; train it with: autokd train --config {out_path}", err=True)
    else:
        click.echo(text, nl=False)

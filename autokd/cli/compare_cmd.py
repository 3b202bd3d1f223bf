"""``autokd compare``: found strategies against hand-tuned baselines, at full length, over seeds."""

from __future__ import annotations

from pathlib import Path

import click

from autokd.cli.options import device_option, not_empty
from autokd.cli.progress import Progress
from autokd.cli.search_cmd import storage_option


def _check_folder_name(name: str) -> None:
    """The default report folder is reports/NAME: a study made elsewhere may have a name unfit for it."""
    from autokd.errors import AutokdError
    from autokd.search.settings import check_study_name

    try:
        check_study_name(name)
    except AutokdError:
        raise AutokdError(f"study name {name!r} cannot name a folder under reports/; give the report folder "
                          "with --out") from None


@click.command()
@click.argument("name")
@storage_option
@click.option("--top-k", type=click.IntRange(min=1), default=3, show_default=True,
              help="Retrain the study's best K distinct strategies.")
@click.option("--seeds", type=click.IntRange(min=1, max=1000), default=5, show_default=True, help="Seeds per strategy (the same for all).")
@click.option("--epochs", type=click.IntRange(min=1, max=100_000), default=None, help="Full training length (default: the task's full recipe).")
@click.option("--baselines", "baselines_path", type=click.Path(dir_okay=False), default=None, callback=not_empty,
              help="A baselines YAML file, or a shipped set by name: baselines (the default) or "
                   "scheme_baselines (who teaches whom: takd, dgkd, ban, dml, kdcl, multi_teacher).")
@click.option("--out", "out_dir", metavar="FOLDER", default=None, callback=not_empty,
              help="Report folder (default: reports/NAME).")
@click.option("--workers", type=int, default=None, help="Runs at once as Ray tasks (default: the CPU count); 0: in this process.")
@click.option("--address", default=None, help="Join this Ray cluster.")
@device_option
def compare(name, storage, top_k, seeds, epochs, baselines_path, out_dir, workers, address, device):
    """Retrain a study's top strategies and the hand-tuned baselines over seeds; write a report.

    Each distinct strategy is trained once per seed: trials that found the same strategy count
    once, and a found strategy that is also a baseline is one row (e.g. "trial 4 = kd"), counted
    as found. A run whose training diverges is recorded as failed, with its reason, and the
    others go on; statistics use the runs that did not fail.

    Finished runs, failed ones included, are kept in OUT/runs.jsonl and reused: an interrupted
    compare resumes, and more seeds only add the new runs.
    """
    from autokd.compare.compare import CompareRequest, run_compare
    from autokd.compare.ranking import format_table
    from autokd.compare.report import write_report
    from autokd.search.storage import open_storage
    from autokd.search.study import load_existing_study

    progress = Progress(every=10.0)
    study = load_existing_study(name, open_storage(storage, create=False))
    if out_dir is None:
        _check_folder_name(name)
    out = Path(out_dir or Path("reports") / name)
    request = CompareRequest(out, top_k, seeds, epochs, baselines_path, workers, address, device)
    try:
        comparison = run_compare(study, request, say=progress.say, status=progress.status)
    except KeyboardInterrupt:
        progress.say(f"\ninterrupted: finished runs are kept in {out / 'runs.jsonl'}; run the same command to go on")
        raise SystemExit(130)
    files = write_report(comparison, out)
    progress.say("")
    click.echo(format_table(comparison))
    click.echo(f"\nreport: {files['report.html']}  (also report.md, results.csv, plots)")

"""``autokd compare``: found strategies against hand-tuned baselines, at full length, over seeds."""

from __future__ import annotations

from pathlib import Path

import click

from autokd.cli.options import device_option
from autokd.cli.progress import Progress
from autokd.cli.search_cmd import storage_option


@click.command()
@click.argument("name")
@storage_option
@click.option("--top-k", type=click.IntRange(min=1), default=3, show_default=True, help="Retrain the study's best K strategies.")
@click.option("--seeds", type=click.IntRange(min=1), default=5, show_default=True, help="Seeds per strategy (the same for all).")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Full training length (default: the task's full recipe).")
@click.option("--baselines", "baselines_path", type=click.Path(dir_okay=False), default=None,
              help="A baselines YAML file (default: the shipped search_spaces/baselines.yaml).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None, help="Report folder (default: reports/NAME).")
@click.option("--workers", type=int, default=None, help="Runs at once as Ray tasks (default: the CPU count); 0: in this process.")
@click.option("--address", default=None, help="Join this Ray cluster.")
@device_option
def compare(name, storage, top_k, seeds, epochs, baselines_path, out_dir, workers, address, device):
    """Retrain a study's top strategies and the hand-tuned baselines over seeds; write a report.

    Finished runs are kept in OUT/runs.jsonl: an interrupted compare resumes, and more seeds
    only add the new runs.
    """
    import os

    from autokd.compare.compare import run_compare
    from autokd.compare.report import format_table, write_report
    from autokd.search.storage import open_storage
    from autokd.search.study import load_existing_study

    progress = Progress(every=10.0)
    study = load_existing_study(name, open_storage(storage))
    out = Path(out_dir or Path("reports") / name)
    workers = (os.cpu_count() or 1) if workers is None else workers
    try:
        comparison = run_compare(study, out, top_k=top_k, seeds=seeds, epochs=epochs, baselines_path=baselines_path,
                                 workers=workers, address=address, device=device, say=progress.say,
                                 status=lambda text, force: progress.status(text, force))
    except KeyboardInterrupt:
        progress.say(f"\ninterrupted: finished runs are kept in {out / 'runs.jsonl'}; run the same command to go on")
        raise SystemExit(130)
    files = write_report(comparison, out)
    progress.say("")
    click.echo(format_table(comparison))
    click.echo(f"\nreport: {files.get('report.html', out / 'report.html')}  (also report.md, results.csv, plots)")

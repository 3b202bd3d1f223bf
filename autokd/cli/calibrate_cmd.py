"""``autokd calibrate``: which proxy length ranks strategies like full training, on this task."""

from __future__ import annotations

from pathlib import Path

import click

from autokd.cli.options import device_option, download_option, not_empty, space_option


def parse_lengths(text):
    """``--lengths 10,20,40`` -> [10, 20, 40]; one error line otherwise."""
    from autokd.errors import AutokdError

    if text is None:
        return None
    import re

    parts = [part.strip() for part in text.split(",")]
    # plain ASCII digits only: int() would also take '+1', '1_0' (ten) and full-width digits
    lengths = [int(part) for part in parts] if all(re.fullmatch(r"[0-9]+", part) for part in parts) else []
    if not lengths:
        raise AutokdError(f"--lengths must be whole numbers of epochs separated by commas (e.g. 10,20,40), got {text!r}")
    return lengths


@click.command()
@space_option
@click.option("--lengths", default=None, metavar="E1,E2,...",
              help="Proxy lengths to measure, in epochs (default: 1/8, 1/4, 1/2 and 3/4 of the full recipe, and "
                   "the space's proxy).")
@click.option("--strategies", type=click.IntRange(min=0, max=1000), default=16, show_default=True,
              help="Strategies drawn from the space (Optuna's RandomSampler), besides the baselines.")
@click.option("--sampler-seed", type=click.IntRange(min=0, max=2**32 - 1), default=0, show_default=True,
              help="Seed of the draw (the same seed draws the same strategies, so a rerun resumes).")
@click.option("--seeds", type=click.IntRange(min=1, max=20), default=2, show_default=True,
              help="Full-length seeds per strategy (two or more measure the seed noise).")
@click.option("--baselines", "baselines_path", default=None, callback=not_empty,
              help="A baselines YAML file, a shipped set (baselines, scheme_baselines), or none.")
@click.option("--threshold", type=float, default=0.7, show_default=True,
              help="The Spearman rho a proxy must reach to be recommended.")
@click.option("--out", "out_dir", metavar="FOLDER", default=None, callback=not_empty,
              help="Report folder; its runs.jsonl keeps finished runs (default: reports/calibrate-SPACE).")
@click.option("--write-space", "write_space", metavar="FILE", default=None, callback=not_empty,
              help="Also write a copy of the space file with the recommended proxy (never the file itself).")
@click.option("--workers", type=int, default=None,
              help="Runs at once as Ray tasks (default: the CPU count); 0: in this process.")
@click.option("--address", default=None, help="Join this Ray cluster.")
@device_option
@download_option
def calibrate(space, lengths, strategies, sampler_seed, seeds, baselines_path, threshold, out_dir, write_space,
              workers, address, device, download):
    """Measure how well short proxies rank strategies like full training, and recommend one.

    Varied strategies (drawn from the space, plus the baselines) are trained at full length
    (test accuracy over --seeds seeds: the truth) and at each proxy length as a search trial
    would (validation accuracy, the proxy's seed). For each length: Spearman's rho with a
    bootstrap interval, rho at the pruning rung (half the proxy) and the time per trial. The
    recommendation is the shortest length from which every longer one reaches --threshold.

    Finished runs are kept in OUT/runs.jsonl: run the same command again to resume, or with
    more strategies, seeds or lengths to add only the new runs. Writes OUT/calibration.md,
    .html, .json and .png; the space file itself is never changed.
    """
    from autokd.calibrate.calibrate import CalibrateRequest, check_request, run_calibrate
    from autokd.calibrate.report import summary_lines, write_report
    from autokd.calibrate.space_copy import check_destination, recommended_lines, write_space_copy
    from autokd.cli.progress import Progress
    from autokd.search.space_file import load_space_file

    request = CalibrateRequest(Path("."), parse_lengths(lengths), strategies, sampler_seed, seeds, baselines_path,
                               threshold, workers, address, device)
    check_request(request)
    space_file = load_space_file(space)
    space_file.task.data.download = space_file.task.data.download or download
    if write_space:
        check_destination(space, Path(write_space))
    request.out_dir = Path(out_dir) if out_dir else Path("reports") / f"calibrate-{Path(space_file.source).stem}"
    progress = Progress(every=10.0)
    try:
        calibration = run_calibrate(space_file, request, say=progress.say, status=progress.status)
    except KeyboardInterrupt:
        progress.say(f"\ninterrupted: finished runs are kept in {request.out_dir / 'runs.jsonl'}; run the same "
                     "command to go on")
        raise SystemExit(130)
    files = write_report(calibration, request.out_dir)
    progress.say("")
    click.echo("\n".join(summary_lines(calibration)))
    rec = calibration.recommendation
    if rec.epochs is not None:
        if write_space:
            written = write_space_copy(space, Path(write_space), rec.epochs, rec.pruning_safe, rec.milestones)
            click.echo(f"space file with it: {written}")
        else:
            click.echo("lines for the space file (or --write-space FILE for a copy with them):\n"
                       + recommended_lines(rec.epochs, rec.pruning_safe, rec.milestones).rstrip())
    elif write_space:
        kept = " (the file already there is left as it was)" if Path(write_space).expanduser().exists() else ""
        click.echo(f"--write-space: no copy written to {write_space}{kept}: no proxy length was recommended")
    click.echo(f"\nreport: {files['calibration.md']}  (also .html, .json, .png)")

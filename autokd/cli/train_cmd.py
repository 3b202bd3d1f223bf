"""``autokd train`` and ``autokd teacher``."""

from __future__ import annotations

import json
import statistics
from dataclasses import replace
from pathlib import Path

import click

from autokd.cli.options import apply_threads, device_option, download_option, space_option, threads_option
from autokd.cli.progress import Progress
from autokd.formatting import format_seconds


def _teacher_epoch_printer(progress: Progress):
    def show(stats) -> None:
        progress.status(
            f"  teacher epoch {stats.epoch}/{stats.epochs}  loss {stats.train_loss:.3f}  "
            f"val {stats.val_acc:.2f}%  [{format_seconds(stats.seconds)}]",
            force=stats.epoch == stats.epochs,
        )

    return show


@click.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), help="Train config (YAML): task + strategy.")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Override the recipe's number of epochs.")
@click.option("--seeds", type=click.IntRange(min=1), default=1, show_default=True, help="Train this many seeds (recipe seed, +1, ...).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None, help="Write the results as JSON here.")
@device_option
@threads_option
@download_option
def train(config_path, epochs, seeds, out_path, device, threads, download):
    """Train a student with the strategy in a config; print validation and test accuracy."""
    from autokd.config import load_config
    from autokd.training.run import check_strategy, prepare_task, train_strategy

    apply_threads(threads)
    progress = Progress()
    config = load_config(config_path)
    config.task.data.download = config.task.data.download or download
    strategy = config.strategy
    if epochs is not None:
        strategy = replace(strategy, recipe=replace(strategy.recipe, epochs=epochs))
    prepared = prepare_task(config.task, device, progress=progress.say, on_teacher_epoch=_teacher_epoch_printer(progress))
    check_strategy(prepared, strategy)
    progress.say(f"strategy: {strategy.describe()}")
    progress.say(f"recipe: {strategy.recipe.epochs} epochs, {strategy.recipe.optimizer} lr {strategy.recipe.lr:g}, "
                 f"{strategy.recipe.schedule}, batch {strategy.recipe.batch_size}")
    runs = []
    for i in range(seeds):
        seed = strategy.recipe.seed + i
        recipe = replace(strategy.recipe, seed=seed)

        def show(stats, seed=seed):
            progress.status(
                f"seed {seed}  epoch {stats.epoch}/{stats.epochs}  loss {stats.train_loss:.3f}  "
                f"val {stats.val_acc:.2f}%  [{format_seconds(stats.seconds)}]"
            )

        result = train_strategy(prepared, strategy, recipe=recipe, on_epoch=show)
        progress.say(f"seed {seed}: val {result.val_acc:.2f}%  test {result.test_acc:.2f}%  ({format_seconds(result.seconds)})")
        runs.append(result)
    summary = {
        "val_mean": statistics.fmean(r.val_acc for r in runs),
        "val_sd": statistics.stdev(r.val_acc for r in runs) if len(runs) > 1 else 0.0,
        "test_mean": statistics.fmean(r.test_acc for r in runs),
        "test_sd": statistics.stdev(r.test_acc for r in runs) if len(runs) > 1 else 0.0,
    }
    click.echo(
        f"{config.task.name}: {strategy.describe()}\n"
        f"  val  {summary['val_mean']:.2f} ± {summary['val_sd']:.2f} %\n"
        f"  test {summary['test_mean']:.2f} ± {summary['test_sd']:.2f} %   ({len(runs)} seed{'s' if len(runs) > 1 else ''})"
    )
    if out_path:
        from autokd.config import strategy_to_dict

        payload = {
            "config": str(config_path),
            "task": config.task.name,
            "strategy": strategy_to_dict(strategy),
            "teacher": {"val_acc": prepared.teacher_info.val_acc, "test_acc": prepared.teacher_info.test_acc},
            "runs": [{"seed": r.seed, "val_acc": r.val_acc, "test_acc": r.test_acc, "seconds": r.seconds} for r in runs],
            **summary,
        }
        Path(out_path).parent.mkdir(parents=True, exist_ok=True)
        Path(out_path).write_text(json.dumps(payload, indent=2))
        progress.say(f"results written to {out_path}")


@click.command()
@space_option
@click.option("--retrain", is_flag=True, help="Train again even if a cached teacher exists.")
@device_option
@threads_option
@download_option
def teacher(space, retrain, device, threads, download):
    """Train (or load) and cache the task's teacher; print its validation and test accuracy."""
    apply_threads(threads)
    from autokd.config import load_task
    from autokd.data import cache_dir, describe, load_task_data
    from autokd.training.run import resolve_device
    from autokd.training.teacher import get_teacher

    progress = Progress()
    task = load_task(space)
    task.data.download = task.data.download or download
    data = load_task_data(replace(task.data, train_size=None), cache_dir(), progress=progress.say)
    progress.say(describe(data))
    model, info = get_teacher(task, data, resolve_device(device), cache_dir(), on_epoch=_teacher_epoch_printer(progress), retrain=retrain)
    n_params = sum(p.numel() for p in model.parameters())
    click.echo(
        f"teacher {task.teacher.model} {task.teacher.kwargs or ''} ({n_params:,} parameters, {info.source})\n"
        f"  val  {info.val_acc:.2f} %\n  test {info.test_acc:.2f} %\n  weights: {info.path}"
    )

"""``autokd train`` and ``autokd teacher``."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, replace
from pathlib import Path

import click

from autokd.cli.options import apply_threads, device_option, download_option, not_empty, space_option, threads_option
from autokd.cli.progress import Progress
from autokd.errors import AutokdError
from autokd.formatting import format_seconds

MAX_EPOCHS = 100_000  # as a recipe's epochs (autokd.config.strategy.MAX_EPOCHS; not imported: --help stays light)
MAX_SEEDS = 1000


def _teacher_epoch_printer(progress: Progress):
    def show(stats) -> None:
        progress.status(
            f"  teacher epoch {stats.epoch}/{stats.epochs}  loss {stats.train_loss:.3f}  "
            f"val {stats.val_acc:.2f}%  [{format_seconds(stats.seconds)}]",
            force=stats.epoch == stats.epochs,
        )

    return show


@click.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), callback=not_empty, help="Train config (YAML): task + strategy.")
@click.option("--epochs", type=click.IntRange(min=1, max=MAX_EPOCHS), default=None, help="Override the recipe's number of epochs (a prune's own recover_epochs, when set, stays).")
@click.option("--seeds", type=click.IntRange(min=1, max=MAX_SEEDS), default=1, show_default=True, help="Train this many seeds (recipe seed, +1, ...).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None, callback=not_empty, help="Write the results as JSON here.")
@click.option("--save", "save_path", type=click.Path(dir_okay=False), default=None, callback=not_empty,
              help="Write the trained student here (with --seeds, the seed best on validation); "
                   "rebuild it with autokd.load_student(PATH).")
@device_option
@threads_option
@download_option
def train(config_path, epochs, seeds, out_path, save_path, device, threads, download):
    """Train a student with the strategy in a config; print validation and test accuracy (of the
    student as deployed: a quantized student converted) and its size and CPU latency."""
    from autokd.config import load_config
    from autokd.training.run import check_strategy, prepare_task

    apply_threads(threads)
    progress = Progress()
    config = load_config(config_path, epochs=epochs)  # --epochs: what follows the length (DKD's warm-up) follows it
    config.task.data.download = config.task.data.download or download
    strategy = config.strategy
    _check_seeds(strategy.recipe.seed, seeds)
    _check_distinct(config_path, out_path, save_path)
    for option, path in (("--out", out_path), ("--save", save_path)):
        if path:
            _check_out(path, option)  # before training: a bad path must not cost a training run
    if save_path and getattr(strategy.scheme, "ensemble", False):
        raise AutokdError(_ENSEMBLE_SAVE)
    prepared = prepare_task(config.task, device, progress=progress.say, on_teacher_epoch=_teacher_epoch_printer(progress),
                            strategy=strategy)  # its pairs checked on the models before the teacher trains
    check_strategy(prepared, strategy)
    progress.say(f"strategy: {strategy.describe()}")
    progress.say(f"recipe: {strategy.recipe.epochs} epochs, {strategy.recipe.optimizer} lr {strategy.recipe.lr:g}, "
                 f"{strategy.recipe.schedule}, batch {strategy.recipe.batch_size}")
    runs = [_train_seed(prepared, strategy, strategy.recipe.seed + i, progress, keep_model=bool(save_path))
            for i in range(seeds)]
    summary = _summary(runs)
    cost = runs[0].footprint
    click.echo(
        f"{config.task.name}: {strategy.describe()}\n"
        f"  val  {_mean_sd(summary['val_mean'], summary['val_sd'])}\n"
        f"  test {_mean_sd(summary['test_mean'], summary['test_sd'])}   ({len(runs)} seed{'s' if len(runs) > 1 else ''})\n"
        f"  student: {cost.params:,} parameters, {cost.size_bytes / 1024:,.1f} KiB as deployed, "
        + (f"{cost.macs:,} MACs, " if cost.macs is not None else "MACs unknown, ")
        + (f"{cost.latency_ms:.3f} ms on one CPU thread" if cost.latency_ms is not None else "latency unknown")
    )
    if save_path:
        _save_best(save_path, config.task.name, strategy, prepared, runs)
        progress.say(f"student written to {save_path}")
    if out_path:
        _write_results(out_path, config_path, config.task.name, strategy, prepared, runs, summary)
        progress.say(f"results written to {out_path}")


def _check_seeds(first: int, seeds: int) -> None:
    from autokd.config.strategy import MAX_SEED

    if first + seeds - 1 > MAX_SEED:
        raise AutokdError(f"--seeds {seeds} from seed {first} goes past the largest seed, 2**32 - 1 = {MAX_SEED}; "
                          f"use at most {MAX_SEED - first + 1} seeds or a smaller strategy.recipe.seed")


def _check_distinct(config_path, out_path, save_path) -> None:
    """--out and --save must not overwrite the config, nor each other."""
    named = [("--config", config_path), ("--out", out_path), ("--save", save_path)]
    seen: dict[Path, str] = {}
    for option, path in named:
        if not path:
            continue
        key = Path(path).expanduser().resolve()
        if key in seen:
            raise AutokdError(f"{option} and {seen[key]} both name {path}; {option} would overwrite it: name another file")
        seen[key] = option


def _check_out(out_path, option: str = "--out") -> None:
    """``--out``/``--save`` must name a file in a folder that exists (or can be made) and is writable,
    and not a file of the user's (only an earlier run's results or student is replaced)."""
    from autokd.outputs import check_replaceable, make_folder

    target = Path(out_path).expanduser()
    example = "result.json" if option == "--out" else "student.pt"
    if target.is_dir():
        raise AutokdError(f"{option} {target} is a folder; name a file, e.g. {target / example}")
    make_folder(target.parent, f"the {'results' if option == '--out' else 'student'} ({option})")
    if option == "--out":
        check_replaceable(target, option, "a results file", _is_results_file)
    else:
        check_replaceable(target, option, "a student", _is_saved_student)


def _is_results_file(path: Path) -> bool:
    """A JSON file ``train --out`` wrote (its task, strategy and runs)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError):
        return False
    return isinstance(data, dict) and {"task", "strategy", "runs"} <= set(data)


def _is_saved_student(path: Path) -> bool:
    from autokd.compression.saved import SavedStudentError, read_saved

    try:
        read_saved(path)
    except SavedStudentError:
        return False
    return True


_ENSEMBLE_SAVE = ("--save: this strategy ships an ensemble of born-again generations (scheme.ensemble: true), "
                  "which cannot be saved as one student yet; set strategy.scheme.ensemble to false to ship the last "
                  "generation")


def _save_best(save_path, task_name: str, strategy, prepared, runs) -> None:
    """The student of the run best on validation, with what rebuilds it."""
    from autokd.compression.saved import save_student
    from autokd.config import strategy_to_dict
    from autokd.config.compression import compression_to_dict
    from autokd.training.shipping import student_architecture
    from autokd.training.students import LogitEnsemble

    best = max(runs, key=lambda r: r.val_acc)
    if isinstance(best.model, LogitEnsemble):
        raise AutokdError(_ENSEMBLE_SAVE)
    meta = {"task": task_name, "strategy": strategy_to_dict(strategy), "seed": best.seed,
            "val_acc": best.val_acc, "test_acc": best.test_acc}
    save_student(Path(save_path).expanduser(), best.model, student_architecture(prepared, strategy),
                 prepared.data.num_classes, prepared.data.input_shape, compression_to_dict(strategy.compression), meta)


def _train_seed(prepared, strategy, seed: int, progress: Progress, keep_model: bool = False):
    """One student run; a diverging one is an error line naming the seed and the knobs to turn."""
    from autokd.training.fit import TrainingFailed
    from autokd.training.run import train_strategy

    def show(stats):
        progress.status(
            f"seed {seed}  epoch {stats.epoch}/{stats.epochs}  loss {stats.train_loss:.3f}  "
            f"val {stats.val_acc:.2f}%  [{format_seconds(stats.seconds)}]"
        )

    try:
        result = train_strategy(prepared, strategy, recipe=replace(strategy.recipe, seed=seed), on_epoch=show,
                                progress=progress.say, keep_model=keep_model)
    except TrainingFailed as exc:
        raise AutokdError(
            f"the student diverged with seed {seed}: {exc}; the last batch's parts show which term: lower "
            f"strategy.recipe.lr (now {strategy.recipe.lr:g}), the loss weights (alpha, pairs[].weight, "
            f"relations[].weight, scheme weights) or the temperature (now {strategy.temperature:g}), or check that "
            f"the model's forward gives finite logits"
        ) from None
    progress.say(f"seed {seed}: val {result.val_acc:.2f}%  test {result.test_acc:.2f}%  ({format_seconds(result.seconds)})")
    return result


def _summary(runs) -> dict:
    """Means and sample sds over the seeds (sd None with one seed: there is no spread to measure)."""
    return {
        "val_mean": statistics.fmean(r.val_acc for r in runs),
        "val_sd": statistics.stdev(r.val_acc for r in runs) if len(runs) > 1 else None,
        "test_mean": statistics.fmean(r.test_acc for r in runs),
        "test_sd": statistics.stdev(r.test_acc for r in runs) if len(runs) > 1 else None,
    }


def _mean_sd(mean: float, sd) -> str:
    return f"{mean:.2f} ± {sd:.2f} %" if sd is not None else f"{mean:.2f} %"


def _write_results(out_path, config_path, task_name: str, strategy, prepared, runs, summary: dict) -> None:
    from autokd.config import strategy_to_dict
    from autokd.outputs import write_text

    payload = {
        "config": str(config_path),
        "task": task_name,
        "strategy": strategy_to_dict(strategy),
        "teacher": {"val_acc": prepared.teacher_info.val_acc, "test_acc": prepared.teacher_info.test_acc},
        "runs": [{"seed": r.seed, "val_acc": r.val_acc, "test_acc": r.test_acc, "seconds": r.seconds, "steps": r.steps,
                  "footprint": asdict(r.footprint) if r.footprint else None} for r in runs],
        **summary,
    }
    write_text(out_path, json.dumps(payload, indent=2), "the results (--out)", create_folder=True)


@click.command()
@space_option
@click.option("--retrain", is_flag=True, help="Train again even if a cached teacher exists (a teacher loaded from its checkpoint is never trained).")
@device_option
@threads_option
@download_option
def teacher(space, retrain, device, threads, download):
    """Train (or load) and cache the task's teacher, and its further teachers (task.teachers) if
    it lists any; print each one's validation and test accuracy."""
    apply_threads(threads)
    from autokd.config import load_task
    from autokd.data import cache_dir, describe, load_task_data
    from autokd.training.run import resolve_device
    from autokd.training.teacher import get_teacher

    progress = Progress()
    task = load_task(space)
    teachers = [("teacher", task)] + [(f"teacher {i + 2}", task.with_teacher(i)) for i in range(len(task.teachers))]
    if retrain:
        _check_retrain(teachers, progress)
    task.data.download = task.data.download or download
    data = load_task_data(replace(task.data, train_size=None), cache_dir(), progress=progress.say)
    progress.say(describe(data))
    for label, one in teachers:
        model, info = get_teacher(one, data, resolve_device(device), cache_dir(),
                                  on_epoch=_teacher_epoch_printer(progress), retrain=retrain, progress=progress.say)
        n_params = sum(p.numel() for p in model.parameters())
        click.echo(
            f"{label} {one.teacher.model} {one.teacher.kwargs or ''} ({n_params:,} parameters, {info.source})\n"
            f"  val  {info.val_acc:.2f} %\n  test {info.test_acc:.2f} %\n"
            f"  weights: {info.path or 'not saved (the cache folder could not be written)'}"
        )


def _check_retrain(teachers, progress: Progress) -> None:
    """--retrain trains again only the teachers autokd trains: refused when every teacher is loaded
    from a checkpoint (it would do nothing), a note for each such teacher otherwise."""
    loaded = [(label, one.teacher.checkpoint) for label, one in teachers if one.teacher.checkpoint]
    if loaded and len(loaded) == len(teachers):
        which = (f"the task's teacher is loaded from its checkpoint {loaded[0][1]} (task.teacher.checkpoint)"
                 if len(teachers) == 1 else "every teacher of the task is loaded from its checkpoint "
                 "(task.teacher.checkpoint, task.teachers[].checkpoint)")
        raise AutokdError(f"--retrain trains a teacher again, but {which}, and autokd does not train a teacher "
                          f"loaded from a checkpoint; drop --retrain, or remove the checkpoint to have autokd train it")
    for label, checkpoint in loaded:
        progress.say(f"note: {label} is loaded from its checkpoint {checkpoint}, not retrained (--retrain retrains "
                     f"only the teachers autokd trains)")

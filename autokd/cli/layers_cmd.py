"""``autokd layers``: the module paths a strategy can tap, with their output shapes."""

from __future__ import annotations

import click

from autokd.cli.options import not_empty
from autokd.errors import AutokdError, short_repr


MAX_SAMPLE_ELEMENTS = 2**24  # one dummy sample of at most 64 MB (float32)


def _parse_kwargs(items) -> dict:
    from autokd.config.task import check_plain
    from autokd.config.yaml_io import load_yaml_value

    kwargs = {}
    for item in items:
        if "=" not in item:
            raise AutokdError(f"--kwarg {short_repr(item)} must look like key=value")
        key, value = item.split("=", 1)
        if not key.isidentifier():
            raise AutokdError(f"--kwarg {short_repr(item)}: {short_repr(key, 40)} is not a keyword name")
        if key in kwargs:
            raise AutokdError(f"--kwarg {key} is given twice ({short_repr(item)} after an earlier {key}=...); "
                              f"give each keyword once")
        kwargs[key] = load_yaml_value(value, source=f"--kwarg {key}")
        check_plain(kwargs[key], f"--kwarg {key}")
    return kwargs


def _parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise AutokdError(
            f"--input-shape {short_repr(text)} must be integers separated by commas, e.g. 1,40 or 3,32,32"
        ) from None
    if not shape or any(v < 1 for v in shape):
        raise AutokdError(f"--input-shape {short_repr(text)} must be positive integers, e.g. 1,40 or 3,32,32")
    elements = 1
    for v in shape:
        elements *= v
    if len(shape) > 4 or elements > MAX_SAMPLE_ELEMENTS:
        raise AutokdError(f"--input-shape {short_repr(text)} is too large: at most 4 numbers and "
                          f"{MAX_SAMPLE_ELEMENTS:,} values in all per sample")
    return shape


def _print_layers(title: str, model, input_shape) -> None:
    from autokd.models.taps import list_layers

    click.echo(title)
    rows = [(info.path, info.type_name, "x".join(map(str, info.output_shape)) if info.output_shape else "-")
            for info in list_layers(model, input_shape)]
    if not rows:
        click.echo(f"  (no layers to tap: {type(model).__name__} has no submodules and no nn.Linear classifier)")
        return
    width = max(len(r[0]) for r in rows)
    type_width = max(len(r[1]) for r in rows)
    for path, type_name, shape in rows:
        click.echo(f"  {path:<{width}}  {type_name:<{type_width}}  {shape}")
    if "embedding" in dict(model.named_modules()):
        click.echo("  (its module named embedding is left out: in pairs and relations that name is the classifier's "
                   "input; rename the module to tap it)")


@click.command()
@click.argument("model", required=False)
@click.option("--kwarg", "kwarg_items", multiple=True, metavar="KEY=VALUE", help="Model keyword argument (repeatable).")
@click.option("--input-shape", default=None, callback=not_empty,
              help="One sample's shape, e.g. 1,40 (MNIST-1D) or 3,32,32 (CIFAR).")
@click.option("--num-classes", type=click.IntRange(min=2, max=1_000_000), default=None,
              help="The model's number of classes (default: 10).")
@click.option("--space", default=None, callback=not_empty,
              help="Instead of MODEL: list the teacher's and student's layers of this space and the automatic pairs.")
def layers(model, kwarg_items, input_shape, num_classes, space):
    """List the tappable module paths of MODEL (or of a space's teacher and student) with output shapes.

    \b
    MODEL is a registry name (cnn1d, resnet8x4, ...), torchvision/NAME or package.module:callable.
    """
    from autokd.models.registry import MODELS, build_model

    if space is None and model is None:
        raise AutokdError(f"give a MODEL (one of {', '.join(sorted(MODELS))}, torchvision/NAME, module:callable) or --space")
    if space is not None and (model is not None or kwarg_items or input_shape or num_classes is not None):
        given = ("MODEL" if model is not None else "--kwarg" if kwarg_items else "--input-shape" if input_shape
                 else "--num-classes")
        raise AutokdError(f"give MODEL (with --kwarg, --input-shape, --num-classes) or --space, not both: {given} and "
                          f"--space {short_repr(space, 80)}")
    if space is not None:
        from autokd.config import load_task
        from autokd.data.spec import nominal_shape
        from autokd.models.pairs import auto_pairs

        task = load_task(space)
        shape, classes = nominal_shape(task.data)
        teacher = build_model(task.teacher.model, task.teacher.kwargs, classes, shape)
        student = build_model(task.student.model, task.student.kwargs, classes, shape)
        _print_layers(f"teacher {task.teacher.model} {task.teacher.kwargs}, input {shape}", teacher, shape)
        _print_layers(f"student {task.student.model} {task.student.kwargs}, input {shape}", student, shape)
        click.echo("automatic pairs (teacher -> student: stages of equal resolution; models without feature maps by position):")
        for t_path, s_path in auto_pairs(teacher, student, shape):
            click.echo(f"  {t_path} -> {s_path}")
        return
    if input_shape:
        shape = _parse_shape(input_shape)
    elif model in MODELS:
        shape = tuple(MODELS[model].default_input_shape)
    elif ":" not in model and not model.startswith("torchvision/"):  # a misspelt registry name
        build_model(model, {}, num_classes or 10, (1,))  # raises "unknown model ...; known: ..."
    else:
        raise AutokdError(f"--input-shape is needed for {short_repr(model, 80)} (e.g. --input-shape 3,32,32)")
    net = build_model(model, _parse_kwargs(kwarg_items), num_classes or 10, shape)
    n_params = sum(p.numel() for p in net.parameters())
    _print_layers(f"{model} ({n_params:,} parameters), input {shape}", net, shape)

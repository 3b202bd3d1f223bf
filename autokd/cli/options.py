"""Options shared by several commands."""

from __future__ import annotations

import click

def not_empty(ctx, param, value):
    """A flag given an empty text ('') names nothing: refused, not read as its default."""
    if isinstance(value, str) and not value.strip():
        raise click.BadParameter("is empty; give a value, or leave the flag out for its default",
                                 ctx=ctx, param=param)
    return value


device_option = click.option(
    "--device", default="auto", show_default=True, help="auto (CUDA when present), cpu, cuda or cuda:N."
)

space_option = click.option(
    "--space",
    default="default",
    callback=not_empty,
    show_default=True,
    help="A shipped search space by name (default, layer_search, student_search, cifar100_resnet32x4_resnet8x4, "
         "layer_search_cifar100) or a path to a space file.",
)

threads_option = click.option(
    "--threads", type=click.IntRange(min=1, max=1024), default=None,
    help="Torch CPU threads (default: torch's choice, every core). Small models train fastest on 1; "
         "on a busy machine more threads than free cores can slow training a hundredfold.",
)


def apply_threads(threads) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)

download_option = click.option(
    "--download", is_flag=True,
    help="Let torchvision fetch a missing data set (CIFAR, MNIST, FashionMNIST) into data.root. Off by default: "
         "autokd never downloads unless asked.",
)

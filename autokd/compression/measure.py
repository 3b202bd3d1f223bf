"""What a shipped student costs: parameters, bytes as deployed, MACs and CPU latency."""

from __future__ import annotations

import statistics
import time
import warnings
from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from autokd.compression.quantize import quantized_weights

LATENCY_RUNS = 30
LATENCY_WARMUP = 5
MEASURE_BATCHES = (1, 2)  # a model that cannot run a batch of one (batch statistics, an assert) is measured at 2


@dataclass
class Footprint:
    """A student's size and speed. ``size_bytes`` counts each stored value at its deployed width
    (float32: 4 bytes, int8: 1, int4: 0.5; buffers such as batch-norm statistics included);
    ``macs``: multiply-accumulates for one input; ``latency_ms``: median CPU time of one forward
    at batch 1 on one thread (:data:`LATENCY_RUNS` timed runs after a warm-up). A model that
    cannot run a batch of one is measured at batch 2 (MACs halved, latency of that forward);
    ``None``: the model could not be measured at all (unknown; a warning says why)."""

    params: int
    size_bytes: int
    macs: Optional[int]
    latency_ms: Optional[float]


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def deployed_bytes(model: nn.Module) -> int:
    """Bytes of the trained (not yet converted) model's parameters and buffers as deployed:
    quantized weights at their bit width, the rest at their own element size. Fake-quantization
    state (observers, scales) is not counted except one float scale per quantized channel."""
    from torch.ao.quantization import FakeQuantizeBase
    from torch.ao.quantization.observer import ObserverBase

    bits = quantized_weights(model)
    quant_state = {id(b) for m in model.modules() if isinstance(m, (FakeQuantizeBase, ObserverBase)) for b in m.buffers()}
    total = 0.0
    for name, tensor in model.named_parameters():
        if name in bits:
            total += tensor.numel() * bits[name] / 8 + tensor.shape[0] * 4  # the weights and a scale per channel
        else:
            total += tensor.numel() * tensor.element_size()
    for name, tensor in model.named_buffers():
        if id(tensor) in quant_state or name.endswith("num_batches_tracked"):  # by module type, not by name
            continue
        total += tensor.numel() * tensor.element_size()
    return int(round(total))


def count_macs(model: nn.Module, example: torch.Tensor) -> int:
    """Multiply-accumulates of one forward of ``example`` (one sample) in float."""
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            model(example)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops() // 2)


def latency_ms(model: nn.Module, example: torch.Tensor, runs: int = LATENCY_RUNS) -> float:
    """Median milliseconds of one forward of ``example`` on one CPU thread (model and input on CPU)."""
    threads, was_training = torch.get_num_threads(), model.training
    torch.set_num_threads(1)
    try:
        model.eval()
        times = []
        with torch.no_grad():
            for i in range(LATENCY_WARMUP + runs):
                start = time.perf_counter()
                model(example)
                if i >= LATENCY_WARMUP:
                    times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
        model.train(was_training)
    return 1000 * statistics.median(times)


def footprint(trained: nn.Module, deployed: nn.Module, input_shape) -> Footprint:
    """The footprint of a student: counts from the trained model, MACs and latency of the
    deployed one (on CPU: latency is what a CPU deployment sees, whatever trained it). The models
    are left where they are: one on another device is measured as a CPU copy."""
    cpu_trained, cpu_deployed = on_cpu(trained), on_cpu(deployed)
    macs, problem = at_a_batch_it_takes(lambda x: round(count_macs(cpu_trained, x) / len(x)), input_shape)
    if problem:
        warnings.warn(f"the student's MACs could not be measured ({problem}); recorded as unknown", RuntimeWarning,
                      stacklevel=2)
    latency, problem = at_a_batch_it_takes(lambda x: latency_ms(cpu_deployed, x), input_shape)
    if problem:
        warnings.warn(f"the student's latency could not be measured ({problem}); recorded as unknown",
                      RuntimeWarning, stacklevel=2)
    return Footprint(count_params(cpu_trained), deployed_bytes(cpu_trained), macs, latency)


def at_a_batch_it_takes(measure: Callable[[torch.Tensor], object], input_shape) -> tuple[Optional[object], str]:
    """``measure(x)`` on a zero batch of 1, else of 2 (:data:`MEASURE_BATCHES`): (its value, "") or,
    when the model fails at each, (None, what went wrong at each batch)."""
    errors = []
    for batch in MEASURE_BATCHES:
        try:
            return measure(torch.zeros(batch, *input_shape)), ""
        except Exception as exc:  # anything a user's forward raises: the run's results must not be lost
            text = " ".join(str(exc).split())[:200]
            errors.append(f"a forward at batch {batch} failed: {type(exc).__name__}: {text}")
    return None, "; ".join(errors)


def measurement_problem(model: nn.Module, input_shape) -> str:
    """Why :func:`footprint` could not measure ``model``'s MACs and latency ("" when it can): one
    counted forward at a batch it takes, in eval mode, on the CPU."""
    return at_a_batch_it_takes(lambda x: count_macs(on_cpu(model), x), input_shape)[1]


def on_cpu(model: nn.Module) -> nn.Module:
    """``model`` itself when it is on the CPU, else a copy there (``.to`` would move the caller's model)."""
    tensors = [*model.parameters(), *model.buffers()]
    if all(t.device.type == "cpu" for t in tensors):
        return model
    import copy

    return copy.deepcopy(model).to("cpu")

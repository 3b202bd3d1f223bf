"""Students saved as ``autokd train --save`` writes them and rebuilt with ``autokd.load_student``:
every combination of compression steps loads back and predicts as the trained student did."""

from __future__ import annotations

import pytest
import torch

import autokd
from autokd.compression import deploy
from autokd.compression.saved import save_student
from autokd.config.compression import compression_to_dict
from autokd.config.strategy import strategy_from_dict

ONE_EPOCH = {"epochs": 1, "lr": 0.01, "batch_size": 64, "seed": 0}


@pytest.mark.parametrize("of, bits", [("teacher", 8), ("teacher", 4), ("student", 8), ("student", 4)])
def test_a_pruned_and_quantized_student_loads_and_predicts_as_trained(tiny_prepared, tmp_path, of, bits):
    from autokd.training.run import train_strategy
    from autokd.training.shipping import student_architecture

    prepared = tiny_prepared

    prune = {"amount": 0.5, "of": of, **({"recover_epochs": 1} if of == "student" else {})}
    strategy = strategy_from_dict({"alpha": 0.9, "recipe": ONE_EPOCH,
                                   "compression": {"prune": prune, "quantize": {"bits": bits}}})
    trained = train_strategy(prepared, strategy, evaluate_test=False, measure=False, keep_model=True).model.eval()
    path = tmp_path / "student.pt"  # what `autokd train --save` writes (cli/train_cmd.py's _save_best)
    save_student(path, trained, student_architecture(prepared, strategy), prepared.data.num_classes,
                 prepared.data.input_shape, compression_to_dict(strategy.compression), {})
    x = next(iter(prepared.data.batches("val", 64)))[1].cpu()
    loaded = autokd.load_student(path, deployed=False)
    assert not loaded.training
    with torch.no_grad():
        assert torch.equal(loaded(x), trained(x))
        assert torch.equal(autokd.load_student(path)(x), deploy(trained, strategy.compression)(x))

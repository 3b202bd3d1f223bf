"""Cached stages (teacher assistants, born-again generations): what keys them, and that a run's
cost counts them whether they were trained in this run or loaded from the cache."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from autokd.config.strategy import Strategy, strategy_from_dict
from autokd.training.run import train_strategy
from autokd.training.schemes import assistant
from conftest import TINY_RECIPE

TRAINS = "teacher assistant cnn1d: distilling from the teacher"
LOADS = "teacher assistant cnn1d: from the cache"


def _strategy(scheme: dict, **more) -> Strategy:
    return strategy_from_dict({"alpha": 0.7, "temperature": 3.0, "recipe": TINY_RECIPE, "scheme": scheme, **more})


ASSISTANT = {"kind": "assistant", "model": "cnn1d", "kwargs": {"channels": 8}}
BORN_AGAIN = {"kind": "born_again", "generations": 3}


def _stage_files(root: Path) -> list[Path]:
    return sorted((root / "stages").glob("*.pt"))


def test_students_of_another_size_or_precision_share_the_assistant(tiny_prepared, tmp_path, monkeypatch):
    prepared = replace(tiny_prepared, cache_root=tmp_path)
    weights: list[dict] = []
    real = assistant._assistant

    def spy(job):
        trained = real(job)
        weights.append({k: v.detach().clone() for k, v in trained.model.state_dict().items()})
        return trained

    monkeypatch.setattr(assistant, "_assistant", spy)
    said: list[str] = []
    train_strategy(prepared, _strategy(ASSISTANT), evaluate_test=False, progress=said.append)
    wider = train_strategy(prepared, _strategy(ASSISTANT, student={"channels": 6}), evaluate_test=False,
                           progress=said.append)
    quantized = train_strategy(prepared, _strategy(ASSISTANT, compression={"quantize": {"bits": 8}}),
                               evaluate_test=False, progress=said.append)
    assert [line for line in said if "assistant" in line] == [TRAINS, LOADS, LOADS]
    assert len(_stage_files(tmp_path)) == 1
    assert len(weights) == 3
    for other in weights[1:]:
        assert other.keys() == weights[0].keys()
        assert all(torch.equal(other[k], weights[0][k]) for k in weights[0])
    assert wider.steps == quantized.steps  # same batches; the assistant counted in both


def test_an_assistant_run_costs_the_same_with_a_cold_or_a_warm_cache(tiny_prepared, tmp_path):
    prepared = replace(tiny_prepared, cache_root=tmp_path)
    single = train_strategy(prepared, _strategy({"kind": "single"}), evaluate_test=False)
    said: list[str] = []
    cold = train_strategy(prepared, _strategy(ASSISTANT), evaluate_test=False, progress=said.append)
    warm = train_strategy(prepared, _strategy(ASSISTANT), evaluate_test=False, progress=said.append)
    guided = train_strategy(prepared, _strategy({**ASSISTANT, "teacher_weight": 0.5}), evaluate_test=False,
                            progress=said.append)  # DGKD reusing TAKD's assistant
    assert said == [TRAINS, LOADS, LOADS]
    assert cold.steps == warm.steps == guided.steps == 2 * single.steps


def test_a_born_again_run_costs_the_same_with_a_cold_or_a_warm_cache(tiny_prepared, tmp_path):
    prepared = replace(tiny_prepared, cache_root=tmp_path)
    one = train_strategy(prepared, _strategy({"kind": "single"}), evaluate_test=False)
    said: list[str] = []
    cold = train_strategy(prepared, _strategy(BORN_AGAIN), evaluate_test=False, progress=said.append)
    warm = train_strategy(prepared, _strategy(BORN_AGAIN), evaluate_test=False, progress=said.append)
    two = train_strategy(prepared, _strategy({**BORN_AGAIN, "generations": 2}), evaluate_test=False)
    assert said[2:] == ["born-again generation 1/3: from the cache", "born-again generation 2/3: from the cache"]
    assert cold.steps == warm.steps == 3 * one.steps
    assert two.steps == 2 * one.steps
    assert cold.val_acc == warm.val_acc


def test_a_stage_kept_without_its_steps_is_trained_again(tiny_prepared, tmp_path):
    """A stage file an older autokd wrote (the weights alone): its cost is unknown, so it is
    trained again (and kept with its steps), never counted as free."""
    prepared = replace(tiny_prepared, cache_root=tmp_path)
    cold = train_strategy(prepared, _strategy(ASSISTANT), evaluate_test=False)
    (path,) = _stage_files(tmp_path)
    torch.save(torch.load(path, weights_only=True)["weights"], path)  # the old layout
    said: list[str] = []
    again = train_strategy(prepared, _strategy(ASSISTANT), evaluate_test=False, progress=said.append)
    assert said == [TRAINS] and again.steps == cold.steps
    said.clear()
    train_strategy(prepared, _strategy(ASSISTANT), evaluate_test=False, progress=said.append)
    assert said == [LOADS]


def test_a_stage_trained_on_other_thread_counts_is_kept_apart(tiny_prepared):
    """A born-again generation cached by a 2-thread `train` made the 1-thread search's trial irreproducible
    (13.00 % against the trial's 12.75 %): the result depended on which process filled the cache."""
    from autokd.training.stage_cache import stage_key

    strategy = Strategy(alpha=0.5)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = stage_key(tiny_prepared, strategy, strategy.recipe, "generation 1")
        torch.set_num_threads(2)
        two = stage_key(tiny_prepared, strategy, strategy.recipe, "generation 1")
    finally:
        torch.set_num_threads(threads)
    assert one != two


def test_a_stage_that_cannot_be_written_costs_only_the_stage_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    """A full disk (torch's zip writer says RuntimeError) failed the run, or every search trial, with a
    traceback and left a .tmp file each time; a written stage is readable by the machine's other users."""
    from autokd.training.stage_cache import StageCache

    model = torch.nn.Linear(3, 2)
    cache = StageCache(tmp_path)
    cache.save("written", model, 7)
    assert (tmp_path / "stages" / "written.pt").stat().st_mode & 0o777 == 0o644

    def full_disk(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    monkeypatch.setattr(torch, "save", full_disk)
    cache.save("full", model, 7)
    assert sorted(p.name for p in (tmp_path / "stages").iterdir()) == ["written.pt"]
    assert cache.load("full", torch.nn.Linear(3, 2)) is None

"""Compression in strategies: YAML round trips and errors, training with every step (and with
schemes), the shipped examples, and a student saved by ``autokd train --save`` and rebuilt."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import yaml

import autokd
from autokd.config.strategy import strategy_from_dict, strategy_to_dict
from autokd.errors import ConfigError
from conftest import TINY_RECIPE, TINY_TASK, run_cli, write_config, write_space

KD = {"temperature": 4.0, "alpha": 0.9, "recipe": TINY_RECIPE}
TESTS = Path(__file__).parent  # faulty_models


@pytest.mark.parametrize("compression", [
    {"quantize": {"bits": 8}},
    {"quantize": {"bits": 4}, "prune": {"amount": 0.3, "of": "student", "recover_epochs": 2}},
    {"prune": {"amount": 0.7, "of": "teacher"}},
])
def test_compression_round_trips_yaml(compression):
    strategy = strategy_from_dict({**KD, "compression": compression})
    data = strategy_to_dict(strategy)
    assert data["compression"] == {k: compression[k] for k in ("prune", "quantize") if k in compression}
    assert strategy_from_dict(yaml.safe_load(yaml.safe_dump(data))) == strategy
    assert "compression" not in strategy_to_dict(strategy_from_dict(KD))  # no section: configs read as before


@pytest.mark.parametrize("compression, extra, needles", [
    ({"quantize": {"bits": 2}}, {}, ["strategy.compression.quantize.bits", "8, 4", "2"]),
    ({"quantize": {"bits": True}}, {}, ["strategy.compression.quantize.bits"]),
    ({"prune": {"amount": 0.95}}, {}, ["strategy.compression.prune.amount", "[0, 0.9]"]),
    ({"prune": {"amount": 0.5, "of": "assistant"}}, {}, ["strategy.compression.prune.of", "teacher, student"]),
    ({"prune": {"amount": 0.5, "recover_epochs": 3}}, {}, ["recover_epochs", "of: student"]),
    ({"prune": {"amount": 0.5, "of": "student", "recover_epochs": 0}}, {}, ["recover_epochs", "1 to"]),
    ({"prune": {"amount": 0.5}}, {"student": {"channels": 8}}, ["strategy.student", "prune.of is teacher"]),
    ({"prune": {"amount": 0.5, "of": "student"}}, {"scheme": {"kind": "born_again", "generations": 2, "ensemble": True}},
     ["prune.of is student", "strategy.scheme ships an ensemble", "ensemble: false"]),
    ({"shrink": {}}, {}, ["unknown key strategy.compression.shrink", "prune, quantize"]),
])
def test_bad_compression_is_a_located_error(compression, extra, needles):
    with pytest.raises(ConfigError) as info:
        strategy_from_dict({**KD, **extra, "compression": compression})
    for needle in needles:
        assert needle in str(info.value)


def test_every_compression_trains_and_reports_the_deployed_student():
    from autokd.config.task import task_from_dict
    from autokd.training.run import check_strategy, prepare_task, train_strategy

    prepared = prepare_task(task_from_dict(TINY_TASK), "cpu")
    plain = train_strategy(prepared, strategy_from_dict(KD))
    results = {}
    for name, extra in {
        "int8": {"compression": {"quantize": {"bits": 8}}},
        "pruned_teacher": {"compression": {"prune": {"amount": 0.5, "of": "teacher"}}},
        "pruned_student_int4": {"compression": {"prune": {"amount": 0.5, "of": "student", "recover_epochs": 1},
                                                "quantize": {"bits": 4}}},
        "wider": {"student": {"channels": 8}},
        "born_again_int8": {"compression": {"quantize": {"bits": 8}}, "scheme": {"kind": "born_again"}},
        "mutual_pruned": {"compression": {"prune": {"amount": 0.5, "of": "teacher"}}, "scheme": {"kind": "mutual"}},
    }.items():
        strategy = strategy_from_dict({**KD, **extra})
        check_strategy(prepared, strategy)
        results[name] = train_strategy(prepared, strategy)
        assert 0 <= results[name].val_acc <= 100 and results[name].footprint.latency_ms > 0
    cost = {name: r.footprint for name, r in results.items()}
    assert cost["int8"].params == plain.footprint.params and cost["int8"].size_bytes < 0.6 * plain.footprint.size_bytes
    teacher_params = sum(p.numel() for p in prepared.teacher.parameters())
    assert cost["pruned_teacher"].params < 0.35 * teacher_params
    assert cost["pruned_student_int4"].params < 0.5 * plain.footprint.params
    assert results["pruned_student_int4"].steps == plain.steps + plain.steps // 2  # train, prune, 1 recovery epoch
    assert cost["wider"].params > plain.footprint.params
    assert results["born_again_int8"].steps == 2 * plain.steps


def test_a_strategy_whose_student_kwargs_do_not_build_is_refused():
    from autokd.config.task import task_from_dict
    from autokd.errors import AutokdError
    from autokd.training.run import check_strategy, prepare_task

    prepared = prepare_task(task_from_dict(TINY_TASK), "cpu")
    with pytest.raises(AutokdError, match="channelz"):
        check_strategy(prepared, strategy_from_dict({**KD, "student": {"channelz": 8}}))


def test_shipped_compression_examples_train_save_and_load(tmp_path):
    """qat_int8.yaml and prune_teacher_50.yaml on the tiny task through `autokd train --save`; the
    rebuilt student predicts as the run reported (same test accuracy), int8 kernels included."""
    from autokd.config.task import task_from_dict
    from autokd.data import cache_dir, load_task_data

    examples = Path(autokd.__file__).resolve().parent.parent / "search_spaces" / "examples"
    if not examples.is_dir():
        pytest.skip("examples not present in this install")
    write_space(tmp_path / "tiny.yaml")
    data = load_task_data(task_from_dict(TINY_TASK).data, cache_dir())
    for name in ("qat_int8", "prune_teacher_50"):
        strategy = yaml.safe_load((examples / f"{name}.yaml").read_text())["strategy"]
        write_config(tmp_path / f"{name}.yaml", strategy, "tiny.yaml")
        proc = run_cli("train", "--config", f"{name}.yaml", "--epochs", "2", "--seeds", "2", "--save",
                       f"out/{name}.pt", "--out", f"{name}.json", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert "student:" in proc.stdout and "KiB as deployed" in proc.stdout
        result = json.loads((tmp_path / f"{name}.json").read_text())
        best = max(result["runs"], key=lambda r: r["val_acc"])
        student = autokd.load_student(tmp_path / "out" / f"{name}.pt")
        assert not student.training
        payload = torch.load(tmp_path / "out" / f"{name}.pt", weights_only=True)  # plain data only
        assert payload["meta"]["seed"] == best["seed"]
        with torch.no_grad():
            correct = sum((student(x).argmax(1) == y).sum().item() for _, x, y in data.batches("test", 256))
        assert 100 * correct / len(data.test) == pytest.approx(best["test_acc"], abs=1e-6)
        layer = student.stages[0][0]
        if name == "qat_int8":
            assert type(layer.layer).__module__.startswith("torch.ao.nn.quantized")
        else:
            assert layer.out_channels == TINY_TASK["teacher"]["kwargs"]["channels"] // 2


def test_save_errors(tmp_path):
    write_space(tmp_path / "tiny.yaml")
    write_config(tmp_path / "c.yaml", KD, "tiny.yaml")
    (tmp_path / "adir").mkdir()
    proc = run_cli("train", "--config", "c.yaml", "--save", "adir", cwd=tmp_path)
    assert proc.returncode == 2 and "'--save'" in proc.stderr and "is a directory" in proc.stderr
    assert "Traceback" not in proc.stderr
    (tmp_path / "junk.pt").write_bytes(b"not a student")
    with pytest.raises(ValueError, match="not a readable autokd student"):
        autokd.load_student(tmp_path / "junk.pt")
    torch.save({"format": "other"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an autokd student file"):
        autokd.load_student(tmp_path / "other.pt")
    # the right format tag on a damaged payload: named, not a KeyError or a raw load_state_dict error
    whole = {"format": "autokd-student/1", "model": "cnn1d", "kwargs": {"channels": 4}, "num_classes": 10,
             "input_shape": [1, 40], "compression": {}, "meta": {}, "state_dict": {"fc.weight": torch.zeros(3, 3)}}
    for change, needle in ((dict(compression=None), "its 'compression' is missing, expected a mapping"),
                           (dict(num_classes=True), "its 'num_classes' is bool, expected a whole number"),
                           (dict(state_dict={}), "its state_dict holds no weights"),
                           ({}, "the saved weights do not fit the model 'cnn1d'")):
        payload = {k: v for k, v in {**whole, **change}.items() if v is not None}
        torch.save(payload, tmp_path / "damaged.pt")
        with pytest.raises(ValueError, match=needle.replace("(", r"\(")):
            autokd.load_student(tmp_path / "damaged.pt")
    # a real student's file edited: each was loaded silently as another model, or a raw torch error
    from autokd.models.registry import build_model

    state = build_model("cnn1d", {"channels": 4}, 10, (1, 40)).state_dict()
    real = {**whole, "state_dict": state}
    cut = {k: (v[:7] if k.startswith("fc.") else v) for k, v in state.items()}  # 7 classes' rows, the file says 10
    halved = {k: (v[:2] if k == "stages.0.0.weight" else v) for k, v in state.items()}  # no prune recorded
    for change, needle in ((dict(state_dict=cut), "do not fit the model"), (dict(state_dict=halved), "do not fit"),
                           (dict(compression={"quantize": {"bits": 3}}), "compression.quantize.bits must be one of"),
                           (dict(compression={"prune": {"amount": 1.5, "of": "student"}}), "amount must be in"),
                           (dict(input_shape=[1, -5]), "input_shape [1, -5] or num_classes 10 is no model's"),
                           (dict(input_shape=["a", 40]), "input_shape ['a', 40]"), (dict(num_classes=0), "num_classes 0")):
        torch.save({**real, **change}, tmp_path / "edited.pt")
        with pytest.raises(ValueError, match=re.escape(needle)):
            autokd.load_student(tmp_path / "edited.pt")
    torch.save(real, tmp_path / "edited.pt")
    assert autokd.load_student(tmp_path / "edited.pt")(torch.zeros(1, 1, 40)).shape == (1, 10)


def test_saving_a_born_again_ensemble_is_refused_before_training(tmp_path):
    write_space(tmp_path / "tiny.yaml")
    write_config(tmp_path / "c.yaml", {**KD, "scheme": {"kind": "born_again", "ensemble": True}}, "tiny.yaml")
    proc = run_cli("train", "--config", "c.yaml", "--save", "s.pt", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: --save") and "epoch" not in proc.stderr
    assert not (tmp_path / "s.pt").exists()


def _train_faulty_student(tmp_path, model: str):
    """`autokd train` of a one-epoch student ``faulty_models:MODEL``; its stdout and its results file."""
    task = {**TINY_TASK, "student": {"model": f"faulty_models:{model}", "kwargs": {"channels": 4}}}
    write_space(tmp_path / "tiny.yaml", task=task)
    write_config(tmp_path / "c.yaml", KD, "tiny.yaml")
    proc = run_cli("train", "--config", "c.yaml", "--epochs", "1", "--out", "r.json", cwd=tmp_path,
                   env={"PYTHONPATH": str(TESTS)})
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout, json.loads((tmp_path / "r.json").read_text())["runs"][0]["footprint"]


def test_a_student_that_refuses_a_batch_of_one_trains_and_reports_its_footprint(tmp_path):
    """Its footprint is measured at batch 2 (was: a traceback from the MAC count after training, the run lost)."""
    out, footprint = _train_faulty_student(tmp_path, "NoBatchOfOne")
    assert re.search(r"student: [\d,]+ parameters, .* [\d,]+ MACs, [\d.]+ ms", out), out
    assert footprint["macs"] > 0


def test_a_student_whose_macs_cannot_be_counted_trains_and_says_they_are_unknown(tmp_path):
    """The run is kept and its summary line says 'MACs unknown' (the line itself was a TypeError)."""
    from autokd.search.leaderboard import _size_text
    from autokd.search.objectives import violations

    out, footprint = _train_faulty_student(tmp_path, "NotCountable")
    assert re.search(r"student: [\d,]+ parameters, .* MACs unknown, [\d.]+ ms", out), out
    assert footprint["macs"] is None
    unmeasured = {"params": 10, "size_bytes": 2048, "macs": None, "latency_ms": None}
    assert _size_text(unmeasured).split() == ["10", "2.0", "-"]
    assert violations({"max_latency_ms": 5, "max_macs": 9}, unmeasured) == {"max_latency_ms": 1.0, "max_macs": 1.0}


@pytest.mark.parametrize("objectives, constraints", [(["accuracy", "macs"], {}), (["accuracy"], {"max_latency_ms": 5})])
def test_a_search_on_macs_or_latency_refuses_a_student_they_cannot_be_measured_on(tmp_path, objectives, constraints):
    from autokd.errors import AutokdError
    from autokd.search.binding import bind_space
    from autokd.search.space_file import load_space_file

    task = {**TINY_TASK, "student": {"model": "faulty_models:NotCountable", "kwargs": {"channels": 4}}}
    space = {"pair_losses": ["none"], "relation_losses": [], "objectives": objectives, "constraints": constraints}
    with pytest.raises(AutokdError, match=r"^the (objective macs|constraint max_latency_ms) needs the student's MACs "
                                          r"or latency, but the student 'faulty_models:NotCountable' cannot be "
                                          r"measured \(.*dispatch mode\); drop it or use params or size$"):
        bind_space(load_space_file(write_space(tmp_path / "s.yaml", task=task, space=space)))
    sized = {**space, "objectives": ["accuracy", "params"], "constraints": {}}  # counted, not measured: no forward
    bind_space(load_space_file(write_space(tmp_path / "p.yaml", task=task, space=sized)))


def test_a_space_that_prunes_a_student_pruning_cannot_apply_to_is_refused_up_front(tmp_path):
    """Every trial failed on it (`the model has no layer to prune besides its classifier`)."""
    from autokd.errors import AutokdError
    from autokd.search.binding import bind_space
    from autokd.search.space_file import load_space_file

    task = {**TINY_TASK, "student": {"model": "faulty_models:OnlyClassifier"}}
    space = {"pair_losses": ["none"], "relation_losses": [], "prune": {"amount": [0.0, 0.5], "of": "student"}}
    with pytest.raises(AutokdError, match=r"^space.student/prune: the student does not fit the space: prune amount 0.5: "
                                          r"the model has no layer to prune besides its classifier$"):
        bind_space(load_space_file(write_space(tmp_path / "s.yaml", task=task, space=space)))
    prunable = {**TINY_TASK, "student": {"model": "cnn1d", "kwargs": {"channels": 4}}}
    bind_space(load_space_file(write_space(tmp_path / "p.yaml", task=prunable, space=space)))

"""Wider spaces: modern logit losses and standardization, layer search, warm starts from the
baselines, spaces that refer to a shipped task."""

from __future__ import annotations

import copy
import math

import optuna
import pytest
import torch
import yaml
from conftest import TINY_TASK, run_cli, write_space

from autokd.config.baselines import baselines_that_adapt
from autokd.config.strategy import PairLoss, Strategy
from autokd.search.binding import bind_space
from autokd.search.ledger import counts
from autokd.search.space_file import load_space_file
from autokd.search.warm_start import WARM_START_ATTR, params_for

optuna.logging.set_verbosity(optuna.logging.WARNING)
STAGES = ["stages.0", "stages.1", "stages.2"]


def _space(tmp_path, name="s.yaml", task=None, **space):
    return bind_space(load_space_file(write_space(tmp_path / name, task=task, space=space)))


def _ask(space, n=40, seed=0):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed), direction="maximize")
    out = []
    for _ in range(n):
        trial = study.ask()
        out.append((trial, space.suggest(trial)))
        study.tell(trial, 1.0)
    return out


# --- logit losses and standardization ------------------------------------------------------


def test_modern_logit_losses_have_their_parameters_and_standardization_only_where_it_applies(tmp_path):
    space = _space(tmp_path, logit_losses=["kd", "dist", "ttm"], logit_standardization=[False, True],
                   pair_losses=["none"], relation_losses=[])
    names = [d.name for d in space.dimensions()]
    assert names == ["temperature", "alpha", "logit_loss", "logit_standardization", "logit[dist].beta",
                     "logit[dist].gamma"]
    seen = set()
    for trial, strategy in _ask(space):
        seen.add((strategy.logit_loss, strategy.logit_standardization))
        assert ("logit_standardization" in trial.params) == (strategy.logit_loss != "ttm")
        if strategy.logit_loss == "dist":
            assert strategy.logit_params == {"beta": trial.params["logit[dist].beta"],
                                             "gamma": trial.params["logit[dist].gamma"]}
        strategy.validate()
    assert {("kd", True), ("kd", False), ("dist", True), ("ttm", False)} <= seen
    fixed = _space(tmp_path, "f.yaml", logit_losses=["kd", "wttm"], logit_standardization=True, pair_losses=["none"],
                   relation_losses=[])
    assert {(s.logit_loss, s.logit_standardization) for _, s in _ask(fixed, 20)} == {("kd", True), ("wttm", False)}


# --- layer search -----------------------------------------------------------------------------


def test_layer_search_lets_each_student_stage_match_any_teacher_stage(tmp_path):
    space = _space(tmp_path, pairs="search", pair_losses=["none", "fitnet", "at"], relation_losses=[])
    assert space.matches == [(s, STAGES) for s in STAGES]
    assert space.pairs == [(s, s) for s in STAGES]  # the equal-resolution pairs stay the baselines' reference
    names = [d.name for d in space.dimensions()]
    assert names[4:7] == ["match[stages.0].teacher", "match[stages.0].loss", "match[stages.0].scale"]
    assert space.dimensions()[4].choices == ["none", *STAGES]
    crossing = set()
    for trial, strategy in _ask(space, 60):
        for pair in strategy.pairs:
            crossing.add(pair.teacher != pair.student)
        off = [s for s in STAGES if trial.params[f"match[{s}].teacher"] == "none"]
        assert all(f"match[{s}].loss" not in trial.params for s in off)  # a switched-off match asks nothing more
    assert crossing == {True, False}
    assert space.teacher_paths() == STAGES
    listed = _space(tmp_path, "l.yaml", pairs={"student": ["stages.2"], "teacher": ["stages.0", "stages.1"]},
                    pair_losses=["fitnet"], relation_losses=[])
    assert listed.matches == [("stages.2", ["stages.0", "stages.1"])]


def test_a_cross_resolution_pair_trains(tiny_prepared):
    from autokd.training.run import train_strategy

    strategy = Strategy(alpha=0.5, pairs=[PairLoss("stages.0", "stages.2", loss, weight) for loss, weight in
                                           (("fitnet", 1.0), ("at", 10.0), ("nst", 1.0), ("sp", 10.0))])
    strategy.recipe.epochs = 1
    # the teacher's first stage is 4x the resolution of the student's last: projector and pooling bridge it
    result = train_strategy(tiny_prepared, strategy.validate(), evaluate_test=False)
    assert math.isfinite(result.history[-1].train_loss) and 0 <= result.val_acc <= 100


def test_layer_search_binds_on_the_cifar_pair():
    space = bind_space(load_space_file("layer_search_cifar100"))
    students = [s for s, _ in space.matches]
    assert students == ["layer1", "layer2", "layer3"] and space.matches[0][1] == ["layer1", "layer2", "layer3"]
    assert "match[layer3].teacher" in [d.name for d in space.dimensions()]


def test_a_layer_search_runs_on_the_tiny_task(tmp_path):
    path = write_space(tmp_path / "ls.yaml", space={"pairs": "search", "pair_losses": ["none", "fitnet", "at", "sp"],
                                                    "relation_losses": ["pkt"], "pruning": False})
    out = run_cli("search", "--space", path, "--budget", "4", "--workers", "0", "--storage", tmp_path / "s.db",
                  "--name", "ls", "--sampler", "tpe")
    assert out.returncode == 0, out.stderr
    study = optuna.load_study(study_name="ls", storage=f"sqlite:///{tmp_path / 's.db'}")
    assert counts(study).complete == 4


def test_a_loss_that_cannot_take_a_pair_is_refused_with_the_pair_named(tmp_path):
    from autokd.errors import AutokdError

    with pytest.raises(AutokdError, match="pair embedding -> stages.1 cannot take at: at needs feature maps"):
        _space(tmp_path, pairs={"student": ["stages.1"], "teacher": ["embedding"]}, pair_losses=["fitnet", "at"])


# --- warm start -------------------------------------------------------------------------------


def test_the_baselines_that_fit_the_default_space():
    space = bind_space(load_space_file("default"))
    baselines, left_out = baselines_that_adapt(None, space.pairs, space.base_recipe)
    fits = {b.name for b in baselines if params_for(space, b.strategy) is not None}
    assert left_out == []
    # crd is not among the default space's relation losses; combined puts two losses on one pair
    assert fits == {b.name for b in baselines} - {"crd", "combined"}
    kd = next(b for b in baselines if b.name == "kd")
    params = params_for(space, kd.strategy)
    assert params["temperature"] == 4.0 and params["alpha"] == 0.9 and params["logit_loss"] == "kd"
    assert space.build(lambda name, default: params.get(name, default)) == kd.strategy


def test_warm_start_queues_the_fitting_baselines_first(tmp_path):
    path = write_space(tmp_path / "w.yaml", space={"logit_losses": ["kd", "dkd"], "pair_losses": ["none", "fitnet", "at"],
                                                   "relation_losses": ["rkd"], "pruning": False})
    out = run_cli("search", "--space", path, "--budget", "7", "--workers", "0", "--storage", tmp_path / "w.db",
                  "--name", "w", "--warm-start", "baselines", "--sampler", "random")
    assert out.returncode == 0, out.stderr
    fitting = ["student", "kd", "kd_mild", "fitnet", "at", "rkd", "dkd"]  # the space has no nst, sp, pkt, crd, ...
    assert f"warm start: 7 baseline(s) queued as the first trials ({', '.join(fitting)})" in out.stderr
    assert "not expressible in this space: nst, sp, pkt, crd, combined, kd_ls, dkd_ls, dist, wttm" in out.stderr
    study = optuna.load_study(study_name="w", storage=f"sqlite:///{tmp_path / 'w.db'}")
    assert [t.user_attrs.get(WARM_START_ATTR) for t in study.trials] == fitting
    assert counts(study).finished == 7  # the warm start counts toward the budget


# --- space files --------------------------------------------------------------------------------


def test_a_space_file_may_name_its_task_and_the_study_stores_it_inline(tmp_path):
    (tmp_path / "task.yaml").write_text(yaml.safe_dump({"task": copy.deepcopy(TINY_TASK)}))
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "space.yaml"
    path.write_text(yaml.safe_dump({"task": "../task.yaml", "space": {"pair_losses": ["none"]}}))
    space_file = load_space_file(path)
    assert space_file.task.name == TINY_TASK["name"]
    assert yaml.safe_load(space_file.text)["task"] == TINY_TASK
    assert load_space_file("layer_search").task.name == load_space_file("default").task.name


def test_standardized_logits_go_through_the_distiller(tiny_prepared):
    from autokd.training.students import build_distiller

    strategy = Strategy(alpha=0.7, temperature=2.0, logit_loss="dist", logit_standardization=True).validate()
    distiller = build_distiller(tiny_prepared, strategy, seed=0)
    x, y = tiny_prepared.data.train.x[:8], tiny_prepared.data.train.y[:8]
    out = distiller(x, y)
    assert set(out.parts) == {"ce", "dist"} and torch.isfinite(out.total)


def test_a_range_of_one_value_counts_as_one_strategy(tmp_path):
    """temperature {low: 4, high: 4} made the space continuous: the search proposed the one strategy
    100 times over (100 void duplicates) before stopping as 'exhausted'."""
    space = _space(tmp_path, temperature={"low": 4, "high": 4}, alpha=0.5, logit_losses=["kd"], pair_losses=["none"],
                   relation_losses=[])
    assert space.size() == 1
    assert _space(tmp_path, "t.yaml", temperature={"low": 4, "high": 5}, alpha=0.5, logit_losses=["kd"],
                  pair_losses=["none"], relation_losses=[]).size() is None


def test_logit_knobs_searched_with_alpha_fixed_at_zero_are_warned_about(tmp_path):
    """Every trial trained the same cross-entropy student, each counted as a strategy of its own."""
    with pytest.warns(RuntimeWarning, match=r"space\.alpha is 0: .* the temperature, logit_losses the space searches"):
        _space(tmp_path, temperature={"low": 1, "high": 8}, alpha=0, logit_losses=["kd", "dkd"],
               pair_losses=["none", "fitnet"], relation_losses=[])

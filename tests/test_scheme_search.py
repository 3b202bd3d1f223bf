"""Schemes as a search-space choice: parameters, strategies, warm start, and whole searches
(in-process and on Ray) that train every scheme, resume, export and train the winner."""

from __future__ import annotations

from dataclasses import replace

import optuna
import pytest
import yaml

from autokd.config.baselines import Baseline
from autokd.config.schemes import AssistantScheme, BornAgainScheme, CohortScheme, SingleScheme
from autokd.config.strategy import Recipe, Strategy, strategy_from_dict
from autokd.errors import ConfigError
from autokd.search.ledger import STEPS_ATTR, STRATEGY_ATTR, counts
from autokd.search.space import space_from_dict
from autokd.search.strategy_space import SearchSpace
from autokd.search.warm_start import params_for
from conftest import run_cli, write_space

ALL = ["single", "born_again", "mutual", "online", "assistant"]
# a finite space: one strategy per scheme but online, which has two (peers 1 or 2)
FINITE = {"temperature": 4.0, "alpha": 0.5, "logit_losses": ["kd"], "pair_losses": ["none"], "relation_losses": [],
          "weight_scale": 1.0, "pruning": False, "schemes": ALL,
          "scheme_knobs": {"born_again": {"generations": [2]}, "mutual": {"peers": [1]}, "online": {"peers": [1, 2]},
                           "assistant": {"model": "cnn1d", "kwargs": {"channels": 8}}}}


def _space(spec: dict) -> SearchSpace:
    return SearchSpace(space_from_dict(spec), [], Recipe(epochs=2))


def test_schemes_default_to_single_and_add_no_parameter():
    space = _space({})
    assert not [d for d in space.dimensions() if d.name.startswith("scheme")]
    study = optuna.create_study()
    assert space.suggest(study.ask()).scheme == SingleScheme()


def test_scheme_parameters_are_fixed_and_conditional_on_the_kind():
    space = _space({"schemes": ALL, "scheme_knobs": {"online": {"temperature": {"low": 1, "high": 8, "log": True}},
                                                     "assistant": {"model": "cnn1d",
                                                                   "kwargs": [{"channels": 8}, {"channels": 12}]}}})
    names = [d.name for d in space.dimensions() if d.name.startswith("scheme")]
    assert names == ["scheme", "scheme[born_again].generations", "scheme[mutual].peers", "scheme[online].peers",
                     "scheme[online].temperature", "scheme[assistant].kwargs"]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    kinds = set()
    for _ in range(40):
        trial = study.ask()
        strategy = space.suggest(trial)
        kinds.add(strategy.scheme.kind)
        asked = {n for n in trial.params if n.startswith("scheme[")}
        assert all(n.startswith(f"scheme[{strategy.scheme.kind}]") for n in asked)
        if strategy.scheme.kind == "online":
            assert 1 <= strategy.scheme.temperature <= 8 and strategy.scheme.peers in (1, 2)
        if strategy.scheme.kind == "born_again":
            assert strategy.scheme.generations in (2, 3)  # the search default
        if strategy.scheme.kind == "assistant":  # a mapping knob's choices travel as JSON text
            assert trial.params["scheme[assistant].kwargs"] in ('{"channels": 8}', '{"channels": 12}')
            assert strategy.scheme.kwargs in ({"channels": 8}, {"channels": 12})
        study.tell(trial, 0.0)
    assert kinds == set(ALL)


def test_a_finite_space_with_schemes_counts_each_scheme_s_strategies():
    assert _space(FINITE).size() == 6


def test_a_scheme_baseline_is_placed_in_a_space_that_holds_it():
    space = _space({**FINITE})
    ta = Strategy(temperature=4.0, alpha=0.5, scheme=AssistantScheme(model="cnn1d", kwargs={"channels": 8}),
                  recipe=Recipe(epochs=2))
    assert params_for(space, ta) == {"scheme": "assistant"}
    assert params_for(space, replace(ta, scheme=AssistantScheme(model="cnn1d", kwargs={"channels": 9}))) is None
    ban = Strategy(temperature=4.0, alpha=0.5, scheme=BornAgainScheme(generations=2), recipe=Recipe(epochs=2))
    assert params_for(space, ban) == {"scheme": "born_again"}
    online2 = Strategy(temperature=4.0, alpha=0.5, scheme=CohortScheme(kind="online", peers=2), recipe=Recipe(epochs=2))
    assert params_for(space, online2) == {"scheme": "online", "scheme[online].peers": 2}
    for misfit in (BornAgainScheme(generations=3), CohortScheme(kind="mutual", peers=2),
                   CohortScheme(kind="online", temperature=3.0)):
        assert params_for(space, Strategy(temperature=4.0, alpha=0.5, scheme=misfit, recipe=Recipe(epochs=2))) is None
    assert params_for(_space({}), ban) is None  # a space without schemes cannot express it
    assert isinstance(Baseline("ban", "", ban), Baseline)


@pytest.mark.parametrize("space, needle", [
    ({"schemes": ["single", "teacher_assistant"]}, "space.schemes: unknown scheme 'teacher_assistant'"),
    ({"schemes": []}, "space.schemes must list at least one"),
    ({"schemes": ["mutual", "mutual"]}, "lists a scheme twice"),
    ({"scheme_knobs": {"mutual": {"peers": [1]}}}, "space.scheme_knobs.mutual: 'mutual' is not one of the space's schemes"),
    ({"schemes": ["mutual"], "scheme_knobs": {"mutual": {"peers": [1, 9]}}}, "space.scheme_knobs.mutual.peers must be"),
    ({"schemes": ["mutual"], "scheme_knobs": {"mutual": {"peers": []}}}, "must list one or more distinct values"),
    ({"schemes": ["mutual"], "scheme_knobs": {"mutual": {"peerz": 1}}}, "unknown key space.scheme_knobs.mutual.peerz"),
    ({"schemes": ["online"], "scheme_knobs": {"online": {"temperature": {"low": 0, "high": 4}}}}, "temperature must be > 0"),
    ({"schemes": ["online"], "scheme_knobs": {"online": {"weight": {"low": 4, "high": 1}}}}, "empty range"),
    ({"schemes": ["online"], "scheme_knobs": {"online": {"peer_model": [None, "cnn1d"], "peer_kwargs": {"channels": 4}}}},
     "peer_kwargs is set but peer_model is not"),
    # a combination of choices is named (the message read as if peer_model were not set at all)
    ({"schemes": ["mutual"], "scheme_knobs": {"mutual": {"peer_model": [None, "cnn1d"],
                                                         "peer_kwargs": [{"channels": 4}, {"channels": 8}]}}},
     "space.scheme_knobs.mutual: the choices peers 1, peer_model None, peer_kwargs {'channels': 4} together make no "
     "valid mutual scheme"),
    ({"schemes": ["online"], "scheme_knobs": {"online": {"temperature": [2, 2.0]}}}, "must list one or more distinct"),
    ({"schemes": ["single", "assistant"]}, "^space.scheme_knobs.assistant.model is missing: name the assistant's model"),
    ({"schemes": ["born_again"], "scheme_knobs": {"born_again": {"generations": [[2]]}}}, "a choice must be"),
    # a value bad on its own is named alone (it was "the choices temperature 200.0, peers 1 together ...",
    # peers 1 being a default the user never wrote)
    ({"schemes": ["online"], "scheme_knobs": {"online": {"temperature": {"low": 1, "high": 200}}}},
     "^space.scheme_knobs.online.temperature must be > 0 and at most 100, got 200"),
])
def test_bad_scheme_spaces_are_config_errors(space, needle):
    with pytest.raises(ConfigError, match=needle.replace("[", r"\[").replace("(", r"\(")):
        space_from_dict(space)


def test_a_bad_peer_model_is_refused_before_the_study_is_created(tmp_path):
    space = write_space(tmp_path / "s.yaml", space={**FINITE, "schemes": ["mutual"],
                                                    "scheme_knobs": {"mutual": {"peer_model": "torch.nn:Flatten"}}})
    out = run_cli("search", "--space", space, "--budget", "2", "--workers", "0", "--storage", tmp_path / "s.db")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "mutual peer model 'torch.nn:Flatten'" in out.stderr
    assert not (tmp_path / "s.db").exists()
    space = write_space(tmp_path / "a.yaml", space={**FINITE, "schemes": ["assistant"], "scheme_knobs": {
        "assistant": {"model": "cnn1d", "kwargs": [{"channels": 8}, {"channelz": 8}]}}})
    out = run_cli("search", "--space", space, "--budget", "2", "--workers", "0", "--storage", tmp_path / "s.db")
    assert out.returncode == 2 and "Traceback" not in out.stderr and "channelz" in out.stderr, out.stderr
    assert not (tmp_path / "s.db").exists()


@pytest.mark.parametrize("scheme, knobs, needle", [
    ("ensemble", {"feature_teacher": [0, 1]}, "ensemble.feature_teacher 1 (task.teachers[0]: cnn1d"),
    ("assistant", {"model": "cnn1d", "kwargs": [{"channels": 8}, {"channels": 8, "depth": 2}]},
     "the assistant cnn1d {'channels': 8, 'depth': 2}"),
])
def test_a_knob_choice_that_puts_a_model_without_the_pairs_layers_in_the_teacher_s_place_is_refused(
        tmp_path, scheme, knobs, needle):
    """A feature teacher or assistant of depth 2 has no stages.2: every trial drawing it failed."""
    from autokd.errors import AutokdError
    from autokd.search.binding import bind_space
    from autokd.search.space_file import load_space_file
    from conftest import TINY_TEACHERS_TASK

    task = {**TINY_TEACHERS_TASK, "teachers": [{**TINY_TEACHERS_TASK["teachers"][0],
                                                 "kwargs": {"channels": 8, "depth": 2}}]}
    space = {**FINITE, "pair_losses": ["none", "fitnet"], "schemes": [scheme], "scheme_knobs": {scheme: knobs}}
    with pytest.raises(AutokdError, match=r"takes the teacher's place in the pairs but does not fit them: .*"
                                          r"no layer 'stages.2'") as info:
        bind_space(load_space_file(write_space(tmp_path / "s.yaml", task=task, space=space)))
    assert needle in str(info.value)
    fitting = {**space, "scheme_knobs": {scheme: {k: (v[:1] if isinstance(v, list) else v) for k, v in knobs.items()}}}
    bind_space(load_space_file(write_space(tmp_path / "ok.yaml", task=task, space=fitting)))


def _trained_kinds(study) -> list[str]:
    return sorted(strategy_from_dict(t.user_attrs[STRATEGY_ATTR]).scheme.kind
                  for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE)


def test_an_in_process_search_trains_every_scheme_and_records_each_cost(tmp_path):
    space = write_space(tmp_path / "s.yaml", space=FINITE)
    db = tmp_path / "s.db"
    env = {"AUTOKD_CACHE": str(tmp_path / "cache")}  # no stage another test cached: every cost is paid
    out = run_cli("search", "--space", space, "--budget", "6", "--workers", "0", "--storage", db, "--name", "all",
                  "--sampler", "random", env=env)
    assert out.returncode == 0, out.stderr
    study = optuna.load_study(study_name="all", storage=f"sqlite:///{db}")
    assert _trained_kinds(study) == sorted(["single", "born_again", "mutual", "online", "online", "assistant"])
    steps = {}
    for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        s = strategy_from_dict(t.user_attrs[STRATEGY_ATTR]).scheme
        steps[(s.kind, getattr(s, "peers", None))] = t.user_attrs[STEPS_ATTR]
    one = steps[("single", None)]
    assert steps[("born_again", None)] == 2 * one and steps[("mutual", 1)] == 2 * one
    assert steps[("online", 1)] == 2 * one and steps[("online", 2)] == 3 * one
    assert steps[("assistant", None)] == 2 * one
    assert "steps" in out.stdout  # the leaderboard shows each strategy's cost


def test_a_ray_search_with_schemes_resumes_exports_and_trains_the_winner(tmp_path):
    space = write_space(tmp_path / "s.yaml", space={**FINITE, "alpha": {"low": 0.1, "high": 0.9}})
    db = tmp_path / "r.db"
    out = run_cli("search", "--space", space, "--budget", "3", "--workers", "2", "--storage", db, "--name", "ray",
                  "--sampler", "tpe")
    assert out.returncode == 0, out.stderr
    resumed = run_cli("resume", "ray", "--storage", db, "--budget", "6")
    assert resumed.returncode == 0, resumed.stderr
    study = optuna.load_study(study_name="ray", storage=f"sqlite:///{db}")
    c = counts(study)
    assert c.finished == 6 and c.running == 0
    assert all(t.user_attrs.get(STEPS_ATTR, 0) > 0 for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE)
    exported = tmp_path / "best.yaml"
    assert run_cli("export", "ray", "--storage", db, "-o", exported).returncode == 0
    config = yaml.safe_load(exported.read_text())
    best = max((t for t in study.trials if t.value is not None), key=lambda t: (t.value, -t.number))
    assert config["strategy"].get("scheme", {"kind": "single"}) == best.user_attrs[STRATEGY_ATTR].get("scheme", {"kind": "single"})
    trained = run_cli("train", "--config", exported, "--epochs", "1")
    assert trained.returncode == 0 and "Traceback" not in trained.stderr, trained.stderr


def test_compare_measures_scheme_baselines_with_their_cost(tmp_path):
    """Baselines may carry a scheme; each run records its cost and the report plots accuracy against it."""
    import pandas as pd

    space = write_space(tmp_path / "s.yaml", space={**FINITE, "schemes": ["single"], "scheme_knobs": {}})
    db = tmp_path / "c.db"
    assert run_cli("search", "--space", space, "--budget", "1", "--workers", "0", "--storage", db,
                   "--name", "c").returncode == 0
    baselines = tmp_path / "b.yaml"
    baselines.write_text(yaml.safe_dump({"baselines": {
        "student": {"alpha": 0.0},
        "ban": {"description": "born-again, 2 generations", "temperature": 4.0, "alpha": 0.9,
                "scheme": {"kind": "born_again", "generations": 2}},
        "dml": {"description": "deep mutual learning, 1 peer", "alpha": 0.0, "scheme": {"kind": "mutual", "peers": 1}},
    }}))
    out = run_cli("compare", "c", "--storage", db, "--top-k", "1", "--seeds", "1", "--epochs", "1",
                  "--baselines", baselines, "--out", tmp_path / "report", "--workers", "0")
    assert out.returncode == 0, out.stderr
    runs = pd.read_csv(tmp_path / "report" / "results.csv").set_index("strategy")
    one = runs.loc["student", "steps"]
    assert runs.loc["ban", "steps"] == 2 * one and runs.loc["dml", "steps"] == 2 * one
    assert (tmp_path / "report" / "cost.png").is_file()
    assert "cost.png" in (tmp_path / "report" / "report.md").read_text()


def test_an_ensemble_search_needs_the_task_s_teachers_and_runs_with_them(tmp_path):
    import copy

    from conftest import TINY_TASK

    space = {**FINITE, "schemes": ["single", "ensemble"], "scheme_knobs": {"ensemble": {"weights": ["equal", "confidence"]}}}
    lonely = write_space(tmp_path / "one.yaml", space=space)
    out = run_cli("search", "--space", lonely, "--budget", "2", "--workers", "0", "--storage", tmp_path / "e.db")
    assert out.returncode == 2 and "the task has one teacher" in out.stderr and not (tmp_path / "e.db").exists()
    task = copy.deepcopy(TINY_TASK)
    task["teachers"] = [{"model": "cnn1d", "kwargs": {"channels": 8}, "recipe": {"epochs": 2, "seed": 1}}]
    wrong = write_space(tmp_path / "w.yaml", task=task, space={**space, "scheme_knobs": {"ensemble": {"weights": [1, 2, 3]}}})
    out = run_cli("search", "--space", wrong, "--budget", "2", "--workers", "0", "--storage", tmp_path / "e.db")
    assert out.returncode == 2 and "lists 3 numbers for 2 teachers" in out.stderr and not (tmp_path / "e.db").exists()
    assert out.stderr.startswith("error: space.scheme_knobs.ensemble: weights lists")  # (was: "schemes lists ensemble,
    # but feature_teacher is 5, but the task has ..." with no key path)
    good = write_space(tmp_path / "g.yaml", task=task, space=space)
    out = run_cli("search", "--space", good, "--budget", "3", "--workers", "0", "--storage", tmp_path / "e.db",
                  "--name", "e", "--sampler", "random")
    assert out.returncode == 0, out.stderr
    assert "teacher 2 (cnn1d" in out.stderr  # the further teacher, loaded once before the trials
    study = optuna.load_study(study_name="e", storage=f"sqlite:///{tmp_path / 'e.db'}")
    assert "ensemble" in _trained_kinds(study) and counts(study).finished == 3


def test_scheme_baselines_adapt_to_the_task_or_are_left_out(tiny_task, tmp_path):
    import copy

    from autokd.config import task_from_dict
    from autokd.config.baseline_schemes import DoesNotFit, assistant_between
    from autokd.config.baselines import baselines_that_adapt, load_baselines
    from autokd.config.task import ModelSpec
    from conftest import TINY_TASK

    recipe = Recipe(epochs=2)
    kept, left = baselines_that_adapt("scheme_baselines", [], recipe, tiny_task)
    by_name = {b.name: b for b in kept}
    # the tiny teacher is cnn1d(channels 16, depth 3), the student cnn1d(channels 4), whose depth is
    # cnn1d's default 3: one architecture at two sizes (was: left out, its keywords compared as written);
    # the tiny task has one teacher, so no ensemble
    assert left == ["multi_teacher"]
    assert set(by_name) == {"student", "kd", "takd", "dgkd", "ban", "dml", "kdcl"}
    assert by_name["takd"].strategy.scheme.kwargs == {"channels": 10, "depth": 3}
    task = copy.deepcopy(TINY_TASK)
    task["student"]["kwargs"] = {"channels": 4, "depth": 3}
    task["teachers"] = [{"model": "cnn1d", "kwargs": {"channels": 8}}]
    two = task_from_dict(task)
    every = {b.name: b for b in load_baselines("scheme_baselines", [], recipe, two)}
    assert every["takd"].strategy.scheme.kwargs == {"channels": 10, "depth": 3}
    assert every["dgkd"].strategy.scheme.teacher_weight == 1.0 and every["multi_teacher"].strategy.scheme.kind == "ensemble"
    assert every["ban"].strategy.recipe == recipe
    with pytest.raises(DoesNotFit, match="not one architecture"):
        assistant_between(ModelSpec("cnn1d", {"channels": 8}), ModelSpec("mlp", {"channels": 4}), "x")
    with pytest.raises(DoesNotFit, match="same size"):
        assistant_between(ModelSpec("cnn1d", {"channels": 8}), ModelSpec("cnn1d", {"channels": 8}), "x")
    with pytest.raises(DoesNotFit, match="not a size"):
        assistant_between(ModelSpec("m", {"act": "relu"}), ModelSpec("m", {"act": "gelu"}), "x")
    with pytest.raises(DoesNotFit, match="not one architecture"):  # a keyword on one side, no default known
        assistant_between(ModelSpec("pkg.m:make", {"width": 8, "depth": 2}), ModelSpec("pkg.m:make", {"width": 4}), "x")
    malformed = tmp_path / "bad.yaml"  # a malformed entry stays an error, it is not quietly left out
    malformed.write_text("baselines:\n  ban: {alpha: 0.9, scheme: {kind: born_again, generation: 2}}\n")
    with pytest.raises(ConfigError, match="unknown key .*generation"):
        baselines_that_adapt(malformed, [], recipe, tiny_task)

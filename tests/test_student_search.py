"""The student in the space (kwargs, quantization, pruning), footprints recorded per trial,
constraints, and multi-objective studies: Pareto front, resume, export of a front point."""

from __future__ import annotations

import optuna
import pytest
import yaml

from autokd.config.strategy import Recipe
from autokd.errors import ConfigError
from autokd.search.ledger import FOOTPRINT_ATTR, STRATEGY_ATTR, counts
from autokd.search.objectives import pareto_front
from autokd.search.space import space_from_dict
from autokd.search.strategy_space import SearchSpace
from conftest import TINY_TASK, run_cli, write_space

TINY_STUDENT_CHANNELS = TINY_TASK["student"]["kwargs"]["channels"]

# one strategy per student: only the shipped knobs are searched
SHIPPED = {"temperature": 4.0, "alpha": 0.5, "logit_losses": ["kd"], "pair_losses": ["none"], "relation_losses": [],
           "weight_scale": 1.0, "pruning": False, "student": {"channels": [2, 4, 8]}, "quantize": ["none", 8]}


def _space(spec: dict) -> SearchSpace:
    return SearchSpace(space_from_dict(spec), [], Recipe(epochs=2))


def test_shipped_knobs_are_parameters_and_build_the_strategy():
    space = _space({**SHIPPED, "student": {"channels": [2, 4], "depth": {"low": 2, "high": 3},
                                           "width_multipliers": [None, [1, 1, 2]]},
                    "prune": {"amount": {"low": 0.1, "high": 0.5}, "of": "student", "recover_epochs": 1}})
    names = {d.name: d for d in space.dimensions()}
    assert names["student.depth"].choices == [2, 3] and names["quantize"].choices == ["none", 8]
    assert names["student.width_multipliers"].choices == [None, "[1, 1, 2]"] and names["prune.amount"].range.high == 0.5
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = set()
    for _ in range(30):
        strategy = space.suggest(study.ask())
        assert strategy.student["channels"] in (2, 4) and strategy.student["width_multipliers"] in (None, [1, 1, 2])
        assert 0.1 <= strategy.compression.prune.amount <= 0.5 and strategy.compression.prune.of == "student"
        seen.add(strategy.compression.quantize.bits if strategy.compression.quantize else None)
    assert seen == {None, 8}
    assert space.size() is None  # continuous (the prune amount)
    assert _space(SHIPPED).size() == 6  # three widths x float or int8


@pytest.mark.parametrize("space, needle", [
    ({"objectives": ["params", "accuracy"]}, "must list accuracy first"),
    ({"objectives": ["accuracy", "speed"]}, "unknown objective 'speed'"),
    ({"objectives": ["accuracy", "size", "size"]}, "lists an objective twice"),
    ({"constraints": {"max_params": 0}}, "max_params must be a number > 0"),
    ({"constraints": {"max_flops": 10}}, "unknown key space.constraints.max_flops"),
    ({"quantize": [8, 3]}, "3 is not one of none, 8, 4"),
    ({"prune": {"amount": {"low": 0, "high": 0.95}}}, "high must be <= 0.9"),
    ({"prune": {"amount": 0.5}, "student": {"channels": [4, 8]}}, "prune.of is teacher"),
    ({"prune": {"amount": 0.5, "of": "student"}, "schemes": ["single", "born_again"],
      "scheme_knobs": {"born_again": {"generations": 2, "ensemble": [False, True]}}},
     "born_again may ship an ensemble of its generations"),
    ({"student": {"depth": {"low": 3, "high": 2}}}, "low <= high"),
    ({"student": {"channels": []}}, "one or more distinct values"),
    ({"student": {"norm": ["bn", "[x]"]}}, "the text choice '[x]' starts with [ or {, which the search keeps"),
])
def test_bad_shipped_spaces_are_config_errors(space, needle):
    with pytest.raises(ConfigError, match=needle.replace("[", r"\[").replace("(", r"\(")):
        space_from_dict(space)


def test_pareto_front_keeps_the_points_nothing_dominates():
    points = [(0, [90.0, 100]), (1, [85.0, 50]), (2, [80.0, 60]), (3, [90.0, 120]), (4, [70.0, 10])]
    assert pareto_front(points, ["accuracy", "params"]) == [0, 1, 4]


def test_bad_student_kwargs_and_ppo_with_objectives_are_refused_before_the_study(tmp_path):
    db = tmp_path / "s.db"
    space = write_space(tmp_path / "s.yaml", space={**SHIPPED, "student": {"channelz": [2, 4]}})
    out = run_cli("search", "--space", space, "--budget", "2", "--workers", "0", "--storage", db)
    assert out.returncode == 2 and "Traceback" not in out.stderr and "channelz" in out.stderr, out.stderr
    space = write_space(tmp_path / "t.yaml", space=SHIPPED)
    for flags, needle in ((["--sampler", "ppo", "--objectives", "accuracy,params"], "--sampler ppo"),
                          (["--sampler", "ppo", "--max-params", "100"], "constraints"),
                          (["--objectives", "accuracy,weight"], "--objectives: unknown objective 'weight'")):
        out = run_cli("search", "--space", space, "--budget", "2", "--workers", "0", "--storage", db, *flags)
        assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
        assert out.stderr.strip().splitlines()[-1].startswith("error:") and needle in out.stderr, out.stderr
    assert not db.exists()


def test_a_multi_objective_search_with_a_constraint_resumes_and_exports_a_front_point(tmp_path):
    space = write_space(tmp_path / "s.yaml", space=SHIPPED)
    db = tmp_path / "mo.db"
    flags = ["--objectives", "accuracy,params", "--max-params", "300", "--sampler", "random", "--seed", "3"]
    out = run_cli("search", "--space", space, "--budget", "4", "--workers", "0", "--storage", db, "--name", "mo", *flags)
    assert out.returncode == 0, out.stderr
    resumed = run_cli("resume", "mo", "--storage", db, "--budget", "6")  # the whole space
    assert resumed.returncode == 0, resumed.stderr
    study = optuna.load_study(study_name="mo", storage=f"sqlite:///{db}")
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"] and counts(study).finished == 6
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 6
    for t in complete:
        footprint = t.user_attrs[FOOTPRINT_ATTR]
        assert t.values[1] == footprint["params"] and footprint["latency_ms"] > 0 and footprint["macs"] > 0
        quantized = "quantize" in t.user_attrs[STRATEGY_ATTR].get("compression", {})
        assert footprint["size_bytes"] < 4 * footprint["params"] if quantized else footprint["size_bytes"] >= 4 * footprint["params"]
    infeasible = {t.number for t in complete if t.user_attrs[FOOTPRINT_ATTR]["params"] > 300}
    assert infeasible and len(infeasible) < len(complete)  # the widest students break the constraint
    shown = run_cli("show", "mo", "--storage", db)
    assert shown.returncode == 0 and "Pareto front over accuracy, params" in shown.stdout, shown.stderr
    assert f"{len(infeasible)} complete trial(s) infeasible" in shown.stdout
    front = shown.stdout.split("Pareto front")[1].split("by validation accuracy")[0]
    front_trials = [int(line.split()[1]) for line in front.strip().splitlines()[2:]]
    assert front_trials and not set(front_trials) & infeasible
    exported = tmp_path / "front.yaml"
    assert run_cli("export", "mo", "--storage", db, "--trial", front_trials[-1], "-o", exported).returncode == 0
    config = yaml.safe_load(exported.read_text())
    point = next(t for t in complete if t.number == front_trials[-1])
    assert config["strategy"]["student"] == point.user_attrs[STRATEGY_ATTR]["student"]
    trained = run_cli("train", "--config", exported, "--epochs", "1")
    assert trained.returncode == 0 and "Traceback" not in trained.stderr, trained.stderr
    bad = run_cli("export", "mo", "--storage", db, "--trial", "99")
    assert bad.returncode == 2 and "no complete trial 99" in bad.stderr


def test_a_ray_search_with_tpe_records_footprints_and_marks_infeasible_trials(tmp_path):
    space = write_space(tmp_path / "s.yaml", space=SHIPPED)
    db = tmp_path / "r.db"
    out = run_cli("search", "--space", space, "--budget", "4", "--workers", "2", "--storage", db, "--name", "ray",
                  "--max-params", "300")
    assert out.returncode == 0, out.stderr
    study = optuna.load_study(study_name="ray", storage=f"sqlite:///{db}")
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 4
    for t in complete:  # the trial's constraint value, as TPE reads it, is how far its student exceeds the limit
        params = t.user_attrs[FOOTPRINT_ATTR]["params"]
        assert t.constraints == {"max_params": params - 300}
    feasible = [t for t in complete if t.user_attrs[FOOTPRINT_ATTR]["params"] <= 300]
    exported = run_cli("export", "ray", "--storage", db)
    if feasible:
        best = max(feasible, key=lambda t: (t.value, -t.number))
        assert exported.returncode == 0 and f"trial {best.number} (rank 1 of {len(feasible)})" in exported.stdout
    else:
        assert exported.returncode == 2 and "feasible" in exported.stderr


def test_compare_of_a_multi_objective_study_retrains_front_points_and_baselines_at_their_sizes(tmp_path):
    import json

    import pandas as pd

    space = write_space(tmp_path / "s.yaml", space={**SHIPPED, "quantize": "none"})
    db = tmp_path / "mo.db"
    out = run_cli("search", "--space", space, "--budget", "3", "--workers", "0", "--storage", db, "--name", "mo",
                  "--objectives", "accuracy,params")
    assert out.returncode == 0, out.stderr
    (tmp_path / "baselines.yaml").write_text("baselines:\n  student: {alpha: 0.0}\n  kd: {alpha: 0.9, temperature: 4.0}\n")
    report = tmp_path / "report"
    result = run_cli("compare", "mo", "--storage", db, "--baselines", tmp_path / "baselines.yaml", "--top-k", "3",
                     "--seeds", "1", "--epochs", "1", "--workers", "0", "--out", report)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "point(s) of its Pareto front" in result.stderr
    study = optuna.load_study(study_name="mo", storage=f"sqlite:///{db}")
    widths = {t.user_attrs[STRATEGY_ATTR]["student"]["channels"] for t in study.best_trials}
    summary = pd.read_csv(report / "summary.csv")
    names = set(summary["name"])
    for width in widths - {TINY_STUDENT_CHANNELS}:  # every searched student size gets the baselines too
        assert {f"kd @ channels={width}", f"student @ channels={width}"} <= names, names
    assert f"kd @ channels={TINY_STUDENT_CHANNELS}" not in names  # the task's own size: the baseline itself
    assert summary["size_kib"].notna().all() and summary["params"].notna().all()
    runs = [json.loads(line) for line in (report / "runs.jsonl").read_text().splitlines() if line.strip()]
    assert all(r["footprint"]["latency_ms"] > 0 for r in runs)
    if len(set(summary["params"])) > 1:
        assert (report / "size.png").exists() and "Accuracy against size" in (report / "report.md").read_text()


def test_an_empty_leaderboard_says_whether_every_complete_trial_broke_the_constraints():
    from autokd.search.leaderboard import empty_text
    from autokd.search.objectives import Judging

    limits = Judging(constraints=(("max_params", 300.0),))
    assert empty_text(limits, 0) == "no complete trials yet"
    assert empty_text(limits, 2) == "no feasible trial: all 2 complete trial(s) break the constraints (max_params 300)"
    assert empty_text(Judging(), 0) == "no complete trials yet"


def test_warm_start_places_baselines_where_the_space_can_ship_the_task_s_own_student(tmp_path):
    """No baseline fitted a space that searched the student or listed quantize with 'none' second (the shipped
    student_search space queued none): the baselines ship the task's student, float."""
    from autokd.config.baselines import baselines_that_adapt
    from autokd.models.registry import keyword_defaults
    from autokd.search.binding import bind_space
    from autokd.search.space_file import load_space_file
    from autokd.search.warm_start import params_for

    base = {"logit_losses": ["kd"], "pairs": [{"teacher": "stages.0", "student": "stages.0"}],
            "pair_losses": ["none", "fitnet"], "relation_losses": [], "weight_scale": {"low": 0.01, "high": 1, "log": True}}
    fits = {}
    for name, extra in (("plain", {}), ("sizes", {"student": {"channels": [2, TINY_STUDENT_CHANNELS, 8]}}),
                        ("bits", {"quantize": [8, "none"]}), ("depths", {"student": {"depth": [2, 3]}}),
                        ("other sizes", {"student": {"channels": [2, 8]}}), ("int8 only", {"quantize": 8})):
        space_file = load_space_file(write_space(tmp_path / "w.yaml", space={**base, **extra}))
        space, task = bind_space(space_file), space_file.task
        student = {**keyword_defaults(task.student.model), **task.student.kwargs}
        baselines, _ = baselines_that_adapt(None, space.pairs, space.base_recipe, task)
        placed = {b.name: params_for(space, b.strategy, student) for b in baselines}
        fits[name] = sorted(n for n, p in placed.items() if p is not None)
        if name == "sizes":
            assert placed["kd"]["student.channels"] == TINY_STUDENT_CHANNELS
    assert fits["plain"] == fits["sizes"] == fits["bits"] == fits["depths"] == ["fitnet", "kd", "kd_mild", "student"]
    assert fits["other sizes"] == fits["int8 only"] == []  # the task's own student is not among the choices


def test_an_empty_text_choice_of_a_student_kwarg_is_text():
    """It was decoded as JSON (\"\"[:1] is in "[{"): a traceback before the study."""
    from autokd.search.shipped_space import build_shipped, student_variants

    spec = space_from_dict({"student": {"norm": ["", "bn"]}})
    assert student_variants(spec) == [{"norm": ""}, {"norm": "bn"}]
    assert build_shipped(spec, lambda name, default: default)[0] == {"norm": ""}

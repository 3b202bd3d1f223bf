"""Distillation schemes: their config, their peer losses against the formulas, and each scheme
against its algorithm on the tiny task (who is frozen, what gets gradients, what is cached)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from autokd.config.schemes import BornAgainScheme, CohortScheme, SingleScheme, scheme_from_dict
from autokd.config.strategy import PairLoss, Strategy, strategy_from_dict, strategy_to_dict
from autokd.errors import AutokdError, ConfigError
from autokd.losses import ensemble_kl, kd, mutual_kl
from autokd.training.run import check_strategy, train_strategy
from autokd.training.schemes.born_again import generation_seed
from autokd.training.schemes.cohort import build_cohort
from autokd.training.students import LogitEnsemble
from conftest import TINY_RECIPE, TINY_TEACHERS_TASK



def _kl_by_hand(student: torch.Tensor, target: torch.Tensor, t: float) -> torch.Tensor:
    """KL(softmax(target/T) || softmax(student/T)) * T**2, summed over classes, mean over the batch."""
    p = torch.softmax(target / t, dim=1)
    return (p * (torch.log(p) - torch.log_softmax(student / t, dim=1))).sum(1).mean() * t**2


# --- config ---------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", [
    {"kind": "born_again", "generations": 3, "ensemble": True},
    {"kind": "mutual", "peers": 2, "temperature": 2.0, "weight": 0.5},
    {"kind": "online", "peers": 1, "peer_model": "cnn1d", "peer_kwargs": {"channels": 8}},
])
def test_a_scheme_round_trips_through_the_strategy_dict(scheme):
    strategy = strategy_from_dict({"alpha": 0.5, "scheme": scheme})
    data = strategy_to_dict(strategy)
    assert data["scheme"]["kind"] == scheme["kind"]
    assert strategy_from_dict(data) == strategy
    assert scheme["kind"].replace("_", "-") in strategy.describe()


def test_the_default_scheme_is_single_and_left_out_of_the_dict():
    strategy = strategy_from_dict({"alpha": 0.5})
    assert strategy.scheme == SingleScheme()
    assert "scheme" not in strategy_to_dict(strategy)
    assert strategy_from_dict({"alpha": 0.5, "scheme": {"kind": "single"}}) == strategy
    assert strategy.describe() == "kd T=4 alpha=0.5"


@pytest.mark.parametrize("scheme, needle", [
    ({"kind": "teacher_assistant"}, "strategy.scheme.kind"),
    ({"kind": 3}, "strategy.scheme.kind"),
    ("born_again", "strategy.scheme must be a mapping"),
    ({"kind": "born_again", "generations": 0}, "generations must be a whole number from 1 to 5"),
    ({"kind": "born_again", "generations": 6}, "from 1 to 5"),
    ({"kind": "born_again", "generations": True}, "generations"),
    ({"kind": "born_again", "peers": 2}, "unknown key strategy.scheme.peers"),
    ({"kind": "single", "generations": 2}, "unknown key strategy.scheme.generations"),
    ({"kind": "mutual", "peers": 0}, "peers must be a whole number from 1 to 4"),
    ({"kind": "mutual", "peers": 5}, "from 1 to 4"),
    ({"kind": "online", "temperature": 0}, "temperature must be > 0"),
    ({"kind": "online", "temperature": float("nan")}, "finite"),
    ({"kind": "mutual", "weight": -1}, "weight must be a finite number >= 0"),
    ({"kind": "mutual", "weight": float("inf")}, "finite"),
    ({"kind": "mutual", "peer_model": "  "}, "peer_model is empty"),
    ({"kind": "mutual", "peer_kwargs": {"channels": 8}}, "peer_kwargs is set but peer_model is not"),
])
def test_bad_schemes_are_config_errors_naming_the_key(scheme, needle):
    with pytest.raises(AutokdError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        strategy_from_dict({"scheme": scheme})


def test_a_scheme_built_in_code_is_validated_with_the_strategy():
    with pytest.raises(ConfigError, match="generations"):
        Strategy(scheme=BornAgainScheme(generations=9)).validate()
    with pytest.raises(AutokdError, match="strategy.scheme.kind"):
        Strategy(scheme=CohortScheme(kind="born_again")).validate()  # a kind on the wrong dataclass
    assert scheme_from_dict({}) == SingleScheme()


# --- peer losses ----------------------------------------------------------------------------


def test_mutual_kl_is_the_mean_kl_from_each_other_member():
    torch.manual_seed(0)
    z = [torch.randn(5, 7) for _ in range(3)]
    losses = mutual_kl(z, temperature=2.0)
    for m in range(3):
        expected = torch.stack([_kl_by_hand(z[m], z[o], 2.0) for o in range(3) if o != m]).mean()
        assert torch.allclose(losses[m], expected, atol=1e-6)
    two = mutual_kl(z[:2], temperature=1.0)
    assert torch.allclose(two[0], kd(z[0], z[1], 1.0)) and torch.allclose(two[1], kd(z[1], z[0], 1.0))


def test_ensemble_kl_distils_each_member_from_the_mean_logits():
    torch.manual_seed(1)
    z = [torch.randn(4, 6) for _ in range(3)]
    mean = torch.stack(z).mean(0)
    for m, loss in enumerate(ensemble_kl(z, temperature=3.0)):
        assert torch.allclose(loss, _kl_by_hand(z[m], mean, 3.0), atol=1e-6)


@pytest.mark.parametrize("fn", [mutual_kl, ensemble_kl])
def test_peer_targets_are_detached_and_the_t_squared_factor_kept(fn):
    z = [torch.randn(8, 5, requires_grad=True) for _ in range(3)]
    fn(z, 4.0)[0].backward()
    assert z[0].grad is not None and z[0].grad.abs().sum() > 0
    assert z[1].grad is None and z[2].grad is None  # member 0 learns from the others, never pushes them
    # batch-mean over samples (not a mean over classes), times T**2: doubling the batch keeps the value
    a = [torch.randn(4, 5) for _ in range(2)]
    doubled = [torch.cat([t, t]) for t in a]
    assert torch.allclose(fn(a, 4.0)[0], fn(doubled, 4.0)[0], atol=1e-6)
    assert torch.allclose(fn(a, 4.0)[0], _kl_by_hand(a[0], a[1] if fn is mutual_kl else (a[0] + a[1]) / 2, 4.0), atol=1e-6)


def test_a_cohort_loss_needs_two_members():
    with pytest.raises(AutokdError, match="at least 2"):
        mutual_kl([torch.randn(2, 3)])


# --- mutual and online ----------------------------------------------------------------------


def _cohort_strategy(kind: str, **scheme) -> Strategy:
    return strategy_from_dict({"alpha": 0.5, "temperature": 4.0, "recipe": TINY_RECIPE,
                               "scheme": {"kind": kind, **scheme}})


@pytest.mark.parametrize("kind", ["mutual", "online"])
def test_cohort_forward_names_every_part_and_only_the_teacher_is_frozen(tiny_prepared, kind):
    strategy = _cohort_strategy(kind, peers=2, temperature=2.0, weight=0.5)
    cohort = build_cohort(tiny_prepared, strategy, seed=0).train()
    x, y = tiny_prepared.data.train.x[:16], tiny_prepared.data.train.y[:16]
    out = cohort(x, y)
    assert set(out.parts) == {"ce", "kd", "peer1.ce", "peer2.ce", f"student.{kind}", f"peer1.{kind}", f"peer2.{kind}"}
    assert torch.allclose(out.total, torch.stack(list(out.parts.values())).sum())
    assert not cohort.teacher.training and cohort.student.training and all(p.training for p in cohort.peers)
    out.total.backward()
    assert all(p.grad is None for p in cohort.teacher.parameters())
    assert all(p.grad is not None for p in cohort.student.parameters())
    assert all(p.grad is not None for peer in cohort.peers for p in peer.parameters())
    ids = {id(p) for p in cohort.trainable_parameters()}
    assert not ids & {id(p) for p in cohort.teacher.parameters()}
    assert {id(p) for peer in cohort.peers for p in peer.parameters()} <= ids


def test_the_student_peer_term_does_not_reach_the_peers(tiny_prepared):
    cohort = build_cohort(tiny_prepared, _cohort_strategy("mutual", peers=1), seed=0).train()
    x, y = tiny_prepared.data.train.x[:16], tiny_prepared.data.train.y[:16]
    cohort(x, y).parts["student.mutual"].backward()
    assert all(p.grad is None for p in cohort.peers[0].parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in cohort.student.parameters())


def test_mutual_without_a_teacher_never_runs_it(tiny_prepared):
    strategy = strategy_from_dict({"alpha": 0.0, "recipe": TINY_RECIPE, "scheme": {"kind": "mutual"}})
    cohort = build_cohort(tiny_prepared, strategy, seed=0)
    calls = []
    handle = cohort.teacher.register_forward_hook(lambda *a: calls.append(1))
    try:
        cohort(tiny_prepared.data.train.x[:8], tiny_prepared.data.train.y[:8])
    finally:
        handle.remove()
    assert calls == []


@pytest.mark.parametrize("kind", ["mutual", "online"])
def test_a_cohort_trains_and_counts_every_member_s_steps(tiny_prepared, kind):
    single = train_strategy(tiny_prepared, replace(_cohort_strategy(kind), scheme=SingleScheme()), evaluate_test=False)
    result = train_strategy(tiny_prepared, _cohort_strategy(kind, peers=2))
    assert result.steps == 3 * single.steps and single.steps == 2 * math.ceil(400 / 64)
    assert 10 < result.val_acc <= 100 and 10 < result.test_acc <= 100
    again = train_strategy(tiny_prepared, _cohort_strategy(kind, peers=2))
    assert again.val_acc == result.val_acc  # seeded: the same run


def test_a_peer_model_that_does_not_return_logits_is_refused_by_the_check(tiny_prepared):
    bad = _cohort_strategy("online", peer_model="torch.nn:Flatten")
    with pytest.raises(AutokdError, match="peer model"):
        check_strategy(tiny_prepared, bad)
    check_strategy(tiny_prepared, _cohort_strategy("online", peer_model="cnn1d", peer_kwargs={"channels": 6}))


# --- born again -----------------------------------------------------------------------------


def _born_again(generations: int, ensemble: bool = False) -> Strategy:
    return strategy_from_dict({
        "alpha": 0.7, "temperature": 3.0, "recipe": TINY_RECIPE,
        "scheme": {"kind": "born_again", "generations": generations, "ensemble": ensemble},
        "pairs": [{"teacher": "stages.2", "student": "stages.2", "loss": "at", "weight": 10.0}],
    })


def test_born_again_trains_each_generation_and_caches_all_but_the_last(tiny_prepared, tmp_path):
    prepared = replace(tiny_prepared, cache_root=tmp_path)
    one = train_strategy(prepared, replace(_born_again(2), scheme=SingleScheme()), evaluate_test=False)
    said: list[str] = []
    three = train_strategy(prepared, _born_again(3), progress=said.append)
    assert three.steps == 3 * one.steps
    assert said == ["born-again generation 1/3: distilling from the teacher",
                    "born-again generation 2/3: distilling from generation 1"]
    assert len(list((tmp_path / "stages").glob("*.pt"))) == 2
    said.clear()
    again = train_strategy(prepared, _born_again(3), progress=said.append)
    assert said == ["born-again generation 1/3: from the cache", "born-again generation 2/3: from the cache"]
    assert again.steps == three.steps  # loaded generations still count in the run's cost
    assert again.val_acc == three.val_acc and again.test_acc == three.test_acc
    said.clear()
    two = train_strategy(prepared, _born_again(2), progress=said.append)  # generation 1 is shared
    assert said == ["born-again generation 1/2: from the cache"] and two.steps == 2 * one.steps


def test_born_again_generation_one_is_the_single_scheme_run(tiny_prepared, tmp_path):
    prepared = replace(tiny_prepared, cache_root=tmp_path)
    assert train_strategy(prepared, _born_again(1)).val_acc == \
        train_strategy(prepared, replace(_born_again(1), scheme=SingleScheme())).val_acc
    assert _born_again(1).scheme.describe() == "born-again x1 (= single)"  # (the leaderboard says so)
    assert generation_seed(0, 1) == 0 and generation_seed(0, 2) != 0 and generation_seed(2**32 - 1, 2) < 2**32


def test_born_again_later_generations_distil_from_the_previous_one_frozen(tiny_prepared, monkeypatch):
    from autokd.training.schemes import born_again

    seen = []
    real = born_again.distill

    def spy(prepared, strategy, recipe, teacher=None, *args, **kwargs):
        seen.append((teacher, [(p.teacher, p.student) for p in strategy.pairs], recipe.seed))
        trained = real(prepared, strategy, recipe, teacher, *args, **kwargs)
        seen[-1] += (trained.model,)
        return trained

    monkeypatch.setattr(born_again, "distill", spy)
    train_strategy(replace(tiny_prepared, cache_root=None), _born_again(2), evaluate_test=False)
    (t1, pairs1, seed1, g1), (t2, pairs2, seed2, _g2) = seen
    assert t1 is None and pairs1 == [("stages.2", "stages.2")]  # the task's teacher
    assert t2 is g1 and not g1.training and not any(p.requires_grad for p in g1.parameters())
    assert pairs2 == [("stages.2", "stages.2")] and seed1 != seed2


def test_born_again_ensemble_ships_every_generation(tiny_prepared, monkeypatch):
    from autokd.training import fit
    from autokd.training.schemes import born_again

    built = []
    monkeypatch.setattr(born_again, "LogitEnsemble", lambda members: built.append(LogitEnsemble(members)) or built[-1])
    result = train_strategy(replace(tiny_prepared, cache_root=None), _born_again(2, ensemble=True))
    (ensemble,) = built
    assert len(ensemble.members) == 2 and not any(p.requires_grad for p in ensemble.members[0].parameters())
    assert result.val_acc == fit.accuracy(ensemble, tiny_prepared.data, "val", "cpu")
    assert result.test_acc == fit.accuracy(ensemble, tiny_prepared.data, "test", "cpu")
    x = torch.randn(4, 3)
    pair = LogitEnsemble([torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)])
    assert torch.allclose(pair(x), (pair.members[0](x) + pair.members[1](x)) / 2)


def test_born_again_check_covers_a_pair_the_student_lacks(tiny_prepared):
    strategy = replace(_born_again(2), pairs=[PairLoss("stages.2", "no.such.layer", "at", 1.0)])
    with pytest.raises(AutokdError, match="no.such.layer"):
        check_strategy(tiny_prepared, strategy)


def test_single_scheme_results_are_unchanged_by_the_scheme_field(tiny_prepared):
    strategy = strategy_from_dict({"alpha": 0.5, "recipe": TINY_RECIPE})
    a = train_strategy(tiny_prepared, strategy)
    b = train_strategy(tiny_prepared, replace(strategy, scheme=SingleScheme()))
    assert (a.val_acc, a.test_acc) == (b.val_acc, b.test_acc)
    assert a.steps == 2 * math.ceil(400 / 64)


# --- the shipped examples through the CLI ---------------------------------------------------


def test_every_shipped_scheme_example_trains_through_the_cli(tmp_path):
    """Each scheme_*.yaml strategy, on the tiny task for one epoch, through `autokd train`."""
    import json
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    import yaml

    import autokd
    from conftest import run_cli, write_config, write_space

    examples = sorted((Path(autokd.__file__).resolve().parent.parent / "search_spaces" / "examples").glob("scheme_*.yaml"))
    if not examples:
        pytest.skip("examples not present in this install")
    assert {p.stem for p in examples} >= {"scheme_single", "scheme_born_again", "scheme_mutual", "scheme_online",
                                         "scheme_assistant", "scheme_ensemble"}
    write_space(tmp_path / "tiny.yaml")
    write_space(tmp_path / "tiny_teachers.yaml", task=TINY_TEACHERS_TASK)
    # a cache of its own: a born-again generation or an assistant that another test cached would be
    # loaded, not trained (and cost nothing); the teachers are trained first, one process at a time
    env = {"AUTOKD_CACHE": str(tmp_path / "cache"), "MPLBACKEND": "Agg"}
    assert run_cli("teacher", "--space", "tiny.yaml", cwd=tmp_path, env=env).returncode == 0
    jobs = {}
    for path in examples:
        strategy = yaml.safe_load(path.read_text())["strategy"]
        write_config(tmp_path / path.name, strategy, "tiny_teachers.yaml" if "ensemble" in path.stem else "tiny.yaml")
        jobs[path.stem] = ["train", "--config", path.name, "--epochs", "1", "--out", f"{path.stem}.json"]
    with ThreadPoolExecutor(max_workers=2) as pool:
        procs = {name: pool.submit(run_cli, *args, cwd=tmp_path, env=env) for name, args in jobs.items()}
        procs = {name: f.result() for name, f in procs.items()}
    for name, proc in procs.items():
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, f"{name}:\n{proc.stderr}"
        result = json.loads((tmp_path / f"{name}.json").read_text())
        kind = name.removeprefix("scheme_")
        assert strategy_from_dict(result["strategy"]).scheme.kind == kind
        assert result["runs"][0]["steps"] > 0
    assert "born-again generation 1/2: distilling from the teacher" in procs["scheme_born_again"].stderr
    steps = {name.removeprefix("scheme_"): json.loads((tmp_path / f"{name}.json").read_text())["runs"][0]["steps"]
             for name in procs}
    assert steps["born_again"] == 2 * steps["single"] and steps["mutual"] == 2 * steps["single"]
    assert steps["online"] == 3 * steps["single"] and steps["assistant"] == 2 * steps["single"]
    assert steps["ensemble"] == steps["single"]  # more teachers, one student trained


def test_a_cohort_says_its_peers_size():
    """A searched peer_kwargs never showed in the leaderboard (two trials read alike)."""
    from autokd.config.schemes import CohortScheme

    assert CohortScheme(peers=2, peer_model="cnn1d", peer_kwargs={"channels": 6}).describe() == (
        "mutual 2 peer(s) cnn1d(channels=6) (KL to peers T=1 x1)")

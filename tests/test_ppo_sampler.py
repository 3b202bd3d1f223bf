"""The PPO controller as an Optuna sampler: updates, replay of a study's history, learning
from a reward, and from trials it did not propose (real SB3 policy, no training)."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import optuna
import pytest
from conftest import TINY_SPACE, write_space

from autokd.search.driver import bind_space
from autokd.search.space_file import load_space_file

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture
def space_path(tmp_path) -> Path:
    return write_space(tmp_path / "tiny.yaml", space=TINY_SPACE)


def test_ppo_controller_updates_and_replays_history(tmp_path, space_path):
    from autokd.search.samplers.ppo import PPOSampler, PPOSettings

    space = bind_space(load_space_file(space_path))
    before = {p.name for p in Path(tempfile.gettempdir()).glob("SB3-*")}
    sampler = PPOSampler(space, seed=0, settings=PPOSettings(n_steps=4, batch_size=4))
    study = optuna.create_study(sampler=sampler, direction="maximize")
    for i in range(9):
        trial = study.ask()
        strategy = space.suggest(trial)
        study.tell(trial, 100.0 - 10 * strategy.temperature)
    assert sampler.updates == 2  # 9 trials, an update every 4
    actions = {tuple(t.system_attrs["ppo_action"]) for t in study.trials}
    assert len(actions) > 1  # the policy samples; it does not repeat one action
    temperatures = [t.params["temperature"] for t in study.trials]
    assert len(set(temperatures)) == len(temperatures)  # values are drawn within their bins, not bin points
    # a fresh controller on the same study (a resume) replays the history before asking
    resumed = PPOSampler(space, seed=0, settings=PPOSettings(n_steps=4, batch_size=4))
    study2 = optuna.load_study(study_name=study.study_name, storage=study._storage, sampler=resumed)
    space.suggest(study2.ask())
    assert resumed.updates == 2 and len(resumed._seen) == 9
    assert {p.name for p in Path(tempfile.gettempdir()).glob("SB3-*")} == before  # no SB3 log folders


def test_ppo_controller_learns_within_a_few_dozen_trials(space_path):
    """A reward that favours low temperatures: after 48 trials the policy puts most of its mass on
    the two lowest of the 8 temperature bins (uniform would be 25 %)."""
    import torch

    from autokd.search.samplers.ppo import PPOSampler

    space = bind_space(load_space_file(space_path))
    sampler = PPOSampler(space, seed=1)
    study = optuna.create_study(sampler=sampler, direction="maximize")
    for _ in range(48):
        trial = study.ask()
        study.tell(trial, 100.0 - 10 * math.log(space.suggest(trial).temperature))
    policy = sampler.model.policy
    with torch.no_grad():
        obs, _ = policy.obs_to_tensor(sampler._obs)
        temperature = policy.get_distribution(obs).distribution[0]  # the first knob is the temperature
    assert temperature.probs[0, :2].sum().item() > 0.5
    assert sampler.updates == 12


def test_ppo_learns_from_trials_it_did_not_propose(space_path):
    """Queued trials (warm start, re-queued) are mapped to the nearest action and learnt from."""
    from autokd.search.samplers.ppo import ACTION_ATTR, PPOSampler

    space = bind_space(load_space_file(space_path))
    study = optuna.create_study(sampler=PPOSampler(space, seed=0), direction="maximize")
    study.enqueue_trial({"temperature": 1.0, "alpha": 0.5, "logit_loss": "kd", "pair[stages.0].loss": "none",
                         "pair[stages.1].loss": "at", "pair[stages.1].scale": 0.5, "pair[stages.2].loss": "none",
                         "relation[rkd].on": False, "relation[pkt].on": False})
    trial = study.ask()
    space.suggest(trial)
    study.tell(trial, 90.0)
    assert ACTION_ATTR not in study.trials[0].system_attrs
    assert study.sampler._action_of(study.trials[0].params)[0] == 0  # T=1 is the first temperature bin
    assert study.sampler._seen == {0}


class _KnobSpace:
    """``knobs`` choices of four values each: what the controller's action is built from."""

    def __init__(self, knobs: int):
        self.knobs = knobs

    def dimensions(self):
        from autokd.search.strategy_space import Dimension

        return [Dimension(f"k{i}", choices=[0, 1, 2, 3]) for i in range(self.knobs)]


def _probability_after_one_update(knobs: int, per_knob_clip: bool) -> list[float]:
    """Four trials, each knob's choice rotating with the trial, the first one rewarded: each knob's
    probability of the rewarded trial's choice after the update (0.25 before)."""
    import torch

    from autokd.search.samplers.ppo import PPOSampler, PPOSettings

    sampler = PPOSampler(_KnobSpace(knobs), seed=0, settings=PPOSettings(per_knob_clip=per_knob_clip))
    study = optuna.create_study(sampler=sampler, direction="maximize")
    for c in range(4):
        study.enqueue_trial({f"k{i}": (c + i) % 4 for i in range(knobs)})
    for _ in range(4):
        trial = study.ask()
        first = trial.suggest_categorical("k0", [0, 1, 2, 3])
        for i in range(1, knobs):
            trial.suggest_categorical(f"k{i}", [0, 1, 2, 3])
        study.tell(trial, 1.0 if first == 0 else 0.0)
    assert sampler.updates == 1
    policy = sampler.model.policy
    with torch.no_grad():
        heads = policy.get_distribution(policy.obs_to_tensor(sampler._obs)[0]).distribution
    return [head.probs[0, i % 4].item() for i, head in enumerate(heads)]


def test_each_knob_learns_as_much_however_many_knobs_there_are():
    """The per-knob clip: one update moves each knob as far with 20 knobs as with one. SB3's clip of
    the whole action's ratio (the product over knobs) moves each one less the more there are."""
    alone = _probability_after_one_update(1, per_knob_clip=True)[0]
    many = _probability_after_one_update(20, per_knob_clip=True)
    assert alone > 0.4 and all(abs(p - alone) < 0.02 for p in many)
    assert _probability_after_one_update(1, per_knob_clip=False)[0] == pytest.approx(alone, abs=0.02)
    joint = _probability_after_one_update(20, per_knob_clip=False)
    assert all(p < 0.25 + 0.5 * (alone - 0.25) for p in joint)


def test_a_space_without_knobs_needs_no_policy():
    """Every value fixed: one strategy, nothing to learn (SB3 cannot build an empty action)."""
    from autokd.search.samplers.ppo import PPOSampler

    sampler = PPOSampler(_KnobSpace(0), seed=0)
    study = optuna.create_study(sampler=sampler, direction="maximize")
    for _ in range(5):
        study.tell(study.ask(), 1.0)
    assert sampler.model is None and sampler.updates == 0 and len(sampler._seen) == 5

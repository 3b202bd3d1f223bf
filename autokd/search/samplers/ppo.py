"""A PPO controller (stable-baselines3) as an Optuna sampler, MetaDistiller-style.

The space is one fixed ``MultiDiscrete`` action: an index per categorical choice, floats binned
on their (log) scale, the value drawn uniformly within the chosen bin (so nearby values are not
all one point). Each trial is a one-step episode. SB3's policy, rollout buffer and ``train()``
are driven in ask/tell fashion: ``sample_relative`` asks the policy for an action,
``after_trial`` adds the finished trial to the buffer and trains every ``n_steps`` trials, so
several trials can be in flight.

What makes it learn within a 100-trial budget (``benchmarks/search_quality.py`` measures it):
the observation is constant, so the policy is a bandit over independent categorical dimensions
and PPO's default learning rate (3e-4) and gradient clipping (0.5) would move it by a few
hundredths per update; the defaults here update every 4 trials with a learning rate of 0.01.
The update clips each knob's probability ratio on its own (:mod:`.ppo_update`): SB3's clip of
the whole action's ratio lets each knob learn less the more knobs the space has.
The reward is the trial's **rank** among the trials seen so far, in [-1, 1] (a failed trial
at 0 % accuracy would otherwise squash every other advantage after normalisation).

Finished trials the controller has not seen (a resumed study, trials told by another process,
warm-start or re-queued trials with fixed parameters) are fed in first, their parameters mapped
to the nearest action, so a resumed search continues from the study's history.
"""

from __future__ import annotations

import bisect
import contextlib
import math
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.trial import FrozenTrial, TrialState

from autokd.search.ledger import DUPLICATE_ATTR, is_void
from autokd.search.samplers.ppo_update import per_knob_update

ACTION_ATTR = "ppo_action"


@dataclass
class PPOSettings:
    """The controller's knobs (PPO's own, and how the action is read)."""

    n_steps: int = 4  # trials per policy update
    batch_size: int = 4
    n_epochs: int = 20  # measured: 20 reached random's best sooner than 10 (benchmarks/ppo_controller.py)
    bins: int = 8  # a float knob is one of this many bins, its value drawn within the bin
    learning_rate: float = 0.01  # 0.03 with the whole action's clip (benchmarks/ppo_controller.py)
    ent_coef: float = 0.01
    clip_range: float = 0.3
    max_grad_norm: float = 10.0
    per_knob_clip: bool = True  # clip each knob's probability ratio (ppo_update.py), not the whole action's


class PPOSampler(BaseSampler):
    """``space``: a bound :class:`~autokd.search.strategy_space.SearchSpace`; its ``dimensions()`` fix the action."""

    def __init__(self, space, seed: Optional[int] = None, settings: Optional[PPOSettings] = None):
        self.settings = settings or PPOSettings()
        cfg = self.settings
        self._dims = space.dimensions()
        self._actions = [_Choices(d.choices) if d.choices is not None else _Bins(d.range, cfg.bins) for d in self._dims]
        self._distributions = {
            d.name: CategoricalDistribution(d.choices) if d.choices is not None
            else FloatDistribution(d.range.low, d.range.high, log=d.range.log)
            for d in self._dims
        }
        # a space of fixed values only has one strategy and nothing to learn: no policy
        self.model = self._policy_model(seed) if self._actions else None
        self._obs = np.zeros((1, 1), dtype=np.float32)
        # The controller keeps its own random state: student training reseeds the global
        # generators every trial, which would make the policy sample the same action again.
        self._torch_rng = torch.get_rng_state()
        self._numpy_rng = np.random.get_state()
        self._jitter = np.random.default_rng(seed)
        self._fallback = RandomSampler(seed=seed)
        self._seen: set[int] = set()
        self._outcomes: list[float] = []  # sorted raw outcomes of the trials learnt from (for ranks)
        self.updates = 0

    def _policy_model(self, seed: Optional[int]):
        import gymnasium as gym
        from stable_baselines3 import PPO
        from stable_baselines3.common.logger import Logger

        cfg = self.settings
        env = _OneStepEnv(gym.spaces.Box(0.0, 1.0, (1,), np.float32), gym.spaces.MultiDiscrete([a.n for a in self._actions]))
        model = PPO(
            "MlpPolicy", env, n_steps=cfg.n_steps, batch_size=cfg.batch_size, n_epochs=cfg.n_epochs, gamma=0.0,
            gae_lambda=1.0, learning_rate=cfg.learning_rate, ent_coef=cfg.ent_coef, clip_range=cfg.clip_range,
            max_grad_norm=cfg.max_grad_norm, seed=seed, device="cpu", verbose=0, policy_kwargs={"net_arch": [32]},
        )
        # no log folders: SB3 would otherwise create one under the temp directory on train()
        model.set_logger(Logger(folder=None, output_formats=[]))
        return model

    # --- Optuna sampler interface ---------------------------------------------------------
    def infer_relative_search_space(self, study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return dict(self._distributions)

    def sample_relative(self, study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        self._replay(study)
        if trial.system_attrs.get("fixed_params") or self.model is None:  # queued (re-queued, warm start)
            return {}  # keeps its params; a space without knobs has none
        with self._own_rng(), torch.no_grad():
            obs, _ = self.model.policy.obs_to_tensor(self._obs)
            action, _, _ = self.model.policy(obs)
        action = action.cpu().numpy().reshape(-1).astype(int).tolist()
        study._storage.set_trial_system_attr(trial._trial_id, ACTION_ATTR, action)
        return {d.name: a.value(i, self._jitter) for d, a, i in zip(self._dims, self._actions, action)}

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._fallback.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial: FrozenTrial, state: TrialState, values) -> None:
        value = values[0] if values else None
        self._learn(study, trial, state, value)

    def reseed_rng(self) -> None:
        self._fallback.reseed_rng()

    # --- learning -----------------------------------------------------------------------------
    def _replay(self, study) -> None:
        """Feed finished trials the controller has not seen yet (resume, other processes)."""
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)):
            if t.number not in self._seen:
                self._learn(study, t, t.state, t.value)

    def _learn(self, study, trial: FrozenTrial, state: TrialState, value: Optional[float]) -> None:
        if trial.number in self._seen:
            return
        self._seen.add(trial.number)
        if self.model is None:
            return
        action = trial.system_attrs.get(ACTION_ATTR) or self._action_of(trial.params)
        if DUPLICATE_ATTR in trial.user_attrs:  # not trained again: the action earns what its original did
            trial = study._storage.get_trial(study._storage.get_trial_id_from_study_id_trial_number(
                study._study_id, trial.user_attrs[DUPLICATE_ATTR]))
            state, value = trial.state, trial.value
            if not state.is_finished():
                return
        elif is_void(trial):  # interrupted, over budget: nothing learnt about the action
            return
        reward = self._rank_reward(_outcome(trial, state, value))
        policy = self.model.policy
        with torch.no_grad():
            obs, _ = policy.obs_to_tensor(self._obs)
            act = torch.as_tensor(np.asarray(action).reshape(1, -1), device=policy.device)
            values, log_prob, _ = policy.evaluate_actions(obs, act)
        self.model.rollout_buffer.add(self._obs, np.asarray(action).reshape(1, -1), np.array([reward], dtype=np.float32),
                                      np.array([True]), values.flatten(), log_prob)
        if self.model.rollout_buffer.full:
            self.model.rollout_buffer.compute_returns_and_advantage(
                last_values=torch.zeros(1, device=policy.device), dones=np.array([True]))
            with self._own_rng():
                per_knob_update(self.model) if self.settings.per_knob_clip else self.model.train()
            self.model.rollout_buffer.reset()
            self.updates += 1

    def _rank_reward(self, outcome: float) -> float:
        """The outcome's rank among every outcome learnt from so far (itself included), in [-1, 1]."""
        bisect.insort(self._outcomes, outcome)
        below = bisect.bisect_left(self._outcomes, outcome)
        ties = bisect.bisect_right(self._outcomes, outcome) - below
        n = len(self._outcomes)
        return 0.0 if n == 1 else 2.0 * (below + 0.5 * (ties - 1)) / (n - 1) - 1.0

    def _action_of(self, params: dict) -> list[int]:
        """The action nearest to ``params`` (a trial the policy did not propose); inactive knobs at random."""
        return [a.index(params[d.name]) if d.name in params else int(self._jitter.integers(a.n))
                for d, a in zip(self._dims, self._actions)]

    @contextlib.contextmanager
    def _own_rng(self):
        """Run with the controller's torch and numpy random states, then put the global ones back."""
        torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()
        torch.set_rng_state(self._torch_rng)
        np.random.set_state(self._numpy_rng)
        try:
            yield
        finally:
            self._torch_rng, self._numpy_rng = torch.get_rng_state(), np.random.get_state()
            torch.set_rng_state(torch_state)
            np.random.set_state(numpy_state)


def _outcome(trial: FrozenTrial, state: TrialState, value: Optional[float]) -> float:
    """Validation accuracy; a pruned trial counts with its last reported value, a failed one as 0."""
    if state == TrialState.COMPLETE and value is not None:
        return float(value)
    if state == TrialState.PRUNED and trial.intermediate_values:
        return float(trial.intermediate_values[max(trial.intermediate_values)])
    return 0.0


class _Choices:
    """A categorical knob: the action is the choice's index."""

    def __init__(self, choices: list):
        self.choices = list(choices)
        self.n = len(self.choices)

    def value(self, index: int, rng) -> Any:
        value = self.choices[index]
        return value.item() if hasattr(value, "item") else value

    def index(self, value: Any) -> int:
        return self.choices.index(value) if value in self.choices else 0


class _Bins:
    """A float knob cut into ``n`` equal bins on its (log) scale; a value is drawn within its bin."""

    def __init__(self, float_range, n: int):
        self.log = float_range.log
        self.low, self.high = (math.log(float_range.low), math.log(float_range.high)) if self.log else (
            float_range.low, float_range.high)
        self.n = n if self.high > self.low else 1

    def value(self, index: int, rng) -> float:
        width = (self.high - self.low) / self.n
        x = self.low + width * (index + float(rng.uniform()))
        x = min(max(x, self.low), self.high)
        return float(math.exp(x)) if self.log else float(x)

    def index(self, value: float) -> int:
        x = math.log(value) if self.log else float(value)
        width = (self.high - self.low) / self.n
        return 0 if width <= 0 else min(self.n - 1, max(0, int((x - self.low) / width)))


class _OneStepEnv:
    """Only carries the spaces SB3 needs to build the policy and buffer; it is never stepped."""

    def __new__(cls, observation_space, action_space):
        import gymnasium as gym

        class OneStepEnv(gym.Env):
            metadata: dict = {}

            def __init__(self):
                self.observation_space = observation_space
                self.action_space = action_space

            def reset(self, *, seed=None, options=None):
                return np.zeros(1, dtype=np.float32), {}

            def step(self, action):
                return np.zeros(1, dtype=np.float32), 0.0, True, False, {}

        return OneStepEnv()

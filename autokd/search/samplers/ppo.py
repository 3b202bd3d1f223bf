"""A PPO controller (stable-baselines3) as an Optuna sampler, MetaDistiller-style.

The space is one fixed ``MultiDiscrete`` action: a bin per categorical choice, floats binned on
their (log) scale. Each trial is a one-step episode whose reward is its validation accuracy
(as a fraction) minus a running baseline. SB3's policy, rollout buffer and ``train()`` are
driven in ask/tell fashion: ``sample_relative`` asks the policy for an action, ``after_trial``
adds the finished trial to the rollout buffer and trains every ``n_steps`` trials, so several
trials can be in flight. Finished trials the controller has not seen (a resumed study, or
trials told by another process) are replayed into the buffer first, so a resumed search
continues from the study's history.
"""

from __future__ import annotations

import contextlib
from typing import Any, Optional

import numpy as np
import torch

from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.trial import FrozenTrial, TrialState

from autokd.search.ledger import DUPLICATE_ATTR, is_void

ACTION_ATTR = "ppo_action"


class PPOSampler(BaseSampler):
    """``space``: a :class:`~autokd.search.space.SearchSpace`; its ``dimensions()`` fix the action."""

    def __init__(
        self,
        space,
        seed: Optional[int] = None,
        n_steps: int = 8,
        batch_size: int = 8,
        n_epochs: int = 10,
        bins: int = 8,
        learning_rate: float = 3e-3,
        ent_coef: float = 0.01,
        baseline_momentum: float = 0.8,
    ):
        import gymnasium as gym
        from stable_baselines3 import PPO
        from stable_baselines3.common.logger import Logger

        self._dims = space.dimensions()
        self._values = [d.choices if d.choices is not None else d.range.bins(bins) for d in self._dims]
        self._distributions = {
            d.name: CategoricalDistribution(d.choices) if d.choices is not None
            else FloatDistribution(d.range.low, d.range.high, log=d.range.log)
            for d in self._dims
        }
        env = _OneStepEnv(gym.spaces.Box(0.0, 1.0, (1,), np.float32), gym.spaces.MultiDiscrete([len(v) for v in self._values]))
        self.model = PPO(
            "MlpPolicy", env, n_steps=n_steps, batch_size=batch_size, n_epochs=n_epochs, gamma=0.0, gae_lambda=1.0,
            learning_rate=learning_rate, ent_coef=ent_coef, seed=seed, device="cpu", verbose=0,
            policy_kwargs={"net_arch": [32]},
        )
        # no log folders: SB3 would otherwise create one under the temp directory on train()
        self.model.set_logger(Logger(folder=None, output_formats=[]))
        self._obs = np.zeros((1, 1), dtype=np.float32)
        # The controller keeps its own random state: student training reseeds the global
        # generators every trial, which would make the policy sample the same action again.
        self._torch_rng = torch.get_rng_state()
        self._numpy_rng = np.random.get_state()
        self._fallback = RandomSampler(seed=seed)
        self._seen: set[int] = set()
        self._baseline: Optional[float] = None
        self._momentum = baseline_momentum
        self.updates = 0

    # --- Optuna sampler interface ---------------------------------------------------------
    def infer_relative_search_space(self, study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return dict(self._distributions)

    def sample_relative(self, study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        self._replay(study)
        if trial.system_attrs.get("fixed_params"):  # re-queued after an interruption: keep its params
            return {}
        with self._own_rng(), torch.no_grad():
            obs, _ = self.model.policy.obs_to_tensor(self._obs)
            action, _, _ = self.model.policy(obs)
        action = action.cpu().numpy().reshape(-1).astype(int).tolist()
        study._storage.set_trial_system_attr(trial._trial_id, ACTION_ATTR, action)
        return {d.name: _plain(vals[a]) for d, vals, a in zip(self._dims, self._values, action)}

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
        action = trial.system_attrs.get(ACTION_ATTR)
        if action is None:
            return
        if DUPLICATE_ATTR in trial.user_attrs:  # not trained again: the action earns what its original did
            trial = study._storage.get_trial(study._storage.get_trial_id_from_study_id_trial_number(
                study._study_id, trial.user_attrs[DUPLICATE_ATTR]))
            state, value = trial.state, trial.value
            if not state.is_finished():
                return
        elif is_void(trial):  # interrupted, over budget: nothing learnt about the action
            return
        reward = self._reward(trial, state, value)
        policy = self.model.policy
        with torch.no_grad():
            obs, _ = policy.obs_to_tensor(self._obs)
            act = torch.as_tensor(np.asarray(action).reshape(1, -1), device=policy.device)
            values, log_prob, _ = policy.evaluate_actions(obs, act)
        baseline = self._baseline if self._baseline is not None else reward
        self.model.rollout_buffer.add(
            self._obs, np.asarray(action).reshape(1, -1), np.array([reward - baseline], dtype=np.float32),
            np.array([True]), values.flatten(), log_prob,
        )
        self._baseline = reward if self._baseline is None else self._momentum * self._baseline + (1 - self._momentum) * reward
        if self.model.rollout_buffer.full:
            self.model.rollout_buffer.compute_returns_and_advantage(
                last_values=torch.zeros(1, device=policy.device), dones=np.array([True])
            )
            with self._own_rng():
                self.model.train()
            self.model.rollout_buffer.reset()
            self.updates += 1

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

    @staticmethod
    def _reward(trial: FrozenTrial, state: TrialState, value: Optional[float]) -> float:
        """Validation accuracy as a fraction; a pruned trial earns its last reported value, a failed one 0."""
        if state == TrialState.COMPLETE and value is not None:
            return float(value) / 100.0
        if state == TrialState.PRUNED and trial.intermediate_values:
            return float(trial.intermediate_values[max(trial.intermediate_values)]) / 100.0
        return 0.0


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


def _plain(value):
    """numpy scalars to plain Python values (Optuna stores them as JSON)."""
    return value.item() if hasattr(value, "item") else value

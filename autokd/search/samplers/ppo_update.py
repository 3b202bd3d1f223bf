"""The controller's policy update: PPO's clipped surrogate with one probability ratio per knob.

SB3's ``PPO.train()`` clips the ratio of the whole action's probability, which for a
``MultiDiscrete`` action is the product of the knobs' ratios. With many knobs, small moves of each
one already push the product past the clip range, so the more knobs a space has, the less each
knob learns per update: on the synthetic stand-in of ``benchmarks/ppo_controller.py``, adding 8
knobs that the score ignores took SB3's update from a median 21.5 trials to random search's
best-of-100 to 52. Here each knob's ratio is clipped on its own and the clipped surrogates are
summed over the knobs (at the first step of an update its gradient is SB3's), so every knob moves
as far as it would alone. Everything else is SB3's: the policy, its optimizer and learning-rate
schedule, the rollout buffer's advantages and returns, advantage normalisation, the value and
entropy terms, gradient clipping.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def per_knob_update(model) -> None:
    """One PPO update of ``model`` (an SB3 ``PPO`` over a ``MultiDiscrete`` action) from its full
    rollout buffer: ``n_epochs`` passes over shuffled minibatches of ``batch_size``."""
    policy, buffer = model.policy, model.rollout_buffer
    policy.set_training_mode(True)
    model._update_learning_rate(policy.optimizer)
    clip = float(model.clip_range(model._current_progress_remaining))
    n = buffer.buffer_size * buffer.n_envs

    def tensor(array):
        return torch.as_tensor(array.reshape(n, -1), device=policy.device)

    obs, actions = tensor(buffer.observations).float(), tensor(buffer.actions).long()
    advantages, returns = tensor(buffer.advantages).flatten(), tensor(buffer.returns).flatten()
    with torch.no_grad():
        old = knob_log_probs(policy.get_distribution(obs), actions)
    for _ in range(model.n_epochs):
        for batch in torch.randperm(n).split(model.batch_size):
            _step(model, obs[batch], actions[batch], advantages[batch], returns[batch], old[batch], clip)
    model._n_updates += model.n_epochs


def knob_log_probs(distribution, actions: torch.Tensor) -> torch.Tensor:
    """``(batch, knobs)`` log-probabilities of each knob's choice under a multi-categorical distribution."""
    return torch.stack([d.log_prob(actions[:, i]) for i, d in enumerate(distribution.distribution)], dim=1)


def _step(model, obs, actions, advantages, returns, old_log_probs, clip: float) -> None:
    policy = model.policy
    if model.normalize_advantage and len(advantages) > 1:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    distribution = policy.get_distribution(obs)
    ratio = torch.exp(knob_log_probs(distribution, actions) - old_log_probs)
    gain = advantages[:, None]
    policy_loss = -torch.min(ratio * gain, ratio.clamp(1 - clip, 1 + clip) * gain).sum(dim=1).mean()
    value_loss = F.mse_loss(returns, policy.predict_values(obs).flatten())
    loss = policy_loss - model.ent_coef * distribution.entropy().mean() + model.vf_coef * value_loss
    policy.optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(policy.parameters(), model.max_grad_norm)
    policy.optimizer.step()

"""PPO's clipped objective on one minibatch, as a MindSpore Cell differentiated inside the compiled update."""

from __future__ import annotations

import mindspore
from mindspore import nn, ops

from ms_ppo.config import PPOSettings
from ms_ppo.models import ActorCriticNetwork

STAT_NAMES = ("loss", "policy_loss", "value_loss", "entropy", "approx_kl", "clipfrac")  # PPOLoss's outputs, in order


class PPOLoss(nn.Cell):
    """Clipped surrogate + value loss - entropy bonus on one minibatch (all inputs (B,) except obs/actions).

    ``weights`` (B,) are used only when ``weighted`` (the decoupled objective of Hilton et al., 2021, "Batch
    size-invariance for policy optimization"): then ``old_log_prob`` is the proximal policy's (the learner's at
    the start of the update) and each transition's surrogate is weighted by proximal / behaviour probability.
    """

    def __init__(self, net: ActorCriticNetwork, cfg: PPOSettings, weighted: bool = False):
        super().__init__()
        self.net = net
        self.weighted = weighted  # off-policy: each transition's clipped surrogate times its importance weight
        self.clip_vf = cfg.clip_range_vf
        self.ent_coef = cfg.ent_coef
        self.vf_coef = cfg.vf_coef
        self.normalize_advantage = cfg.normalize_advantage

    def construct(self, obs, actions, old_log_prob, advantages, returns, old_values, clip_range, weights):
        log_prob, entropy, values = self.net.evaluate_actions(obs, actions)
        log_ratio = log_prob - old_log_prob
        ratio = ops.exp(log_ratio)
        if self.normalize_advantage:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        surrogate = ops.maximum(-advantages * ratio, -advantages * ops.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range))
        if self.weighted:  # a constant: on-policy graphs have no weights at all
            surrogate = surrogate * weights
        policy_loss = surrogate.mean()
        if self.clip_vf is None:
            value_loss = ops.square(returns - values).mean()
        else:  # clip the new value around the old one; take the pessimistic of both errors
            clipped = old_values + ops.clamp(values - old_values, -self.clip_vf, self.clip_vf)
            value_loss = ops.maximum(ops.square(returns - values), ops.square(returns - clipped)).mean()
        entropy_mean = entropy.mean()
        loss = policy_loss + self.vf_coef * value_loss - self.ent_coef * entropy_mean
        approx_kl = ((ratio - 1.0) - log_ratio).mean()  # low-variance KL estimator (Schulman, 2020)
        clipfrac = (ops.abs(ratio - 1.0) > clip_range).astype(mindspore.float32).mean()
        return loss, policy_loss, value_loss, entropy_mean, approx_kl, clipfrac

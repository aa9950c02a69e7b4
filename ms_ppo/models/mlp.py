"""Actor-critic networks as MindSpore Cells, with diagonal-Gaussian, tanh-squashed Gaussian and categorical heads.

Shapes: B is the batch (environments at collection, a minibatch in the update), O the encoded observation
size, A the action size (Box) or the number of actions (Discrete).

Box action distributions (``policy.distribution``):

- ``gaussian``: a ~ N(mean, std). The environment sees ``a`` clipped to the Box bounds (ms_ppo.evaluation's
  ActionAdapter); the log-probability is that of the unclipped sample, which is what the rollout stores.
- ``tanh_normal``: u ~ N(mean, std), a = center + scale * tanh(u), with center/scale the midpoint/half-width of
  the Box, so every action lies inside the bounds and the clip is a no-op. The network returns ``a`` (the
  environment action) and the rollout stores ``a``; ``evaluate_actions`` recovers u = atanh((a - center) / scale)
  with the argument clipped to +-(1 - TANH_EPS) (invert-with-clipping). ``sample`` computes its log-probability
  from the returned ``a`` through the same inversion, so the stored log-prob and the update's log-prob are the
  same computation on the same numbers. log p(a) = log N(u; mean, std) - sum_i log(scale_i * (1 - tanh(u_i)^2)),
  with log(1 - tanh(u)^2) = 2 * (log 2 - u - softplus(-2u)) (no cancellation for large |u|). Deterministic
  action: center + scale * tanh(mean). Entropy (no closed form): the Gaussian entropy of u plus the log-Jacobian
  at the evaluated actions, a one-sample estimate of the squashed entropy.
"""

from __future__ import annotations

import math
from typing import List, Sequence, Tuple

import mindspore
import numpy as np
from mindspore import Parameter, Tensor, nn, ops
from mindspore.common.initializer import Orthogonal

from ms_ppo.models.distributions import (
    DISTRIBUTIONS,
    categorical_entropy,
    categorical_log_prob,
    gaussian_entropy,
    gaussian_log_prob,
    tanh_normal_log_prob,
)


def _dense(n_in: int, n_out: int, gain: float, ortho: bool) -> nn.Dense:
    weight_init = Orthogonal(gain=gain) if ortho else "he_uniform"
    return nn.Dense(n_in, n_out, weight_init=weight_init, bias_init="zeros")


class MLP(nn.SequentialCell):
    """Dense layers with an activation between them; the output layer is linear with its own init gain."""

    def __init__(self, n_in: int, hidden_sizes: Sequence[int], n_out: int, activation: str,
                 out_gain: float, ortho: bool):
        layers: List[nn.Cell] = []
        for size in hidden_sizes:
            layers += [_dense(n_in, size, math.sqrt(2.0), ortho), nn.Tanh() if activation == "tanh" else nn.ReLU()]
            n_in = size
        layers.append(_dense(n_in, n_out, out_gain, ortho))
        super().__init__(layers)


class ActorCritic(nn.Cell):
    """Separate actor and critic MLPs; a state-independent log std for continuous actions.

    :param obs_dim: encoded observation size O.
    :param action_dim: A, the action size (Box) or the number of actions (Discrete).
    :param discrete: categorical head if True, a Box head (``distribution``) otherwise.
    :param distribution: Box actions only: ``gaussian`` or ``tanh_normal`` (see the module docstring).
    :param action_low: tanh_normal only: the Box's lower bounds (A,) (default -1).
    :param action_high: tanh_normal only: the Box's upper bounds (A,) (default 1).
    """

    def __init__(self, obs_dim: int, action_dim: int, discrete: bool, hidden_sizes: Sequence[int],
                 activation: str = "tanh", log_std_init: float = 0.0, ortho_init: bool = True,
                 distribution: str = "gaussian", action_low=None, action_high=None):
        super().__init__()
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
        self.discrete = discrete
        self.action_dim = action_dim
        self.image_input = False
        self.squash = distribution == "tanh_normal" and not discrete
        low = np.broadcast_to(np.asarray(-1.0 if action_low is None else action_low, np.float64), (action_dim,))
        high = np.broadcast_to(np.asarray(1.0 if action_high is None else action_high, np.float64), (action_dim,))
        if self.squash and not (np.all(np.isfinite(low)) and np.all(np.isfinite(high)) and np.all(high > low)):
            raise ValueError("tanh_normal needs finite Box bounds with high > low")
        # Constants, not Parameters: checkpoints and optimiser state are the same for both Box distributions.
        self.action_center = Tensor(((high + low) / 2.0).astype(np.float32))
        self.action_scale = Tensor(((high - low) / 2.0).astype(np.float32))
        self.actor = MLP(obs_dim, hidden_sizes, action_dim, activation, 0.01, ortho_init)
        self.critic = MLP(obs_dim, hidden_sizes, 1, activation, 1.0, ortho_init)
        # Discrete policies carry an unused log_std too, so every network has the same parameter names.
        self.log_std = Parameter(Tensor(np.full(action_dim, log_std_init, np.float32)), name="log_std",
                                 requires_grad=not discrete)
        # The cells that compute the MLP outputs: the MLPs themselves, or mixed-precision wrappers around them
        # (ms_ppo.models.precision). Inserted after the MLPs and without renaming Parameters (plain attribute assignment
        # would prefix them "actor_forward."), so checkpoint and optimiser-state names stay "actor.*"/"critic.*".
        self.insert_child_to_cell("actor_forward", self.actor)
        self.insert_child_to_cell("critic_forward", self.critic)

    def value(self, obs: Tensor) -> Tensor:
        """State value (B,)."""
        return self.critic_forward(obs).squeeze(-1)

    def sample(self, obs: Tensor, noise: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Sample actions from host-drawn noise so that NumPy's seeded generator decides every draw.

        :param noise: (B, A) standard normal noise (Gaussian) or Gumbel(0, 1) noise (categorical).
        :return: action (B, A) float or (B,) int32, its log-probability (B,), the value (B,).
        """
        out = self.actor_forward(obs)
        if self.discrete:
            action = ops.argmax(out + noise, -1).astype(mindspore.int32)  # Gumbel-max sampling
            log_prob = categorical_log_prob(out, action)
        elif self.squash:
            action = self.action_center + self.action_scale * ops.tanh(out + ops.exp(self.log_std) * noise)
            log_prob = tanh_normal_log_prob(out, self.log_std, action, self.action_center, self.action_scale)[0]
        else:
            action = out + ops.exp(self.log_std) * noise
            log_prob = gaussian_log_prob(out, self.log_std, action)
        return action, log_prob, self.value(obs)

    def deterministic(self, obs: Tensor) -> Tensor:
        """The policy's deterministic action: the mean (gaussian), center + scale * tanh(mean) (tanh_normal) or
        the arg-max action (Discrete)."""
        out = self.actor_forward(obs)
        if self.discrete:
            return ops.argmax(out, -1).astype(mindspore.int32)
        if self.squash:
            return self.action_center + self.action_scale * ops.tanh(out)
        return out

    def evaluate_actions(self, obs: Tensor, action: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Log-probability (B,), entropy (B,) and value (B,) of given actions under the current policy."""
        out = self.actor_forward(obs)
        if self.discrete:
            return categorical_log_prob(out, action), categorical_entropy(out), self.value(obs)
        if self.squash:
            log_prob, log_jacobian = tanh_normal_log_prob(out, self.log_std, action, self.action_center,
                                                          self.action_scale)
            return log_prob, gaussian_entropy(self.log_std, obs.shape[0]) + log_jacobian, self.value(obs)
        return (gaussian_log_prob(out, self.log_std, action), gaussian_entropy(self.log_std, obs.shape[0]),
                self.value(obs))

"""Actor-critic networks as MindSpore Cells, with diagonal-Gaussian and categorical action heads.

Shapes: B is the batch (environments at collection, a minibatch in the update), O the encoded observation
size, A the action size (Box) or the number of actions (Discrete).
"""

from __future__ import annotations

import math
from typing import List, Sequence, Tuple

import numpy as np
import mindspore
from mindspore import Parameter, Tensor, nn, ops
from mindspore.common.initializer import Orthogonal

LOG_2PI = math.log(2.0 * math.pi)


def gaussian_log_prob(mean: Tensor, log_std: Tensor, action: Tensor) -> Tensor:
    """Log density of ``action`` (B, A) under N(mean (B, A), exp(log_std) (A,)), summed over A -> (B,)."""
    z = (action - mean) / ops.exp(log_std)
    return (-0.5 * z * z - log_std - 0.5 * LOG_2PI).sum(-1)


def gaussian_entropy(log_std: Tensor, batch: int) -> Tensor:
    """Entropy of a diagonal Gaussian, the same for every row -> (batch,)."""
    return ops.broadcast_to((log_std + 0.5 + 0.5 * LOG_2PI).sum(), (batch,))


def categorical_log_prob(logits: Tensor, action: Tensor) -> Tensor:
    """Log probability of integer ``action`` (B,) under softmax(logits (B, A)) -> (B,)."""
    log_p = ops.log_softmax(logits, -1)
    one_hot = ops.one_hot(action.astype(mindspore.int32), logits.shape[-1],
                          Tensor(1.0, log_p.dtype), Tensor(0.0, log_p.dtype))
    return (log_p * one_hot).sum(-1)


def categorical_entropy(logits: Tensor) -> Tensor:
    """Entropy of softmax(logits (B, A)) -> (B,)."""
    log_p = ops.log_softmax(logits, -1)
    return -(ops.exp(log_p) * log_p).sum(-1)


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
    :param discrete: categorical head if True, diagonal Gaussian otherwise.
    """

    def __init__(self, obs_dim: int, action_dim: int, discrete: bool, hidden_sizes: Sequence[int],
                 activation: str = "tanh", log_std_init: float = 0.0, ortho_init: bool = True):
        super().__init__()
        self.discrete = discrete
        self.action_dim = action_dim
        self.actor = MLP(obs_dim, hidden_sizes, action_dim, activation, 0.01, ortho_init)
        self.critic = MLP(obs_dim, hidden_sizes, 1, activation, 1.0, ortho_init)
        # Discrete policies carry an unused log_std too, so every network has the same parameter names.
        self.log_std = Parameter(Tensor(np.full(action_dim, log_std_init, np.float32)), name="log_std",
                                 requires_grad=not discrete)
        # The cells that compute the MLP outputs: the MLPs themselves, or mixed-precision wrappers around them
        # (ms_ppo.precision). Inserted after the MLPs and without renaming Parameters (plain attribute assignment
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
        else:
            action = out + ops.exp(self.log_std) * noise
            log_prob = gaussian_log_prob(out, self.log_std, action)
        return action, log_prob, self.value(obs)

    def deterministic(self, obs: Tensor) -> Tensor:
        """The mode of the policy: the mean (Box) or the arg-max action (Discrete)."""
        out = self.actor_forward(obs)
        if self.discrete:
            return ops.argmax(out, -1).astype(mindspore.int32)
        return out

    def evaluate_actions(self, obs: Tensor, action: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Log-probability (B,), entropy (B,) and value (B,) of given actions under the current policy."""
        out = self.actor_forward(obs)
        if self.discrete:
            return categorical_log_prob(out, action), categorical_entropy(out), self.value(obs)
        return (gaussian_log_prob(out, self.log_std, action), gaussian_entropy(self.log_std, obs.shape[0]),
                self.value(obs))

"""Nature-CNN actor-critic for image observations (Mnih et al., 2015), with the interface of ActorCritic.

Input: uint8 frames (B, C, H, W), e.g. 4 stacked 84x84 grayscale frames; they are cast to float and divided by
255 inside the network, so the rollout stores and transfers uint8 only. The trunk (3 convolutions and a 512-unit
dense layer, ReLU) is shared by the policy and value heads.

Parameter names (stable for checkpoints): ``features.{0,2,4,7}.{weight,bias}``, ``actor.{weight,bias}``,
``critic.{weight,bias}``, ``log_std``.
"""

from __future__ import annotations

import math
from typing import Sequence, Tuple

import mindspore
import numpy as np
from mindspore import Parameter, Tensor, nn, ops
from mindspore.common.initializer import Orthogonal

from ms_ppo.errors import UserInputError
from ms_ppo.models.distributions import categorical_entropy, categorical_log_prob, gaussian_entropy, gaussian_log_prob

FEATURES = 512


def is_image_space(space) -> bool:
    """True for uint8 Box observations of rank 3 (C, H, W): what the CNN accepts."""
    shape = getattr(space, "shape", None)
    return (shape is not None and len(shape) == 3 and np.dtype(getattr(space, "dtype", np.float32)) == np.uint8)


def _conv_out(size: int, kernel: int, stride: int) -> int:
    return (size - kernel) // stride + 1


def _init(ortho: bool, gain: float):
    return Orthogonal(gain=gain) if ortho else "he_uniform"


class NatureCNN(nn.SequentialCell):
    """(B, C, H, W) float in [0, 1] -> (B, 512): 32x8x8/4, 64x4x4/2, 64x3x3/1, dense 512, ReLU after each."""

    def __init__(self, obs_shape: Sequence[int], ortho: bool = True):
        channels, height, width = (int(d) for d in obs_shape)
        gain = math.sqrt(2.0)
        h, w = height, width
        for kernel, stride in ((8, 4), (4, 2), (3, 1)):
            h, w = _conv_out(h, kernel, stride), _conv_out(w, kernel, stride)
        if h < 1 or w < 1:
            raise UserInputError(f"image observations of shape {tuple(obs_shape)} are too small for the Nature CNN "
                                 f"(needs at least 36x36)")

        def conv(n_in, n_out, kernel, stride):
            return nn.Conv2d(n_in, n_out, kernel, stride, pad_mode="valid", has_bias=True,
                             weight_init=_init(ortho, gain), bias_init="zeros")

        super().__init__([
            conv(channels, 32, 8, 4), nn.ReLU(),
            conv(32, 64, 4, 2), nn.ReLU(),
            conv(64, 64, 3, 1), nn.ReLU(),
            nn.Flatten(),
            nn.Dense(64 * h * w, FEATURES, weight_init=_init(ortho, gain), bias_init="zeros"), nn.ReLU(),
        ])


class CnnActorCritic(nn.Cell):
    """Shared Nature-CNN trunk, linear policy head (gain 0.01) and value head (gain 1).

    An ``ActorCriticNetwork`` (ms_ppo/models/protocol.py); Box actions are Gaussian, clipped to the bounds for
    the environment as with the MLP. ``features_forward`` is the cell that computes the trunk (the trunk
    itself, or a mixed-precision wrapper around it, see ``apply_cnn_precision``).

    :param obs_shape: (C, H, W) of the uint8 observations.
    :param action_dim: number of actions (Discrete) or the action size (Box).
    """

    def __init__(self, obs_shape: Sequence[int], action_dim: int, discrete: bool, log_std_init: float = 0.0,
                 ortho_init: bool = True):
        super().__init__()
        self.discrete = discrete
        self.action_dim = action_dim
        self.image_input = True  # uint8 frames: the rollout stores them as they are
        self.obs_shape = tuple(int(d) for d in obs_shape)
        self.features = NatureCNN(self.obs_shape, ortho_init)
        self.actor = nn.Dense(FEATURES, action_dim, weight_init=_init(ortho_init, 0.01), bias_init="zeros")
        self.critic = nn.Dense(FEATURES, 1, weight_init=_init(ortho_init, 1.0), bias_init="zeros")
        self.log_std = Parameter(Tensor(np.full(action_dim, log_std_init, np.float32)), name="log_std",
                                 requires_grad=not discrete)
        # As in ActorCritic: registered without renaming Parameters, replaced by a wrapper under fp16.
        self.insert_child_to_cell("features_forward", self.features)

    def _trunk(self, obs: Tensor) -> Tensor:
        return self.features_forward(obs.astype(mindspore.float32) / 255.0)

    def _heads(self, obs: Tensor) -> Tuple[Tensor, Tensor]:
        hidden = self._trunk(obs)
        return self.actor(hidden), self.critic(hidden).squeeze(-1)

    def actor_forward(self, obs: Tensor) -> Tensor:
        """Logits (Discrete) or Gaussian means (Box), (B, A)."""
        return self.actor(self._trunk(obs))

    def critic_forward(self, obs: Tensor) -> Tensor:
        """Values (B, 1)."""
        return self.critic(self._trunk(obs))

    def value(self, obs: Tensor) -> Tensor:
        """State value (B,)."""
        return self.critic_forward(obs).squeeze(-1)

    def sample(self, obs: Tensor, noise: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Action from host-drawn noise (Gumbel for Discrete, standard normal for Box), its log-prob, the value."""
        out, value = self._heads(obs)
        if self.discrete:
            action = ops.argmax(out + noise, -1).astype(mindspore.int32)
            log_prob = categorical_log_prob(out, action)
        else:
            action = out + ops.exp(self.log_std) * noise
            log_prob = gaussian_log_prob(out, self.log_std, action)
        return action, log_prob, value

    def deterministic(self, obs: Tensor) -> Tensor:
        out = self.actor_forward(obs)
        if self.discrete:
            return ops.argmax(out, -1).astype(mindspore.int32)
        return out

    def evaluate_actions(self, obs: Tensor, action: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Log-probability (B,), entropy (B,) and value (B,) of given actions; one trunk pass."""
        out, value = self._heads(obs)
        if self.discrete:
            return categorical_log_prob(out, action), categorical_entropy(out), value
        return gaussian_log_prob(out, self.log_std, action), gaussian_entropy(self.log_std, obs.shape[0]), value


def wants_cnn(network: str, observation_space) -> bool:
    """``policy.network`` -> True for the CNN: ``cnn``, or ``auto`` with uint8 (C, H, W) observations."""
    if network == "cnn":
        if not is_image_space(observation_space):
            raise UserInputError(f"policy.network cnn needs uint8 (C, H, W) image observations, not "
                                 f"{observation_space}")
        return True
    return network == "auto" and is_image_space(observation_space)

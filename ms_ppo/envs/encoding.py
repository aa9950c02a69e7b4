"""Between the environment and the network: observations encoded as network inputs, network actions mapped to
environment actions."""

from __future__ import annotations

from typing import Optional, Tuple

import gymnasium as gym
import numpy as np

from ms_ppo.errors import UserInputError


class ObservationEncoder:
    """Turns a batch of raw observations into float32 network inputs (N, O): one-hot for Discrete spaces.

    :param image: for the CNN policy: uint8 (C, H, W) frames pass through as they are, uint8 and not copied
        (the network scales them by 1/255), with ``shape`` (C, H, W).
    """

    def __init__(self, space: gym.Space, image: bool = False):
        self.image = image
        if image:
            if not (isinstance(space, gym.spaces.Box) and len(space.shape) == 3 and space.dtype == np.uint8):
                raise UserInputError(f"the CNN policy needs uint8 (C, H, W) image observations, not {space}")
            self.one_hot = None
            self.shape = tuple(int(d) for d in space.shape)
        elif isinstance(space, gym.spaces.Discrete):
            self.one_hot: Optional[int] = int(space.n)
            self.shape: Tuple[int, ...] = (int(space.n),)
        elif isinstance(space, gym.spaces.Box):
            self.one_hot = None
            self.shape = tuple(int(d) for d in np.prod(space.shape, keepdims=True))
        else:
            raise UserInputError(f"observation space {space} is not supported (Box or Discrete only)")

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8 if self.image else np.float32)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs)
        if self.image:
            return obs
        if self.one_hot is not None:
            return np.eye(self.one_hot, dtype=np.float32)[obs.astype(np.int64)]
        return obs.reshape(obs.shape[0], -1).astype(np.float32)


def action_dims(space: gym.Space) -> Tuple[int, bool]:
    """(A, discrete): the action size for Box spaces, the number of actions for Discrete ones."""
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n), True
    if isinstance(space, gym.spaces.Box) and len(space.shape) == 1:
        return int(space.shape[0]), False
    raise UserInputError(f"action space {space} is not supported (Discrete or 1-D Box only)")


class ActionAdapter:
    """Network actions -> environment actions: Box actions are clipped to the bounds, Discrete pass through.

    The update keeps the log-prob of the unclipped sample; only the environment sees the clipped action.
    With ``policy.distribution: tanh_normal`` the network already returns center + scale * tanh(u), inside the
    bounds, so the clip changes nothing and the stored action is the environment action (ms_ppo.models.mlp).
    """

    def __init__(self, space: gym.Space):
        self.box = isinstance(space, gym.spaces.Box)
        self.low, self.high = (space.low, space.high) if self.box else (None, None)

    def __call__(self, action: np.ndarray) -> np.ndarray:
        return np.clip(action, self.low, self.high) if self.box else action

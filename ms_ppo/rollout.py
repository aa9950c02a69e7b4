"""Preallocated storage for one rollout of T steps from N environments."""

from __future__ import annotations

from typing import Dict, Tuple

import numpy as np


class RolloutBuffer:
    """Arrays of shape (T, N, ...) filled step by step, then flattened to (T * N, ...) for the update.

    :param rollout_steps: T. :param num_envs: N. :param obs_size: O.
    :param action_shape: () for Discrete actions (stored as int32), (A,) for Box actions (float32).
    """

    def __init__(self, rollout_steps: int, num_envs: int, obs_size: int, action_shape: Tuple[int, ...]):
        t, n = rollout_steps, num_envs
        self.obs = np.zeros((t, n, obs_size), np.float32)
        self.actions = np.zeros((t, n) + action_shape, np.int32 if action_shape == () else np.float32)
        self.log_probs = np.zeros((t, n), np.float32)
        self.values = np.zeros((t, n), np.float32)
        self.rewards = np.zeros((t, n), np.float32)
        self.dones = np.zeros((t, n), np.float32)

    def add(self, t: int, obs: np.ndarray, actions: np.ndarray, log_probs: np.ndarray, values: np.ndarray,
            rewards: np.ndarray, dones: np.ndarray) -> None:
        self.obs[t] = obs
        self.actions[t] = actions
        self.log_probs[t] = log_probs
        self.values[t] = values
        self.rewards[t] = rewards
        self.dones[t] = dones

    def flatten(self, advantages: np.ndarray, returns: np.ndarray) -> Dict[str, np.ndarray]:
        """The rollout as one batch of T * N transitions (the layout ``PPOAgent.update`` expects)."""
        def flat(array: np.ndarray) -> np.ndarray:
            return np.ascontiguousarray(array.reshape((-1,) + array.shape[2:]))
        return {"obs": flat(self.obs), "actions": flat(self.actions), "log_probs": flat(self.log_probs),
                "values": flat(self.values), "advantages": flat(advantages.astype(np.float32)),
                "returns": flat(returns.astype(np.float32))}

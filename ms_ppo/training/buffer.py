"""Preallocated storage for one rollout of T steps from N environments."""

from __future__ import annotations

import os
from typing import Dict, Tuple

import numpy as np

from ms_ppo.algo.batch import RolloutBatch


class RolloutBuffer:
    """Arrays of shape (T, N, ...) filled step by step, then flattened to (T * N, ...) for the update.

    :param rollout_steps: T. :param num_envs: N. :param obs_size: O, or the observation shape, e.g. (4, 84, 84).
    :param action_shape: () for Discrete actions (stored as int32), (A,) for Box actions (float32).
    :param obs_dtype: float32, or uint8 for image frames (stored as they come, 1 byte per pixel).
    """

    def __init__(self, rollout_steps: int, num_envs: int, obs_size, action_shape: Tuple[int, ...],
                 obs_dtype=np.float32):
        t, n = rollout_steps, num_envs
        obs_shape = tuple(obs_size) if isinstance(obs_size, (tuple, list)) else (int(obs_size),)
        self.obs = np.zeros((t, n) + obs_shape, obs_dtype)
        self.actions = np.zeros((t, n) + action_shape, np.int32 if action_shape == () else np.float32)
        self.log_probs = np.zeros((t, n), np.float32)
        self.values = np.zeros((t, n), np.float32)
        self.rewards = np.zeros((t, n), np.float32)
        self.dones = np.zeros((t, n), np.float32)

    COLUMNS = ("obs", "actions", "log_probs", "values", "rewards", "dones")

    def columns(self) -> Dict[str, np.ndarray]:
        """The (T, N, ...) arrays by name."""
        return {name: getattr(self, name) for name in self.COLUMNS}

    def add(self, t: int, obs: np.ndarray, actions: np.ndarray, log_probs: np.ndarray, values: np.ndarray,
            rewards: np.ndarray, dones: np.ndarray) -> None:
        self.obs[t] = obs
        self.actions[t] = actions
        self.log_probs[t] = log_probs
        self.values[t] = values
        self.rewards[t] = rewards
        self.dones[t] = dones

    def flatten(self, advantages: np.ndarray, returns: np.ndarray) -> RolloutBatch:
        """The rollout as one batch of T * N transitions, with its advantages and returns (T, N)."""
        def flat(array: np.ndarray) -> np.ndarray:
            return np.ascontiguousarray(array.reshape((-1,) + array.shape[2:]))
        return RolloutBatch(obs=flat(self.obs), actions=flat(self.actions), log_probs=flat(self.log_probs),
                            advantages=flat(advantages.astype(np.float32)), returns=flat(returns.astype(np.float32)),
                            values=flat(self.values))


def rollout_memory_bytes(rollout_steps: int, num_envs: int, obs_bytes: int, action_bytes: int) -> int:
    """Estimated peak host memory of one rollout: the buffer, its flattened copy and the tensors made from it
    (3 copies) of observations, actions and six float32 columns (log-probs, values, rewards, dones, advantages,
    returns)."""
    return 3 * rollout_steps * num_envs * (obs_bytes + action_bytes + 6 * 4)


def available_memory_bytes() -> int:
    """Memory the machine can still give (MemAvailable on Linux; total physical memory elsewhere)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")

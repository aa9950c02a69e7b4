"""Generalised advantage estimation (Schulman et al., 2016) over a rollout, on the host in NumPy."""

from __future__ import annotations

from typing import Tuple

import numpy as np


def compute_gae(rewards: np.ndarray, values: np.ndarray, dones: np.ndarray, last_values: np.ndarray,
                gamma: float, gae_lambda: float) -> Tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimation over a rollout, vectorised across environments.

    :param rewards: (T, N) rewards; on a time-limit truncation the caller has already added gamma * V(final obs).
    :param values: (T, N) value estimates of the observations the actions were taken in.
    :param dones: (T, N) 1.0 where the episode ended (terminated or truncated) with that step, else 0.0.
    :param last_values: (N,) values of the observations after the last step.
    :return: advantages (T, N) and returns = advantages + values (T, N).
    """
    advantages = np.zeros_like(rewards)
    running = np.zeros_like(last_values)
    next_values = last_values
    for t in reversed(range(rewards.shape[0])):
        not_done = 1.0 - dones[t]
        delta = rewards[t] + gamma * next_values * not_done - values[t]
        running = delta + gamma * gae_lambda * not_done * running
        advantages[t] = running
        next_values = values[t]
    return advantages, advantages + values

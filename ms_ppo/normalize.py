"""Running observation normalisation and reward scaling, on the host in NumPy (cheap, vectorised over envs)."""

from __future__ import annotations

from typing import Dict, Tuple

import numpy as np


class RunningMeanStd:
    """Mean and variance of a stream of batches (Chan et al.'s parallel update)."""

    def __init__(self, shape: Tuple[int, ...] = ()):
        self.mean = np.zeros(shape, np.float64)
        self.var = np.ones(shape, np.float64)
        self.count = 1e-4  # a tiny prior count keeps the first update well defined

    def update(self, batch: np.ndarray) -> None:
        """Fold in a batch of shape (B, *shape)."""
        batch_mean, batch_var, batch_count = batch.mean(0), batch.var(0), batch.shape[0]
        delta = batch_mean - self.mean
        total = self.count + batch_count
        self.mean = self.mean + delta * batch_count / total
        m2 = self.var * self.count + batch_var * batch_count + delta ** 2 * self.count * batch_count / total
        self.var = m2 / total
        self.count = total

    def state(self) -> Dict[str, np.ndarray]:
        return {"mean": self.mean.copy(), "var": self.var.copy(), "count": np.array(self.count)}

    def load(self, state: Dict[str, np.ndarray]) -> None:
        self.mean = np.asarray(state["mean"], np.float64).reshape(self.mean.shape)
        self.var = np.asarray(state["var"], np.float64).reshape(self.var.shape)
        self.count = float(state["count"])


class ObservationNormalizer:
    """(obs - mean) / std, clipped; statistics update only while training (evaluation uses them frozen)."""

    def __init__(self, shape: Tuple[int, ...], enabled: bool, clip: float):
        self.enabled = enabled
        self.clip = clip
        self.stats = RunningMeanStd(shape)

    def __call__(self, obs: np.ndarray, update: bool = False) -> np.ndarray:
        if not self.enabled:
            return obs
        if update:
            self.stats.update(obs)
        normed = (obs - self.stats.mean) / np.sqrt(self.stats.var + 1e-8)
        return np.clip(normed, -self.clip, self.clip).astype(np.float32)


class RewardScaler:
    """Divide rewards by the running std of the discounted return (as SB3's VecNormalize does)."""

    def __init__(self, num_envs: int, gamma: float, enabled: bool, clip: float):
        self.enabled = enabled
        self.gamma = gamma
        self.clip = clip
        self.stats = RunningMeanStd(())
        self.returns = np.zeros(num_envs, np.float64)

    def __call__(self, rewards: np.ndarray, dones: np.ndarray) -> np.ndarray:
        """Scale one vector step of rewards (N,); ``dones`` (N,) resets the discounted return after it."""
        if not self.enabled:
            return rewards.astype(np.float32)
        self.returns = self.returns * self.gamma + rewards
        self.stats.update(self.returns)
        self.returns[dones.astype(bool)] = 0.0
        scaled = rewards / np.sqrt(self.stats.var + 1e-8)
        return np.clip(scaled, -self.clip, self.clip).astype(np.float32)

"""Running observation normalisation and reward scaling, on the host in NumPy (cheap, vectorised over envs)."""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple

import numpy as np


class RunningMeanStd:
    """Mean and variance of a stream of batches (Chan et al.'s parallel update)."""

    def __init__(self, shape: Tuple[int, ...] = ()):
        self.mean = np.zeros(shape, np.float64)
        self.var = np.ones(shape, np.float64)
        self.count = 1e-4  # a tiny prior count keeps the first update well defined

    def update(self, batch: np.ndarray) -> None:
        """Fold in a batch of shape (B, *shape)."""
        self.update_from_moments(batch.mean(0), batch.var(0), batch.shape[0])

    def update_from_moments(self, batch_mean: np.ndarray, batch_var: np.ndarray, batch_count: float) -> None:
        """Fold in a batch given by its mean, variance and size."""
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
    """(obs - mean) / std, clipped; statistics update only while training (evaluation uses them frozen).

    :param merge: None in one process (statistics update at every step); in data-parallel training, a function
        that combines every worker's rollout observations ``(B, *shape) -> (mean, var, count)``: updates are
        then deferred to ``sync()`` at the end of each rollout, so all workers keep identical statistics.
    """

    def __init__(self, shape: Tuple[int, ...], enabled: bool, clip: float,
                 merge: Optional[Callable[[np.ndarray], Tuple[np.ndarray, np.ndarray, float]]] = None):
        self.enabled = enabled
        self.clip = clip
        self.stats = RunningMeanStd(shape)
        self.merge = merge
        self.pending: List[np.ndarray] = []

    def sync(self) -> None:
        """Data-parallel only: fold the observations seen since the last sync, from every worker, into the stats."""
        if self.enabled and self.merge is not None:
            self.stats.update_from_moments(*self.merge(np.concatenate(self.pending)))
            self.pending = []

    def __call__(self, obs: np.ndarray, update: bool = False) -> np.ndarray:
        if not self.enabled:
            return obs
        if update and self.merge is not None:
            self.pending.append(obs)
        elif update:
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

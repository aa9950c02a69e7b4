"""Running observation normalisation and reward scaling, on the host in NumPy (cheap, vectorised over envs)."""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple

import gymnasium as gym
import numpy as np

from ms_ppo.config import NormalizeSettings
from ms_ppo.envs.encoding import ObservationEncoder
from ms_ppo.errors import UserInputError


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


Merge = Callable[[np.ndarray], Tuple[np.ndarray, np.ndarray, float]]


class _MergedUpdates:
    """Data-parallel: the batches a worker saw since the last ``sync``, folded into its statistics together with
    every other worker's (``merge`` is a collective), so all workers keep identical statistics."""

    def __init__(self, stats: RunningMeanStd, merge: Merge):
        self.stats = stats
        self.merge = merge
        self.pending: List[np.ndarray] = []

    def sync(self) -> None:
        self.stats.update_from_moments(*self.merge(np.concatenate(self.pending)))
        self.pending = []


class ObservationNormalizer:
    """(obs - mean) / std, clipped; statistics update only while training (evaluation uses them frozen).

    :param merge: None in one process (statistics update at every step); in data-parallel training, a function
        that combines every worker's rollout observations ``(B, *shape) -> (mean, var, count)``: updates are
        then deferred to ``sync()`` at the end of each rollout, so all workers keep identical statistics.
    :param stats: the running statistics to use and update (the training loop's state holds them), else new ones.
    """

    def __init__(self, shape: Tuple[int, ...], enabled: bool, clip: float, merge: Optional[Merge] = None,
                 stats: Optional[RunningMeanStd] = None):
        self.enabled = enabled
        self.clip = clip
        self.stats = RunningMeanStd(shape) if stats is None else stats
        self.merged = None if merge is None else _MergedUpdates(self.stats, merge)

    def sync(self) -> None:
        """Data-parallel only: fold the observations seen since the last sync, from every worker, into the stats."""
        if self.enabled and self.merged is not None:
            self.merged.sync()

    def __call__(self, obs: np.ndarray, update: bool = False) -> np.ndarray:
        if not self.enabled:
            return obs
        if update and self.merged is not None:
            self.merged.pending.append(obs)
        elif update:
            self.stats.update(obs)
        normed = (obs - self.stats.mean) / np.sqrt(self.stats.var + 1e-8)
        return np.clip(normed, -self.clip, self.clip).astype(np.float32)


class RewardScaler:
    """Divide rewards by the running std of the discounted return (as SB3's VecNormalize does).

    :param stats: the running statistics of the discounted return (the training loop's state holds them), else
        new ones.
    :param merge: data-parallel, as in ObservationNormalizer: the discounted returns of every worker are merged at
        ``sync()`` (the end of each rollout), so all workers scale by the same statistics.
    """

    def __init__(self, gamma: float, enabled: bool, clip: float, stats: Optional[RunningMeanStd] = None,
                 merge: Optional[Merge] = None):
        self.enabled = enabled
        self.gamma = gamma
        self.clip = clip
        self.stats = RunningMeanStd(()) if stats is None else stats
        self.merged = None if merge is None else _MergedUpdates(self.stats, merge)

    def sync(self) -> None:
        """Data-parallel only: fold every worker's discounted returns since the last sync into the statistics."""
        if self.enabled and self.merged is not None:
            self.merged.sync()

    def __call__(self, rewards: np.ndarray, dones: np.ndarray, returns: np.ndarray
                 ) -> Tuple[np.ndarray, np.ndarray]:
        """Scale one vector step of rewards (N,).

        :param returns: (N,) float64 discounted return of each environment so far, carried by the caller.
        :return: the scaled rewards (N,) float32 and the new discounted returns, reset to 0 where ``dones``.
        """
        if not self.enabled:
            return rewards.astype(np.float32), returns
        returns = returns * self.gamma + rewards
        if self.merged is not None:
            self.merged.pending.append(returns.copy())
        else:
            self.stats.update(returns)
        returns[dones.astype(bool)] = 0.0
        scaled = rewards / np.sqrt(self.stats.var + 1e-8)
        return np.clip(scaled, -self.clip, self.clip).astype(np.float32), returns


def observation_pipeline(space: gym.Space, image: bool, settings: NormalizeSettings,
                         merge: Optional[Merge] = None, stats: Optional[RunningMeanStd] = None
                         ) -> Tuple[ObservationEncoder, ObservationNormalizer]:
    """Raw observations -> network inputs, as training and evaluation both see them: the encoder, then the
    normaliser (``merge`` and ``stats`` as in ObservationNormalizer).

    :param image: the network takes uint8 frames (``ActorCriticNetwork.image_input``).
    """
    encoder = ObservationEncoder(space, image=image)
    if encoder.image and settings.observations:
        raise UserInputError("normalize.observations is not available for image observations "
                             "(the CNN scales its uint8 frames by 1/255)")
    return encoder, ObservationNormalizer(encoder.shape, settings.observations, settings.clip_obs, merge, stats)

"""The training loop's state: one object that a checkpoint saves whole and a resume restores whole.

Adding something the loop must carry across a resume is one field here. Fields come in two parts:

- the run part (counters, the sampling RNG, normalisation statistics, recent episode returns): JSON in the
  checkpoint's metadata, always restored;
- the episode part (``episode=True``: the current observations, the running episode returns, the reward scaler's
  discounted returns): pickled beside the environments' own state and restored only together with them, since
  they describe episodes in progress.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field, fields
from typing import Any, Deque, Dict, Optional

import numpy as np

from ms_ppo.envs import RunningMeanStd

RECENT_EPISODES = 100  # episodes behind charts/episodic_return


def _recent() -> Deque[float]:
    return collections.deque(maxlen=RECENT_EPISODES)


def _episode_field(**kwargs: Any) -> Any:
    return field(metadata={"episode": True}, **kwargs)


@dataclass
class TrainerState:
    """What the loop carries from one iteration to the next (N environments on this worker).

    :param rng: draws the sampling noise and the minibatch shuffles.
    :param obs_norm: running mean/std of the encoded observations (shared with the ObservationNormalizer).
    :param reward_norm: running std of the discounted return (shared with the RewardScaler).
    """

    rng: np.random.Generator
    obs_norm: RunningMeanStd
    reward_norm: RunningMeanStd
    global_step: int = 0  # environment steps collected, all workers
    iteration: int = 0  # training iterations (rollout + update) done
    episodes: int = 0  # training episodes finished
    skipped_steps: float = 0.0  # optimiser steps skipped for non-finite values since the start of training
    best_eval_return: Optional[float] = None  # the best deterministic evaluation so far (its weights: best/)
    recent_returns: Deque[float] = field(default_factory=_recent)
    recent_lengths: Deque[int] = field(default_factory=_recent)
    obs: Optional[np.ndarray] = _episode_field(default=None)  # what the next step acts on; None before reset
    episode_return: np.ndarray = _episode_field(default_factory=lambda: np.zeros(0))  # (N,) so far
    episode_length: np.ndarray = _episode_field(default_factory=lambda: np.zeros(0, np.int64))  # (N,) so far
    reward_returns: np.ndarray = _episode_field(default_factory=lambda: np.zeros(0))  # (N,) discounted, so far

    @classmethod
    def new(cls, seed: Any, num_envs: int, obs_norm: RunningMeanStd) -> "TrainerState":
        """The state before the first iteration; ``seed`` seeds the RNG (an int or a sequence); ``obs_norm`` is
        the observation normaliser's statistics, which the state then holds."""
        return cls(rng=np.random.default_rng(seed), obs_norm=obs_norm, reward_norm=RunningMeanStd(()),
                   episode_return=np.zeros(num_envs), episode_length=np.zeros(num_envs, np.int64),
                   reward_returns=np.zeros(num_envs, np.float64))

    def add_episode(self, episode_return: float, length: int) -> None:
        """A finished training episode: its return and length join the recent ones."""
        self.recent_returns.append(episode_return)
        self.recent_lengths.append(length)
        self.episodes += 1

    def run_part(self) -> Dict[str, Any]:
        """The run part as JSON-compatible values, keyed by field name."""
        return {f.name: _to_json(getattr(self, f.name)) for f in fields(self) if not f.metadata.get("episode")}

    def episode_part(self) -> Dict[str, Any]:
        """The episode part (NumPy arrays), keyed by field name."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.metadata.get("episode")}

    def load_run_part(self, saved: Dict[str, Any]) -> None:
        """Restore the run part from ``run_part()``'s output; fields it lacks keep their values. Statistics are
        loaded in place, so the normalisers sharing them see the restored values."""
        for f in fields(self):
            if not f.metadata.get("episode") and f.name in saved:
                setattr(self, f.name, _from_json(getattr(self, f.name), saved[f.name]))

    def load_episode_part(self, saved: Dict[str, Any]) -> None:
        for f in fields(self):
            if f.metadata.get("episode"):
                setattr(self, f.name, saved[f.name])


def _to_json(value: Any) -> Any:
    if isinstance(value, np.random.Generator):
        return value.bit_generator.state
    if isinstance(value, RunningMeanStd):
        return {key: np.asarray(array).tolist() for key, array in value.state().items()}
    if isinstance(value, collections.deque):
        return list(value)
    return value


def _from_json(current: Any, saved: Any) -> Any:
    """``saved`` (from ``_to_json``) as the kind of ``current``; generators and statistics are updated in place."""
    if current is None or saved is None:
        return saved
    if isinstance(current, np.random.Generator):
        current.bit_generator.state = saved
        return current
    if isinstance(current, RunningMeanStd):
        current.load(saved)
        return current
    if isinstance(current, collections.deque):
        current.clear()
        current.extend(saved)
        return current
    return type(current)(saved)

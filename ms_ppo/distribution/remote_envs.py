"""SingleActorLearnerMultiEnvDP (and its heterogeneous form): rank 0 acts and learns on environments that the
other ranks step, exchanging actions and observations over a Channel at every vector step.

Rank 0 sees one vector env of every env rank's environments (``RemoteEnvs``), so its PPOTrainer, Collector and
checkpoints are the one-process ones; each env rank runs ``EnvRank.train``: reset or step its own environments
with its rows of the actions, send back observations, rewards, ends and the infos the Collector reads.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from ms_ppo.distribution.placement import Placement


class EnvSpaces(gym.vector.VectorEnv):
    """The spaces and size of a job's environments that live on other ranks (the learner of the actor-learner
    policies builds its trainer on it); ``close`` tells those ranks to stop."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, num_envs: int,
                 on_close: Optional[Callable[[], None]] = None):
        self.num_envs = num_envs
        self.single_observation_space, self.single_action_space = observation_space, action_space
        self.observation_space = batch_space(observation_space, num_envs)
        self.action_space = batch_space(action_space, num_envs)
        self.metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}
        self.on_close = on_close

    def close(self, **kwargs: Any) -> None:
        if self.on_close is not None:
            on_close, self.on_close = self.on_close, None
            on_close()


def merge_infos(infos: List[Dict[str, Any]], counts: List[int]) -> Dict[str, Any]:
    """Vector-env info dicts of consecutive groups of environments -> one, as one vector env would report it: a
    key only some groups have is filled with zeros (its ``_key`` mask False) or None for the others."""
    merged: Dict[str, Any] = {}
    keys = [key for info in infos for key in info]
    for key in dict.fromkeys(keys):
        present = next(info[key] for info in infos if key in info)
        if isinstance(present, dict):
            merged[key] = merge_infos([info.get(key, {}) for info in infos], counts)
            continue
        present = np.asarray(present)
        parts = []
        for info, count in zip(infos, counts):
            if key in info:
                parts.append(np.asarray(info[key]))
            elif present.dtype == object:
                parts.append(np.full((count,) + present.shape[1:], None, dtype=object))
            else:
                parts.append(np.zeros((count,) + present.shape[1:], present.dtype))
        merged[key] = np.concatenate(parts)
    return merged


class RemoteEnvs(EnvSpaces):
    """Rank 0's vector env over the env ranks' environments (``num_envs`` on each of ``env_ranks`` ranks, in rank
    order: env i of rank r is env (r - 1) * num_envs + i here)."""

    def __init__(self, channel, observation_space: gym.Space, action_space: gym.Space, num_envs: int,
                 env_ranks: int):
        super().__init__(observation_space, action_space, num_envs * env_ranks, self._stop_ranks)
        self.channel = channel
        self.counts = [num_envs] * env_ranks

    def _stop_ranks(self) -> None:
        self.channel.broadcast({"op": "close"})

    def _exchange(self, message: Dict[str, Any]) -> List[Any]:
        self.channel.broadcast(message)
        return self.channel.gather(None)[1:]

    def reset(self, *, seed: Optional[int] = None, options: Optional[Dict[str, Any]] = None):
        parts = self._exchange({"op": "reset", "seed": seed, "options": options})
        return np.concatenate([obs for obs, _ in parts]), merge_infos([info for _, info in parts], self.counts)

    def step(self, actions):
        parts = self._exchange({"op": "step", "actions": np.asarray(actions)})
        obs, rewards, terminated, truncated = (np.concatenate([part[i] for part in parts]) for i in range(4))
        return obs, rewards, terminated, truncated, merge_infos([part[4] for part in parts], self.counts)


class EnvRank:
    """An env rank: steps its environments for rank 0 until told to stop.

    :param envs: this rank's ``ppo.num_envs`` environments.
    """

    def __init__(self, envs: gym.vector.VectorEnv, placement: Placement, channel):
        self.envs, self.placement, self.channel = envs, placement, channel
        self.steps = 0

    def train(self) -> Dict[str, Any]:
        """Serve reset/step requests until rank 0 closes; return this rank's step count."""
        envs, channel, offset = self.envs, self.channel, self.placement.env_offset
        rows = slice(offset, offset + envs.num_envs)
        while True:
            message = channel.broadcast()
            if message["op"] == "close":
                break
            if message["op"] == "reset":
                seed = None if message["seed"] is None else message["seed"] + offset
                channel.gather(envs.reset(seed=seed, options=message["options"]))
            else:
                channel.gather(envs.step(message["actions"][rows]))
                self.steps += envs.num_envs
        return {"total_steps": self.steps, "rank": self.placement.rank}

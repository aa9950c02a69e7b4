"""Saving and restoring in-process environments mid-episode (for exact resume)."""

from __future__ import annotations

import pickle
from typing import Optional

import gymnasium as gym
import numpy as np
from gymnasium.vector import SyncVectorEnv


def save_env_state(envs: gym.vector.VectorEnv) -> Optional[bytes]:
    """The exact state of in-process environments, mid-episode, as bytes; None for subprocess (async) envs.

    Environments are pickled; MuJoCo environments pickle only their constructor arguments, so their physics
    state (qpos, qvel, time) and random generator are stored beside them and put back by ``load_env_state``.
    """
    if not isinstance(envs, SyncVectorEnv):
        return None
    snapshots = []
    for env in envs.envs:
        inner = env.unwrapped
        physics = None
        if hasattr(inner, "data") and hasattr(inner, "set_state"):  # gymnasium.envs.mujoco.MujocoEnv
            physics = {"qpos": inner.data.qpos.copy(), "qvel": inner.data.qvel.copy(), "time": inner.data.time,
                       "rng": inner.np_random.bit_generator.state}
        snapshots.append((env, physics))
    try:
        return pickle.dumps(snapshots)
    except (pickle.PicklingError, AttributeError, TypeError, ValueError):  # e.g. emulators (Atari, NES)
        return None


def load_env_state(envs: gym.vector.VectorEnv, state: Optional[bytes]) -> bool:
    """Replace the sub-environments of ``envs`` by the saved ones; False when that is not possible."""
    if state is None or not isinstance(envs, SyncVectorEnv):
        return False
    snapshots = pickle.loads(state)  # checkpoints are trusted input, like any pickle-based checkpoint format
    if len(snapshots) != envs.num_envs:
        return False
    restored = []
    for env, physics in snapshots:
        if physics is not None:
            inner = env.unwrapped
            inner.set_state(physics["qpos"], physics["qvel"])
            inner.data.time = physics["time"]
            inner.np_random = np.random.Generator(np.random.PCG64())
            inner.np_random.bit_generator.state = physics["rng"]
        restored.append(env)
    for old in envs.envs:
        old.close()
    envs.envs = restored
    return True

"""Gymnasium environments: id aliases, creation with clear errors, vector envs, observation encoding."""

from __future__ import annotations

import difflib
import re
import warnings
from typing import Any, Callable, Dict, Optional, Tuple

import gymnasium as gym
import numpy as np
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv

from ms_ppo.errors import UserInputError

# MuJoCo tasks whose old versions needed mujoco-py and a licence; -v5 runs on the official bindings.
_MUJOCO_TASKS = ("Ant", "HalfCheetah", "Hopper", "Humanoid", "HumanoidStandup", "InvertedDoublePendulum",
                 "InvertedPendulum", "Pusher", "Reacher", "Swimmer", "Walker2d")
_OLD_MUJOCO = re.compile(rf"^({'|'.join(_MUJOCO_TASKS)})-v[1-4]$")


_MUJOCO_SEEN: set = set()


def _mujoco_warning(message: str) -> None:
    """Show each MuJoCo warning once; Gymnasium's own models trigger a harmless deprecation at every load."""
    if "deprecated" in message or message in _MUJOCO_SEEN:
        return
    _MUJOCO_SEEN.add(message)
    warnings.warn(f"MuJoCo: {message}", RuntimeWarning, stacklevel=2)


def _quiet_mujoco() -> None:
    try:
        import mujoco
    except ImportError:  # MuJoCo is optional for non-MuJoCo environments
        return
    mujoco.set_mju_user_warning(_mujoco_warning)


def resolve_env_id(env_id: str, notify: Callable[[str], None] = print) -> str:
    """Map old MuJoCo ids (HalfCheetah-v2/-v3/-v4) to -v5, with a one-line notice; check the id exists."""
    match = _OLD_MUJOCO.match(env_id)
    if match:
        new_id = f"{match.group(1)}-v5"
        notify(f"notice: {env_id} needs mujoco-py and MuJoCo 2.1 binaries; running {new_id} instead "
               f"(same task on the official mujoco bindings)")
        env_id = new_id
    if env_id not in gym.envs.registry:
        close = difflib.get_close_matches(env_id, list(gym.envs.registry), n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise UserInputError(f"unknown environment id '{env_id}'{hint}")
    return env_id


def make_env(env_id: str, kwargs: Optional[Dict[str, Any]] = None, render_mode: Optional[str] = None) -> gym.Env:
    """Create one environment; a missing optional dependency or a bad keyword is a UserInputError."""
    _quiet_mujoco()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return gym.make(env_id, render_mode=render_mode, **(kwargs or {}))
    except gym.error.DependencyNotInstalled as error:
        raise UserInputError(f"environment '{env_id}' needs a package that is not installed: "
                             f"{str(error).splitlines()[0]}") from None
    except TypeError as error:
        raise UserInputError(f"environment '{env_id}' rejected its kwargs: {error}") from None


def make_vector_env(env_id: str, num_envs: int, kwargs: Optional[Dict[str, Any]] = None,
                    mode: str = "sync") -> gym.vector.VectorEnv:
    """N copies of the environment; finished episodes reset in the same step (final obs in ``info``)."""
    make_one = lambda: make_env(env_id, kwargs)  # noqa: E731
    vector_cls = AsyncVectorEnv if mode == "async" else SyncVectorEnv
    return vector_cls([make_one] * num_envs, autoreset_mode=AutoresetMode.SAME_STEP)


class ObservationEncoder:
    """Turns a batch of raw observations into float32 network inputs (N, O): one-hot for Discrete spaces."""

    def __init__(self, space: gym.Space):
        if isinstance(space, gym.spaces.Discrete):
            self.one_hot: Optional[int] = int(space.n)
            self.shape: Tuple[int, ...] = (int(space.n),)
        elif isinstance(space, gym.spaces.Box):
            self.one_hot = None
            self.shape = tuple(int(d) for d in np.prod(space.shape, keepdims=True))
        else:
            raise UserInputError(f"observation space {space} is not supported (Box or Discrete only)")

    @property
    def size(self) -> int:
        return self.shape[0]

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs)
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

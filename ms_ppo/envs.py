"""Gymnasium environments: id aliases, creation with clear errors, vector envs, observation encoding."""

from __future__ import annotations

import difflib
import os
import pickle
import re
import warnings
from typing import Any, Callable, Dict, Optional, Tuple

import gymnasium as gym
import numpy as np
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv

from ms_ppo.errors import UserInputError

if not os.environ.get("DISPLAY"):  # headless: MuJoCo renders offscreen through EGL (read when mujoco is imported)
    os.environ.setdefault("MUJOCO_GL", "egl")

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
    from ms_ppo.pixels import prepare_env_id  # registers ALE/... and SuperMarioBros ids on first use

    prepare_env_id(env_id)
    if env_id not in gym.envs.registry:
        close = difflib.get_close_matches(env_id, list(gym.envs.registry), n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise UserInputError(f"unknown environment id '{env_id}'{hint}")
    return env_id


def make_env(env_id: str, kwargs: Optional[Dict[str, Any]] = None, render_mode: Optional[str] = None,
             wrappers: str = "none", training: bool = True) -> gym.Env:
    """Create one environment; a missing optional dependency or a bad keyword is a UserInputError.

    :param wrappers: ``env.wrappers``: none, or a pixel wrapper set (atari, mario; see ms_ppo/pixels.py).
    :param training: False builds the evaluation variant of a wrapper set (raw rewards, whole games).
    """
    _quiet_mujoco()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if wrappers != "none":
                from ms_ppo.pixels import make_pixel_env

                return make_pixel_env(env_id, wrappers, kwargs, render_mode, training)
            return gym.make(env_id, render_mode=render_mode, **(kwargs or {}))
    except gym.error.DependencyNotInstalled as error:
        raise UserInputError(f"environment '{env_id}' needs a package that is not installed: "
                             f"{str(error).splitlines()[0]}") from None
    except TypeError as error:
        raise UserInputError(f"environment '{env_id}' rejected its kwargs: {error}") from None


def make_vector_env(env_id: str, num_envs: int, kwargs: Optional[Dict[str, Any]] = None,
                    mode: str = "sync", wrappers: str = "none", training: bool = True) -> gym.vector.VectorEnv:
    """N copies of the environment; finished episodes reset in the same step (final obs in ``info``)."""
    make_one = lambda: make_env(env_id, kwargs, wrappers=wrappers, training=training)  # noqa: E731
    vector_cls = AsyncVectorEnv if mode == "async" else SyncVectorEnv
    return vector_cls([make_one] * num_envs, autoreset_mode=AutoresetMode.SAME_STEP)


class ObservationEncoder:
    """Turns a batch of raw observations into float32 network inputs (N, O): one-hot for Discrete spaces.

    :param image: for the CNN policy: uint8 (C, H, W) frames pass through as they are, uint8 and not copied
        (the network scales them by 1/255), with ``shape`` (C, H, W).
    """

    def __init__(self, space: gym.Space, image: bool = False):
        self.image = image
        if image:
            if not (isinstance(space, gym.spaces.Box) and len(space.shape) == 3 and space.dtype == np.uint8):
                raise UserInputError(f"the CNN policy needs uint8 (C, H, W) image observations, not {space}")
            self.one_hot = None
            self.shape = tuple(int(d) for d in space.shape)
        elif isinstance(space, gym.spaces.Discrete):
            self.one_hot: Optional[int] = int(space.n)
            self.shape: Tuple[int, ...] = (int(space.n),)
        elif isinstance(space, gym.spaces.Box):
            self.one_hot = None
            self.shape = tuple(int(d) for d in np.prod(space.shape, keepdims=True))
        else:
            raise UserInputError(f"observation space {space} is not supported (Box or Discrete only)")

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8 if self.image else np.float32)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs)
        if self.image:
            return obs
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

"""Making Gymnasium environments: id aliases, creation with one-line errors, vector envs."""

from __future__ import annotations

import os
import re
import warnings
from typing import Any, Callable, Dict, Optional

import gymnasium as gym
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv

from ms_ppo.config.suggest import suggest
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
    from ms_ppo.envs.pixels import prepare_env_id  # registers ALE/... and SuperMarioBros ids on first use

    prepare_env_id(env_id)
    if env_id not in gym.envs.registry:
        raise UserInputError(f"unknown environment id '{env_id}'{suggest(env_id, gym.envs.registry)}")
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
                from ms_ppo.envs.pixels import make_pixel_env

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

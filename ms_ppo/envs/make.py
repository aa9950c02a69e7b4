"""Making Gymnasium environments: id aliases, creation with one-line errors, vector envs."""

from __future__ import annotations

import functools
import importlib
import os
import re
import warnings
from typing import Any, Callable, Dict, Optional

import gymnasium as gym
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv
from gymnasium.wrappers import FlattenObservation

from ms_ppo.config.suggest import suggest
from ms_ppo.envs.pixels import make_pixel_env, prepare_env_id
from ms_ppo.errors import EnvironmentFailed, UserInputError

if not os.environ.get("DISPLAY"):  # headless: MuJoCo renders offscreen through EGL (read when mujoco is imported)
    os.environ.setdefault("MUJOCO_GL", "egl")

# MuJoCo tasks whose -v2/-v3 needed mujoco-py and MuJoCo 2.1 binaries (Gymnasium moved them out); -v4 and -v5 run
# on the official mujoco bindings, -v5 being the current version.
_MUJOCO_TASKS = ("Ant", "HalfCheetah", "Hopper", "Humanoid", "HumanoidStandup", "InvertedDoublePendulum",
                 "InvertedPendulum", "Pusher", "Reacher", "Swimmer", "Walker2d")
_OLD_MUJOCO = re.compile(rf"^({'|'.join(_MUJOCO_TASKS)})-v[1-3]$")
_V4_MUJOCO = re.compile(rf"^({'|'.join(_MUJOCO_TASKS)})-v4$")


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


def _import(module: str, what: str):
    try:
        return importlib.import_module(module)
    except Exception as error:  # ImportError, or whatever the user's module raises while it loads
        raise UserInputError(f"{what}: cannot import module '{module}': {str(error).splitlines()[0]}") from None


def _register_entry_point(env_id: str, entry_point: str) -> None:
    """Register ``env_id`` for ``package.module:ClassName`` (or a factory function), checked before use."""
    module, sep, name = entry_point.partition(":")
    if not sep or not module or not name:
        raise UserInputError(f"env.entry_point '{entry_point}': expected package.module:ClassName")
    if not callable(getattr(_import(module, f"env.entry_point '{entry_point}'"), name, None)):
        raise UserInputError(f"env.entry_point '{entry_point}': module '{module}' has no class or function '{name}'")
    spec = gym.envs.registry.get(env_id)
    if spec is None:
        gym.register(env_id, entry_point=entry_point)
    elif spec.entry_point != entry_point:
        raise UserInputError(f"env.id '{env_id}' is already registered (entry point {spec.entry_point}); choose "
                             f"another env.id for env.entry_point {entry_point}")


def register_env_factory(make: Callable[..., gym.Env]) -> str:
    """Register a Python callable that returns a gymnasium.Env (``PPOSession(env=...)``); return its id,
    ``python/<name>-v0``. The same callable gets the same id, so a session and its evaluation agree."""
    name = re.sub(r"[^A-Za-z0-9_]+", "", getattr(make, "__name__", "")) or "env"
    env_id = f"python/{name}-v0"
    spec = gym.envs.registry.get(env_id)
    if spec is not None and spec.entry_point is not make:
        del gym.envs.registry[env_id]  # a new callable of the same name (e.g. a redefined class): the newest wins
    if env_id not in gym.envs.registry:
        gym.register(env_id, entry_point=make)
    return env_id


def resolve_env_id(env_id: str, notify: Callable[[str], None] = print, entry_point: Optional[str] = None) -> str:
    """The Gymnasium id to make, checked to exist.

    - MuJoCo ids that needed mujoco-py (HalfCheetah-v2/-v3) map to -v5, with a one-line notice; -v4 runs as asked,
      with a notice that -v5 is current.
    - ``module:EnvId`` (Gymnasium's own form) imports ``module``, which registers ``EnvId``; the id is returned.
    - With ``entry_point`` (``package.module:ClassName``), ``env_id`` is registered for that class.
    """
    match = _OLD_MUJOCO.match(env_id)
    if match:
        new_id = f"{match.group(1)}-v5"
        notify(f"notice: {env_id} needs mujoco-py and MuJoCo 2.1 binaries; running {new_id} instead "
               f"(same task on the official mujoco bindings)")
        env_id = new_id
    elif _V4_MUJOCO.match(env_id):
        notify(f"notice: {env_id} runs as asked (official mujoco bindings); {env_id[:-1]}5 is the current version "
               f"of the task")
    imported = None
    if ":" in env_id:
        imported, _, env_id = env_id.partition(":")
        _import(imported, f"env.id '{imported}:{env_id}'")
    if entry_point is not None:
        _register_entry_point(env_id, entry_point)
    prepare_env_id(env_id)
    if env_id not in gym.envs.registry:
        hint = suggest(env_id, gym.envs.registry)
        if imported is not None:
            raise UserInputError(f"env.id: module '{imported}' was imported but registers no environment "
                                 f"'{env_id}'{hint}")
        if env_id.startswith("python/"):
            hint += " (it was given from Python: pass the same env= to PPOSession or evaluate_checkpoint)"
        raise UserInputError(f"unknown environment id '{env_id}'{hint}")
    return env_id


def make_env(env_id: str, kwargs: Optional[Dict[str, Any]] = None, render_mode: Optional[str] = None,
             wrappers: str = "none", training: bool = True) -> gym.Env:
    """Create one environment; a missing optional dependency or a bad keyword is a UserInputError.

    :param wrappers: ``env.wrappers``: none, or a pixel wrapper set (atari, mario; see ms_ppo/envs/pixels.py).
    :param training: False builds the evaluation variant of a wrapper set (raw rewards, whole games).
    """
    _quiet_mujoco()
    if render_mode == "rgb_array":
        # Off-screen frames need no display: without this pygame's SDL looks for one and prints
        # "error: XDG_RUNTIME_DIR is invalid" on a headless host (a user's own SDL_VIDEODRIVER wins).
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if wrappers != "none":
                return make_pixel_env(env_id, wrappers, kwargs, render_mode, training)
            return _flat_observations(gym.make(env_id, render_mode=render_mode, **(kwargs or {})))
    except gym.error.DependencyNotInstalled as error:
        raise UserInputError(f"environment '{env_id}' needs a package that is not installed: "
                             f"{str(error).splitlines()[0]}") from None
    except TypeError as error:
        raise UserInputError(f"environment '{env_id}' rejected its kwargs: {error}") from None


_STRUCTURED = (gym.spaces.Dict, gym.spaces.Tuple, gym.spaces.MultiBinary, gym.spaces.MultiDiscrete)


def _flat_observations(env: gym.Env) -> gym.Env:
    """Dict, Tuple, MultiBinary and MultiDiscrete observations become one flat Box (Gymnasium's
    FlattenObservation: one-hot for the discrete parts), which the MLP takes."""
    if isinstance(env.observation_space, _STRUCTURED):
        return FlattenObservation(env)
    return env


class NamedFailures(gym.Wrapper):
    """An exception in ``step`` or ``reset`` becomes an EnvironmentFailed naming this environment's index in its
    vector env (a vector env re-raises a sub-environment's error without saying which one failed)."""

    def __init__(self, env: gym.Env, index: int):
        super().__init__(env)
        self.index = index

    def _failed(self, call: str, error: Exception) -> EnvironmentFailed:
        first_line = (str(error).splitlines() or [""])[0]
        return EnvironmentFailed(f"env {self.index} raised {type(error).__name__} in {call}: {first_line}")

    def step(self, action):
        try:
            return self.env.step(action)
        except EnvironmentFailed:
            raise
        except Exception as error:
            raise self._failed("step", error) from error

    def reset(self, **kwargs):
        try:
            return self.env.reset(**kwargs)
        except EnvironmentFailed:
            raise
        except Exception as error:
            raise self._failed("reset", error) from error


def make_vector_env(env_id: str, num_envs: int, kwargs: Optional[Dict[str, Any]] = None,
                    mode: str = "sync", wrappers: str = "none", training: bool = True) -> gym.vector.VectorEnv:
    """N copies of the environment; finished episodes reset in the same step (final obs in ``info``)."""
    def make_one(index: int) -> gym.Env:
        return NamedFailures(make_env(env_id, kwargs, wrappers=wrappers, training=training), index)

    vector_cls = AsyncVectorEnv if mode == "async" else SyncVectorEnv
    return vector_cls([functools.partial(make_one, i) for i in range(num_envs)],
                      autoreset_mode=AutoresetMode.SAME_STEP)

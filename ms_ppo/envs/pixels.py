"""Pixel environments: which wrapper set builds an environment (``env.wrappers``: atari or mario).

Both sets produce uint8 observations of shape (4, 84, 84): four stacked grayscale frames, channels first, which the
Nature CNN (ms_ppo/models/cnn.py) scales by 1/255 itself. ``training=False`` builds the evaluation variant, whose
rewards are the game's own (no clipping or shaping) and whose episodes are whole games.

Every wrapper set puts a ``RecordEpisodeStatistics`` below the training-only wrappers, so ``info["episode"]``
carries the raw return of a whole game even where the learner sees clipped rewards and per-life episodes.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import gymnasium as gym

from ms_ppo.envs.atari import register_atari, wrap_atari
from ms_ppo.envs.mario import register_mario, wrap_mario
from ms_ppo.errors import UserInputError

WRAPPER_SETS = ("none", "atari", "mario")


def prepare_env_id(env_id: str) -> None:
    """Register the ids of the pixel families before the id is looked up."""
    if env_id.startswith("ALE/"):
        register_atari()
    elif env_id.startswith("SuperMarioBros"):
        register_mario()


def make_pixel_env(env_id: str, wrappers: str, kwargs: Optional[Dict[str, Any]] = None,
                   render_mode: Optional[str] = None, training: bool = True) -> gym.Env:
    """One environment of a wrapper set: ``atari`` (ALE ids; ``frameskip`` is forced to 1, the wrappers skip)
    or ``mario`` (SuperMarioBros-<w>-<s>-v0; kwargs ``actions``: right_only, simple or complex)."""
    kwargs = dict(kwargs or {})
    prepare_env_id(env_id)
    family = {"atari": "ALE/", "mario": "SuperMarioBros"}.get(wrappers)
    if family is not None and not env_id.startswith(family):
        raise UserInputError(f"env.wrappers {wrappers} is for {family}... ids, not {env_id}: "
                             f"set env.wrappers to none (or use an {family}... id)")
    if wrappers == "atari":
        kwargs["frameskip"] = 1
        return wrap_atari(gym.make(env_id, render_mode=render_mode, **kwargs), training)
    if wrappers == "mario":
        return wrap_mario(gym.make(env_id, render_mode=render_mode, disable_env_checker=True, **kwargs), training)
    raise UserInputError(f"unknown env.wrappers '{wrappers}'; choose one of {', '.join(WRAPPER_SETS)}")

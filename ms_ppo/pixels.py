"""Pixel environments: the Atari preprocessing stack (ALE through ale-py) and Super Mario Bros (optional extra).

Both produce uint8 observations of shape (4, 84, 84): four stacked grayscale frames, channels first, which the
Nature CNN (ms_ppo/cnn.py) scales by 1/255 itself. ``make_pixel_env`` builds one environment for a wrapper set
(``env.wrappers`` in the env YAML); ``training=False`` builds the evaluation variant, whose rewards are the game's
own (no clipping or shaping) and whose episodes are whole games.

Every wrapper set puts a ``RecordEpisodeStatistics`` below the training-only wrappers, so ``info["episode"]``
carries the raw return of a whole game even where the learner sees clipped rewards and per-life episodes.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any, Dict, Optional

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import AtariPreprocessing, ClipReward, FrameStackObservation, RecordEpisodeStatistics

from ms_ppo.errors import UserInputError

WRAPPER_SETS = ("none", "atari", "mario")
FRAME_STACK = 4
SCREEN_SIZE = 84


def _cv2():
    try:
        import cv2
    except ImportError:
        raise UserInputError("pixel environments need OpenCV: pip install opencv-python-headless") from None
    return cv2


# ---------------------------------------------------------------------------------------------------------------
# Atari
# ---------------------------------------------------------------------------------------------------------------

def register_atari() -> None:
    """Register the ALE/... ids with Gymnasium (ale-py does it on import); a clear error if ale-py is missing."""
    try:
        import ale_py
    except ImportError:
        raise UserInputError("Atari environments need ale-py (it ships the ROMs): pip install ale-py") from None
    gym.register_envs(ale_py)


class EpisodicLife(gym.Wrapper):
    """A lost life ends the learner's episode (terminated=True); the game goes on at the next reset.

    ``reset`` after a life loss takes one no-op step instead of restarting the game, so the value function
    learns that losing a life is bad while whole games still last as long as they do.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.lives = 0
        self.game_over = True

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.game_over = terminated or truncated
        lives = self.env.unwrapped.ale.lives()
        if 0 < lives < self.lives:
            terminated = True
        self.lives = lives
        return obs, reward, terminated, truncated, info

    def reset(self, **kwargs):
        if self.game_over:
            obs, info = self.env.reset(**kwargs)
        else:
            obs, _, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:
                obs, info = self.env.reset(**kwargs)
        self.game_over = False
        self.lives = self.env.unwrapped.ale.lives()
        return obs, info


class FireReset(gym.Wrapper):
    """Press FIRE after every reset, for games that wait for it (Breakout's ball, ...).

    :param after_life_loss: also press FIRE when a life is lost inside an episode; evaluation uses it because
        its episodes are whole games and a deterministic policy may never press FIRE itself.
    """

    def __init__(self, env: gym.Env, after_life_loss: bool = False):
        super().__init__(env)
        meanings = env.unwrapped.get_action_meanings()
        if len(meanings) < 3 or meanings[1] != "FIRE":
            raise UserInputError(f"FireReset needs a game whose action 1 is FIRE, got {meanings}")
        self.after_life_loss = after_life_loss
        self.lives = 0

    def reset(self, **kwargs):
        self.env.reset(**kwargs)
        obs, _, terminated, truncated, info = self.env.step(1)
        if terminated or truncated:
            self.env.reset(**kwargs)
        obs, _, terminated, truncated, info = self.env.step(2)
        if terminated or truncated:
            obs, info = self.env.reset(**kwargs)
        self.lives = self.env.unwrapped.ale.lives()
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        lives = self.env.unwrapped.ale.lives()
        if self.after_life_loss and 0 < lives < self.lives and not (terminated or truncated):
            obs, extra, terminated, truncated, info = self.env.step(1)
            reward += extra
        self.lives = lives
        return obs, reward, terminated, truncated, info


def wrap_atari(env: gym.Env, training: bool = True) -> gym.Env:
    """The standard Atari stack on an env made with ``frameskip=1``.

    No-op reset (up to 30), frame skip 4 with a max over the last two frames, 84x84 grayscale
    (Gymnasium's AtariPreprocessing); episode statistics; then, training only, episodic life and reward clipping
    to [-1, 1]; FIRE on reset where the game needs it; a stack of the last 4 frames -> uint8 (4, 84, 84).
    """
    _cv2()
    env = AtariPreprocessing(env, noop_max=30, frame_skip=4, screen_size=SCREEN_SIZE, terminal_on_life_loss=False,
                             grayscale_obs=True, scale_obs=False)
    env = RecordEpisodeStatistics(env)
    fire = "FIRE" in env.unwrapped.get_action_meanings()
    if training:
        env = EpisodicLife(env)
    if fire:
        env = FireReset(env, after_life_loss=not training)
    if training:
        env = ClipReward(env, -1.0, 1.0)
    return FrameStackObservation(env, FRAME_STACK)


# ---------------------------------------------------------------------------------------------------------------
# Super Mario Bros (pip install .[mario])
# ---------------------------------------------------------------------------------------------------------------

MARIO_ACTION_SETS = ("right_only", "simple", "complex")


def _import_mario():
    """gym_super_mario_bros and nes_py, quietly (the old gym prints a banner on import)."""
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            import gym_super_mario_bros
            from gym_super_mario_bros import actions
            from nes_py.wrappers import JoypadSpace  # noqa: F401  (checks nes-py is importable)
    except ImportError as error:
        raise UserInputError(f"Super Mario Bros needs the optional extra: pip install '.[mario]' ({error})") from None
    return gym_super_mario_bros, actions


def mario_buttons(action_set: str):
    """The list of button combinations of an action set (right_only: 5, simple: 7, complex: 12)."""
    if action_set not in MARIO_ACTION_SETS:
        raise UserInputError(f"unknown Mario action set '{action_set}'; choose one of {', '.join(MARIO_ACTION_SETS)}")
    _, actions = _import_mario()
    return {"right_only": actions.RIGHT_ONLY, "simple": actions.SIMPLE_MOVEMENT,
            "complex": actions.COMPLEX_MOVEMENT}[action_set]


_BUTTON_BITS = {"right": 0b10000000, "left": 0b01000000, "down": 0b00100000, "up": 0b00010000,
                "start": 0b00001000, "select": 0b00000100, "B": 0b00000010, "A": 0b00000001, "NOOP": 0}


class MarioEnv(gym.Env):
    """Super Mario Bros (old gym API, through ``apply_api_compatibility=True``) as a Gymnasium env.

    Observations are the raw RGB screen (240, 256, 3) uint8; actions are indices into an action set, turned into
    the NES joypad byte here. ``render()`` returns the last screen in ``rgb_array`` mode.

    :param world: 1-8. :param stage: 1-4. :param actions: right_only, simple or complex.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 60}

    def __init__(self, world: int = 1, stage: int = 1, actions: str = "simple", render_mode: Optional[str] = None):
        if render_mode not in (None, "rgb_array"):
            raise UserInputError(f"Super Mario Bros supports render_mode rgb_array, not {render_mode}")
        if not (1 <= int(world) <= 8 and 1 <= int(stage) <= 4):
            raise UserInputError(f"Super Mario Bros has worlds 1-8 and stages 1-4, not {world}-{stage}")
        smb, _ = _import_mario()
        buttons = mario_buttons(actions)
        with contextlib.redirect_stderr(io.StringIO()):
            self._env = smb.make(f"SuperMarioBros-{int(world)}-{int(stage)}-v0", apply_api_compatibility=True,
                                 disable_env_checker=True)
        self._bytes = [int(np.bitwise_or.reduce([_BUTTON_BITS[b] for b in combo])) for combo in buttons]
        self.action_meanings = [" ".join(combo) for combo in buttons]
        self.action_space = gym.spaces.Discrete(len(buttons))
        self.observation_space = gym.spaces.Box(0, 255, (240, 256, 3), np.uint8)
        self.render_mode = render_mode
        self._screen: Optional[np.ndarray] = None

    def reset(self, *, seed: Optional[int] = None, options: Optional[Dict[str, Any]] = None):
        super().reset(seed=seed)
        obs, info = self._env.reset(seed=seed)
        self._screen = obs
        return obs.copy(), dict(info)

    def step(self, action):
        obs, reward, terminated, truncated, info = self._env.step(self._bytes[int(action)])
        self._screen = obs
        return obs.copy(), float(reward), bool(terminated), bool(truncated), dict(info)

    def render(self):
        return None if self._screen is None else self._screen.copy()

    def get_action_meanings(self):
        return list(self.action_meanings)

    def close(self):
        if self._env is not None:
            self._env.close()
            self._env = None


class MarioReward(gym.Wrapper):
    """Training reward: game reward + score delta / 40, +50 on reaching the flag, -50 on dying, all / 10."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.score = 0

    def reset(self, **kwargs):
        self.score = 0
        return self.env.reset(**kwargs)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, self.shape(reward, terminated, info), terminated, truncated, info

    def shape(self, reward: float, terminated: bool, info: Dict[str, Any]) -> float:
        """The shaped reward for one NES frame, given its raw reward, whether it ended the episode and its info."""
        score = int(info.get("score", self.score))
        reward = float(reward) + (score - self.score) / 40.0
        self.score = score
        if terminated:
            reward += 50.0 if info.get("flag_get", False) else -50.0
        return reward / 10.0


class MaxAndSkip(gym.Wrapper):
    """Repeat each action ``skip`` frames, sum the rewards, return the max of the last two frames."""

    def __init__(self, env: gym.Env, skip: int = 4):
        super().__init__(env)
        self.skip = skip
        self._frames = np.zeros((2,) + env.observation_space.shape, env.observation_space.dtype)

    def step(self, action):
        total = 0.0
        terminated = truncated = False
        info: Dict[str, Any] = {}
        for i in range(self.skip):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += reward
            if i >= self.skip - 2:
                self._frames[i - (self.skip - 2)] = obs
            if terminated or truncated:
                if i < self.skip - 2:  # ended before the last two frames: max over the frame we have
                    self._frames[:] = obs
                elif i == self.skip - 2:
                    self._frames[1] = obs
                break
        return self._frames.max(axis=0), total, terminated, truncated, info


class GrayResize(gym.ObservationWrapper):
    """RGB (H, W, 3) uint8 -> grayscale (84, 84) uint8 (area interpolation)."""

    def __init__(self, env: gym.Env, size: int = SCREEN_SIZE):
        super().__init__(env)
        self.size = size
        self.observation_space = gym.spaces.Box(0, 255, (size, size), np.uint8)

    def observation(self, obs):
        cv2 = _cv2()
        gray = cv2.cvtColor(obs, cv2.COLOR_RGB2GRAY)
        return cv2.resize(gray, (self.size, self.size), interpolation=cv2.INTER_AREA)


def wrap_mario(env: gym.Env, training: bool = True) -> gym.Env:
    """Skip 4 with a max over the last two frames; episode statistics on the game's reward (lengths in agent
    steps); reward shaping (training only); 84x84 grayscale; a stack of 4 -> uint8 (4, 84, 84).

    Shaping after the skip equals shaping every frame and summing: the score deltas add up, and the episode can
    only end on the last frame of a skip."""
    env = MaxAndSkip(env, 4)
    env = RecordEpisodeStatistics(env)
    if training:
        env = MarioReward(env)
    env = GrayResize(env)
    return FrameStackObservation(env, FRAME_STACK)


def register_mario() -> None:
    """Register ``SuperMarioBros-<world>-<stage>-v0`` (and ``SuperMarioBros-v0``, 1-1) with Gymnasium.

    Registration is lazy: nothing of the optional extra is imported until an environment is made.
    """
    if "SuperMarioBros-v0" in gym.envs.registry:
        return
    gym.register("SuperMarioBros-v0", entry_point="ms_ppo.pixels:MarioEnv", kwargs={"world": 1, "stage": 1})
    for world in range(1, 9):
        for stage in range(1, 5):
            gym.register(f"SuperMarioBros-{world}-{stage}-v0", entry_point="ms_ppo.pixels:MarioEnv",
                         kwargs={"world": world, "stage": stage})


# ---------------------------------------------------------------------------------------------------------------
# Entry points used by ms_ppo.envs
# ---------------------------------------------------------------------------------------------------------------

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
    if wrappers == "atari":
        kwargs["frameskip"] = 1
        return wrap_atari(gym.make(env_id, render_mode=render_mode, **kwargs), training)
    if wrappers == "mario":
        return wrap_mario(gym.make(env_id, render_mode=render_mode, disable_env_checker=True, **kwargs), training)
    raise UserInputError(f"unknown env.wrappers '{wrappers}'; choose one of {', '.join(WRAPPER_SETS)}")

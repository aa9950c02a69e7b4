"""Super Mario Bros (optional extra ``pip install '.[mario]'``): the old-gym emulator as a Gymnasium env, its
reward shaping and its frame stack."""

from __future__ import annotations

import contextlib
import io
from typing import Any, Dict, Optional

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import FrameStackObservation, GrayscaleObservation, RecordEpisodeStatistics, ResizeObservation

from ms_ppo.envs.frames import FRAME_STACK, SCREEN_SIZE, require_cv2
from ms_ppo.errors import UserInputError

MARIO_ACTION_SETS = ("right_only", "simple", "complex")
NOOP_MAX = 30  # evaluation: at most this many no-op agent steps after a reset (NoopStart)


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
    """Repeat each action ``skip`` frames, sum the rewards, return the max of the last two frames.

    Not Gymnasium's MaxAndSkipObservation: when an episode ends before the last two frames of a skip, that one
    returns the max over frames left from the previous step (Gymnasium 1.4); this one uses the frames it got."""

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


class NoopStart(gym.Wrapper):
    """After each reset, a number of no-op steps drawn uniformly from 0..``noop_max`` with the env's seeded
    generator (the no-op starts of Atari evaluation, Mnih et al. 2015).

    Why: the NES emulator has no randomness, so the deterministic policy played from the same reset plays the
    same game every time, and ten evaluation episodes would be one episode counted ten times. The steps are taken
    inside ``reset`` and are in no episode's return or length. Action 0 is NOOP in every Mario action set."""

    def __init__(self, env: gym.Env, noop_max: int = 30, noop_action: int = 0):
        super().__init__(env)
        self.noop_max = noop_max
        self.noop_action = noop_action

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        for _ in range(int(self.np_random.integers(0, self.noop_max + 1))):
            obs, _, terminated, truncated, info = self.env.step(self.noop_action)
            if terminated or truncated:
                obs, info = self.env.reset()
        return obs, info


def wrap_mario(env: gym.Env, training: bool = True) -> gym.Env:
    """Skip 4 with a max over the last two frames; episode statistics on the game's reward (lengths in agent
    steps); reward shaping (training only); 84x84 grayscale (Gymnasium's GrayscaleObservation, luminance weights, and
    ResizeObservation, area interpolation); a stack of 4 -> uint8 (4, 84, 84). Evaluation (``training=False``)
    starts each episode after 0-30 seeded no-op steps (NoopStart).

    Shaping after the skip equals shaping every frame and summing: the score deltas add up, and the episode can
    only end on the last frame of a skip."""
    env = MaxAndSkip(env, 4)
    if not training:
        env = NoopStart(env, NOOP_MAX)
    env = RecordEpisodeStatistics(env)
    if training:
        env = MarioReward(env)
    require_cv2()  # ResizeObservation needs OpenCV: say which package
    env = ResizeObservation(GrayscaleObservation(env), (SCREEN_SIZE, SCREEN_SIZE))
    return FrameStackObservation(env, FRAME_STACK)


def register_mario() -> None:
    """Register ``SuperMarioBros-<world>-<stage>-v0`` (and ``SuperMarioBros-v0``, 1-1) with Gymnasium.

    Registration is lazy: nothing of the optional extra is imported until an environment is made.
    """
    if "SuperMarioBros-v0" in gym.envs.registry:
        return
    gym.register("SuperMarioBros-v0", entry_point="ms_ppo.envs.mario:MarioEnv", kwargs={"world": 1, "stage": 1})
    for world in range(1, 9):
        for stage in range(1, 5):
            gym.register(f"SuperMarioBros-{world}-{stage}-v0", entry_point="ms_ppo.envs.mario:MarioEnv",
                         kwargs={"world": world, "stage": stage})

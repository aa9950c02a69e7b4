"""The Atari preprocessing stack (ALE through ale-py, which ships the ROMs)."""

from __future__ import annotations

import gymnasium as gym
from gymnasium.wrappers import AtariPreprocessing, ClipReward, FrameStackObservation, RecordEpisodeStatistics

from ms_ppo.envs.frames import FRAME_STACK, SCREEN_SIZE, require_cv2
from ms_ppo.errors import UserInputError


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
    require_cv2()
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

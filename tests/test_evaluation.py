"""Evaluation episodes: several at once, each from its own seed, and bounded by train.eval_max_steps."""

import gymnasium as gym
import numpy as np

from ms_ppo.evaluation import evaluate


class Endless(gym.Env):
    """Reward 1 per step; ends after ``length`` steps, or never when ``length`` is 0 (a game a policy can stall)."""

    observation_space = gym.spaces.Box(0, 1, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, length: int = 0, render_mode=None):
        self.length = length
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.t += 1
        return np.zeros(1, np.float32), 1.0, self.length > 0 and self.t >= self.length, False, {}


if "ms_ppo_test/Endless-v0" not in gym.envs.registry:
    gym.register("ms_ppo_test/Endless-v0", entry_point=Endless)


def still(obs):
    return np.zeros(len(obs), np.int64)


def test_a_step_cap_ends_episodes_that_never_end_and_says_which():
    info = {}
    returns = evaluate(still, "ms_ppo_test/Endless-v0", {}, 3, seed=0, episode_info=info, max_steps=25)
    np.testing.assert_array_equal(returns, [25.0, 25.0, 25.0])
    np.testing.assert_array_equal(info["capped"], [True, True, True])


def test_episodes_shorter_than_the_cap_are_whole():
    info = {}
    returns = evaluate(still, "ms_ppo_test/Endless-v0", {"length": 7}, 2, seed=0, episode_info=info, max_steps=25)
    np.testing.assert_array_equal(returns, [7.0, 7.0])
    assert not info["capped"].any()
    np.testing.assert_array_equal(evaluate(still, "ms_ppo_test/Endless-v0", {"length": 7}, 2, seed=0), [7.0, 7.0])

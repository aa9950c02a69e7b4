"""Super Mario Bros: the reward shaping and frame skipping on scripted environments (no emulator), and, when the
optional extra is installed (pip install '.[mario]'), the real environment and a short collection + update."""

import gymnasium as gym
import numpy as np
import pytest

from ms_ppo.envs.mario import MarioReward, MaxAndSkip, NoopStart


class Scripted(gym.Env):
    """Returns the scripted (frame value, reward, terminated, info) of each step, frames of shape (2, 2, 3)."""

    observation_space = gym.spaces.Box(0, 255, (2, 2, 3), np.uint8)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, script):
        self.script = list(script)
        self.t = 0

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return np.zeros((2, 2, 3), np.uint8), {}

    def step(self, action):
        value, reward, terminated, info = self.script[self.t]
        self.t += 1
        return np.full((2, 2, 3), value, np.uint8), reward, terminated, False, info


def test_mario_reward_shaping_on_scripted_info():
    shaping = MarioReward(Scripted([]))
    shaping.reset()
    # game reward 2, score 0 -> 100: (2 + 100 / 40) / 10
    assert shaping.shape(2.0, False, {"score": 100, "flag_get": False}) == pytest.approx(0.45)
    # no score change: game reward / 10
    assert shaping.shape(-1.0, False, {"score": 100, "flag_get": False}) == pytest.approx(-0.1)
    # reaching the flag ends the episode with +50; score 100 -> 1100 adds 25
    assert shaping.shape(3.0, True, {"score": 1100, "flag_get": True}) == pytest.approx((3 + 25 + 50) / 10)
    shaping.reset()
    assert shaping.score == 0
    # dying ends the episode with -50
    assert shaping.shape(-15.0, True, {"score": 0, "flag_get": False}) == pytest.approx((-15 - 50) / 10)


def test_mario_reward_wrapper_steps_through_the_shaping():
    env = MarioReward(Scripted([(0, 1.0, False, {"score": 40, "flag_get": False}),
                                (0, 0.0, True, {"score": 40, "flag_get": False})]))
    env.reset()
    assert env.step(0)[1] == pytest.approx((1 + 1) / 10)
    assert env.step(0)[1] == pytest.approx(-5.0)


def test_max_and_skip_sums_rewards_and_maxes_the_last_two_frames():
    env = MaxAndSkip(Scripted([(10, 1.0, False, {}), (50, 1.0, False, {}), (30, 0.5, False, {}),
                               (20, 0.5, False, {}), (7, 2.0, True, {"flag_get": True})]), skip=4)
    env.reset()
    obs, reward, terminated, _, _ = env.step(0)
    assert reward == 3.0 and not terminated and obs.dtype == np.uint8
    assert (obs == 30).all()  # max(30, 20): the frame 50 is older than the last two
    obs, reward, terminated, _, info = env.step(0)  # ends after one frame
    assert reward == 2.0 and terminated and info["flag_get"] and (obs == 7).all()


class Counter(gym.Env):
    """Observation = steps since reset; records every action; ends after ``length`` steps."""

    observation_space = gym.spaces.Box(0, 1000, (), np.int64)
    action_space = gym.spaces.Discrete(3)

    def __init__(self, length=1000):
        self.length, self.t, self.actions, self.resets = length, 0, [], 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.resets = 0, self.resets + 1
        return np.int64(0), {}

    def step(self, action):
        self.t += 1
        self.actions.append(action)
        return np.int64(self.t), 0.0, self.t >= self.length, False, {}


def test_noop_start_draws_its_noops_from_the_reset_seed():
    starts = {}
    for seed in range(20):
        env = NoopStart(Counter(), noop_max=30)
        starts[seed] = int(env.reset(seed=seed)[0])
        assert set(env.unwrapped.actions) <= {0} and len(env.unwrapped.actions) == starts[seed] <= 30
        assert int(NoopStart(Counter(), noop_max=30).reset(seed=seed)[0]) == starts[seed]  # same seed, same start
    assert len(set(starts.values())) > 5  # different seeds start at different frames


def test_noop_start_resets_again_when_the_noops_end_the_episode():
    longest = 0
    for seed in range(10):
        env = NoopStart(Counter(length=2), noop_max=30)  # every second no-op ends the episode
        obs, _ = env.reset(seed=seed)
        noops = len(env.unwrapped.actions)
        assert env.unwrapped.resets == 1 + noops // 2 and int(obs) == noops % 2
        longest = max(longest, noops)
    assert longest >= 2  # some seed's no-ops did end an episode


def test_mario_evaluation_wrappers_add_noop_starts_and_training_ones_do_not():
    from ms_ppo.envs.mario import wrap_mario

    def chain(env):
        names = []
        while isinstance(env, gym.Wrapper):
            names.append(type(env).__name__)
            env = env.env
        return names

    pytest.importorskip("cv2", reason="ResizeObservation needs OpenCV")
    frames = gym.spaces.Box(0, 255, (240, 256, 3), np.uint8)
    base = type("Frames", (Scripted,), {"observation_space": frames})
    assert "NoopStart" in chain(wrap_mario(base([]), training=False))
    assert "NoopStart" not in chain(wrap_mario(base([]), training=True))


def test_mario_environment_and_short_training(tmp_path):
    pytest.importorskip("gym_super_mario_bros", reason="Super Mario Bros is optional: pip install '.[mario]'")
    pytest.importorskip("nes_py", reason="Super Mario Bros is optional: pip install '.[mario]'")
    from ms_ppo.app.session import PPOSession
    from ms_ppo.envs import make_env, resolve_env_id

    env_id = resolve_env_id("SuperMarioBros-1-1-v0")
    env = make_env(env_id, {"actions": "right_only"}, render_mode="rgb_array", wrappers="mario")
    try:
        obs, _ = env.reset(seed=0)
        assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8 and env.action_space.n == 5
        obs, _, _, _, info = env.step(1)
        assert {"flag_get", "score", "x_pos"} <= set(info)
        assert env.render().shape == (240, 256, 3)
    finally:
        env.close()

    session = PPOSession(overrides={
        "env.id": "SuperMarioBros-1-1-v0", "env.wrappers": "mario", "env.vector_env": "async",
        "env.kwargs": {"actions": "simple"}, "ppo.num_envs": 2, "ppo.rollout_steps": 8, "ppo.epochs": 1,
        "ppo.num_minibatches": 2, "train.total_steps": 16, "train.output_dir": str(tmp_path / "run")},
        quiet=True, log=lambda line: None)
    trainer = session.build(callbacks=[])
    try:
        assert trainer.collector.buffer.obs.dtype == np.uint8 and trainer.agent.net.action_dim == 7
        trainer.collector.reset(trainer.state, seed=0)
        batch = trainer.collector.collect(trainer.state)
        metrics = trainer.learner.learn(batch, 0.0, trainer.state.rng)
        assert np.isfinite(metrics["losses/loss"])
    finally:
        trainer.envs.close()


class FlagAtSeed(gym.Env):
    """Ends after 3 steps; reaches the flag when reset with an even seed."""

    observation_space = gym.spaces.Box(0, 1, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, render_mode=None):
        self.render_mode = render_mode

    def reset(self, *, seed=None, options=None):
        self.t, self.flag = 0, seed is not None and seed % 2 == 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.t += 1
        done = self.t == 3
        return np.zeros(1, np.float32), 1.0, done, False, {"flag_get": done and self.flag}


def test_evaluation_reports_flag_get():
    from ms_ppo.evaluation import evaluate

    if "ms_ppo_test/FlagAtSeed-v0" not in gym.envs.registry:
        gym.register("ms_ppo_test/FlagAtSeed-v0", entry_point=FlagAtSeed)
    info = {}
    returns = evaluate(lambda obs: np.zeros(len(obs), np.int64), "ms_ppo_test/FlagAtSeed-v0", None, 3, seed=4,
                       episode_info=info)
    np.testing.assert_array_equal(returns, [3.0, 3.0, 3.0])
    np.testing.assert_array_equal(info["flag_get"], [True, False, True])  # seeds 4, 5, 6

"""Atari through ale-py: wrapper shapes and dtypes, frame stacking, episodic life, the Nature CNN, uint8 rollouts,
and a two-iteration training run on Pong."""

import json
import math
import os

import gymnasium as gym
import numpy as np
import pytest
from mindspore import Tensor

pytest.importorskip("ale_py", reason="Atari needs ale-py (pip install ale-py)")
pytest.importorskip("cv2", reason="the Atari wrappers need OpenCV (pip install opencv-python-headless)")

from ms_ppo.envs import ObservationEncoder, make_env, make_vector_env, resolve_env_id  # noqa: E402
from ms_ppo.envs.atari import ClipReward, EpisodicLife, FireReset  # noqa: E402
from ms_ppo.errors import UserInputError  # noqa: E402
from ms_ppo.models import CnnActorCritic, is_image_space, wants_cnn  # noqa: E402
from ms_ppo.models.compiled import PolicyStep  # noqa: E402
from ms_ppo.models.precision import apply_cnn_precision  # noqa: E402
from ms_ppo.training.buffer import RolloutBuffer  # noqa: E402

FRAMES = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)


def _chain(env):
    kinds = []
    while isinstance(env, gym.Wrapper):
        kinds.append(type(env))
        env = env.env
    return kinds


def test_atari_observations_are_stacked_uint8_frames():
    env = make_env(resolve_env_id("ALE/Pong-v5"), wrappers="atari")
    try:
        assert env.observation_space == FRAMES
        obs, _ = env.reset(seed=0)
        assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
        for _ in range(3):
            new, reward, _, _, _ = env.step(env.action_space.sample())
            assert new.dtype == np.uint8 and reward in (-1.0, 0.0, 1.0)
            np.testing.assert_array_equal(new[:3], obs[1:])  # the oldest frame drops out, the newest goes last
            obs = new
    finally:
        env.close()


def test_training_and_evaluation_wrapper_sets():
    env_id = resolve_env_id("ALE/Breakout-v5")
    train, evaluation = make_env(env_id, wrappers="atari"), make_env(env_id, wrappers="atari", training=False)
    try:
        assert {EpisodicLife, FireReset, ClipReward} <= set(_chain(train))
        assert FireReset in _chain(evaluation)
        assert EpisodicLife not in _chain(evaluation) and ClipReward not in _chain(evaluation)
        assert train.unwrapped._frameskip == 1  # the wrappers skip (and max-pool) frames, not the emulator
    finally:
        train.close()
        evaluation.close()


def test_episodic_life_ends_the_learners_episode_but_not_the_game():
    env = make_env(resolve_env_id("ALE/Breakout-v5"), wrappers="atari")
    try:
        env.reset(seed=1)
        ale = env.unwrapped.ale
        assert ale.lives() == 5
        for _ in range(2000):
            _, _, terminated, truncated, info = env.step(0)  # NOOP: the ball is missed
            if terminated:
                break
        assert terminated and ale.lives() == 4 and "episode" not in info  # a life, not the game
        env.reset()
        assert ale.lives() == 4  # the game went on
    finally:
        env.close()


def test_vector_env_batches_uint8_and_the_encoder_passes_frames_through():
    envs = make_vector_env(resolve_env_id("ALE/Pong-v5"), 2, wrappers="atari")
    try:
        obs, _ = envs.reset(seed=0)
        assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
        encoder = ObservationEncoder(envs.single_observation_space, image=True)
        assert encoder(obs) is obs and encoder.dtype == np.uint8 and encoder.shape == (4, 84, 84)
    finally:
        envs.close()


def test_rollout_buffer_stores_uint8_frames():
    buffer = RolloutBuffer(3, 2, (4, 84, 84), (), np.uint8)
    assert buffer.obs.dtype == np.uint8 and buffer.obs.nbytes == 3 * 2 * 4 * 84 * 84
    frames = np.random.default_rng(0).integers(0, 256, (2, 4, 84, 84), dtype=np.uint8)
    for t in range(3):
        buffer.add(t, frames, np.zeros(2, np.int32), np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(2))
    batch = buffer.flatten(np.zeros((3, 2)), np.zeros((3, 2)))
    assert batch.obs.shape == (6, 4, 84, 84) and batch.obs.dtype == np.uint8
    np.testing.assert_array_equal(batch.obs[1], frames[1])


def test_network_choice():
    assert is_image_space(FRAMES) and wants_cnn("auto", FRAMES) and not wants_cnn("mlp", FRAMES)
    vector = gym.spaces.Box(-1, 1, (4,), np.float32)
    assert not wants_cnn("auto", vector)
    with pytest.raises(UserInputError, match="image observations"):
        wants_cnn("cnn", vector)


def _gram(weight: np.ndarray) -> np.ndarray:
    rows = weight.reshape(weight.shape[0], -1)
    return rows @ rows.T if rows.shape[0] <= rows.shape[1] else rows.T @ rows


def test_cnn_forward_shapes_and_init_gains():
    net = CnnActorCritic((4, 84, 84), 6, discrete=True)
    assert net.image_input
    names = [param.name for param in net.get_parameters()]
    assert names == ["log_std", "features.0.weight", "features.0.bias", "features.2.weight", "features.2.bias",
                     "features.4.weight", "features.4.bias", "features.7.weight", "features.7.bias",
                     "actor.weight", "actor.bias", "critic.weight", "critic.bias"]
    rng = np.random.default_rng(0)
    obs = rng.integers(0, 256, (5, 4, 84, 84), dtype=np.uint8)
    noise = rng.gumbel(size=(5, 6)).astype(np.float32)
    action, log_prob, value = PolicyStep(net)(Tensor(obs), Tensor(noise))
    assert action.shape == (5,) and log_prob.shape == (5,) and value.shape == (5,)
    again, entropy, value_again = net.evaluate_actions(Tensor(obs), action)
    np.testing.assert_allclose(log_prob.asnumpy(), again.asnumpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(value.asnumpy(), value_again.asnumpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(entropy.asnumpy(), math.log(6), atol=1e-3)  # policy head gain 0.01: near uniform
    weight = net.features[0].weight.asnumpy()  # (32, 4, 8, 8): 32 orthogonal rows of length 256, gain sqrt(2)
    np.testing.assert_allclose(_gram(weight), 2.0 * np.eye(32), atol=1e-4)
    np.testing.assert_allclose(_gram(net.actor.weight.asnumpy()), 1e-4 * np.eye(6), atol=1e-8)
    np.testing.assert_allclose(_gram(net.critic.weight.asnumpy()), [[1.0]], atol=1e-5)


def test_cnn_fp16_keeps_names_and_refuses_o1():
    net = CnnActorCritic((4, 84, 84), 4, discrete=True)
    names = [param.name for param in net.get_parameters()]
    obs = Tensor(np.random.default_rng(0).integers(0, 256, (3, 4, 84, 84), dtype=np.uint8))
    fp32_values = net.value(obs).asnumpy()
    apply_cnn_precision(net, "fp16", "O2")
    assert [param.name for param in net.get_parameters()] == names
    np.testing.assert_allclose(net.value(obs).asnumpy(), fp32_values, rtol=0.05, atol=0.02)
    with pytest.raises(UserInputError, match="O1"):
        apply_cnn_precision(CnnActorCritic((4, 84, 84), 4, discrete=True), "fp16", "O1")


def test_pong_two_iteration_training_run(tmp_path, write_yaml):
    from ms_ppo.app.evaluate import evaluate_checkpoint
    from ms_ppo.app.session import PPOSession

    out = tmp_path / "run"
    env_yaml = write_yaml("""
env:
  id: ALE/Pong-v5
  wrappers: atari
  eval_kwargs: {max_num_frames_per_episode: 400}   # a short evaluation game for the test
""", "env.yaml")
    algo_yaml = write_yaml(f"""
ppo: {{num_envs: 2, rollout_steps: 16, epochs: 1, num_minibatches: 2, learning_rate: 0.00025, clip_range: 0.1,
      ent_coef: 0.01}}
train: {{total_steps: 64, eval_episodes: 1, output_dir: {out}}}
""", "algo.yaml")
    session = PPOSession(env_yaml, algo_yaml, quiet=True, log=lambda line: None)
    trainer = session.build()
    assert trainer.collector.buffer.obs.dtype == np.uint8 and trainer.collector.buffer.obs.shape == (16, 2, 4, 84, 84)
    try:
        result = trainer.train()
    finally:
        trainer.envs.close()
    assert result["total_steps"] == 64 and result["iterations"] == 2
    assert np.isfinite(result["eval_return_mean"])
    with open(os.path.join(out, "result.json"), encoding="utf-8") as handle:
        assert json.load(handle)["env_id"] == "ALE/Pong-v5"
    returns = evaluate_checkpoint(str(out), episodes=1, log=lambda line: None)
    assert returns.shape == (1,)

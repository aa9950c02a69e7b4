"""The implementation details of PPO, one math check each (all fast: no environment is trained).

Covered here: the tanh-squashed Gaussian head, clip-range and learning-rate annealing, observation
normalisation (clipping, frozen statistics), reward scaling, gradient-norm clipping, the target-KL early stop,
bootstrapping of time-limit truncations, action clipping with the log-prob on the unclipped sample, the
deterministic evaluation actor, and the value-head init gain. The loss terms (advantage normalisation per
minibatch, value clipping) are in test_loss.py, GAE in test_gae.py, the other init gains in test_networks.py, and
the normalisation statistics saved in checkpoints in test_training.py (resume).
"""

import math

import gymnasium as gym
import numpy as np
import pytest
from mindspore import Tensor, nn

from ms_ppo.algo import EpochUpdate, PPOAgent, RolloutBatch
from ms_ppo.app.assembly import build_network
from ms_ppo.config import PPOSettings, load_settings
from ms_ppo.envs import ActionAdapter, ObservationEncoder
from ms_ppo.envs.normalize import ObservationNormalizer, RewardScaler, RunningMeanStd
from ms_ppo.errors import UserInputError
from ms_ppo.evaluation import DeterministicActor
from ms_ppo.models import ActorCritic
from ms_ppo.models.compiled import DeterministicPolicy, PolicyStep
from ms_ppo.models.distributions import (
    TANH_EPS,
    gaussian_entropy,
    log_one_minus_tanh_sq,
    tanh_normal_log_prob,
)
from ms_ppo.training import Collector, Learner
from ms_ppo.training.buffer import RolloutBuffer


def np_normal_log_prob(mean, log_std, x):
    return (-0.5 * ((x - mean) / np.exp(log_std)) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)


# ---------------------------------------------------------------------------------------------------------------
# tanh_normal
# ---------------------------------------------------------------------------------------------------------------

def test_log_one_minus_tanh_sq_is_exact_and_stable():
    u = np.array([-4.0, -1.0, 0.0, 0.5, 3.0], np.float32)
    np.testing.assert_allclose(log_one_minus_tanh_sq(Tensor(u)).asnumpy(),
                               np.log(1 - np.tanh(u.astype(np.float64)) ** 2), rtol=1e-5, atol=1e-5)
    big = np.array([-60.0, 60.0], np.float32)  # the naive form gives log(0) = -inf here
    got = log_one_minus_tanh_sq(Tensor(big)).asnumpy()
    np.testing.assert_allclose(got, 2 * (math.log(2) - 60.0), rtol=1e-6)


def test_tanh_normal_log_prob_is_the_change_of_variables():
    rng = np.random.default_rng(0)
    low, high = np.array([-2.0, 0.0], np.float32), np.array([2.0, 1.0], np.float32)
    center, scale = (high + low) / 2, (high - low) / 2
    mean = rng.normal(0, 1, (6, 2)).astype(np.float32)
    log_std = np.array([-0.5, 0.3], np.float32)
    u = rng.normal(0, 1.5, (6, 2))
    action = (center + scale * np.tanh(u)).astype(np.float32)
    expected = np_normal_log_prob(mean, log_std, u) - np.log(scale * (1 - np.tanh(u) ** 2)).sum(-1)
    got, log_jac = tanh_normal_log_prob(Tensor(mean), Tensor(log_std), Tensor(action), Tensor(center),
                                        Tensor(scale))
    np.testing.assert_allclose(got.asnumpy(), expected, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(log_jac.asnumpy(), np.log(scale * (1 - np.tanh(u) ** 2)).sum(-1), rtol=1e-3,
                               atol=1e-3)


def test_tanh_normal_density_integrates_to_one_over_the_box():
    low, high = -2.0, 3.0
    grid = np.linspace(low, high, 200_001)[1:-1].astype(np.float32)[:, None]
    center, scale = np.float32([(high + low) / 2]), np.float32([(high - low) / 2])
    for mean, log_std in ((0.3, -0.7), (-1.0, 0.4)):
        log_p, _ = tanh_normal_log_prob(Tensor(np.full_like(grid, mean)), Tensor(np.float32([log_std])),
                                        Tensor(grid), Tensor(center), Tensor(scale))
        assert abs(np.trapz(np.exp(log_p.asnumpy().astype(np.float64)), grid[:, 0]) - 1.0) < 2e-3


def test_tanh_normal_sample_deterministic_and_evaluate_agree():
    low, high = np.array([-2.0, 0.0], np.float32), np.array([2.0, 1.0], np.float32)
    net = ActorCritic(4, 2, False, [16], log_std_init=-0.5, distribution="tanh_normal", action_low=low,
                      action_high=high)
    obs = np.random.default_rng(0).standard_normal((64, 4)).astype(np.float32)
    noise = (3.0 * np.random.default_rng(1).standard_normal((64, 2))).astype(np.float32)
    noise[:2] = [[20.0, -20.0], [-30.0, 25.0]]  # saturating draws: tanh(u) rounds to +-1 in float32
    action, log_prob, _ = (x.asnumpy() for x in PolicyStep(net)(Tensor(obs), Tensor(noise)))
    mean = net.actor(Tensor(obs)).asnumpy()
    u = mean + math.exp(-0.5) * noise
    np.testing.assert_allclose(action, (high + low) / 2 + (high - low) / 2 * np.tanh(u), atol=3e-4)  # fp32
    assert np.all(action >= low) and np.all(action <= high)
    # The update recomputes the rollout's log-prob from the stored (environment) action exactly.
    again, entropy, _ = (x.asnumpy() for x in net.evaluate_actions(Tensor(obs), Tensor(action)))
    np.testing.assert_allclose(again, log_prob, rtol=1e-6, atol=1e-5)
    # Away from saturation the stored log-prob is the true density of the sampled u.
    inside = np.abs(u).max(-1) < 3.0
    expected = np_normal_log_prob(mean, np.float32([-0.5, -0.5]), u) \
        - np.log((high - low) / 2 * (1 - np.tanh(u) ** 2)).sum(-1)
    np.testing.assert_allclose(log_prob[inside], expected[inside], rtol=1e-3, atol=2e-3)
    # Beyond atanh(1 - TANH_EPS) the inversion clips: the log-prob stays finite.
    assert np.all(np.isfinite(log_prob)) and np.abs(u).max() > math.atanh(1 - TANH_EPS)
    # Entropy estimate: Gaussian entropy of u plus the log-Jacobian at the evaluated action.
    gauss = gaussian_entropy(net.log_std, 64).asnumpy()
    np.testing.assert_allclose((entropy - gauss)[inside],
                               np.log((high - low) / 2 * (1 - np.tanh(u) ** 2)).sum(-1)[inside], rtol=1e-3,
                               atol=2e-3)
    mode = DeterministicPolicy(net)(Tensor(obs)).asnumpy()
    np.testing.assert_allclose(mode, (high + low) / 2 + (high - low) / 2 * np.tanh(mean), rtol=1e-5, atol=1e-6)
    # The trainer's clip to the Box leaves tanh_normal actions unchanged.
    space = gym.spaces.Box(low, high)
    np.testing.assert_array_equal(ActionAdapter(space)(action), action)


def test_tanh_normal_from_settings_uses_the_box_bounds():
    settings = load_settings(overrides={"policy.distribution": "tanh_normal"})
    obs_space = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
    net = build_network(settings, obs_space, gym.spaces.Box(np.float32([-2, 0]), np.float32([2, 4])))
    np.testing.assert_allclose(net.action_center.asnumpy(), [0, 2])
    np.testing.assert_allclose(net.action_scale.asnumpy(), [2, 2])
    assert net.squash
    assert not build_network(load_settings(), obs_space, gym.spaces.Box(-1, 1, (2,))).squash
    with pytest.raises(UserInputError, match="distribution"):
        load_settings(overrides={"policy.distribution": "beta"})
    with pytest.raises(ValueError, match="finite"):
        ActorCritic(3, 1, False, [4], distribution="tanh_normal", action_low=[-np.inf], action_high=[1.0])


# ---------------------------------------------------------------------------------------------------------------
# Annealing (learning rate and clip range), through the Learner with a stub agent
# ---------------------------------------------------------------------------------------------------------------

class _StubAgent:
    def __init__(self):
        self.learning_rates, self.clip_ranges = [], []

    def set_learning_rate(self, learning_rate):
        self.learning_rates.append(learning_rate)

    def update(self, batch, rng, clip_range):
        self.clip_ranges.append(clip_range)
        return {"loss": 0.0, "approx_kl": 0.0, "epochs": 1.0}


@pytest.mark.parametrize("anneal_lr, anneal_clip", [(True, True), (False, False), (True, False)])
def test_learning_rate_and_clip_range_annealing(anneal_lr, anneal_clip):
    cfg = PPOSettings(num_envs=2, rollout_steps=4, num_minibatches=1, learning_rate=1e-3, clip_range=0.2,
                      anneal_lr=anneal_lr, anneal_clip_range=anneal_clip)
    agent = _StubAgent()
    learner = Learner(agent, cfg)
    buffer = RolloutBuffer(4, 2, 3, ())
    batch = buffer.flatten(np.zeros((4, 2), np.float32), np.arange(8, dtype=np.float32).reshape(4, 2))
    progresses = [0.0, 0.25, 0.75]
    metrics = [learner.learn(batch, p, np.random.default_rng(0)) for p in progresses]
    lr = [1e-3 * (1 - p) if anneal_lr else 1e-3 for p in progresses]
    clip = [0.2 * (1 - p) if anneal_clip else 0.2 for p in progresses]
    np.testing.assert_allclose(agent.learning_rates, lr)
    np.testing.assert_allclose(agent.clip_ranges, clip)
    np.testing.assert_allclose([m["charts/clip_range"] for m in metrics], clip)


# ---------------------------------------------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------------------------------------------

def test_observation_normalisation_clips_and_freezes():
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, (16, 2)) for _ in range(5)]
    norm = ObservationNormalizer((2,), True, clip=1.5)
    for batch in batches:
        norm(batch, update=True)
    data = np.concatenate(batches)
    np.testing.assert_allclose(norm.stats.mean, data.mean(0), rtol=1e-5)
    np.testing.assert_allclose(norm.stats.var, data.var(0), rtol=1e-3)
    probe = np.array([[3.0, 3.0], [100.0, -100.0]])
    before = norm.stats.state()
    out = norm(probe)  # update=False: evaluation leaves the statistics alone
    expected = np.clip((probe - data.mean(0)) / np.sqrt(data.var(0) + 1e-8), -1.5, 1.5)
    np.testing.assert_allclose(out, expected, rtol=1e-3, atol=1e-3)
    assert out.dtype == np.float32 and np.abs(out).max() == pytest.approx(1.5)
    np.testing.assert_array_equal(norm.stats.state()["mean"], before["mean"])
    assert ObservationNormalizer((2,), False, 1.0)(probe) is probe  # disabled: unchanged


def test_reward_scaling_divides_by_the_std_of_the_discounted_return():
    gamma = 0.9
    rng = np.random.default_rng(1)
    scaler = RewardScaler(gamma, True, clip=5.0)
    ret = np.zeros(2)
    carried = np.zeros(2)  # the discounted returns the caller (the training state) carries
    reference = RunningMeanStd(())
    for t in range(30):
        rewards = rng.normal(1.0, 1.0, 2)
        dones = np.array([t % 7 == 6, False])
        ret = ret * gamma + rewards
        reference.update(ret)
        ret[dones] = 0.0
        expected = np.clip(rewards / np.sqrt(reference.var + 1e-8), -5.0, 5.0)
        scaled, carried = scaler(rewards, dones, carried)
        np.testing.assert_allclose(scaled, expected, rtol=1e-5)
        np.testing.assert_array_equal(carried, ret)
    tiny = RewardScaler(gamma, True, clip=0.5)
    assert tiny(np.array([1000.0]), np.array([False]), np.zeros(1))[0][0] == pytest.approx(0.5)  # clipped


# ---------------------------------------------------------------------------------------------------------------
# The update: gradient-norm clipping and the target-KL early stop
# ---------------------------------------------------------------------------------------------------------------

def test_gradient_norm_is_clipped_globally():
    """With SGD(lr=1) a step moves the parameters by minus the gradient: its global norm must be max_grad_norm."""
    cfg = PPOSettings(num_envs=1, rollout_steps=16, num_minibatches=1, max_grad_norm=0.05, vf_coef=10.0)
    net = ActorCritic(3, 2, False, [8])
    optimizer = nn.SGD(net.trainable_params(), learning_rate=1.0)
    rng = np.random.default_rng(0)
    obs = rng.standard_normal((16, 3)).astype(np.float32)
    actions = rng.standard_normal((16, 2)).astype(np.float32)
    returns = (100.0 * rng.standard_normal(16)).astype(np.float32)  # a large value loss: a large raw gradient
    before = [p.asnumpy().copy() for p in net.trainable_params()]
    EpochUpdate(net, optimizer, cfg)(Tensor(obs), Tensor(actions), Tensor(np.zeros(16, np.float32)),
                                     Tensor(rng.standard_normal(16).astype(np.float32)), Tensor(returns),
                                     Tensor(np.zeros(16, np.float32)), Tensor(np.arange(16, dtype=np.int32)[None]),
                                     Tensor(np.float32(0.2)), Tensor(np.float32(1.0)), Tensor(np.ones(1, np.float32)))
    step = np.sqrt(sum(((p.asnumpy() - b) ** 2).sum() for p, b in zip(net.trainable_params(), before)))
    assert step == pytest.approx(0.05, rel=1e-3)


class _FakeStats:
    def __init__(self, values):
        self.values = np.asarray(values, np.float32)

    def asnumpy(self):
        return self.values


@pytest.mark.parametrize("kl_factor, expected_epochs", [(1.6, 1), (1.4, 5)])
def test_target_kl_stops_epochs_above_one_and_a_half_times_the_target(kl_factor, expected_epochs):
    cfg = PPOSettings(num_envs=1, rollout_steps=8, num_minibatches=2, epochs=5, target_kl=0.01)
    agent = PPOAgent(ActorCritic(3, 2, False, [4]), cfg)
    calls = []
    names = agent.epoch_update.stat_names

    def fake_epoch(*args):
        calls.append(args)
        stats = np.zeros(len(names))
        stats[names.index("approx_kl")] = kl_factor * cfg.target_kl
        return _FakeStats(stats)

    agent.epoch_update = fake_epoch
    agent.epoch_update.stat_names = names
    agent.epoch_update.counters = lambda: {}
    zeros = np.zeros(8, np.float32)
    batch = RolloutBatch(np.zeros((8, 3), np.float32), np.zeros((8, 2), np.float32), zeros, zeros, zeros, zeros)
    result = agent.update(batch, np.random.default_rng(0), 0.2)
    assert len(calls) == expected_epochs and result["epochs"] == expected_epochs


# ---------------------------------------------------------------------------------------------------------------
# Collection: truncation bootstrap and action clipping
# ---------------------------------------------------------------------------------------------------------------

def test_truncated_episodes_bootstrap_with_the_value_of_the_final_observation():
    class Values:
        def value(self, obs):
            return obs.sum(-1)  # V(s) = s0 + s1

    space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
    envs = gym.vector.SyncVectorEnv([lambda: gym.make("Pendulum-v1")] * 3)
    collector = Collector(envs, Values(), PPOSettings(num_envs=3, gamma=0.9), ObservationEncoder(space),
                          ObservationNormalizer((2,), False, 10.0), RewardScaler(0.9, False, 10.0))
    rewards = np.array([1.0, 1.0, 1.0], np.float32)
    next_obs = np.zeros((3, 2), np.float32)  # after an episode end: the reset observation
    final = [np.array([1.0, 2.0]), np.array([5.0, 5.0]), np.array([7.0, 7.0])]
    truncated = np.array([True, True, False])
    terminated = np.array([False, True, False])  # env 1 both: a real termination, no bootstrap
    out = collector.bootstrap_truncated(rewards, next_obs, truncated, terminated, {"final_obs": final})
    envs.close()
    np.testing.assert_allclose(out, [1.0 + 0.9 * 3.0, 1.0, 1.0])


def test_box_actions_are_clipped_for_the_env_but_the_log_prob_is_of_the_unclipped_sample():
    net = ActorCritic(3, 2, False, [8], log_std_init=0.5)
    obs = np.zeros((4, 3), np.float32)
    noise = np.array([[3.0, -3.0], [0.1, 0.2], [-5.0, 0.0], [0.0, 4.0]], np.float32)
    action, log_prob, _ = (x.asnumpy() for x in PolicyStep(net)(Tensor(obs), Tensor(noise)))
    space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    env_action = ActionAdapter(space)(action)
    np.testing.assert_array_equal(env_action, np.clip(action, -1, 1))
    mean = net.actor(Tensor(obs)).asnumpy()
    np.testing.assert_allclose(log_prob, np_normal_log_prob(mean, np.float32([0.5, 0.5]), action), rtol=1e-5)
    discrete = np.array([0, 3, 1])
    assert ActionAdapter(gym.spaces.Discrete(4))(discrete) is discrete


def test_deterministic_actor_uses_frozen_normalisation_and_the_mean():
    net = ActorCritic(2, 1, False, [8])
    norm = ObservationNormalizer((2,), True, clip=10.0)
    norm(np.array([[0.0, 0.0], [2.0, 4.0]]), update=True)
    state = norm.stats.state()
    mode = DeterministicPolicy(net)
    actor = DeterministicActor(lambda o: mode(Tensor(o)).asnumpy(), ObservationEncoder(gym.spaces.Box(
        -np.inf, np.inf, (2,), np.float32)), norm, gym.spaces.Box(-0.001, 0.001, (1,), np.float32))
    obs = np.array([[1.0, 2.0], [50.0, -50.0]], np.float32)
    out = actor(obs)
    expected = np.clip(net.actor(Tensor(norm(obs))).asnumpy(), -0.001, 0.001)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    for key in ("mean", "var", "count"):
        np.testing.assert_array_equal(norm.stats.state()[key], state[key])


def test_value_head_init_gain_is_one():
    net = ActorCritic(8, 2, False, [32, 32])
    head = net.critic[-1].weight.asnumpy()  # (1, 32): one orthogonal row of norm 1
    np.testing.assert_allclose((head ** 2).sum(), 1.0, rtol=1e-4)
    assert np.all(net.critic[-1].bias.asnumpy() == 0)

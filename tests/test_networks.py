"""Log-probabilities and entropies of both heads against closed forms; sampling; orthogonal init."""

import math

import numpy as np
import pytest
from mindspore import Tensor

from ms_ppo.models import ActorCritic
from ms_ppo.models.compiled import DeterministicPolicy, PolicyStep
from ms_ppo.models.distributions import categorical_entropy, categorical_log_prob, gaussian_entropy, gaussian_log_prob


def test_gaussian_log_prob_and_entropy():
    mean = np.array([[0.0, 1.0], [2.0, -1.0]], np.float32)
    log_std = np.array([0.0, math.log(2.0)], np.float32)
    action = np.array([[1.0, 1.0], [2.0, 3.0]], np.float32)
    std = np.exp(log_std)
    expected = (-0.5 * ((action - mean) / std) ** 2 - np.log(std) - 0.5 * math.log(2 * math.pi)).sum(-1)
    got = gaussian_log_prob(Tensor(mean), Tensor(log_std), Tensor(action)).asnumpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    entropy = gaussian_entropy(Tensor(log_std), 2).asnumpy()
    np.testing.assert_allclose(entropy, [(0.5 + 0.5 * math.log(2 * math.pi) + log_std).sum()] * 2, rtol=1e-5)


def test_categorical_log_prob_and_entropy():
    logits = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]], np.float32)
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    action = np.array([2, 0], np.int32)
    got = categorical_log_prob(Tensor(logits), Tensor(action)).asnumpy()
    np.testing.assert_allclose(got, np.log(p[[0, 1], action]), rtol=1e-5)
    np.testing.assert_allclose(categorical_entropy(Tensor(logits)).asnumpy(), -(p * np.log(p)).sum(-1), rtol=1e-5)


@pytest.mark.parametrize("discrete, distribution", [(False, "gaussian"), (True, "gaussian"), (False, "tanh_normal")])
def test_sample_log_prob_matches_evaluate_actions(discrete, distribution):
    net = ActorCritic(4, 3, discrete, [16, 16], distribution=distribution)
    obs = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    noise = np.random.default_rng(1).standard_normal((5, 3)).astype(np.float32)
    action, log_prob, value = PolicyStep(net)(Tensor(obs), Tensor(noise))
    again, _, value_again = net.evaluate_actions(Tensor(obs), action)
    np.testing.assert_allclose(log_prob.asnumpy(), again.asnumpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(value.asnumpy(), value_again.asnumpy(), rtol=1e-6)
    assert action.shape == ((5,) if discrete else (5, 3))


def test_deterministic_gaussian_action_is_the_mean_of_samples():
    net = ActorCritic(4, 2, False, [16], log_std_init=-1.0)
    obs = np.ones((1, 4), np.float32)
    mode = DeterministicPolicy(net)(Tensor(obs)).asnumpy()
    noise = np.random.default_rng(0).standard_normal((1, 2)).astype(np.float32)
    action = PolicyStep(net)(Tensor(obs), Tensor(noise))[0].asnumpy()
    np.testing.assert_allclose(action, mode + math.exp(-1.0) * noise, rtol=1e-5, atol=1e-6)


def test_orthogonal_init_gains():
    net = ActorCritic(8, 2, False, [32, 32])
    hidden = net.actor[0].weight.asnumpy()  # (32, 8): rows orthogonal scaled by sqrt(2)
    np.testing.assert_allclose(hidden @ hidden.T if hidden.shape[0] <= hidden.shape[1] else hidden.T @ hidden,
                               2.0 * np.eye(min(hidden.shape)), atol=1e-4)
    head = net.actor[-1].weight.asnumpy()  # policy head gain 0.01
    np.testing.assert_allclose(head @ head.T, 1e-4 * np.eye(2), atol=1e-7)
    assert np.all(net.actor[0].bias.asnumpy() == 0)

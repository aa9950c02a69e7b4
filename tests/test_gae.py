"""GAE against a case worked out by hand."""

import numpy as np

from ms_ppo.algo import compute_gae


def test_gae_hand_computed_single_env():
    gamma, lam = 0.9, 0.5
    rewards = np.array([[1.0], [2.0], [3.0]])
    values = np.array([[0.5], [1.0], [1.5]])
    dones = np.array([[0.0], [0.0], [0.0]])
    last = np.array([2.0])
    # deltas: d2 = 3 + 0.9*2 - 1.5 = 3.3; d1 = 2 + 0.9*1.5 - 1 = 2.35; d0 = 1 + 0.9*1 - 0.5 = 1.4
    # A2 = 3.3; A1 = 2.35 + 0.45*3.3 = 3.835; A0 = 1.4 + 0.45*3.835 = 3.12575
    adv, ret = compute_gae(rewards, values, dones, last, gamma, lam)
    np.testing.assert_allclose(adv[:, 0], [3.12575, 3.835, 3.3])
    np.testing.assert_allclose(ret, adv + values)


def test_gae_stops_at_episode_end_and_handles_envs_independently():
    gamma, lam = 0.99, 0.95
    rewards = np.array([[1.0, 1.0], [1.0, 1.0]])
    values = np.zeros((2, 2))
    dones = np.array([[1.0, 0.0], [0.0, 0.0]])  # env 0 ends after step 0
    last = np.array([10.0, 10.0])
    adv, _ = compute_gae(rewards, values, dones, last, gamma, lam)
    assert adv[0, 0] == 1.0  # nothing flows back across the episode end
    np.testing.assert_allclose(adv[1], [1 + 0.99 * 10, 1 + 0.99 * 10])
    np.testing.assert_allclose(adv[0, 1], 1.0 + gamma * lam * adv[1, 1])


def test_gae_lambda_one_gives_discounted_returns():
    rewards = np.ones((4, 1))
    values = np.zeros((4, 1))
    adv, ret = compute_gae(rewards, values, np.zeros((4, 1)), np.zeros(1), 0.5, 1.0)
    np.testing.assert_allclose(ret[:, 0], [1.875, 1.75, 1.5, 1.0])

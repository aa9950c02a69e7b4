"""Environment ids, observation encoding and action-space checks."""

import gymnasium as gym
import numpy as np
import pytest

from ms_ppo.envs import ObservationEncoder, action_dims, resolve_env_id
from ms_ppo.errors import UserInputError


@pytest.mark.parametrize("old", ["HalfCheetah-v2", "HalfCheetah-v3", "Walker2d-v3"])
def test_mujoco_py_ids_map_to_v5_with_one_notice(old):
    notices = []
    assert resolve_env_id(old, notify=notices.append) == old[:-1] + "5"
    assert len(notices) == 1 and old in notices[0] and "mujoco-py" in notices[0]


def test_v4_runs_as_asked_on_the_official_bindings():
    """-v4 never needed mujoco-py: it is kept, and the notice does not claim otherwise."""
    notices = []
    assert resolve_env_id("HalfCheetah-v4", notify=notices.append) == "HalfCheetah-v4"
    assert len(notices) == 1 and "mujoco-py" not in notices[0] and "HalfCheetah-v5 is the current" in notices[0]
    env = gym.make("HalfCheetah-v4")
    assert env.observation_space.shape == (17,)
    env.close()


def test_current_ids_pass_silently():
    notices = []
    assert resolve_env_id("CartPole-v1", notify=notices.append) == "CartPole-v1"
    assert notices == []


def test_unknown_id_suggests_the_closest():
    with pytest.raises(UserInputError, match="unknown environment id 'CartPol-v1' \\(did you mean 'CartPole-v1'"):
        resolve_env_id("CartPol-v1")


def test_discrete_observations_are_one_hot():
    encoder = ObservationEncoder(gym.spaces.Discrete(4))
    out = encoder(np.array([0, 3]))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[1, 0, 0, 0], [0, 0, 0, 1]])


def test_box_observations_flatten_to_float32():
    encoder = ObservationEncoder(gym.spaces.Box(-1, 1, (2, 3)))
    assert encoder.size == 6
    assert encoder(np.ones((5, 2, 3), np.float64)).shape == (5, 6)


def test_action_spaces():
    assert action_dims(gym.spaces.Discrete(3)) == (3, True)
    assert action_dims(gym.spaces.Box(-1, 1, (6,))) == (6, False)
    with pytest.raises(UserInputError, match="not supported"):
        action_dims(gym.spaces.MultiBinary(3))

"""YAML loading, merging, the MindSpore Reinforcement layouts, and validation messages."""

import math
import os

import pytest
from paths import ROOT

from ms_ppo.config import Settings, load_settings, parse_override, settings_from_dict
from ms_ppo.errors import UserInputError


def test_defaults_without_files():
    settings = load_settings()
    assert settings == Settings()
    assert settings.ppo.batch_size == settings.ppo.num_envs * settings.ppo.rollout_steps


def test_algo_yaml_overrides_env_yaml_and_set_overrides_both(write_yaml):
    env = write_yaml("env:\n  id: CartPole-v1\nppo:\n  gamma: 0.9\n", "env.yaml")
    algo = write_yaml("ppo:\n  gamma: 0.95\n  epochs: 3\n", "algo.yaml")
    settings = load_settings(env, algo, {"ppo.epochs": 7})
    assert settings.env.id == "CartPole-v1"
    assert settings.ppo.gamma == 0.95
    assert settings.ppo.epochs == 7


def test_reference_env_layout(write_yaml):
    path = write_yaml("env: HalfCheetah-v2\nenv_class: mindspore_rl.environment.gym_environment\n"
                      "env_type: GymEnvironment\n")
    assert load_settings(path).env.id == "HalfCheetah-v2"


def test_reference_env_params_layout(write_yaml):
    path = write_yaml("collect_env_params: {GymEnvironment: {name: FrozenLake-v1, is_slippery: false}}\n"
                      "eval_env_params: {GymEnvironment: {name: FrozenLake-v1, is_slippery: true}}\n")
    env = load_settings(path).env
    assert env.id == "FrozenLake-v1"
    assert env.kwargs == {"is_slippery": False}
    assert env.eval_kwargs == {"is_slippery": True}


def test_reference_algo_layout(write_yaml):
    path = write_yaml(
        "learner_params: {gamma: 0.97, iter_times: 25, epsilon: 0.15, lr: 0.001, critic_coef: 0.6}\n"
        "policy_params: {hidden_size1: 200, hidden_size2: 100, sigma_init_std: 0.35}\n"
        "trainer_params: {duration: 1000, batch_size: 1, ckpt_path: ./ckpt, num_eval_episode: 30,"
        " num_save_episode: 50}\n"
        "algorithm_config: {collect_environment: {number: 30}}\n")
    s = load_settings(None, path)
    assert (s.ppo.gamma, s.ppo.epochs, s.ppo.clip_range, s.ppo.learning_rate, s.ppo.vf_coef) == \
        (0.97, 25, 0.15, 0.001, 0.6)
    assert s.policy.hidden_sizes == [200, 100]
    assert math.isclose(s.policy.log_std_init, math.log(0.35))
    assert (s.ppo.rollout_steps, s.ppo.num_minibatches, s.ppo.num_envs) == (1000, 1, 30)
    assert (s.train.output_dir, s.train.eval_every, s.train.save_every) == ("./ckpt", 30, 50)


@pytest.mark.parametrize("name", sorted(os.listdir(os.path.join(ROOT, "env_yaml"))))
def test_shipped_env_yamls_load(name):
    load_settings(os.path.join(ROOT, "env_yaml", name))


@pytest.mark.parametrize("name", sorted(os.listdir(os.path.join(ROOT, "algo_yaml"))))
def test_shipped_algo_yamls_load(name):
    load_settings(None, os.path.join(ROOT, "algo_yaml", name))


@pytest.mark.parametrize("text, expected", [
    ("ppo:\n  gama: 0.9\n", "unknown key 'ppo.gama' (did you mean 'gamma'?)"),
    ("ppoo:\n  gamma: 0.9\n", "unknown key 'ppoo' (did you mean 'ppo'?)"),
    ("learner_params: {gammma: 0.9}\n", "unknown key 'learner_params.gammma' (did you mean 'gamma'?)"),
    ("ppo:\n  epochs: many\n", "ppo.epochs"),
    ("ppo:\n  gamma: 1.5\n", "ppo.gamma: Input should be less than or equal to 1"),
    ("ppo:\n  clip_range: 0\n", "ppo.clip_range: Input should be greater than 0"),
    ("ppo: [1, 2]\n", "section 'ppo' must be a mapping"),
    ("- a\n- b\n", "expected a mapping of settings at the top level, got list"),
    ("", "the file is empty"),
    ("ppo:\n  gamma: [0.9\n", "YAML syntax error at line"),
    ("ppo: !!python/object/apply:os.system ['true']\n", "YAML tag not allowed at line 1"),
    ("ppo:\n  num_envs: 2\n  rollout_steps: 2\n  num_minibatches: 8\n", "num_minibatches (8) exceeds"),
])
def test_bad_yaml_names_the_problem(write_yaml, text, expected):
    path = write_yaml(text)
    with pytest.raises(UserInputError) as info:
        load_settings(None, path)
    message = str(info.value)
    assert expected in message
    assert path in message
    assert "\n" not in message


def test_missing_and_directory_paths(tmp_path):
    with pytest.raises(UserInputError, match="YAML file not found"):
        load_settings(str(tmp_path / "nope.yaml"))
    with pytest.raises(UserInputError, match="got a directory"):
        load_settings(str(tmp_path))


def test_set_overrides_are_validated():
    assert parse_override("ppo.gamma=0.9") == ("ppo.gamma", 0.9)
    assert parse_override("policy.hidden_sizes=[32, 32]") == ("policy.hidden_sizes", [32, 32])
    with pytest.raises(UserInputError, match="--set ppo.gamma"):
        load_settings(overrides={"ppo.gamma": "high"})
    with pytest.raises(UserInputError, match="did you mean 'ppo'"):
        load_settings(overrides={"ppoo.gamma": 0.9})
    with pytest.raises(UserInputError, match="section.key=value"):
        parse_override("gamma")


def test_saved_settings_round_trip():
    settings = load_settings(overrides={"ppo.epochs": 3, "env.id": "CartPole-v1"})
    assert settings_from_dict(settings.to_dict()) == settings

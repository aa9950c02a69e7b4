"""Each env YAML names its tuned algo YAML; files of the wrong kind are refused with one line."""

import os

import pytest
from paths import ALGO_YAML, CARTPOLE, CLASSIC, ENV_YAML

from ms_ppo.app.cli import train_main
from ms_ppo.config import load_settings
from ms_ppo.config.loading import TUNED_ALGO_KEY, read_yaml
from ms_ppo.errors import UserInputError


@pytest.mark.parametrize("name", sorted(os.listdir(ENV_YAML)))
def test_every_shipped_env_yaml_names_an_existing_algo_yaml(name):
    path = os.path.join(ENV_YAML, name)
    tuned = read_yaml(path).get(TUNED_ALGO_KEY)
    assert tuned is not None, f"{name} names no tuned algo YAML"
    assert os.path.dirname(os.path.normpath(os.path.join(ENV_YAML, tuned))) == ALGO_YAML
    assert os.path.isfile(os.path.join(ENV_YAML, tuned))


def test_the_env_yaml_alone_trains_with_its_tuned_algo_yaml():
    notices = []
    alone = load_settings(CARTPOLE, notify=notices.append)
    assert alone == load_settings(CARTPOLE, CLASSIC) and not notices
    assert alone.ppo.learning_rate == 0.002 and alone.ppo.rollout_steps == 32  # ppo_classic.yaml's values


def test_an_env_yaml_without_a_tuned_entry_says_so_once(write_yaml):
    env = write_yaml("env:\n  id: CartPole-v1\n", "env.yaml")
    notices = []
    settings = load_settings(env, notify=notices.append)
    assert settings.ppo.rollout_steps == 256  # the generic default
    assert len(notices) == 1 and "names no tuned algo YAML" in notices[0] and env in notices[0]
    algo = write_yaml("ppo:\n  epochs: 3\n", "algo.yaml")
    notices.clear()
    assert load_settings(env, algo, notify=notices.append).ppo.epochs == 3 and not notices  # one was given


def test_a_given_algo_yaml_replaces_the_tuned_one(write_yaml):
    algo = write_yaml("ppo:\n  learning_rate: 0.0001\n", "algo.yaml")
    assert load_settings(CARTPOLE, algo).ppo.learning_rate == 0.0001
    assert load_settings(CARTPOLE, algo).ppo.rollout_steps == 256  # nothing of ppo_classic.yaml


def test_the_tuned_entry_is_relative_to_the_env_yaml(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "fast.yaml").write_text("ppo:\n  epochs: 2\n")
    env = tmp_path / "mine" / "env.yaml"
    env.write_text("env: {id: CartPole-v1}\nalgo_yaml: fast.yaml\n")
    assert load_settings(str(env)).ppo.epochs == 2


@pytest.mark.bad_input
@pytest.mark.parametrize("text, fragment", [
    ("env: {id: CartPole-v1}\nalgo_yaml: missing.yaml\n", "names missing.yaml, which does not exist"),
    ("env: {id: CartPole-v1}\nalgo_yaml: [a]\n", "algo_yaml must be the path of an algo YAML"),
])
def test_a_bad_tuned_entry_is_one_line(write_yaml, text, fragment):
    path = write_yaml(text, "env.yaml")
    with pytest.raises(UserInputError, match=fragment) as info:
        load_settings(path)
    assert path in str(info.value)


@pytest.mark.bad_input
@pytest.mark.parametrize("args, fragments", [
    (["--env_yaml", CLASSIC], ["ppo_classic.yaml", "an env YAML must name its environment", "found ppo, policy, train",
                               "is it an algo YAML?"]),
    (["--env_yaml", CARTPOLE, "--algo_yaml", CARTPOLE],
     ["CartPole-v1.yaml", "an algo YAML may not hold environment sections (found env, algo_yaml)",
      "is it an env YAML?"]),
])
def test_a_file_of_the_wrong_kind_is_refused(tmp_path, capsys, args, fragments):
    out = tmp_path / "run"
    assert train_main([*args, "--output_dir", str(out), "--total_steps", "64"]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and all(fragment in lines[0] for fragment in fragments), lines
    assert not out.exists()

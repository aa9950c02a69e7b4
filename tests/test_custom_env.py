"""Your own environment: Gymnasium's module:EnvId form, env.entry_point with env.kwargs, and PPOSession(env=...).

The example environment (examples/custom_env/point_goal.py) has a Dict observation space, which ms_ppo flattens.
"""

import json
import os

import numpy as np
import pytest
from paths import ROOT

from ms_ppo.app.cli import eval_main, train_main
from ms_ppo.app.evaluate import evaluate_checkpoint
from ms_ppo.app.session import PPOSession
from ms_ppo.envs import make_env, resolve_env_id
from ms_ppo.errors import UserInputError
from ms_ppo.evaluation import EVAL_SEED_OFFSET, evaluate

EXAMPLE = os.path.join(ROOT, "examples", "custom_env")
ALGO = os.path.join(EXAMPLE, "ppo_point_goal.yaml")


def short_run(*args: str) -> int:
    return train_main([*args, "--total_steps", "1024", "--set", "train.eval_episodes=2", "--quiet"])


@pytest.mark.parametrize("env_yaml, env_id", [("point_goal.yaml", "PointGoal-v0"),
                                              ("point_goal_entry_point.yaml", "MyPointGoal-v0")])
def test_an_env_yaml_names_your_module_or_class(tmp_path, env_yaml, env_id):
    out = tmp_path / "run"
    assert short_run("--env_yaml", os.path.join(EXAMPLE, env_yaml), "--output_dir", str(out)) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["env_id"] == env_id and result["total_steps"] == 1024
    assert eval_main(["--ckpt", str(out), "--episodes", "1"]) == 0  # the saved settings name it again


def test_dict_observations_are_flattened():
    from examples.custom_env.point_goal import PointGoal  # noqa: F401  (registers PointGoal-v0)

    env = make_env(resolve_env_id("PointGoal-v0"))
    assert env.observation_space.shape == (4,)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4,)
    env.close()


def test_tuple_observations_are_flattened():
    env = make_env(resolve_env_id("Blackjack-v1"))  # Tuple(Discrete(32), Discrete(11), Discrete(2)): one-hot
    assert env.observation_space.shape == (45,)
    env.close()


def test_a_python_callable_trains_learns_and_evaluates(tmp_path):
    from examples.custom_env.point_goal import PointGoal

    run = tmp_path / "run"
    session = PPOSession(algo_yaml=ALGO, env=PointGoal, quiet=True, log=lambda line: None,
                         overrides={"train.total_steps": 20480, "train.output_dir": str(run), "train.seed": 0,
                                    "train.eval_every": 0})
    result = session.run()
    assert session.settings.env.id == "python/PointGoal-v0" == result["env_id"]
    # Standing still on the same evaluation starts: the trained policy must get far closer to the goals.
    still = evaluate(lambda obs: np.zeros((len(obs), 2), np.float32), "python/PointGoal-v0", {}, 10,
                     seed=EVAL_SEED_OFFSET)
    assert result["eval_return_mean"] > 0.5 * still.mean(), (result["eval_return_mean"], still.mean())
    again = evaluate_checkpoint(str(run), episodes=10, env=PointGoal, log=lambda line: None)
    assert again.mean() == pytest.approx(result["eval_return_mean"])


def test_a_python_run_evaluated_without_its_callable_says_how(tmp_path, capsys):
    from examples.custom_env.point_goal import PointGoal

    class Renamed(PointGoal):
        pass

    run = tmp_path / "run"
    PPOSession(algo_yaml=ALGO, env=Renamed, quiet=True, log=lambda line: None,
               overrides={"train.total_steps": 512, "train.output_dir": str(run), "train.eval_episodes": 1}).run()
    import gymnasium as gym
    del gym.envs.registry["python/Renamed-v0"]  # as in a new process
    assert eval_main(["--ckpt", str(run), "--episodes", "1"]) == 2
    err = capsys.readouterr().err
    assert "unknown environment id 'python/Renamed-v0'" in err and "env= to PPOSession or evaluate_checkpoint" in err


@pytest.mark.bad_input
@pytest.mark.parametrize("overrides, fragments", [
    ({"env.id": "no_such_module_xyz:Env-v0"}, ["cannot import module 'no_such_module_xyz'"]),
    ({"env.id": "json:Nothing-v0"}, ["module 'json' was imported but registers no environment 'Nothing-v0'"]),
    ({"env.id": "Mine-v0", "env.entry_point": "examples.custom_env.point_goal"}, ["expected package.module:ClassName"]),
    ({"env.id": "Mine-v0", "env.entry_point": "examples.custom_env.point_goal:Nope"},
     ["has no class or function 'Nope'"]),
    ({"env.id": "CartPole-v1", "env.entry_point": "examples.custom_env.point_goal:PointGoal"},
     ["'CartPole-v1' is already registered", "choose another env.id"]),
])
def test_bad_custom_envs_are_one_line(tmp_path, capsys, overrides, fragments):
    sets = [item for key, value in overrides.items() for item in ("--set", f"{key}={value}")]
    out = tmp_path / "run"
    assert train_main(["--algo_yaml", ALGO, *sets, "--output_dir", str(out)]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and all(fragment in lines[0] for fragment in fragments), lines
    assert not out.exists()


def test_unsupported_action_spaces_name_the_space():
    import gymnasium as gym

    from ms_ppo.envs import action_dims

    with pytest.raises(UserInputError, match="MultiDiscrete.*Discrete or 1-D Box"):
        action_dims(gym.spaces.MultiDiscrete([2, 3]))

"""An environment that raises, or returns nan/inf, ends the run with one line naming the environment's index and
the step, the last good checkpoint named, exit status 1; the statistics in the checkpoints stay finite."""

import json
import os

import gymnasium as gym
import numpy as np
import pytest
from paths import CLASSIC

from ms_ppo.app.cli import train_main
from ms_ppo.training import checkpoint

FAULT_AT = 300  # the faulty environment's own step count when it misbehaves (after the first checkpoint)


class Faulty(gym.Env):
    """Random observations, reward 1; env 2 of the vector env (first reset with seed + 2, train.seed 0)
    misbehaves at its FAULT_AT-th step."""

    observation_space = gym.spaces.Box(-5.0, 5.0, (3,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, fault="raise", render_mode=None):
        self.fault, self.bad, self.steps = fault, False, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if seed is not None:
            self.bad = seed == 2
        return self.np_random.uniform(-1, 1, 3).astype(np.float32), {}

    def step(self, action):
        self.steps += 1
        obs = self.np_random.uniform(-1, 1, 3).astype(np.float32)
        reward = 1.0
        if self.bad and self.steps >= FAULT_AT:
            if self.fault == "raise":
                raise RuntimeError("the simulator lost its connection")
            if self.fault == "nan reward":
                reward = float("nan")
            if self.fault == "inf observation":
                obs[1] = np.inf
        return obs, reward, False, self.steps % 50 == 0, {}


gym.register("FaultyEnv-v0", entry_point=Faulty)


@pytest.mark.parametrize("fault, expected", [
    ("raise", "env 2 raised RuntimeError in step: the simulator lost its connection"),
    ("nan reward", "env 2 returned a non-finite reward nan at step 1196;"),
    ("inf observation", "env 2 returned a non-finite observation with nan/inf entries at step 1196;"),
])
def test_a_faulty_environment_is_one_line_and_exit_1(tmp_path, capsys, fault, expected):
    env_yaml = tmp_path / "env.yaml"
    env_yaml.write_text(f"env:\n  id: FaultyEnv-v0\n  kwargs: {{fault: {fault}}}\n")
    run_dir = tmp_path / "run"
    # 4 envs x 64 steps: the fault comes in iteration 5, after four checkpoints
    status = train_main(["--env_yaml", str(env_yaml), "--algo_yaml", CLASSIC, "--total_steps", "4096",
                         "--save_every", "1", "--output_dir", str(run_dir), "--quiet", "--set", "ppo.num_envs=4",
                         "--set", "ppo.rollout_steps=64", "--set", "normalize.observations=true",
                         "--set", "normalize.rewards=true"])
    assert status == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err
    kept = checkpoint.list_checkpoints(str(run_dir / "ckpt"))
    assert [os.path.basename(path) for path in kept] == [f"step_{256 * i:010d}.ckpt" for i in range(1, 5)]
    assert f"the last good checkpoint is {kept[-1]}" in err[0]
    meta = checkpoint.read_meta(kept[-1])
    statistics = json.dumps({key: meta[key] for key in meta if "norm" in key})
    assert "obs_norm" in statistics and "NaN" not in statistics and "Infinity" not in statistics
    assert not (run_dir / "result.json").exists()

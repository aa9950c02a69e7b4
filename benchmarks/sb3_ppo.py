"""Stable-Baselines3 PPO with RL-Zoo's tuned HalfCheetah hyperparameters: end-to-end steps per second.

Runs inside benchmarks/.venv-sb3 (made by benchmarks/speed.py), never with ms_ppo's venv:

    benchmarks/.venv-sb3/bin/python benchmarks/sb3_ppo.py --steps 100000 --threads 1 --out sb3.json

Hyperparameters: rl-baselines3-zoo, hyperparams/ppo.yml, entry HalfCheetah-v4 (HalfCheetah-v3 in older
versions; the values are the same): normalize: true (VecNormalize of observations and rewards, with the PPO
gamma as RL-Zoo passes it), n_envs 1, n_steps 512, batch_size 64, n_epochs 20, gamma 0.98, gae_lambda 0.92,
learning_rate 2.0633e-05, ent_coef 0.000401762, clip_range 0.1, max_grad_norm 0.8, vf_coef 0.58096,
policy_kwargs log_std_init=-2, ortho_init=False, activation_fn=nn.ReLU, net_arch=dict(pi=[256, 256],
vf=[256, 256]). Run on HalfCheetah-v5 (v3/v4 need other MuJoCo bindings; the task is the same).
The env is wrapped in Monitor (episode returns), as RL-Zoo's make_vec_env does. No evaluation callback runs.

Timing: the first iteration (one rollout of n_steps and its update) is the warm-up; the script trains
``steps + n_steps`` steps so that at least ``steps`` are timed after it. Collection time is measured from
rollout start to rollout end, so the JSON also has the collection-only SPS.
"""

import argparse
import json
import os
import platform
import time

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3 import __version__ as sb3_version
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

RL_ZOO_HALFCHEETAH = {
    "n_steps": 512, "batch_size": 64, "n_epochs": 20, "gamma": 0.98, "gae_lambda": 0.92,
    "learning_rate": 2.0633e-05, "ent_coef": 0.000401762, "clip_range": 0.1, "max_grad_norm": 0.8,
    "vf_coef": 0.58096,
}
POLICY_KWARGS_TEXT = ("dict(log_std_init=-2, ortho_init=False, activation_fn=nn.ReLU, "
                      "net_arch=dict(pi=[256, 256], vf=[256, 256]))")


class IterationClock(BaseCallback):
    """Records (timesteps, time) at every rollout start and end, and at the end of training."""

    def __init__(self):
        super().__init__()
        self.rollout_starts = []  # (num_timesteps, perf_counter)
        self.rollout_ends = []

    def _on_step(self) -> bool:
        return True

    def _on_rollout_start(self) -> None:
        self.rollout_starts.append((self.num_timesteps, time.perf_counter()))

    def _on_rollout_end(self) -> None:
        self.rollout_ends.append((self.num_timesteps, time.perf_counter()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="HalfCheetah-v5")
    parser.add_argument("--steps", type=int, default=100_000, help="steps to time after the warm-up iteration")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (intra-op threads)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    hyper = RL_ZOO_HALFCHEETAH
    start = time.perf_counter()
    env = VecNormalize(DummyVecEnv([lambda: Monitor(gym.make(args.env))]), norm_obs=True, norm_reward=True,
                       gamma=hyper["gamma"])
    policy_kwargs = dict(log_std_init=-2, ortho_init=False, activation_fn=torch.nn.ReLU,
                         net_arch=dict(pi=[256, 256], vf=[256, 256]))
    model = PPO("MlpPolicy", env, policy_kwargs=policy_kwargs, seed=args.seed, device="cpu", verbose=0, **hyper)
    clock = IterationClock()
    total = args.steps + hyper["n_steps"]
    learn_start = time.perf_counter()
    model.learn(total_timesteps=total, callback=clock)
    learn_end = time.perf_counter()
    env.close()

    steps_done = int(model.num_timesteps)
    warm_steps, warm_start = clock.rollout_starts[1]  # the second iteration starts after the warm-up
    warm_seconds = learn_end - warm_start
    first_iteration_seconds = warm_start - learn_start
    collect_seconds = sum(end - begin for (_, begin), (_, end) in zip(clock.rollout_starts[1:],
                                                                       clock.rollout_ends[1:]))
    warm_sps = (steps_done - warm_steps) / warm_seconds
    result = {
        "env_id": args.env, "seed": args.seed,
        "total_steps": steps_done, "learn_seconds": round(learn_end - learn_start, 3),
        "sps_cold": round(steps_done / (learn_end - learn_start), 1),
        "warmup_steps": warm_steps, "first_iteration_seconds": round(first_iteration_seconds, 3),
        "timed_steps": steps_done - warm_steps, "timed_seconds": round(warm_seconds, 3),
        "sps": round(warm_sps, 1),
        "collect_seconds": round(collect_seconds, 3),
        "collect_sps": round((steps_done - warm_steps) / collect_seconds, 1),
        "update_seconds": round(warm_seconds - collect_seconds, 3),
        "process_setup_seconds": round(learn_start - start, 3),
        "torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads(),
        "hyperparameters": dict(hyper, n_envs=1, normalize=True, policy="MlpPolicy",
                                policy_kwargs=POLICY_KWARGS_TEXT,
                                source="rl-baselines3-zoo hyperparams/ppo.yml, HalfCheetah-v4 (-v3) entry"),
        "versions": {"stable_baselines3": sb3_version, "torch": torch.__version__, "gymnasium": gym.__version__,
                     "numpy": np.__version__, "python": platform.python_version()},
        "final_episode_return_mean": (float(np.mean([ep["r"] for ep in model.ep_info_buffer]))
                                      if model.ep_info_buffer else None),
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=1)
    print(json.dumps({k: result[k] for k in ("total_steps", "sps_cold", "sps", "collect_sps", "torch_threads")}))


if __name__ == "__main__":
    main()

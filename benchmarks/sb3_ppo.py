"""Stable-Baselines3 PPO with RL-Zoo's tuned hyperparameters: end-to-end speed, or a learning run with evaluation.

Runs inside benchmarks/.venv-sb3 (made by benchmarks/speed.py), never with ms_ppo's venv. Prints its result as
one JSON line on stdout (the benchmarks' worker protocol, benchmarks/_common.py). Two modes:

    # speed (benchmarks/speed.py): trains steps + one warm-up iteration, times it, no evaluation
    benchmarks/.venv-sb3/bin/python benchmarks/sb3_ppo.py --steps 100000 --threads 1 > sb3.json
    # learning (benchmarks/learning.py): trains exactly --steps, then a deterministic evaluation
    benchmarks/.venv-sb3/bin/python benchmarks/sb3_ppo.py --learning --env CartPole-v1 --steps 50000 --seed 0 \
        --eval-episodes 10 --eval-seed 1000000 --progress-csv progress.csv > sb3.json

Hyperparameters (``RL_ZOO``): rl-baselines3-zoo, hyperparams/ppo.yml, the entry of the same task (the MuJoCo
entries are named -v3 there; ms_ppo and this script run -v5, the same task on the maintained bindings):

- HalfCheetah (HalfCheetah-v3 entry; -v4 in newer versions, same values): normalize: true (VecNormalize of
  observations and rewards, with the PPO gamma as RL-Zoo passes it), n_envs 1, n_steps 512, batch_size 64,
  n_epochs 20, gamma 0.98, gae_lambda 0.92, learning_rate 2.0633e-05, ent_coef 0.000401762, clip_range 0.1,
  max_grad_norm 0.8, vf_coef 0.58096, policy_kwargs log_std_init=-2, ortho_init=False, activation_fn=nn.ReLU,
  net_arch=dict(pi=[256, 256], vf=[256, 256]).
- InvertedDoublePendulum (InvertedDoublePendulum-v3 entry): normalize: true, n_envs 1, n_steps 128,
  batch_size 512 (larger than the rollout: SB3 then uses the whole rollout of 128), n_epochs 10, gamma 0.98,
  gae_lambda 0.8, learning_rate 0.000155454, ent_coef 1.05057e-06, clip_range 0.4, max_grad_norm 0.5,
  vf_coef 0.695929, default MlpPolicy (64x64 tanh, orthogonal init).
- Walker2d (Walker2d-v3 entry): normalize: true, n_envs 1, n_steps 512, batch_size 32, n_epochs 20, gamma 0.99,
  gae_lambda 0.95, learning_rate 5.05041e-05, ent_coef 0.000585045, clip_range 0.1, max_grad_norm 1,
  vf_coef 0.871923, default MlpPolicy.
- Ant (Ant-v3 entry, the `mujoco-defaults` anchor; its tuned entry is commented out there): normalize: true and
  SB3's PPO defaults otherwise (n_envs 1, n_steps 2048, batch_size 64, n_epochs 10, gamma 0.99, gae_lambda 0.95,
  learning_rate 3e-4, clip_range 0.2, default MlpPolicy).
- Humanoid (Humanoid-v3 entry): normalize: true, n_envs 1, n_steps 512, batch_size 256, n_epochs 5, gamma 0.95,
  gae_lambda 0.9, learning_rate 3.56987e-05, ent_coef 0.00238306, clip_range 0.3, max_grad_norm 2,
  vf_coef 0.431892, the same policy_kwargs as HalfCheetah.
- CartPole-v1 entry: n_envs 8, n_steps 32, batch_size 256, n_epochs 20, gamma 0.98, gae_lambda 0.8,
  ent_coef 0.0, learning_rate lin_0.001, clip_range lin_0.2 (linear decay to 0), no normalisation.
- FrozenLake: RL-Zoo has no entry; the CartPole-v1 entry (RL-Zoo's tuned classic-control recipe) is used, as
  ms_ppo uses its classic-control YAML for both.

Every env is wrapped in Monitor (episode returns), as RL-Zoo's make_vec_env does; ``--env-kwargs`` (JSON) go to
gymnasium.make for training and evaluation envs alike.

Timing (speed mode): the first iteration (one rollout and its update) is the warm-up; the script trains
``steps + n_steps * n_envs`` steps so that at least ``steps`` are timed after it. Collection time is measured from
rollout start to rollout end, so the JSON also has the collection-only SPS.

Evaluation (learning mode): episode i runs on its own environment reset with seed ``eval_seed + i`` (the seeds
ms_ppo's evaluation uses), deterministic actions (the Gaussian mean, clipped to the Box by SB3; the arg-max for
Discrete), observation normalisation statistics frozen, undiscounted environment returns.
"""

import argparse
import csv
import json
import platform
import time

import gymnasium as gym
import numpy as np
import torch
from _common import emit
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
RL_ZOO_CARTPOLE = {"n_steps": 32, "batch_size": 256, "n_epochs": 20, "gamma": 0.98, "gae_lambda": 0.8,
                   "ent_coef": 0.0, "learning_rate": "lin_0.001", "clip_range": "lin_0.2"}

# env id prefix -> (hyperparameters, n_envs, normalize, policy_kwargs as text or None, source)
RL_ZOO = {
    "HalfCheetah-": (RL_ZOO_HALFCHEETAH, 1, True, POLICY_KWARGS_TEXT,
                     "rl-baselines3-zoo hyperparams/ppo.yml, HalfCheetah-v3 (-v4) entry"),
    "InvertedDoublePendulum-": (
        {"n_steps": 128, "batch_size": 512, "n_epochs": 10, "gamma": 0.98, "gae_lambda": 0.8,
         "learning_rate": 0.000155454, "ent_coef": 1.05057e-06, "clip_range": 0.4, "max_grad_norm": 0.5,
         "vf_coef": 0.695929}, 1, True, None,
        "rl-baselines3-zoo hyperparams/ppo.yml, InvertedDoublePendulum-v3 entry"),
    "Walker2d-": (
        {"n_steps": 512, "batch_size": 32, "n_epochs": 20, "gamma": 0.99, "gae_lambda": 0.95,
         "learning_rate": 5.05041e-05, "ent_coef": 0.000585045, "clip_range": 0.1, "max_grad_norm": 1.0,
         "vf_coef": 0.871923}, 1, True, None, "rl-baselines3-zoo hyperparams/ppo.yml, Walker2d-v3 entry"),
    "Ant-": ({}, 1, True, None,
             "rl-baselines3-zoo hyperparams/ppo.yml, Ant-v3 entry (mujoco-defaults: SB3's PPO defaults)"),
    "Humanoid-": (
        {"n_steps": 512, "batch_size": 256, "n_epochs": 5, "gamma": 0.95, "gae_lambda": 0.9,
         "learning_rate": 3.56987e-05, "ent_coef": 0.00238306, "clip_range": 0.3, "max_grad_norm": 2.0,
         "vf_coef": 0.431892}, 1, True, POLICY_KWARGS_TEXT,
        "rl-baselines3-zoo hyperparams/ppo.yml, Humanoid-v3 entry"),
    "CartPole-": (RL_ZOO_CARTPOLE, 8, False, None, "rl-baselines3-zoo hyperparams/ppo.yml, CartPole-v1 entry"),
    "FrozenLake-": (RL_ZOO_CARTPOLE, 8, False, None,
                    "rl-baselines3-zoo has no FrozenLake entry: its CartPole-v1 entry (classic-control recipe)"),
}


def zoo_settings(env_id: str):
    """(hyperparameters, n_envs, normalize, policy_kwargs text, source) of the RL-Zoo entry for ``env_id``."""
    for prefix, entry in RL_ZOO.items():
        if env_id.startswith(prefix):
            return entry
    raise SystemExit(f"sb3_ppo.py: no RL-Zoo hyperparameters here for {env_id} (known: {', '.join(RL_ZOO)})")


def _schedule(value):
    """RL-Zoo's ``lin_X``: X times the remaining progress (1 -> 0); plain numbers stay constant."""
    if isinstance(value, str) and value.startswith("lin_"):
        start = float(value[4:])
        return lambda progress_remaining: progress_remaining * start
    return value


def _policy_kwargs(text):
    if text is None:
        return None
    return dict(log_std_init=-2, ortho_init=False, activation_fn=torch.nn.ReLU,
                net_arch=dict(pi=[256, 256], vf=[256, 256])) if text == POLICY_KWARGS_TEXT else None


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


class ProgressLog(BaseCallback):
    """After every rollout: (timesteps, mean return of the last 100 training episodes), the columns ms_ppo's
    progress.csv uses, so ms_ppo.training.plots draws both libraries the same way."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self.rows = []

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        buffer = self.model.ep_info_buffer
        mean = float(np.mean([ep["r"] for ep in buffer])) if buffer else None
        self.rows.append((self.num_timesteps, mean, time.perf_counter()))

    def write(self, start: float) -> None:
        with open(self.path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["global_step", "wall_seconds", "charts/episodic_return"])
            for steps, mean, when in self.rows:
                writer.writerow([steps, round(when - start, 3), "" if mean is None else mean])


def make_env(env_id: str, kwargs: dict):
    return Monitor(gym.make(env_id, **kwargs))


def build(env_id: str, kwargs: dict, seed: int):
    """The RL-Zoo model and its (possibly normalised) vector env for ``env_id``."""
    hyper, n_envs, normalize, policy_text, source = zoo_settings(env_id)
    env = DummyVecEnv([lambda: make_env(env_id, kwargs) for _ in range(n_envs)])
    if normalize:
        env = VecNormalize(env, norm_obs=True, norm_reward=True, gamma=hyper.get("gamma", 0.99))
    schedules = {key: _schedule(value) for key, value in hyper.items()}
    model = PPO("MlpPolicy", env, policy_kwargs=_policy_kwargs(policy_text), seed=seed, device="cpu", verbose=0,
                **schedules)
    description = dict(hyper, n_envs=n_envs, normalize=normalize, policy="MlpPolicy",
                       policy_kwargs=policy_text or "default (64x64 tanh, ortho_init)", source=source)
    return model, env, description


def evaluate(model, env, env_id: str, kwargs: dict, episodes: int, seed: int) -> np.ndarray:
    """Deterministic returns (episodes,): episode i on its own env reset with seed + i, normalisation frozen."""
    returns = np.zeros(episodes)
    for i in range(episodes):
        eval_env = gym.make(env_id, **kwargs)
        obs, _ = eval_env.reset(seed=seed + i)
        done = False
        while not done:
            model_obs = env.normalize_obs(obs) if isinstance(env, VecNormalize) else obs
            action, _ = model.predict(model_obs, deterministic=True)
            if isinstance(eval_env.action_space, gym.spaces.Discrete):
                action = int(action)
            obs, reward, terminated, truncated, _ = eval_env.step(action)
            returns[i] += float(reward)
            done = terminated or truncated
        eval_env.close()
    return returns


def learning_run(args: argparse.Namespace, kwargs: dict) -> dict:
    start = time.perf_counter()
    model, env, description = build(args.env, kwargs, args.seed)
    progress = ProgressLog(args.progress_csv) if args.progress_csv else None
    learn_start = time.perf_counter()
    model.learn(total_timesteps=args.steps, callback=progress)
    learn_seconds = time.perf_counter() - learn_start
    if progress:
        progress.write(learn_start)
    if isinstance(env, VecNormalize):
        env.training = False  # frozen statistics for the evaluation
    returns = evaluate(model, env, args.env, kwargs, args.eval_episodes, args.eval_seed)
    env.close()
    return {
        "env_id": args.env, "env_kwargs": kwargs, "seed": args.seed, "total_steps": int(model.num_timesteps),
        "eval_return_mean": float(returns.mean()), "eval_return_std": float(returns.std()),
        "eval_returns": returns.tolist(), "eval_episodes": args.eval_episodes, "eval_seed": args.eval_seed,
        "wall_seconds": round(learn_seconds, 3), "sps": round(model.num_timesteps / learn_seconds, 1),
        "process_setup_seconds": round(learn_start - start, 3),
        "torch_threads": torch.get_num_threads(), "hyperparameters": description,
        "versions": {"stable_baselines3": sb3_version, "torch": torch.__version__, "gymnasium": gym.__version__,
                     "numpy": np.__version__, "python": platform.python_version()},
    }


def speed_run(args: argparse.Namespace, kwargs: dict) -> dict:
    start = time.perf_counter()
    model, env, description = build(args.env, kwargs, args.seed)
    clock = IterationClock()
    total = args.steps + model.n_steps * model.n_envs
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
    return {
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
        "hyperparameters": description,
        "versions": {"stable_baselines3": sb3_version, "torch": torch.__version__, "gymnasium": gym.__version__,
                     "numpy": np.__version__, "python": platform.python_version()},
        "final_episode_return_mean": (float(np.mean([ep["r"] for ep in model.ep_info_buffer]))
                                      if model.ep_info_buffer else None),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="HalfCheetah-v5")
    parser.add_argument("--env-kwargs", default="{}", help="JSON keyword arguments for gymnasium.make")
    parser.add_argument("--steps", type=int, default=100_000,
                        help="speed mode: steps to time after the warm-up iteration; learning mode: steps to train")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (intra-op threads)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--learning", action="store_true", help="learning mode: train --steps, then evaluate")
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--eval-seed", type=int, default=1_000_000, help="episode i is reset with eval_seed + i")
    parser.add_argument("--progress-csv", default=None, help="learning mode: write the training curve here")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    kwargs = json.loads(args.env_kwargs)
    emit(learning_run(args, kwargs) if args.learning else speed_run(args, kwargs))


if __name__ == "__main__":
    main()

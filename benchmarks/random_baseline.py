"""Return of a uniformly random policy on the evaluation starts ms_ppo uses, for comparison with trained runs.

    python benchmarks/random_baseline.py --env_yaml env_yaml/HalfCheetah-v5.yaml --episodes 5 --seed 0
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ms_ppo.config import load_settings  # noqa: E402
from ms_ppo.envs import make_env, resolve_env_id  # noqa: E402
from ms_ppo.evaluation import evaluate  # noqa: E402
from ms_ppo.trainer import EVAL_SEED_OFFSET  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env_yaml", required=True)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0, help="the training seed whose evaluation starts to use")
    args = parser.parse_args()
    settings = load_settings(args.env_yaml)
    env_id = resolve_env_id(settings.env.id)
    space = make_env(env_id, settings.env.kwargs).action_space
    space.seed(args.seed)
    policy = lambda obs: np.stack([space.sample() for _ in range(len(obs))])  # noqa: E731
    returns = evaluate(policy, env_id, settings.env.kwargs, args.episodes, args.seed + EVAL_SEED_OFFSET)
    print(f"{env_id}: random policy return {returns.mean():.2f} +- {returns.std():.2f} over {args.episodes} episodes")


if __name__ == "__main__":
    main()

"""Return of a uniformly random policy on the evaluation starts ms_ppo uses, for comparison with trained runs.

    python benchmarks/random_baseline.py --env_yaml env_yaml/HalfCheetah-v5.yaml --episodes 5 --seed 0
"""

import argparse
from typing import Tuple

import _common  # noqa: F401 - puts the repository on sys.path for ms_ppo
import numpy as np

from ms_ppo.config import EnvSettings, load_settings
from ms_ppo.envs import make_env, resolve_env_id
from ms_ppo.evaluation import EVAL_SEED_OFFSET, evaluate


def random_returns(env: EnvSettings, episodes: int, seed: int) -> Tuple[str, np.ndarray]:
    """The resolved env id and the returns (episodes,) of uniformly random actions, on the evaluation starts of
    a run trained with ``seed`` and the environments ms_ppo evaluates on (evaluation kwargs, the evaluation
    variant of the wrapper set)."""
    env_id = resolve_env_id(env.id, notify=lambda line: None)
    kwargs = env.evaluation_kwargs
    probe = make_env(env_id, kwargs, wrappers=env.wrappers, training=False)
    space = probe.action_space
    probe.close()
    space.seed(seed)
    policy = lambda obs: np.stack([space.sample() for _ in range(len(obs))])  # noqa: E731
    return env_id, evaluate(policy, env_id, kwargs, episodes, seed + EVAL_SEED_OFFSET, wrappers=env.wrappers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env_yaml", required=True)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0, help="the training seed whose evaluation starts to use")
    args = parser.parse_args()
    env_id, returns = random_returns(load_settings(args.env_yaml).env, args.episodes, args.seed)
    print(f"{env_id}: random policy return {returns.mean():.2f} +- {returns.std():.2f} over {args.episodes} episodes")


if __name__ == "__main__":
    main()

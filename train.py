"""Train PPO: python train.py --env_yaml env_yaml/CartPole-v1.yaml --algo_yaml algo_yaml/ppo_classic.yaml"""

import sys

from ms_ppo.app.cli import train_main

if __name__ == "__main__":
    sys.exit(train_main())

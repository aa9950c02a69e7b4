"""Paths the tests share: the repository root and the shipped YAMLs."""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV_YAML = os.path.join(ROOT, "env_yaml")
ALGO_YAML = os.path.join(ROOT, "algo_yaml")
CARTPOLE = os.path.join(ENV_YAML, "CartPole-v1.yaml")
PENDULUM = os.path.join(ENV_YAML, "Pendulum-v1.yaml")
CLASSIC = os.path.join(ALGO_YAML, "ppo_classic.yaml")

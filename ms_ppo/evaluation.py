"""Deterministic evaluation on separate environments, one episode per environment, all stepped together."""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional

import gymnasium as gym
import numpy as np

from ms_ppo.envs import ActionAdapter, ObservationEncoder, ObservationNormalizer, make_vector_env

EVAL_SEED_OFFSET = 1_000_000  # evaluation episodes start from seeds the training envs never use


class DeterministicActor:
    """Raw observations (N, ...) -> environment actions from the policy's mode, normalisation frozen."""

    def __init__(self, act_deterministic: Callable[[np.ndarray], np.ndarray], encoder: ObservationEncoder,
                 obs_norm: ObservationNormalizer, action_space: gym.Space):
        self.act_deterministic = act_deterministic
        self.encoder = encoder
        self.obs_norm = obs_norm
        self.to_env = ActionAdapter(action_space)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return self.to_env(self.act_deterministic(self.obs_norm(self.encoder(obs))))


def evaluate(policy: Callable[[np.ndarray], np.ndarray], env_id: str, kwargs: Optional[Dict[str, Any]],
             episodes: int, seed: int, wrappers: str = "none",
             episode_info: Optional[Dict[str, np.ndarray]] = None, max_steps: Optional[int] = None) -> np.ndarray:
    """Run ``episodes`` episodes with ``policy`` and return their undiscounted returns (episodes,).

    :param policy: maps a batch of raw observations (episodes, ...) to environment actions; it should be the
        deterministic policy with frozen normalisation statistics.
    :param seed: episode i is reset with seed + i, so the same seed evaluates on the same starts.
    :param wrappers: the env's wrapper set (``env.wrappers``), in its evaluation variant (raw rewards).
    :param episode_info: if given, receives ``flag_get`` (episodes,) bool when the environment reports it
        (Super Mario Bros: the flag was reached), and ``capped`` (episodes,) bool: cut by ``max_steps``.
    :param max_steps: stop every episode after this many steps (``train.eval_max_steps``), counting the return
        so far: a policy that never ends a game cannot stall the run.
    """
    envs = make_vector_env(env_id, episodes, kwargs, wrappers=wrappers, training=False)
    try:
        obs, _ = envs.reset(seed=seed)
        returns = np.zeros(episodes, np.float64)
        running = np.ones(episodes, bool)
        steps = 0
        while running.any() and (max_steps is None or steps < max_steps):
            steps += 1
            obs, rewards, terminated, truncated, info = envs.step(policy(obs))
            returns += rewards * running
            ended = running & (terminated | truncated)
            final = info.get("final_info", {})
            if episode_info is not None and ended.any() and "flag_get" in final:
                flags = episode_info.setdefault("flag_get", np.zeros(episodes, bool))
                flags[ended] = np.asarray(final["flag_get"], bool)[ended]
            running &= ~(terminated | truncated)
        if episode_info is not None:
            episode_info["capped"] = running.copy()
        return returns
    finally:
        envs.close()

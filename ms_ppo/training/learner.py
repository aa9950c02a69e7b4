"""The Learner: one rollout batch in, updated weights and the iteration's statistics out."""

from __future__ import annotations

from typing import Dict

import numpy as np

from ms_ppo.algo import COUNTER_NAMES, PPOAgent, RolloutBatch
from ms_ppo.config import PPOSettings


class Learner:
    """Runs PPO's epochs over a batch with the annealed learning rate and clip range.

    :param agent: holds the network, the optimiser and the compiled update.
    :param cfg: PPO hyperparameters (learning rate, clip range and whether they anneal).
    """

    def __init__(self, agent: PPOAgent, cfg: PPOSettings):
        self.agent = agent
        self.cfg = cfg

    def learn(self, batch: RolloutBatch, progress: float, rng: np.random.Generator) -> Dict[str, float]:
        """Update on ``batch``; ``progress`` in [0, 1) drives learning-rate annealing (and clip-range annealing
        with ``ppo.anneal_clip_range``); ``rng`` shuffles the minibatches.

        :return: metrics named as CleanRL logs them (``losses/...``, ``charts/learning_rate``), the update's
            counters under ``precision/``.
        """
        cfg = self.cfg
        learning_rate = cfg.learning_rate * (1.0 - progress) if cfg.anneal_lr else cfg.learning_rate
        self.agent.set_learning_rate(learning_rate)
        clip_range = cfg.clip_range * (1.0 - progress) if cfg.anneal_clip_range else cfg.clip_range
        stats = self.agent.update(batch, rng, clip_range)
        var_returns = batch.returns.var()
        explained = float("nan") if var_returns == 0 else 1.0 - (batch.returns - batch.values).var() / var_returns
        metrics = {f"{'precision' if name in COUNTER_NAMES else 'losses'}/{name}": value
                   for name, value in stats.items()}
        metrics["losses/explained_variance"] = float(explained)
        metrics["charts/learning_rate"] = learning_rate
        metrics["charts/clip_range"] = clip_range
        return metrics

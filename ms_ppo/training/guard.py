"""The numerical guard: updates that change nothing (every optimiser step skipped) or leave non-finite weights
(rolled back here) are counted, and too many in a row stop the run."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np

from ms_ppo.algo import PPOAgent
from ms_ppo.errors import TrainingDiverged
from ms_ppo.training.state import TrainerState


class NumericalGuard:
    """Watches each update of ``agent``.

    :param minibatches_per_epoch: optimiser steps per epoch (an update whose every step was skipped is bad).
    :param max_bad_updates: consecutive bad updates that stop training (``train.max_bad_updates``).
    """

    def __init__(self, agent: PPOAgent, minibatches_per_epoch: int, max_bad_updates: int):
        self.agent = agent
        self.minibatches_per_epoch = minibatches_per_epoch
        self.max_bad_updates = max_bad_updates
        self.bad_updates = 0  # consecutive updates with every step skipped (or non-finite parameters)

    def snapshot(self) -> List[np.ndarray]:
        """The trainable weights before an update, to roll back to."""
        return [param.asnumpy().copy() for param in self.agent.net.trainable_params()]

    def check(self, metrics: Dict[str, Any], snapshot: List[np.ndarray], state: TrainerState) -> None:
        """After an update: count it if bad, undo it if it left non-finite weights; keep ``state.skipped_steps``."""
        skipped = float(metrics.get("precision/skipped_steps", state.skipped_steps))
        all_skipped = skipped - state.skipped_steps >= metrics["losses/epochs"] * self.minibatches_per_epoch
        state.skipped_steps = skipped
        finite = all(np.isfinite(param.asnumpy()).all() for param in self.agent.net.trainable_params())
        if not finite:
            self.agent.set_weights(snapshot)
        self.bad_updates = self.bad_updates + 1 if (all_skipped or not finite) else 0

    @property
    def healthy(self) -> bool:
        """False while updates are failing: no checkpoint is written then, so the last good one is kept."""
        return self.bad_updates == 0

    def stop_if_diverged(self, global_step: int, last_checkpoint: Optional[str]) -> None:
        if self.bad_updates >= self.max_bad_updates:
            raise TrainingDiverged(
                f"training stopped at step {global_step}: {self.max_bad_updates} updates in a row had non-finite "
                f"losses, gradients or weights (check the environment's observations and rewards for nan/inf); "
                f"last good checkpoint: {last_checkpoint or 'none yet'}")

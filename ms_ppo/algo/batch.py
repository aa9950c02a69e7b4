"""The typed rollout batch: one flattened rollout, in the column order the compiled update takes."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class RolloutBatch(NamedTuple):
    """T * N = B transitions of one rollout, flattened; the field order is the update's input order.

    :param obs: (B, O) float32, or (B, C, H, W) uint8 frames.
    :param actions: (B, A) float32 (Box) or (B,) int32 (Discrete).
    :param log_probs: (B,) log-probabilities of the actions under the policy that collected them.
    :param advantages: (B,) GAE advantages.
    :param returns: (B,) value targets (advantages + values).
    :param values: (B,) value estimates at collection.
    """

    obs: np.ndarray
    actions: np.ndarray
    log_probs: np.ndarray
    advantages: np.ndarray
    returns: np.ndarray
    values: np.ndarray

    @property
    def size(self) -> int:
        return int(self.obs.shape[0])

"""The interface every actor-critic network offers to the algorithm, the collector and evaluation.

Shapes: B is the batch (environments at collection, a minibatch in the update), A the action size (Box) or the
number of actions (Discrete). Observations are encoded float32 (B, O) for MLPs and uint8 (B, C, H, W) frames for
the CNN (``image_input``).
"""

from __future__ import annotations

from typing import Protocol, Tuple, runtime_checkable

from mindspore import Parameter, Tensor


@runtime_checkable
class ActorCriticNetwork(Protocol):
    """A MindSpore Cell with a policy head and a value head (ms_ppo.models.mlp.ActorCritic,
    ms_ppo.models.cnn.CnnActorCritic)."""

    discrete: bool  # categorical head (Discrete actions) rather than a Box head
    action_dim: int  # A
    image_input: bool  # takes uint8 frames, which the rollout stores as they are
    log_std: Parameter  # (A,) state-independent log std of Box actions (unused, and frozen, for Discrete)

    def sample(self, obs: Tensor, noise: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Actions from host-drawn noise (standard normal for Box, Gumbel(0, 1) for Discrete): action (B, A) float
        or (B,) int32, its log-probability (B,), the value (B,)."""
        ...

    def deterministic(self, obs: Tensor) -> Tensor:
        """The policy's mode: (B, A) or (B,)."""
        ...

    def evaluate_actions(self, obs: Tensor, action: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Log-probability (B,), entropy (B,) and value (B,) of given actions under the current weights."""
        ...

    def value(self, obs: Tensor) -> Tensor:
        """State value (B,)."""
        ...

    def trainable_params(self) -> list:
        """The Parameters the optimiser updates (MindSpore's Cell method)."""
        ...

"""A network's methods as separate compiled calls (graph mode): one call per rollout step, per evaluation step,
per bootstrap, and the in-graph write of weights."""

from __future__ import annotations

import mindspore
import numpy as np
from mindspore import Tensor, nn, ops

from ms_ppo.models.protocol import ActorCriticNetwork


class AssignParameters(nn.Cell):
    """Writes values into Parameters inside a compiled graph (host-side ``set_data`` no longer reaches a graph
    that has run; see ms_ppo.algo.update.EpochUpdate)."""

    def __init__(self, params):
        super().__init__()
        self.params = mindspore.ParameterTuple(params)

    def construct(self, values):
        for i in range(len(self.params)):
            ops.assign(self.params[i], values[i])
        return values[0]


class PolicyStep(nn.Cell):
    """Sample actions for all environments in one compiled call: (N, O), (N, A) noise -> action, log_prob, value."""

    def __init__(self, net: ActorCriticNetwork):
        super().__init__()
        self.net = net

    def construct(self, obs, noise):
        return self.net.sample(obs, noise)


class DeterministicPolicy(nn.Cell):
    """The policy's mode for evaluation: (N, O) -> (N, A) or (N,)."""

    def __init__(self, net: ActorCriticNetwork):
        super().__init__()
        self.net = net

    def construct(self, obs):
        return self.net.deterministic(obs)

    def act(self, obs: np.ndarray) -> np.ndarray:
        """NumPy in, NumPy out: one compiled call."""
        return self(Tensor(obs)).asnumpy()


class ActionLogProbability(nn.Cell):
    """Log-probabilities (B,) of given actions (B, A) or (B,) under the current weights, for observations (B, O)."""

    def __init__(self, net: ActorCriticNetwork):
        super().__init__()
        self.net = net

    def construct(self, obs, actions):
        return self.net.evaluate_actions(obs, actions)[0]


class ValueFunction(nn.Cell):
    """State values (N, O) -> (N,), used to bootstrap truncated episodes and the last step of a rollout."""

    def __init__(self, net: ActorCriticNetwork):
        super().__init__()
        self.net = net

    def construct(self, obs):
        return self.net.value(obs)

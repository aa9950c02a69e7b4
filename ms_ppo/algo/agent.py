"""The PPO agent: the actor-critic, its Adam optimiser and the compiled calls a run makes (policy step, value,
deterministic action, epoch update)."""

from __future__ import annotations

from contextlib import nullcontext
from typing import ContextManager, Dict, Optional, Tuple

import mindspore
import numpy as np
from mindspore import Tensor, nn

from ms_ppo.algo.batch import RolloutBatch
from ms_ppo.algo.update import EpochUpdate
from ms_ppo.config import PPOSettings, PrecisionSettings, Settings
from ms_ppo.models import ActorCriticNetwork
from ms_ppo.models.compiled import (
    ActionLogProbability,
    AssignParameters,
    DeterministicPolicy,
    PolicyStep,
    ValueFunction,
)
from ms_ppo.models.host_policy import HostPolicy
from ms_ppo.models.precision import LOW_PRECISION_DTYPES
from ms_ppo.runtime.collectives import gradient_reducer


class PPOAgent:
    """The actor-critic, its optimiser and the compiled calls that use them.

    :param net: the actor-critic to train.
    :param cfg: PPO hyperparameters.
    :param world_size: data-parallel workers; above 1 the gradients are averaged over them (needs msrun).
    :param loss_scaling: fp16: dynamic loss scaling with these settings (``net`` already converted by
        ms_ppo.models.precision); None in fp32.
    :param off_policy: the rollouts come from an older policy than the one updated (Async policy lag 1); with
        ``ppo.off_policy_correction: decoupled`` each update then uses the decoupled objective (``update``).
    """

    def __init__(self, net: ActorCriticNetwork, cfg: PPOSettings, world_size: int = 1,
                 loss_scaling: Optional[PrecisionSettings] = None, off_policy: bool = False):
        self.net = net
        self.cfg = cfg
        self.optimizer = nn.Adam(net.trainable_params(), learning_rate=cfg.learning_rate, eps=cfg.adam_eps)
        self.learning_rate = cfg.learning_rate
        self.grad_reducer = None
        if world_size > 1:
            self.grad_reducer = gradient_reducer(self.optimizer.parameters, world_size)
        self.policy_step = PolicyStep(net)
        self.deterministic = DeterministicPolicy(net)
        self.value_fn = ValueFunction(net)
        self.decoupled = off_policy and cfg.off_policy_correction == "decoupled"
        self.epoch_update = EpochUpdate(net, self.optimizer, cfg, self.grad_reducer, loss_scaling, world_size,
                                        weighted=self.decoupled)
        self.log_prob_fn = ActionLogProbability(net) if self.decoupled else None
        self._no_weights = Tensor(np.ones(1, np.float32))  # on-policy: the epoch ignores its weights input
        self._assign_weights = AssignParameters(net.trainable_params())
        self.host_policy = None  # a NumPy copy for collection (use_host_policy), else the compiled PolicyStep

    def use_host_policy(self, blas_threads: Optional[int] = 1) -> None:
        """Collect with a NumPy copy of the network (ms_ppo.models.host_policy; fp32 MLPs on CPU), NumPy's BLAS
        at ``blas_threads`` threads during rollouts (None: NumPy's own choice)."""
        self.host_policy = HostPolicy(self.net, blas_threads)

    def rollout(self) -> ContextManager[None]:
        """Enclose each rollout: the host copy takes the network's current weights and sets NumPy's BLAS threads
        until the rollout ends; the compiled policy needs neither."""
        return self.host_policy.rollout() if self.host_policy is not None else nullcontext()

    def set_weights(self, values) -> None:
        """Overwrite the trainable weights (in ``net.trainable_params()`` order) with NumPy arrays."""
        # mutable: a plain tuple is a constant of the graph to MindSpore, recompiled (~0.2 s) at every new value
        self._assign_weights(mindspore.mutable(tuple(Tensor(value) for value in values)))

    def checkpoint_cells(self) -> Dict[str, nn.Cell]:
        """The cells whose Parameters a checkpoint holds, by name prefix: weights, Adam state, and the update's
        counters (skips, loss scale)."""
        return {"net": self.net, "optimizer": self.optimizer, "update": self.epoch_update}

    def act(self, obs: np.ndarray, noise: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Actions (N, A) or (N,), log-probabilities (N,), values (N,) for observations (N, O)."""
        if self.host_policy is not None:
            return self.host_policy.sample(obs, noise)
        action, log_prob, value = self.policy_step(Tensor(obs), Tensor(noise))
        return action.asnumpy(), log_prob.asnumpy(), value.asnumpy()

    def act_deterministic(self, obs: np.ndarray) -> np.ndarray:
        return self.deterministic.act(obs)

    def value(self, obs: np.ndarray) -> np.ndarray:
        return self.value_fn(Tensor(obs)).asnumpy()

    def set_learning_rate(self, learning_rate: float) -> None:
        """The rate the next ``update`` uses (assigned inside its compiled graph)."""
        self.learning_rate = learning_rate

    def update(self, batch: RolloutBatch, rng: np.random.Generator, clip_range: float) -> Dict[str, float]:
        """All epochs over one rollout; stops early when approx KL > 1.5 x target_kl.

        :return: the last epoch's statistics (named by ``epoch_update.stat_names``), the update's counters
            (COUNTER_NAMES: ``skipped_steps``, fp16: ``loss_scale``) and ``epochs`` run.
        """
        cfg = self.cfg
        names = self.epoch_update.stat_names
        tensors = [Tensor(column) for column in batch]
        weights = self._no_weights
        if self.decoupled:  # the proximal log-probs replace the behaviour ones (column 2, RolloutBatch's order)
            proximal, weights = self.decoupled_inputs(tensors[0], tensors[1], batch.log_probs)
            tensors[2] = Tensor(proximal)
        clip = Tensor(clip_range, mindspore.float32)
        learning_rate = Tensor(self.learning_rate, mindspore.float32)
        used = cfg.num_minibatches * cfg.minibatch_size
        stats = np.zeros(len(names), np.float32)
        epochs = 0
        for epochs in range(1, cfg.epochs + 1):
            indices = rng.permutation(batch.size)[:used].reshape(cfg.num_minibatches, -1)
            stats = self.epoch_update(*tensors, Tensor(indices.astype(np.int32)), clip, learning_rate,
                                      weights).asnumpy()
            if cfg.target_kl is not None and stats[names.index("approx_kl")] > 1.5 * cfg.target_kl:
                break
        result = {name: float(value) for name, value in zip(names, stats)}
        result.update(self.epoch_update.counters())
        result["epochs"] = float(epochs)
        return result

    def decoupled_inputs(self, obs: Tensor, actions: Tensor,
                         behaviour_log_probs: np.ndarray) -> Tuple[np.ndarray, Tensor]:
        """The decoupled objective's inputs for a stale rollout (the update's own obs and action tensors): the
        proximal log-probabilities (B,) (the current weights', before this update), which replace the behaviour
        policy's, and the weights (B,) min(exp(proximal - behaviour), importance_weight_cap).

        Clipping around the proximal policy keeps each update's step bounded from where the learner is, as on
        policy; clipped around the behaviour policy, a transition whose ratio starts outside the clip (the
        previous update already moved that far) contributes no gradient at all."""
        proximal = self.log_prob_fn(obs, actions).asnumpy()
        weights = np.minimum(np.exp(proximal.astype(np.float64) - behaviour_log_probs), self.cfg.importance_weight_cap)
        return proximal, Tensor(weights.astype(np.float32))


def build_agent(net: ActorCriticNetwork, settings: Settings, world_size: int = 1,
                num_envs: Optional[int] = None, off_policy: bool = False) -> PPOAgent:
    """The agent for the run's precision: loss scaling for fp16/bf16, none in fp32 (the fp32 graph is untouched).

    :param num_envs: the environments whose rollouts one update takes, when not ``ppo.num_envs`` (a single learner
        for several collecting ranks): the minibatches are sized from it.
    :param off_policy: the rollouts are one update old (the learner of AsyncMultiActorSingleLearnerDP).
    """
    low_precision = settings.runtime.precision_mode in LOW_PRECISION_DTYPES
    cfg = settings.ppo if num_envs is None else settings.ppo.model_copy(update={"num_envs": num_envs})
    return PPOAgent(net, cfg, world_size, settings.precision if low_precision else None, off_policy)

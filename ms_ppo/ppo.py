"""PPO's mathematics and its compiled pieces: GAE, the clipped loss, the fused epoch update, the policy step.

Everything that runs per environment step or per minibatch is a graph-mode Cell, so one rollout step is one
compiled call and one epoch (all its minibatches) is one compiled call.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np
import mindspore
from mindspore import Parameter, Tensor, amp, nn, ops

from ms_ppo.config import PPOSettings
from ms_ppo.networks import ActorCritic

STAT_NAMES = ("loss", "policy_loss", "value_loss", "entropy", "approx_kl", "clipfrac")


def compute_gae(rewards: np.ndarray, values: np.ndarray, dones: np.ndarray, last_values: np.ndarray,
                gamma: float, gae_lambda: float) -> Tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimation over a rollout, vectorised across environments.

    :param rewards: (T, N) rewards; on a time-limit truncation the caller has already added gamma * V(final obs).
    :param values: (T, N) value estimates of the observations the actions were taken in.
    :param dones: (T, N) 1.0 where the episode ended (terminated or truncated) with that step, else 0.0.
    :param last_values: (N,) values of the observations after the last step.
    :return: advantages (T, N) and returns = advantages + values (T, N).
    """
    advantages = np.zeros_like(rewards)
    running = np.zeros_like(last_values)
    next_values = last_values
    for t in reversed(range(rewards.shape[0])):
        not_done = 1.0 - dones[t]
        delta = rewards[t] + gamma * next_values * not_done - values[t]
        running = delta + gamma * gae_lambda * not_done * running
        advantages[t] = running
        next_values = values[t]
    return advantages, advantages + values


class PPOLoss(nn.Cell):
    """Clipped surrogate + value loss - entropy bonus on one minibatch (all inputs (B,) except obs/actions)."""

    def __init__(self, net: ActorCritic, cfg: PPOSettings):
        super().__init__()
        self.net = net
        self.clip_vf = cfg.clip_range_vf
        self.ent_coef = cfg.ent_coef
        self.vf_coef = cfg.vf_coef
        self.normalize_advantage = cfg.normalize_advantage

    def construct(self, obs, actions, old_log_prob, advantages, returns, old_values, clip_range):
        log_prob, entropy, values = self.net.evaluate_actions(obs, actions)
        log_ratio = log_prob - old_log_prob
        ratio = ops.exp(log_ratio)
        if self.normalize_advantage:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        policy_loss = ops.maximum(-advantages * ratio,
                                  -advantages * ops.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)).mean()
        if self.clip_vf is None:
            value_loss = ops.square(returns - values).mean()
        else:  # clip the new value around the old one; take the pessimistic of both errors
            clipped = old_values + ops.clamp(values - old_values, -self.clip_vf, self.clip_vf)
            value_loss = ops.maximum(ops.square(returns - values), ops.square(returns - clipped)).mean()
        entropy_mean = entropy.mean()
        loss = policy_loss + self.vf_coef * value_loss - self.ent_coef * entropy_mean
        approx_kl = ((ratio - 1.0) - log_ratio).mean()  # low-variance KL estimator (Schulman, 2020)
        clipfrac = (ops.abs(ratio - 1.0) > clip_range).astype(mindspore.float32).mean()
        return loss, policy_loss, value_loss, entropy_mean, approx_kl, clipfrac


def gather_minibatch(rows, obs, actions, log_probs, advantages, returns, values):
    """The rows of one minibatch from each rollout tensor (inside a compiled epoch)."""
    return (ops.gather(obs, rows, 0), ops.gather(actions, rows, 0), ops.gather(log_probs, rows, 0),
            ops.gather(advantages, rows, 0), ops.gather(returns, rows, 0), ops.gather(values, rows, 0))


class EpochUpdate(nn.Cell):
    """One epoch of PPO: every minibatch of a rollout, unrolled into a single compiled graph.

    Inputs are the flattened rollout (B = num_envs * rollout_steps rows) and an int32 (num_minibatches,
    minibatch_size) permutation drawn on the host, so the shuffle follows NumPy's seeded generator.

    Numerical guard: a minibatch whose loss or gradients are not finite changes nothing (no optimiser step, Adam
    state untouched) and is counted in ``skipped_steps``. Data-parallel, the check runs on the averaged gradients,
    so every worker skips the same steps. Returns (6,): the mean over minibatches of each of STAT_NAMES;
    ``counters()`` reads the steps skipped since the start of training (and, in subclasses, the loss scale).
    """

    stat_names = STAT_NAMES

    def __init__(self, net: ActorCritic, optimizer: nn.Optimizer, cfg: PPOSettings,
                 grad_reducer: Optional[nn.Cell] = None):
        super().__init__()
        self.loss = PPOLoss(net, cfg)
        self.optimizer = optimizer
        self.num_minibatches = cfg.num_minibatches
        self.max_grad_norm = cfg.max_grad_norm
        self.grad_reducer = grad_reducer  # data-parallel: average gradients over workers before the step
        self.skipped = Parameter(Tensor(0.0, mindspore.float32), name="skipped_steps", requires_grad=False)
        # Differentiate a Cell (not a bound method: MindSpore then returned zero gradients here).
        self.grad_fn = mindspore.value_and_grad(self.objective(), None, optimizer.parameters, has_aux=True)

    def objective(self) -> nn.Cell:
        """The Cell differentiated: its first output is the gradient's source, ``loss_stats`` picks the six
        PPOLoss statistics out of all its outputs."""
        return self.loss

    def loss_stats(self, outputs):
        return outputs

    def unscale(self, grads):
        return grads

    def adjust(self, finite):
        """Called after every minibatch with its finiteness verdict (loss scaling reacts to it)."""

    def counters(self) -> Dict[str, float]:
        """Host-side readings of the update's state. (Returning these Parameters from ``construct`` made
        MindSpore 2.10 drop the optimiser step from the fp32 graph, so they are read here instead.)"""
        return {"skipped_steps": float(self.skipped.asnumpy())}

    def construct(self, obs, actions, log_probs, advantages, returns, values, indices, clip_range, learning_rate):
        # Assigned inside the graph: once a graph has run, Parameter.set_data from the host no longer reaches it
        # (MindSpore 2.10, CPU, graph mode), so the annealed rate is an input like the clip range.
        ops.assign(self.optimizer.learning_rate, learning_rate)
        totals = ops.zeros((len(STAT_NAMES),), mindspore.float32)
        for i in range(self.num_minibatches):
            minibatch = gather_minibatch(indices[i], obs, actions, log_probs, advantages, returns, values)
            outputs, grads = self.grad_fn(*minibatch, clip_range)
            loss, policy_loss, value_loss, entropy, approx_kl, clipfrac = self.loss_stats(outputs)
            grads = self.unscale(grads)
            if self.grad_reducer is not None:
                grads = self.grad_reducer(grads)
            finite = amp.all_finite(grads + (loss,))  # MindSpore 2.10: True when every value is finite
            if finite:
                if self.max_grad_norm is not None:
                    grads = ops.clip_by_global_norm(grads, self.max_grad_norm)
                self.optimizer(grads)
            else:
                ops.assign_add(self.skipped, Tensor(1.0, mindspore.float32))
            self.adjust(finite)
            totals = totals + ops.stack([loss, policy_loss, value_loss, entropy, approx_kl, clipfrac])
        return totals / self.num_minibatches


class AssignParameters(nn.Cell):
    """Writes values into Parameters inside a compiled graph (host-side ``set_data`` no longer reaches a graph
    that has run; see EpochUpdate)."""

    def __init__(self, params):
        super().__init__()
        self.params = mindspore.ParameterTuple(params)

    def construct(self, values):
        for i in range(len(self.params)):
            ops.assign(self.params[i], values[i])
        return values[0]


class PolicyStep(nn.Cell):
    """Sample actions for all environments in one compiled call: (N, O), (N, A) noise -> action, log_prob, value."""

    def __init__(self, net: ActorCritic):
        super().__init__()
        self.net = net

    def construct(self, obs, noise):
        return self.net.sample(obs, noise)


class DeterministicPolicy(nn.Cell):
    """The policy's mode for evaluation: (N, O) -> (N, A) or (N,)."""

    def __init__(self, net: ActorCritic):
        super().__init__()
        self.net = net

    def construct(self, obs):
        return self.net.deterministic(obs)


class ValueFunction(nn.Cell):
    """State values (N, O) -> (N,), used to bootstrap truncated episodes and the last step of a rollout."""

    def __init__(self, net: ActorCritic):
        super().__init__()
        self.net = net

    def construct(self, obs):
        return self.net.value(obs)


class PPOAgent:
    """The actor-critic, its optimiser and the compiled calls that use them.

    :param net: the ActorCritic to train.
    :param cfg: PPO hyperparameters.
    :param world_size: data-parallel workers; above 1 the gradients are averaged over them (needs msrun).
    """

    def __init__(self, net: ActorCritic, cfg: PPOSettings, world_size: int = 1):
        self.net = net
        self.cfg = cfg
        self.optimizer = nn.Adam(net.trainable_params(), learning_rate=cfg.learning_rate, eps=cfg.adam_eps)
        self.learning_rate = cfg.learning_rate
        self.grad_reducer = None
        if world_size > 1:
            from ms_ppo.distributed import gradient_reducer

            self.grad_reducer = gradient_reducer(self.optimizer.parameters, world_size)
        self.policy_step = PolicyStep(net)
        self.deterministic = DeterministicPolicy(net)
        self.value_fn = ValueFunction(net)
        self.epoch_update = self._build_epoch_update()
        self._assign_weights = AssignParameters(net.trainable_params())
        self.host_policy = None  # a NumPy copy for collection (use_host_policy), else the compiled PolicyStep

    def use_host_policy(self) -> None:
        """Collect with a NumPy copy of the network (ms_ppo.host_policy; fp32 MLPs on CPU)."""
        from ms_ppo.host_policy import HostPolicy

        self.host_policy = HostPolicy(self.net)

    def begin_rollout(self) -> None:
        """Called before each rollout: the host copy takes the network's current weights."""
        if self.host_policy is not None:
            self.host_policy.refresh()

    def set_weights(self, values) -> None:
        """Overwrite the trainable weights (in ``net.trainable_params()`` order) with NumPy arrays."""
        self._assign_weights(tuple(Tensor(value) for value in values))

    def _build_epoch_update(self) -> nn.Cell:
        """The compiled epoch; its output (len(stat_names),) is named by its ``stat_names``."""
        return EpochUpdate(self.net, self.optimizer, self.cfg, self.grad_reducer)

    def checkpoint_parameters(self) -> Dict[str, mindspore.Parameter]:
        """Everything a checkpoint holds: weights, Adam state, and the update's counters (skips, loss scale)."""
        from ms_ppo.checkpoint import named_parameters

        return named_parameters({"net": self.net, "optimizer": self.optimizer, "update": self.epoch_update})

    def act(self, obs: np.ndarray, noise: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Actions (N, A) or (N,), log-probabilities (N,), values (N,) for observations (N, O)."""
        if self.host_policy is not None:
            return self.host_policy.sample(obs, noise)
        action, log_prob, value = self.policy_step(Tensor(obs), Tensor(noise))
        return action.asnumpy(), log_prob.asnumpy(), value.asnumpy()

    def act_deterministic(self, obs: np.ndarray) -> np.ndarray:
        return self.deterministic(Tensor(obs)).asnumpy()

    def value(self, obs: np.ndarray) -> np.ndarray:
        return self.value_fn(Tensor(obs)).asnumpy()

    def set_learning_rate(self, learning_rate: float) -> None:
        """The rate the next ``update`` uses (assigned inside its compiled graph)."""
        self.learning_rate = learning_rate

    def update(self, batch: Dict[str, np.ndarray], rng: np.random.Generator, clip_range: float
               ) -> Dict[str, float]:
        """All epochs over one rollout; stops early when approx KL > 1.5 x target_kl.

        :param batch: flattened rollout arrays: obs (B, O), actions (B, A) or (B,), log_probs, advantages,
            returns, values (B,).
        :return: the last epoch's statistics (named by ``epoch_update.stat_names``), the update's counters
            (``skipped_steps``, fp16: ``loss_scale``) and ``epochs`` run.
        """
        cfg = self.cfg
        names = self.epoch_update.stat_names
        tensors = [Tensor(batch[key]) for key in ("obs", "actions", "log_probs", "advantages", "returns", "values")]
        clip = Tensor(clip_range, mindspore.float32)
        learning_rate = Tensor(self.learning_rate, mindspore.float32)
        used = cfg.num_minibatches * cfg.minibatch_size
        stats = np.zeros(len(names), np.float32)
        epochs = 0
        for epochs in range(1, cfg.epochs + 1):
            indices = rng.permutation(batch["obs"].shape[0])[:used].reshape(cfg.num_minibatches, -1)
            stats = self.epoch_update(*tensors, Tensor(indices.astype(np.int32)), clip,
                                      learning_rate).asnumpy()
            if cfg.target_kl is not None and stats[names.index("approx_kl")] > 1.5 * cfg.target_kl:
                break
        result = {name: float(value) for name, value in zip(names, stats)}
        result.update(self.epoch_update.counters())
        result["epochs"] = float(epochs)
        return result

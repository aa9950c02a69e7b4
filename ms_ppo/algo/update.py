"""The compiled PPO epoch: every minibatch of a rollout in one graph, in fp32 or with dynamic loss scaling (fp16).

Loss scaling (``--precision_mode fp16``, the networks converted by ms_ppo/models/precision.py): each minibatch
scales the loss, back-propagates, unscales (and, data-parallel, averages) the gradients; if any is inf/nan the
optimiser step is skipped (the numerical guard below) and the scaler shrinks the scale, else it grows it after
``precision.loss_scale_window`` finite steps. Averaging first means every worker sees the same verdict and skips
the same steps. In fp32 there is no scaler and the graph has none of these operations.
"""

from __future__ import annotations

from typing import Dict, Optional

import mindspore
from mindspore import Parameter, Tensor, amp, nn, ops

from ms_ppo.algo.loss import STAT_NAMES, PPOLoss
from ms_ppo.config import PPOSettings, PrecisionSettings
from ms_ppo.models import ActorCriticNetwork

COUNTER_NAMES = ("skipped_steps", "loss_scale")  # the update's own state, logged under precision/


def global_norm(grads):
    """The L2 norm of all gradients together, in float32: one concatenation and one reduction, where
    ``ops.clip_by_global_norm`` and ``amp.all_finite`` take several operations per gradient tensor. On CPU a small
    network's gradient step costs more in operations launched than in arithmetic: the HalfCheetah epoch runs about
    a quarter faster this way (benchmarks/update_ops.py, benchmarks/results/update_ops.md).

    Not finite when any gradient holds an inf or nan; also when a square overflows float32 (|g| > 1.8e19), and such
    a step is skipped as well."""
    flat = ops.concat([ops.cast(grad, mindspore.float32).reshape(-1) for grad in grads])
    return ops.sqrt(ops.reduce_sum(flat * flat))


def clip_to_norm(grads, norm, max_norm: float):
    """``grads`` scaled by max_norm / norm when their global norm exceeds max_norm (unchanged otherwise)."""
    scale = max_norm / ops.maximum(norm, max_norm)
    return tuple(grad * ops.cast(scale, grad.dtype) for grad in grads)


def gather_minibatch(rows, obs, actions, log_probs, advantages, returns, values):
    """The rows of one minibatch from each rollout tensor (inside a compiled epoch)."""
    return (ops.gather(obs, rows, 0), ops.gather(actions, rows, 0), ops.gather(log_probs, rows, 0),
            ops.gather(advantages, rows, 0), ops.gather(returns, rows, 0), ops.gather(values, rows, 0))


class ScaledLoss(nn.Cell):
    """PPOLoss with its total multiplied by the loss scale: (scaled loss, *PPOLoss's six outputs)."""

    def __init__(self, loss: nn.Cell, scaler: amp.DynamicLossScaler):
        super().__init__()
        self.loss = loss
        self.scaler = scaler

    def construct(self, obs, actions, old_log_prob, advantages, returns, old_values, clip_range, weights):
        stats = self.loss(obs, actions, old_log_prob, advantages, returns, old_values, clip_range, weights)
        return (self.scaler.scale(stats[0]),) + stats


class EpochUpdate(nn.Cell):
    """One epoch of PPO: every minibatch of a rollout, unrolled into a single compiled graph.

    Inputs are the flattened rollout (the columns of ms_ppo.algo.batch.RolloutBatch, B = num_envs *
    rollout_steps rows) and an int32 (num_minibatches, minibatch_size) permutation drawn on the host, so the
    shuffle follows NumPy's seeded generator.

    Numerical guard: a minibatch whose loss or gradients are not finite changes nothing (no optimiser step, Adam
    state untouched) and is counted in ``skipped_steps``. Data-parallel, the check runs on the averaged gradients,
    so every worker skips the same steps. Returns (6,): the mean over minibatches of each of STAT_NAMES;
    ``counters()`` reads the steps skipped since the start of training and, with loss scaling, the scale.

    Data-parallel (``grad_reducer`` given, ``world_size`` workers, each holding its share of every minibatch):
    advantages are normalised over the whole minibatch of all workers (two all-reduced scalars), not over each
    worker's share, and the returned statistics are averaged over the workers, so that every worker takes the same
    target-KL decision and the job computes what one process on the whole batch computes.

    :param grad_reducer: data-parallel: averages the gradients over the workers before the step.
    :param loss_scaling: fp16: the dynamic loss scaler's settings; None (fp32) for no scaling.
    :param world_size: workers taking part (data-parallel).
    :param weighted: off-policy rollouts (the decoupled objective, ms_ppo.algo.loss.PPOLoss): ``weights`` (B,) are
        the transitions' importance weights; otherwise that input is ignored (pass any float32 tensor).
    """

    stat_names = STAT_NAMES

    def __init__(self, net: ActorCriticNetwork, optimizer: nn.Optimizer, cfg: PPOSettings,
                 grad_reducer: Optional[nn.Cell] = None, loss_scaling: Optional[PrecisionSettings] = None,
                 world_size: int = 1, weighted: bool = False):
        super().__init__()
        self.world_size = world_size
        self.weighted = weighted
        # Data-parallel, the advantages are normalised here over all workers' rows, so the loss must not do it again.
        self.global_advantages = grad_reducer is not None and cfg.normalize_advantage
        self.loss = PPOLoss(net, cfg.model_copy(update={"normalize_advantage": False}) if self.global_advantages
                            else cfg, weighted)
        self.all_reduce = ops.AllReduce() if grad_reducer is not None else None
        self.optimizer = optimizer
        self.num_minibatches = cfg.num_minibatches
        self.max_grad_norm = cfg.max_grad_norm
        self.grad_reducer = grad_reducer
        self.skipped = Parameter(Tensor(0.0, mindspore.float32), name="skipped_steps", requires_grad=False)
        self.scaler = None
        objective = self.loss
        if loss_scaling is not None:
            self.scaler = amp.DynamicLossScaler(loss_scaling.loss_scale_init, loss_scaling.loss_scale_factor,
                                                loss_scaling.loss_scale_window)
            self.scaled_loss = ScaledLoss(self.loss, self.scaler)
            objective = self.scaled_loss
            # The scaler is not a Cell: register its state so that checkpoints carry it.
            self.loss_scale = self.scaler.scale_value
            self.loss_scale_counter = self.scaler.counter
        # Differentiate a Cell (not a bound method: MindSpore then returned zero gradients here).
        self.grad_fn = mindspore.value_and_grad(objective, None, optimizer.parameters, has_aux=True)

    def counters(self) -> Dict[str, float]:
        """Host-side readings of the update's state (named by COUNTER_NAMES). Returning these Parameters from
        ``construct`` made MindSpore 2.10 drop the optimiser step from the fp32 graph, so they are read here."""
        counters = {"skipped_steps": float(self.skipped.asnumpy())}
        if self.scaler is not None:
            counters["loss_scale"] = float(self.scaler.scale_value.asnumpy())
        return counters

    def globally_normalized_advantages(self, advantages, indices):
        """Each minibatch's advantages (num_minibatches, rows of this worker) as (A - mean) / (std + 1e-8), with
        the mean and std of that minibatch over every worker's rows.

        All minibatches at once, before the epoch's first step (the advantages do not change during an epoch): two
        all-reduces per epoch instead of two per minibatch, each a millisecond of latency on the CPU backend."""
        rows = ops.gather(advantages, indices, 0)
        count = rows.shape[1] * self.world_size
        deviation = rows - ops.expand_dims(self.all_reduce(rows.sum(1)) / count, 1)
        std = ops.sqrt(self.all_reduce((deviation * deviation).sum(1)) / count)
        return deviation / (ops.expand_dims(std, 1) + 1e-8)

    def checked_and_clipped(self, grads, loss):
        """(True when the loss and every gradient are finite, the gradients clipped to ``ppo.max_grad_norm``)."""
        norm = global_norm(grads)
        finite = ops.logical_and(ops.isfinite(norm), ops.isfinite(loss))
        if self.max_grad_norm is not None:
            grads = clip_to_norm(grads, norm, self.max_grad_norm)
        return finite, grads

    def construct(self, obs, actions, log_probs, advantages, returns, values, indices, clip_range, learning_rate,
                  weights):
        # Assigned inside the graph: once a graph has run, Parameter.set_data from the host no longer reaches it
        # (MindSpore 2.10, CPU, graph mode), so the annealed rate is an input like the clip range.
        ops.assign(self.optimizer.learning_rate, learning_rate)
        totals = ops.zeros((len(STAT_NAMES),), mindspore.float32)
        if self.global_advantages:
            normalized = self.globally_normalized_advantages(advantages, indices)
        for i in range(self.num_minibatches):
            minibatch = gather_minibatch(indices[i], obs, actions, log_probs, advantages, returns, values)
            if self.global_advantages:
                minibatch = minibatch[:3] + (normalized[i],) + minibatch[4:]
            minibatch_weights = ops.gather(weights, indices[i], 0) if self.weighted else weights
            outputs, grads = self.grad_fn(*minibatch, clip_range, minibatch_weights)
            if self.scaler is not None:  # a constant: fp32 graphs have no scaling at all
                outputs = outputs[1:]
                grads = self.scaler.unscale(grads)
            loss, policy_loss, value_loss, entropy, approx_kl, clipfrac = outputs
            if self.grad_reducer is not None:
                grads = self.grad_reducer(grads)
            finite, grads = self.checked_and_clipped(grads, loss)
            if finite:
                self.optimizer(grads)
            else:
                ops.assign_add(self.skipped, Tensor(1.0, mindspore.float32))
            if self.scaler is not None:
                self.scaler.adjust(finite)
            totals = totals + ops.stack([loss, policy_loss, value_loss, entropy, approx_kl, clipfrac])
        if self.all_reduce is not None:  # the same statistics (and target-KL decision) on every worker
            totals = self.all_reduce(totals) / self.world_size
        return totals / self.num_minibatches

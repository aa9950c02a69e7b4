"""Mixed precision (``--precision_mode fp16``): fp16 MLPs over fp32 master weights, and a loss-scaled update.

What runs in fp16: the actor and critic MLPs, converted by ``mindspore.amp.auto_mixed_precision`` at
``precision.amp_level`` (O1: white-listed operators such as MatMul; O2: every cell outside amp's black list;
O3: every cell). What stays fp32: the Parameters (master weights, updated by Adam in fp32), the MLP outputs (cast
back to fp32 before any other math), log-probabilities, entropies, advantages, value targets, losses, and the
gradients of the Parameters.

Consistency of the stored log-probs: the rollout (``PolicyStep``) and the update (``PPOLoss``) call the same
converted MLPs with the same weights, so both see the same fp16-rounded logits (or Gaussian means) and both compute
the log-probability from them in fp32. Before the first optimiser step of an update the ratio new/old is therefore
1 up to fp32 rounding (tests/test_precision.py checks approx_kl ~ 0 and clipfrac 0 on that first minibatch).

On CPU, MindSpore 2.10's MatMul kernel has no fp16 variant; fp16 works because the framework casts around it, so
values are rounded to fp16 (and loss scaling is exercised) but nothing runs faster. bfloat16 is not offered: the
same kernel refuses it ("Unsupported data type") at every amp level.
"""

from __future__ import annotations

from typing import Optional

import mindspore
from mindspore import Parameter, Tensor, amp, nn, ops

from ms_ppo.config import PPOSettings, PrecisionSettings, Settings
from ms_ppo.networks import MLP, ActorCritic
from ms_ppo.ppo import STAT_NAMES, PPOAgent, PPOLoss, gather_minibatch

PRECISION_STAT_NAMES = ("skipped_steps", "loss_scale")
LOW_PRECISION_DTYPES = {"fp16": mindspore.float16}


class _Float32Output(nn.Cell):
    """Runs a converted MLP and casts its (B, out) output to fp32, whatever the amp level left it in."""

    def __init__(self, cell: nn.Cell):
        super().__init__()
        self.cell = cell

    def construct(self, x):
        return self.cell(x).astype(mindspore.float32)


def _convert(mlp: MLP, level: str, dtype: mindspore.dtype) -> nn.Cell:
    """``mlp`` computing in ``dtype`` at amp ``level``; its Parameters stay the same fp32 objects.

    amp converts partly in place (``mlp`` itself may now return fp16): call the returned cell, not ``mlp``.
    """
    if level == "O1":
        # O1 rewrites white-listed operators but does not look inside SequentialCell's loop over its layers
        # (the whole MLP comes back unchanged), so convert layer by layer; names stay "0.weight", ...
        for index, layer in enumerate(mlp):
            mlp[index] = amp.auto_mixed_precision(layer, level, dtype)
        return _Float32Output(mlp)
    return _Float32Output(amp.auto_mixed_precision(mlp, level, dtype))


def apply_precision(net: ActorCritic, settings: Settings) -> ActorCritic:
    """Make ``net`` compute its MLPs in the run's precision (fp32: unchanged) and return it.

    Checkpoints keep their fp32 names, so they load across precisions: structural names do not change because
    the converted cells are registered after the MLPs they wrap, and Parameter names are restored below.
    """
    dtype = LOW_PRECISION_DTYPES.get(settings.runtime.precision_mode)
    if dtype is None:
        return net
    names = {id(param): param.name for param in net.get_parameters()}
    net.actor_forward = _convert(net.actor, settings.precision.amp_level, dtype)
    net.critic_forward = _convert(net.critic, settings.precision.amp_level, dtype)
    # Registering cells prefixes the Parameter names ("actor_forward.cell._backbone.0.weight", or "0.weight" for
    # O1's replaced layers); Adam names its moments after them, so put the fp32 names back.
    for param in net.get_parameters():
        param.name = names[id(param)]
    return net


class _ScaledLoss(nn.Cell):
    """PPOLoss with its total multiplied by the loss scale: (scaled loss, *PPOLoss's six outputs)."""

    def __init__(self, loss: PPOLoss, scaler: amp.DynamicLossScaler):
        super().__init__()
        self.loss = loss
        self.scaler = scaler

    def construct(self, obs, actions, old_log_prob, advantages, returns, old_values, clip_range):
        loss, policy_loss, value_loss, entropy, approx_kl, clipfrac = self.loss(
            obs, actions, old_log_prob, advantages, returns, old_values, clip_range)
        return self.scaler.scale(loss), loss, policy_loss, value_loss, entropy, approx_kl, clipfrac


class LossScaledEpochUpdate(nn.Cell):
    """One PPO epoch like ``EpochUpdate``, with dynamic loss scaling for fp16 gradients.

    Each minibatch: scale the loss, back-propagate, unscale (and, data-parallel, average) the gradients; if any
    is inf/nan skip the optimiser step (weights and Adam state untouched); let the scaler shrink or grow the
    scale. Averaging first means every worker sees the same verdict and skips the same steps. Same inputs as
    EpochUpdate; returns (8,): the six STAT_NAMES means, then the optimiser steps skipped so far and the loss
    scale now. Neither is checkpointed: a resumed run starts again from loss_scale_init and a count of 0.
    """

    stat_names = STAT_NAMES + PRECISION_STAT_NAMES

    def __init__(self, net: ActorCritic, optimizer: nn.Optimizer, cfg: PPOSettings, precision: PrecisionSettings,
                 grad_reducer: Optional[nn.Cell] = None):
        super().__init__()
        self.scaler = amp.DynamicLossScaler(precision.loss_scale_init, precision.loss_scale_factor,
                                            precision.loss_scale_window)
        self.loss = _ScaledLoss(PPOLoss(net, cfg), self.scaler)
        self.optimizer = optimizer
        self.num_minibatches = cfg.num_minibatches
        self.max_grad_norm = cfg.max_grad_norm
        self.grad_reducer = grad_reducer
        self.skipped = Parameter(Tensor(0.0, mindspore.float32), name="skipped_steps", requires_grad=False)
        self.grad_fn = mindspore.value_and_grad(self.loss, None, optimizer.parameters, has_aux=True)

    def construct(self, obs, actions, log_probs, advantages, returns, values, indices, clip_range):
        totals = ops.zeros((len(STAT_NAMES),), mindspore.float32)
        for i in range(self.num_minibatches):
            mb_obs, mb_actions, mb_log_probs, mb_advantages, mb_returns, mb_values = gather_minibatch(
                indices[i], obs, actions, log_probs, advantages, returns, values)
            (_, loss, policy_loss, value_loss, entropy, approx_kl, clipfrac), grads = self.grad_fn(
                mb_obs, mb_actions, mb_log_probs, mb_advantages, mb_returns, mb_values, clip_range)
            grads = self.scaler.unscale(grads)
            if self.grad_reducer is not None:
                grads = self.grad_reducer(grads)
            finite = amp.all_finite(grads)  # MindSpore 2.10: True when every gradient value is finite
            if finite:
                if self.max_grad_norm is not None:
                    grads = ops.clip_by_global_norm(grads, self.max_grad_norm)
                self.optimizer(grads)
            else:
                ops.assign_add(self.skipped, Tensor(1.0, mindspore.float32))
            self.scaler.adjust(finite)
            totals = totals + ops.stack([loss, policy_loss, value_loss, entropy, approx_kl, clipfrac])
        return ops.concat([totals / self.num_minibatches, ops.stack([self.skipped, self.scaler.scale_value])])


class MixedPrecisionAgent(PPOAgent):
    """A PPOAgent whose epoch update scales the loss; ``net`` must already be converted (``apply_precision``)."""

    def __init__(self, net: ActorCritic, cfg: PPOSettings, precision: PrecisionSettings, world_size: int = 1):
        self.precision = precision
        super().__init__(net, cfg, world_size)

    def _build_epoch_update(self) -> nn.Cell:
        return LossScaledEpochUpdate(self.net, self.optimizer, self.cfg, self.precision, self.grad_reducer)


def build_agent(net: ActorCritic, settings: Settings, world_size: int = 1) -> PPOAgent:
    """The agent for the run's precision: a plain PPOAgent in fp32 (the fp32 graph is untouched)."""
    if settings.runtime.precision_mode in LOW_PRECISION_DTYPES:
        return MixedPrecisionAgent(net, settings.ppo, settings.precision, world_size)
    return PPOAgent(net, settings.ppo, world_size)

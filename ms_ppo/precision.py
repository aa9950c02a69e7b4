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
same kernel refuses it ("Unsupported data type") at every amp level, so ``bf16`` is accepted on Ascend only.
"""

from __future__ import annotations

from typing import Callable, Optional

import mindspore
from mindspore import amp, nn

from ms_ppo.config import PPOSettings, PrecisionSettings, Settings
from ms_ppo.errors import UserInputError
from ms_ppo.networks import MLP, ActorCritic
from ms_ppo.ppo import EpochUpdate, PPOAgent

PRECISION_STAT_NAMES = ("skipped_steps", "loss_scale")  # logged under precision/
LOW_PRECISION_DTYPES = {"fp16": mindspore.float16, "bf16": mindspore.bfloat16}
BF16_DEVICES = ("Ascend",)  # CPU: MatMul rejects bfloat16 (checked); GPU: not verified, so not offered


def check_precision(precision_mode: str, device_target: str) -> None:
    """Refuse a precision the device cannot run (``device_target`` as resolved by configure_device)."""
    if precision_mode == "bf16" and device_target not in BF16_DEVICES:
        raise UserInputError(f"--precision_mode bf16 is supported on Ascend only, not on {device_target} "
                             f"(MindSpore 2.10's CPU MatMul kernel rejects bfloat16); use fp16 or fp32")


class Float32Output(nn.Cell):
    """Runs a converted cell (an MLP, the CNN trunk) and casts its output to fp32, whatever the amp level left it in."""

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
        return Float32Output(mlp)
    return Float32Output(amp.auto_mixed_precision(mlp, level, dtype))


def apply_precision(net: ActorCritic, settings: Settings) -> ActorCritic:
    """Make ``net`` compute its MLPs in the run's precision (fp32: unchanged) and return it.

    Checkpoints keep their fp32 names, so they load across precisions: structural names do not change because
    the converted cells are registered after the MLPs they wrap, and Parameter names are restored below.
    """
    dtype = LOW_PRECISION_DTYPES.get(settings.runtime.precision_mode)
    if dtype is None:
        return net
    level = settings.precision.amp_level
    return set_forward_cells(net, actor_forward=lambda: _convert(net.actor, level, dtype),
                             critic_forward=lambda: _convert(net.critic, level, dtype))


def set_forward_cells(net: nn.Cell, **make_cells: Callable[[], nn.Cell]) -> nn.Cell:
    """Convert and register cells on ``net`` under the given attribute names, keeping every Parameter's name.

    amp's conversion and the registration rename Parameters ("actor_forward.cell._backbone.0.weight", or
    "0.weight" for O1's replaced layers); Adam names its moments after them, so the names from before the
    conversion (hence factories, called here) are put back.
    """
    names = {id(param): param.name for param in net.get_parameters()}
    for attribute, make_cell in make_cells.items():
        setattr(net, attribute, make_cell())
    for param in net.get_parameters():
        param.name = names[id(param)]
    return net


class _ScaledLoss(nn.Cell):
    """PPOLoss with its total multiplied by the loss scale: (scaled loss, *PPOLoss's six outputs)."""

    def __init__(self, loss: nn.Cell, scaler: amp.DynamicLossScaler):
        super().__init__()
        self.loss = loss
        self.scaler = scaler

    def construct(self, obs, actions, old_log_prob, advantages, returns, old_values, clip_range):
        stats = self.loss(obs, actions, old_log_prob, advantages, returns, old_values, clip_range)
        return (self.scaler.scale(stats[0]),) + stats


class LossScaledEpochUpdate(EpochUpdate):
    """One PPO epoch like ``EpochUpdate``, with dynamic loss scaling for fp16 gradients.

    Each minibatch: scale the loss, back-propagate, unscale (and, data-parallel, average) the gradients; if any
    is inf/nan skip the optimiser step (EpochUpdate's guard); let the scaler shrink or grow the scale. Averaging
    first means every worker sees the same verdict and skips the same steps. ``counters()`` adds the loss scale
    now. The scale and its counter are Parameters of this cell, saved in checkpoints.
    """

    def __init__(self, net: ActorCritic, optimizer: nn.Optimizer, cfg: PPOSettings, precision: PrecisionSettings,
                 grad_reducer: Optional[nn.Cell] = None):
        self.scaler = amp.DynamicLossScaler(precision.loss_scale_init, precision.loss_scale_factor,
                                            precision.loss_scale_window)
        super().__init__(net, optimizer, cfg, grad_reducer)
        # The scaler is not a Cell: register its state so that checkpoints carry it.
        self.loss_scale = self.scaler.scale_value
        self.loss_scale_counter = self.scaler.counter

    def objective(self) -> nn.Cell:
        self.scaled_loss = _ScaledLoss(self.loss, self.scaler)
        return self.scaled_loss

    def loss_stats(self, outputs):
        return outputs[1:]

    def unscale(self, grads):
        return self.scaler.unscale(grads)

    def adjust(self, finite):
        self.scaler.adjust(finite)

    def counters(self):
        return {**super().counters(), "loss_scale": float(self.scaler.scale_value.asnumpy())}


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

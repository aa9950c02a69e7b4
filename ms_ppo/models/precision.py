"""Mixed precision of the networks (``--precision_mode fp16``): fp16 MLPs and CNN trunk over fp32 master weights.

The loss-scaled update that goes with it is ms_ppo/algo/update.py; which device runs which precision is
ms_ppo/runtime/device.py.

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

from typing import Callable

import mindspore
from mindspore import amp, nn

from ms_ppo.errors import UserInputError
from ms_ppo.models.cnn import CnnActorCritic
from ms_ppo.models.mlp import MLP, ActorCritic

LOW_PRECISION_DTYPES = {"fp16": mindspore.float16, "bf16": mindspore.bfloat16}


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


def apply_mlp_precision(net: ActorCritic, precision_mode: str, amp_level: str) -> ActorCritic:
    """Make ``net`` compute its MLPs in the run's precision (fp32: unchanged) and return it.

    Checkpoints keep their fp32 names, so they load across precisions: structural names do not change because
    the converted cells are registered after the MLPs they wrap, and Parameter names are restored below.
    """
    dtype = LOW_PRECISION_DTYPES.get(precision_mode)
    if dtype is None:
        return net
    return set_forward_cells(net, actor_forward=lambda: _convert(net.actor, amp_level, dtype),
                             critic_forward=lambda: _convert(net.critic, amp_level, dtype))


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


def apply_cnn_precision(net: CnnActorCritic, precision_mode: str, amp_level: str) -> CnnActorCritic:
    """fp16: the trunk (convolutions and the 512-unit layer) computes in float16 over fp32 master weights; the
    heads, log-probs and losses stay fp32. amp level O1 is refused (its white list does not reach inside the
    trunk's SequentialCell); O2 and O3 convert the whole trunk. Parameter names are kept."""
    if precision_mode == "fp32":
        return net
    if precision_mode != "fp16":
        raise UserInputError(f"precision mode {precision_mode} is not supported by the CNN policy")
    if amp_level == "O1":
        raise UserInputError("the CNN policy supports fp16 at precision.amp_level O2 or O3, not O1")
    return set_forward_cells(net, features_forward=lambda: Float32Output(
        amp.auto_mixed_precision(net.features, amp_level, mindspore.float16)))

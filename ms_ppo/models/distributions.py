"""Log-probabilities and entropies of the policy heads, as MindSpore ops inside compiled graphs.

Shapes: B is the batch, A the action size (Box) or the number of actions (Discrete). The Box distributions
(``policy.distribution``) are described in ms_ppo/models/mlp.py.
"""

from __future__ import annotations

import math
from typing import Tuple

import mindspore
from mindspore import Tensor, ops

LOG_2PI = math.log(2.0 * math.pi)
LOG_2 = math.log(2.0)
TANH_EPS = 1e-6  # |tanh(u)| is clipped to 1 - TANH_EPS before atanh: |u| <= atanh(1 - 1e-6) ~ 7.25
DISTRIBUTIONS = ("gaussian", "tanh_normal")


def gaussian_log_prob(mean: Tensor, log_std: Tensor, action: Tensor) -> Tensor:
    """Log density of ``action`` (B, A) under N(mean (B, A), exp(log_std) (A,)), summed over A -> (B,)."""
    z = (action - mean) / ops.exp(log_std)
    return (-0.5 * z * z - log_std - 0.5 * LOG_2PI).sum(-1)


def gaussian_entropy(log_std: Tensor, batch: int) -> Tensor:
    """Entropy of a diagonal Gaussian, the same for every row -> (batch,)."""
    return ops.broadcast_to((log_std + 0.5 + 0.5 * LOG_2PI).sum(), (batch,))


def log_one_minus_tanh_sq(u: Tensor) -> Tensor:
    """log(1 - tanh(u)^2), elementwise, computed as 2 * (log 2 - u - softplus(-2u)): finite for any u."""
    return 2.0 * (LOG_2 - u - ops.softplus(-2.0 * u))


def tanh_normal_pre_tanh(action: Tensor, center: Tensor, scale: Tensor) -> Tensor:
    """Invert a = center + scale * tanh(u) for u, clipping tanh(u) to +-(1 - TANH_EPS) first -> (B, A)."""
    y = ops.clamp((action - center) / scale, -1.0 + TANH_EPS, 1.0 - TANH_EPS)
    return 0.5 * (ops.log1p(y) - ops.log1p(-y))


def tanh_normal_log_prob(mean: Tensor, log_std: Tensor, action: Tensor, center: Tensor, scale: Tensor
                         ) -> Tuple[Tensor, Tensor]:
    """Log density of the Box action ``a`` (B, A) when a = center + scale * tanh(u), u ~ N(mean, std).

    :return: the log-probability (B,) and the log-Jacobian sum_i log(scale_i * (1 - tanh(u_i)^2)) (B,).
    """
    u = tanh_normal_pre_tanh(action, center, scale)
    log_jacobian = (log_one_minus_tanh_sq(u) + ops.log(scale)).sum(-1)
    return gaussian_log_prob(mean, log_std, u) - log_jacobian, log_jacobian


def categorical_log_prob(logits: Tensor, action: Tensor) -> Tensor:
    """Log probability of integer ``action`` (B,) under softmax(logits (B, A)) -> (B,)."""
    log_p = ops.log_softmax(logits, -1)
    one_hot = ops.one_hot(action.astype(mindspore.int32), logits.shape[-1],
                          Tensor(1.0, log_p.dtype), Tensor(0.0, log_p.dtype))
    return (log_p * one_hot).sum(-1)


def categorical_entropy(logits: Tensor) -> Tensor:
    """Entropy of softmax(logits (B, A)) -> (B,)."""
    log_p = ops.log_softmax(logits, -1)
    return -(ops.exp(log_p) * log_p).sum(-1)

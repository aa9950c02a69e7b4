"""A NumPy copy of the fp32 MLP actor-critic for collecting on CPU.

Why: a compiled MindSpore call has a fixed framework cost (~0.6 ms on this machine, mostly Python bookkeeping
before the graph runs), while the forward pass of a [64, 64] MLP on 8 observations takes ~0.05 ms in NumPy. At one
call per vector step, that cost alone caps collection far below what the physics allows
(benchmarks/results/speed_halfcheetah.md). The update stays compiled; only ``act`` during collection runs here.

The copy mirrors ``ActorCritic.sample`` for the ``gaussian`` and categorical heads with the same host-drawn noise,
so a rollout stores the same actions the compiled call would produce (to float32 rounding; the update recomputes
log-probabilities with MindSpore). Other set-ups (fp16/bf16, CNN, tanh_normal, GPU/Ascend) keep the compiled call.
The weights are copied from the network at the start of every rollout (``refresh``), so updates, resumes and
roll-backs are always seen.

NumPy's BLAS runs with ``blas_threads`` threads (default 1) while a rollout collects (``rollout``). Its matmuls have
a few rows (one per environment): on an idle 2-core AMD EPYC one thread took 103 µs per HalfCheetah-sized call
against 82 µs with OpenBLAS's default of one thread per core, and with other processes on the machine the default's
threads wait for each other: a median of 4.8-5.6 ms per call against 0.22-0.28 ms with one thread (docs/benchmarks.md).
One thread also makes the rollout's numbers independent of the host's core count (more threads split the sums
differently).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, List, Optional, Tuple

import numpy as np
from threadpoolctl import ThreadpoolController

from ms_ppo.models.distributions import LOG_2PI
from ms_ppo.models.mlp import MLP, ActorCritic


def supports(net: ActorCritic, device_target: str, precision_mode: str) -> bool:
    """True when ``net`` is an fp32 MLP actor-critic on CPU with a Gaussian or categorical head."""
    return (device_target == "CPU" and precision_mode == "fp32" and isinstance(net, ActorCritic)
            and not net.squash and net.actor_forward is net.actor and net.critic_forward is net.critic)


class _HostMLP:
    """Dense layers (weights (out, in), bias (out,)) with tanh or ReLU between them, linear output."""

    def __init__(self, mlp: MLP):
        self.dense = [cell for cell in mlp.cell_list if hasattr(cell, "weight")]
        self.relu = any(type(cell).__name__ == "ReLU" for cell in mlp.cell_list)
        self.layers: List[Tuple[np.ndarray, np.ndarray]] = []

    def refresh(self) -> None:
        # copies: asnumpy() may share memory with the Parameter, which the next update overwrites
        self.layers = [(d.weight.asnumpy().T.copy(), d.bias.asnumpy().copy()) for d in self.dense]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        for i, (weight, bias) in enumerate(self.layers):
            x = x @ weight + bias
            if i < len(self.layers) - 1:
                x = np.maximum(x, 0.0) if self.relu else np.tanh(x)
        return x


class HostPolicy:
    """``sample(obs (B, O), noise) -> action, log_prob (B,), value (B,)`` in NumPy float32, as
    ``ActorCritic.sample`` computes them (Gaussian: action (B, A) = mean + std * noise; categorical: action (B,)
    int32 = argmax(logits + Gumbel noise)).

    :param blas_threads: NumPy BLAS threads during ``rollout`` (``runtime.host_blas_threads``); None leaves
        NumPy's own choice.
    """

    def __init__(self, net: ActorCritic, blas_threads: Optional[int] = 1):
        self.net = net
        self.actor = _HostMLP(net.actor)
        self.critic = _HostMLP(net.critic)
        self.log_std = np.zeros(net.action_dim, np.float32)
        self.blas_threads = blas_threads
        # finds the loaded BLAS libraries once (about a millisecond); each rollout then only sets their threads
        self._blas = ThreadpoolController() if blas_threads is not None else None
        self.refresh()

    @contextmanager
    def rollout(self) -> Iterator[None]:
        """One rollout: the network's current weights, NumPy's BLAS at ``blas_threads`` until it ends."""
        self.refresh()
        if self._blas is None:
            yield
            return
        with self._blas.limit(limits=self.blas_threads, user_api="blas"):
            yield

    def refresh(self) -> None:
        """Copy the network's current weights (after an update, a resume or a roll-back)."""
        self.actor.refresh()
        self.critic.refresh()
        self.log_std = self.net.log_std.asnumpy().copy()

    def sample(self, obs: np.ndarray, noise: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        out = self.actor(obs)
        value = self.critic(obs)[:, 0]
        if self.net.discrete:
            action = np.argmax(out + noise, -1).astype(np.int32)
            shifted = out - out.max(-1, keepdims=True)
            log_softmax = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
            log_prob = np.take_along_axis(log_softmax, action[:, None].astype(np.int64), -1)[:, 0]
            return action, log_prob.astype(np.float32), value.astype(np.float32)
        std = np.exp(self.log_std)
        action = out + std * noise
        z = (action - out) / std
        log_prob = (-0.5 * z * z - self.log_std - np.float32(0.5 * LOG_2PI)).sum(-1)
        return action.astype(np.float32), log_prob.astype(np.float32), value.astype(np.float32)

"""Export a trained policy for deployment (``ms-ppo-export`` / ``export.py``): the deterministic policy with its
observation encoding and normalisation and the action mapping, as one graph ``mindspore.export`` writes (MindIR)
or ``mindspore.onnx.export`` writes (ONNX).

The exported graph takes a batch of observations as the environment gives them, flattened (B, O) float32 for Box
observations, (B,) int32 for Discrete ones, (B, C, H, W) uint8 frames for the CNN, and returns the actions the
environment takes: (B, A) float32 inside the Box bounds, or (B,) int32.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, Optional, Tuple

import gymnasium as gym
import mindspore
import numpy as np
from mindspore import Tensor, nn, ops

from ms_ppo.app.assembly import EvaluationPolicy
from ms_ppo.app.evaluate import checkpoint_policy
from ms_ppo.envs import ObservationEncoder
from ms_ppo.errors import UserInputError

FORMATS = {"MINDIR": ".mindir", "ONNX": ".onnx"}


class DeployedPolicy(nn.Cell):
    """Raw observations -> environment actions: one-hot (Discrete observations), normalisation with the frozen
    training statistics, the network's mode, and the clip to the Box bounds."""

    def __init__(self, policy: EvaluationPolicy, observation_space: gym.Space, action_space: gym.Space):
        super().__init__()
        self.net = policy.net
        encoder = ObservationEncoder(observation_space, image=policy.net.image_input)
        self.one_hot = encoder.one_hot or 0
        norm = policy.obs_norm
        self.normalize = bool(norm.enabled)
        self.obs_mean = Tensor(norm.stats.mean.astype(np.float32))
        self.obs_std = Tensor(np.sqrt(norm.stats.var + 1e-8).astype(np.float32))
        self.clip_obs = float(norm.clip)
        self.box = isinstance(action_space, gym.spaces.Box)
        self.low = Tensor(np.asarray(action_space.low if self.box else 0, np.float32))
        self.high = Tensor(np.asarray(action_space.high if self.box else 0, np.float32))

    def construct(self, obs):
        x = obs
        if self.one_hot:
            x = ops.one_hot(obs.astype(mindspore.int32), self.one_hot, Tensor(1.0, mindspore.float32),
                            Tensor(0.0, mindspore.float32))
        if self.normalize:
            x = ops.clamp((x - self.obs_mean) / self.obs_std, -self.clip_obs, self.clip_obs)
        action = self.net.deterministic(x)
        if self.box:
            action = ops.clamp(action, self.low, self.high)
        return action


def example_input(observation_space: gym.Space, image: bool, batch: int = 1) -> np.ndarray:
    """A batch of zeros in the layout the exported graph takes."""
    if isinstance(observation_space, gym.spaces.Discrete):
        return np.zeros(batch, np.int32)
    if image:
        return np.zeros((batch,) + tuple(observation_space.shape), np.uint8)
    return np.zeros((batch, int(np.prod(observation_space.shape))), np.float32)


def load_policy(ckpt: str, overrides: Optional[Dict[str, Any]] = None, log: Callable[[str], None] = print,
                env: Optional[Callable[..., gym.Env]] = None) -> Tuple[DeployedPolicy, EvaluationPolicy, str]:
    """The deployable policy of a checkpoint (with its saved settings), the evaluation policy it wraps (what
    eval.py runs) and the .ckpt loaded."""
    policy, _, _, path = checkpoint_policy(ckpt, overrides=overrides, log=log, env=env)
    return DeployedPolicy(policy, policy.observation_space, policy.action_space), policy, path


def export_policy(ckpt: str, out: str, file_format: str = "MINDIR", batch: int = 1,
                  log: Callable[[str], None] = print, env: Optional[Callable[..., gym.Env]] = None) -> str:
    """Write the deployable policy of ``ckpt`` to ``out`` (its extension added if missing); return the file."""
    file_format = file_format.upper()
    if file_format not in FORMATS:
        raise UserInputError(f"--format {file_format}: choose {' or '.join(FORMATS)}")
    if os.path.isdir(out):
        raise UserInputError(f"--out {out} is a directory: name the file to write (e.g. {os.path.join(out, 'policy')})")
    directory = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(directory):
        raise UserInputError(f"--out {out}: directory {directory} does not exist")
    deployed, policy, path = load_policy(ckpt, log=log, env=env)
    stem = out[:-len(FORMATS[file_format])] if out.lower().endswith(FORMATS[file_format]) else out
    inputs = Tensor(example_input(policy.observation_space, deployed.net.image_input, batch))
    if file_format == "ONNX":
        mindspore.onnx.export(deployed, inputs, file_name=stem)
    else:
        mindspore.export(deployed, inputs, file_name=stem, file_format="MINDIR")
    written = stem + FORMATS[file_format]
    log(f"exported {path} as {file_format} to {written} (input {tuple(inputs.shape)} {inputs.dtype})")
    return written

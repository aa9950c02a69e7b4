"""The pieces every run is assembled from, for training and for evaluation alike: the device, the seeds, the
environment's spaces, the network, and the policy that evaluation runs."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import gymnasium as gym
import mindspore
import numpy as np

from ms_ppo.config import Settings
from ms_ppo.envs import (
    ObservationEncoder,
    ObservationNormalizer,
    action_dims,
    make_env,
    observation_pipeline,
    resolve_env_id,
)
from ms_ppo.envs.make import register_env_factory
from ms_ppo.errors import UserInputError
from ms_ppo.evaluation import DeterministicActor
from ms_ppo.models import ActorCritic, ActorCriticNetwork, CnnActorCritic, wants_cnn
from ms_ppo.models.compiled import DeterministicPolicy
from ms_ppo.models.precision import apply_cnn_precision, apply_mlp_precision
from ms_ppo.runtime.cpu_kernels import apply_cpu_isa_cap
from ms_ppo.runtime.device import check_precision, configure_device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    mindspore.set_seed(seed)


def set_up_device(settings: Settings) -> None:
    """Select the device (resolving Auto into the settings) and refuse a precision it cannot run."""
    runtime = settings.runtime
    runtime.device_target = configure_device(runtime.device_target, runtime.graph_op_run, runtime.cpu_threads)
    check_precision(runtime.precision_mode, runtime.device_target)


def run_env_id(settings: Settings, log: Callable[[str], None], env: Optional[Callable[..., gym.Env]] = None) -> str:
    """The Gymnasium id the run makes its environments from: ``env`` (a Python callable returning a
    gymnasium.Env) registered, else ``env.id`` / ``env.entry_point`` of the settings (which then name it)."""
    if env is not None:
        settings.env.id, settings.env.entry_point = register_env_factory(env), None
    return resolve_env_id(settings.env.id, notify=log, entry_point=settings.env.entry_point)


def probe_spaces(env_id: str, settings: Settings, training: bool = True) -> Tuple[gym.Space, gym.Space]:
    """(observation space, action space) of one environment as the run makes it (its wrapper set included)."""
    probe = make_env(env_id, settings.env.kwargs, wrappers=settings.env.wrappers, training=training)
    try:
        return probe.observation_space, probe.action_space
    finally:
        probe.close()


def build_network(settings: Settings, observation_space: gym.Space, action_space: gym.Space,
                  log: Callable[[str], None] = print) -> ActorCriticNetwork:
    """The actor-critic for these spaces, policy and precision settings (seed MindSpore first for equal weights).

    For the CNN on CPU, oneDNN's instruction set is chosen first (ms_ppo/runtime/cpu_kernels.py), before any of
    its kernels exist."""
    action_dim, discrete = action_dims(action_space)
    policy = settings.policy
    precision_mode, amp_level = settings.runtime.precision_mode, settings.precision.amp_level
    if wants_cnn(policy.network, observation_space):
        apply_cpu_isa_cap(settings.runtime.cpu_isa_cap, True, settings.runtime.device_target, log)
        if policy.distribution != "gaussian" and not discrete:
            raise UserInputError(f"policy.distribution {policy.distribution} is not available with the CNN policy")
        net = CnnActorCritic(observation_space.shape, action_dim, discrete, policy.log_std_init, policy.ortho_init)
        return apply_cnn_precision(net, precision_mode, amp_level)
    bounds = {} if discrete else {"action_low": action_space.low, "action_high": action_space.high}
    net = ActorCritic(ObservationEncoder(observation_space).size, action_dim, discrete, policy.hidden_sizes,
                      policy.activation, policy.log_std_init, policy.ortho_init, policy.distribution, **bounds)
    return apply_mlp_precision(net, precision_mode, amp_level)


@dataclass
class EvaluationPolicy:
    """A network with what turns raw observations into its inputs, and the deterministic actor over both."""

    net: ActorCriticNetwork
    obs_norm: ObservationNormalizer  # its statistics are loaded from the checkpoint
    actor: Callable[[np.ndarray], np.ndarray]
    observation_space: gym.Space
    action_space: gym.Space


def evaluation_policy(settings: Settings, env_id: str, log: Callable[[str], None] = print) -> EvaluationPolicy:
    """The deterministic policy a checkpoint of these settings is evaluated with (weights not loaded yet)."""
    obs_space, action_space = probe_spaces(env_id, settings, training=False)
    net = build_network(settings, obs_space, action_space, log)
    encoder, obs_norm = observation_pipeline(obs_space, net.image_input, settings.normalize)
    actor = DeterministicActor(DeterministicPolicy(net).act, encoder, obs_norm, action_space)
    return EvaluationPolicy(net, obs_norm, actor, obs_space, action_space)


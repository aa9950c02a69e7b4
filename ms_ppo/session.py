"""The Session: reads the YAMLs, chooses the device, builds environments, agent and trainer, and runs them."""

from __future__ import annotations

import os
import random
import time
from typing import Any, Callable, Dict, List, Optional, Type

import mindspore
import numpy as np

from ms_ppo import checkpoint
from ms_ppo.callbacks import (CSVLogger, Callback, CheckpointCallback, EvaluateCallback, LearningCurvePlot,
                              LossCallback, ProgressBar, TensorBoardLogger, TimeCallback)
from ms_ppo.config import Settings, load_settings, save_settings, settings_from_dict
from ms_ppo.device import configure_device
from ms_ppo.distributed import WorkerInfo, init_data_parallel, under_msrun
from ms_ppo.envs import ObservationEncoder, action_dims, make_env, make_vector_env, resolve_env_id
from ms_ppo.errors import UserInputError
from ms_ppo.evaluation import DeterministicActor, evaluate
from ms_ppo.normalize import ObservationNormalizer
from ms_ppo.networks import ActorCritic
from ms_ppo.ppo import DeterministicPolicy
from ms_ppo.precision import apply_precision, build_agent
from ms_ppo.trainer import EVAL_SEED_OFFSET, PPOTrainer


def build_network(settings: Settings, observation_space, action_space) -> ActorCritic:
    """The actor-critic for these spaces, policy and precision settings (seed MindSpore first for equal weights)."""
    action_dim, discrete = action_dims(action_space)
    policy = settings.policy
    net = ActorCritic(ObservationEncoder(observation_space).size, action_dim, discrete, policy.hidden_sizes,
                      policy.activation, policy.log_std_init, policy.ortho_init)
    return apply_precision(net, settings)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    mindspore.set_seed(seed)


class PPOSession:
    """Reads an env YAML and an algo YAML and trains PPO on them.

    :param env_yaml: environment YAML (ms_ppo or MindSpore Reinforcement layout); None for the defaults.
    :param algo_yaml: algorithm YAML; None for the defaults.
    :param is_distribution: train across workers (reference argument name).
    :param overrides: ``{"section.key": value}`` applied after the YAMLs (``--set``).
    :param overwrite: allow training into an existing, non-empty output directory.
    :param quiet: no progress bar (log lines only), e.g. when the output goes to a file.
    :param log: where log lines go.
    """

    def __init__(self, env_yaml: Optional[str] = None, algo_yaml: Optional[str] = None,
                 is_distribution: bool = False, overrides: Optional[Dict[str, Any]] = None,
                 overwrite: bool = False, quiet: bool = False, log: Callable[[str], None] = print):
        overrides = dict(overrides or {})
        if is_distribution:
            overrides["runtime.enable_distribute"] = True
        self.settings: Settings = load_settings(env_yaml, algo_yaml, overrides)
        self.overwrite = overwrite
        self.quiet = quiet
        self.log = log
        self.env_id = resolve_env_id(self.settings.env.id, notify=log)

    def _check_supported(self) -> None:
        runtime = self.settings.runtime
        if runtime.enable_distribute and not under_msrun():
            raise UserInputError("--enable_distribute: start the workers with msrun "
                                 "(python train.py --enable_distribute launches it for you)")

    def prepare_output_dir(self) -> str:
        """Create (or check) the run directory; refuse a non-empty one unless overwriting; return its path."""
        train = self.settings.train
        path = train.output_dir or os.path.join(
            "runs", f"{self.env_id.replace('/', '_')}_seed{train.seed}_{time.strftime('%Y%m%d-%H%M%S')}")
        if os.path.isfile(path):
            raise UserInputError(f"--output_dir {path} is a file, not a directory")
        if os.path.isdir(path) and os.listdir(path) and not self.overwrite:
            raise UserInputError(f"--output_dir {path} already holds a run; choose another directory "
                                 f"or pass --overwrite")
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as error:
            raise UserInputError(f"cannot create --output_dir {path}: {error.strerror}") from None
        if not os.access(path, os.W_OK):
            raise UserInputError(f"--output_dir {path} is not writable")
        return path

    def build(self, class_type: Type[PPOTrainer] = PPOTrainer,
              callbacks: Optional[List[Callback]] = None) -> PPOTrainer:
        """Set up device, seeds, environments, network and trainer; write config.yaml into the output dir."""
        settings = self.settings
        self._check_supported()
        settings.runtime.device_target = configure_device(settings.runtime.device_target,
                                                          settings.runtime.graph_op_run)
        worker = init_data_parallel() if settings.runtime.enable_distribute else WorkerInfo()
        envs = make_vector_env(self.env_id, settings.ppo.num_envs, settings.env.kwargs, settings.env.vector_env)
        action_dims(envs.single_action_space)  # refuse unsupported spaces before anything is written
        output_dir = self.prepare_output_dir() if worker.is_main else settings.train.output_dir
        seed_everything(settings.train.seed)  # the same seed on every worker: identical initial replicas
        net = build_network(settings, envs.single_observation_space, envs.single_action_space)
        agent = build_agent(net, settings, world_size=worker.world_size)
        if not worker.is_main:  # rank 0 logs, evaluates and checkpoints for the job
            return class_type(settings, agent, envs, self.env_id, output_dir, [], lambda line: None, worker)
        save_settings(settings, os.path.join(output_dir, "config.yaml"))
        train = settings.train
        csv_path = os.path.join(output_dir, "progress.csv")
        callbacks = callbacks if callbacks is not None else [
            TimeCallback(), EvaluateCallback(train.eval_every), LossCallback(train.log_every),
            CSVLogger(csv_path), TensorBoardLogger(os.path.join(output_dir, "tb")),
            CheckpointCallback(train.save_every),
            LearningCurvePlot(csv_path, os.path.join(output_dir, "learning_curve.png")),
            ProgressBar(train.total_steps, disable=True if self.quiet else None)]
        workers = f" x {worker.world_size} workers" if worker.world_size > 1 else ""
        self.log(f"Training {self.env_id} on {settings.runtime.device_target} ({settings.runtime.precision_mode}): "
                 f"{settings.ppo.num_envs} envs x {settings.ppo.rollout_steps} steps per iteration{workers}, "
                 f"{settings.train.total_steps} steps in all; output in {output_dir}")
        return class_type(settings, agent, envs, self.env_id, output_dir, callbacks, self.log, worker)

    def run(self, class_type: Type[PPOTrainer] = PPOTrainer, episode: Optional[int] = None,
            duration: Optional[int] = None, resume: Optional[str] = None) -> Dict[str, Any]:
        """Train as MindSpore Reinforcement's ``session.run`` did.

        :param episode: training iterations (the reference's episodes); overrides train.total_steps.
        :param duration: environment steps per iteration per env; overrides ppo.rollout_steps.
        :param resume: a checkpoint, checkpoint directory or run directory to continue from; the run goes on
            in that run directory unless an output directory is set.
        :return: the contents of result.json, plus its ``path``.
        """
        if duration is not None:
            self.settings.ppo.rollout_steps = duration
        if episode is not None:
            self.settings.train.total_steps = episode * self.settings.ppo.batch_size
        if resume is not None:
            ckpt = checkpoint.resolve(resume)
            if self.settings.train.output_dir is None:
                self.settings.train.output_dir = os.path.dirname(os.path.dirname(os.path.abspath(ckpt)))
            self.overwrite = True  # continuing a run writes into its directory
        trainer = self.build(class_type)
        if resume is not None:
            loaded = trainer.restore(resume)
            self.log(f"resumed from {loaded} at step {trainer.global_step} (iteration {trainer.iteration})")
        try:
            return trainer.train()
        finally:
            trainer.envs.close()

    def train(self) -> Dict[str, Any]:
        """Train with the settings as loaded."""
        return self.run()


def evaluate_checkpoint(ckpt: str, env_yaml: Optional[str] = None, algo_yaml: Optional[str] = None,
                        overrides: Optional[Dict[str, Any]] = None, episodes: int = 10,
                        log: Callable[[str], None] = print) -> np.ndarray:
    """Load a checkpoint and return the deterministic returns of ``episodes`` episodes (episodes,).

    Without YAMLs the settings saved with the checkpoint are used, so the network and normalisation match.
    """
    path = checkpoint.resolve(ckpt)
    meta = checkpoint.read_meta(path)
    if env_yaml is None and algo_yaml is None and "settings" in meta:
        settings = settings_from_dict(meta["settings"], overrides, source=path)
    elif env_yaml is None:
        raise UserInputError(f"{path} has no saved settings: pass --env_yaml (and --algo_yaml) it was trained with")
    else:
        settings = load_settings(env_yaml, algo_yaml, overrides)
    configure_device(settings.runtime.device_target, settings.runtime.graph_op_run)
    env_id = resolve_env_id(settings.env.id, notify=log)
    probe = make_env(env_id, settings.env.kwargs)
    obs_space, action_space = probe.observation_space, probe.action_space
    probe.close()
    net = build_network(settings, obs_space, action_space)
    checkpoint.load(path, {"net": net})
    encoder = ObservationEncoder(obs_space)
    obs_norm = ObservationNormalizer(encoder.shape, settings.normalize.observations, settings.normalize.clip_obs)
    if "obs_norm" in meta:
        obs_norm.stats.load(meta["obs_norm"])
    mode = DeterministicPolicy(net)
    actor = DeterministicActor(lambda obs: mode(mindspore.Tensor(obs)).asnumpy(), encoder, obs_norm, action_space)
    kwargs = settings.env.kwargs if settings.env.eval_kwargs is None else settings.env.eval_kwargs
    log(f"Evaluating {path} on {env_id}")
    return evaluate(actor, env_id, kwargs, episodes, seed=settings.train.seed + EVAL_SEED_OFFSET)

"""The Session: reads the YAMLs, chooses the device, builds environments, agent and trainer, and runs them."""

from __future__ import annotations

import os
import random
import time
from typing import Any, Callable, Dict, List, Optional, Type

import mindspore
import numpy as np

from ms_ppo import checkpoint, host_policy
from ms_ppo.cnn import CnnActorCritic, apply_cnn_precision, uses_images, wants_cnn
from ms_ppo.callbacks import (CSVLogger, Callback, CheckpointCallback, EvaluateCallback, LearningCurvePlot,
                              LossCallback, ProgressBar, TensorBoardLogger, TimeCallback, VideoCallback)
from ms_ppo.config import Settings, load_settings, save_settings, settings_from_dict
from ms_ppo.device import configure_device
from ms_ppo.distributed import WorkerInfo, init_data_parallel, under_msrun
from ms_ppo.envs import ObservationEncoder, action_dims, make_env, make_vector_env, resolve_env_id
from ms_ppo.errors import UserInputError
from ms_ppo.evaluation import DeterministicActor, evaluate
from ms_ppo.normalize import ObservationNormalizer
from ms_ppo.networks import ActorCritic
from ms_ppo.ppo import DeterministicPolicy
from ms_ppo.precision import apply_precision, build_agent, check_precision
from ms_ppo.rollout import available_memory_bytes, rollout_memory_bytes
from ms_ppo.trainer import EVAL_SEED_OFFSET, PPOTrainer
from ms_ppo.video import check_video_path, record_episode, write_video


def build_network(settings: Settings, observation_space, action_space) -> ActorCritic:
    """The actor-critic for these spaces, policy and precision settings (seed MindSpore first for equal weights)."""
    action_dim, discrete = action_dims(action_space)
    policy = settings.policy
    if wants_cnn(policy.network, observation_space):
        if policy.distribution != "gaussian" and not discrete:
            raise UserInputError(f"policy.distribution {policy.distribution} is not available with the CNN policy")
        net = CnnActorCritic(observation_space.shape, action_dim, discrete, policy.log_std_init, policy.ortho_init)
        return apply_cnn_precision(net, settings.runtime.precision_mode, settings.precision.amp_level)
    bounds = {} if discrete else {"action_low": action_space.low, "action_high": action_space.high}
    net = ActorCritic(ObservationEncoder(observation_space).size, action_dim, discrete, policy.hidden_sizes,
                      policy.activation, policy.log_std_init, policy.ortho_init, policy.distribution, **bounds)
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
                 overwrite: bool = False, quiet: bool = False, log: Callable[[str], None] = print,
                 settings: Optional[Settings] = None):
        overrides = dict(overrides or {})
        if is_distribution:
            overrides["runtime.enable_distribute"] = True
        self.settings: Settings = settings or load_settings(env_yaml, algo_yaml, overrides)
        self.overwrite = overwrite
        self.quiet = quiet
        self.log = log
        self.env_id = resolve_env_id(self.settings.env.id, notify=log)

    @classmethod
    def from_checkpoint(cls, ckpt: str, overrides: Optional[Dict[str, Any]] = None, **kwargs) -> "PPOSession":
        """A session with the settings saved in a checkpoint (``--resume`` without YAMLs), plus ``overrides``."""
        path = checkpoint.resolve(ckpt)
        meta = checkpoint.read_meta(path)
        if "settings" not in meta:
            raise UserInputError(f"{path} has no saved settings: pass --env_yaml (and --algo_yaml) it was trained "
                                 f"with")
        overrides = dict(overrides or {})
        if kwargs.pop("is_distribution", False):
            overrides["runtime.enable_distribute"] = True
        return cls(settings=settings_from_dict(meta["settings"], overrides, source=path), **kwargs)

    def continue_in_run_dir(self, resume: str) -> None:
        """A resumed run writes into the run directory of its checkpoint, unless an output directory is set."""
        ckpt = checkpoint.resolve(resume)
        if self.settings.train.output_dir is None or self.settings.train.output_dir == self._saved_output_dir(ckpt):
            self.settings.train.output_dir = os.path.dirname(os.path.dirname(os.path.abspath(ckpt)))
            self.overwrite = True  # continuing a run writes into its directory

    @staticmethod
    def _saved_output_dir(ckpt: str) -> Optional[str]:
        return checkpoint.read_meta(ckpt).get("settings", {}).get("train", {}).get("output_dir")

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

    def _check_memory(self) -> None:
        """Refuse a rollout that cannot fit in memory before any environment or file is made."""
        cfg = self.settings.ppo
        probe = make_env(self.env_id, self.settings.env.kwargs, wrappers=self.settings.env.wrappers)
        obs_space, action_space = probe.observation_space, probe.action_space
        probe.close()
        encoder = ObservationEncoder(obs_space, image=wants_cnn(self.settings.policy.network, obs_space))
        obs_bytes = encoder.size * encoder.dtype.itemsize
        action_bytes = 4 * int(np.prod(action_space.shape or (1,)))
        need = rollout_memory_bytes(cfg.rollout_steps, cfg.num_envs, obs_bytes, action_bytes)
        have = available_memory_bytes()
        if need > have:
            raise UserInputError(
                f"the rollout needs about {need / 2 ** 30:.1f} GiB ({cfg.num_envs} envs x {cfg.rollout_steps} steps "
                f"x {obs_bytes + action_bytes + 24} bytes x 3 copies) but only {have / 2 ** 30:.1f} GiB is "
                f"available: lower ppo.num_envs or ppo.rollout_steps")

    def build(self, class_type: Type[PPOTrainer] = PPOTrainer, callbacks: Optional[List[Callback]] = None,
              resume: Optional[str] = None) -> PPOTrainer:
        """Set up device, seeds, environments, network and trainer (restored from ``resume`` if given: a
        checkpoint that does not fit is refused before anything is written); write config.yaml."""
        settings = self.settings
        self._check_supported()
        settings.runtime.device_target = configure_device(settings.runtime.device_target,
                                                          settings.runtime.graph_op_run,
                                                          settings.runtime.cpu_threads)
        check_precision(settings.runtime.precision_mode, settings.runtime.device_target)
        worker = init_data_parallel() if settings.runtime.enable_distribute else WorkerInfo()
        self._check_memory()
        envs = make_vector_env(self.env_id, settings.ppo.num_envs, settings.env.kwargs, settings.env.vector_env,
                               wrappers=settings.env.wrappers)
        action_dims(envs.single_action_space)  # refuse unsupported spaces before anything is written
        output_dir = self.prepare_output_dir() if worker.is_main else settings.train.output_dir
        seed_everything(settings.train.seed)  # the same seed on every worker: identical initial replicas
        net = build_network(settings, envs.single_observation_space, envs.single_action_space)
        agent = build_agent(net, settings, world_size=worker.world_size)
        if settings.runtime.host_policy and host_policy.supports(net, settings.runtime.device_target,
                                                                 settings.runtime.precision_mode):
            agent.use_host_policy()
        if not worker.is_main:  # rank 0 logs, evaluates and checkpoints for the job
            return self._restored(class_type(settings, agent, envs, self.env_id, output_dir, [], lambda line: None,
                                             worker), resume)
        train = settings.train
        csv_path = os.path.join(output_dir, "progress.csv")
        if callbacks is None:
            callbacks = [
                TimeCallback(), EvaluateCallback(train.eval_every), LossCallback(train.log_every),
                CSVLogger(csv_path), TensorBoardLogger(os.path.join(output_dir, "tb")),
                CheckpointCallback(train.save_every),
                LearningCurvePlot(csv_path, os.path.join(output_dir, "learning_curve.png")),
                ProgressBar(train.total_steps, disable=True if self.quiet else None)]
            if train.video is not None:
                callbacks.append(VideoCallback(os.path.join(output_dir, "videos"), train.video))
        workers = f" x {worker.world_size} workers" if worker.world_size > 1 else ""
        self.log(f"Training {self.env_id} on {settings.runtime.device_target} ({settings.runtime.precision_mode}): "
                 f"{settings.ppo.num_envs} envs x {settings.ppo.rollout_steps} steps per iteration{workers}, "
                 f"{settings.train.total_steps} steps in all; output in {output_dir}")
        trainer = self._restored(class_type(settings, agent, envs, self.env_id, output_dir, callbacks, self.log,
                                            worker), resume)
        save_settings(settings, os.path.join(output_dir, "config.yaml"))
        return trainer

    def _restored(self, trainer: PPOTrainer, resume: Optional[str]) -> PPOTrainer:
        if resume is not None:
            loaded = trainer.restore(resume)
            self.log(f"resumed from {loaded} at step {trainer.global_step} (iteration {trainer.iteration})")
        return trainer

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
            self.continue_in_run_dir(resume)
        trainer = self.build(class_type, resume=resume)
        try:
            return trainer.train()
        finally:
            trainer.envs.close()

    def train(self) -> Dict[str, Any]:
        """Train with the settings as loaded."""
        return self.run()


def evaluate_checkpoint(ckpt: str, env_yaml: Optional[str] = None, algo_yaml: Optional[str] = None,
                        overrides: Optional[Dict[str, Any]] = None, episodes: int = 10,
                        log: Callable[[str], None] = print, video: Optional[str] = None,
                        render: Optional[str] = None) -> np.ndarray:
    """Load a checkpoint and return the deterministic returns of ``episodes`` episodes (episodes,).

    Without YAMLs the settings saved with the checkpoint are used, so the network and normalisation match.
    :param video: also record the first evaluation episode to this .gif/.mp4 file.
    :param render: ``human``: also play the first evaluation episode in a window.
    """
    if video is not None:
        check_video_path(video)
    path = checkpoint.resolve(ckpt)
    meta = checkpoint.read_meta(path)
    if env_yaml is None and algo_yaml is None and "settings" in meta:
        settings = settings_from_dict(meta["settings"], overrides, source=path)
    elif env_yaml is None:
        raise UserInputError(f"{path} has no saved settings: pass --env_yaml (and --algo_yaml) it was trained with")
    else:
        settings = load_settings(env_yaml, algo_yaml, overrides)
    configure_device(settings.runtime.device_target, settings.runtime.graph_op_run, settings.runtime.cpu_threads)
    env_id = resolve_env_id(settings.env.id, notify=log)
    probe = make_env(env_id, settings.env.kwargs, wrappers=settings.env.wrappers, training=False)
    obs_space, action_space = probe.observation_space, probe.action_space
    probe.close()
    net = build_network(settings, obs_space, action_space)
    checkpoint.load(path, checkpoint.named_parameters({"net": net}))
    encoder = ObservationEncoder(obs_space, image=uses_images(net))
    obs_norm = ObservationNormalizer(encoder.shape, settings.normalize.observations, settings.normalize.clip_obs)
    if "obs_norm" in meta:
        obs_norm.stats.load(meta["obs_norm"])
    mode = DeterministicPolicy(net)
    actor = DeterministicActor(lambda obs: mode(mindspore.Tensor(obs)).asnumpy(), encoder, obs_norm, action_space)
    kwargs = settings.env.kwargs if settings.env.eval_kwargs is None else settings.env.eval_kwargs
    log(f"Evaluating {path} on {env_id}")
    seed = settings.train.seed + EVAL_SEED_OFFSET
    returns = evaluate(actor, env_id, kwargs, episodes, seed=seed, wrappers=settings.env.wrappers)
    if render == "human":
        record_episode(actor, env_id, kwargs, seed, settings.env.wrappers, render_mode="human")
    if video is not None:
        frames = record_episode(actor, env_id, kwargs, seed, settings.env.wrappers)
        log(f"video of episode 1 ({len(frames)} frames) written to {write_video(frames, video)}")
    return returns

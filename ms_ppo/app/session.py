"""The Session: reads the YAMLs, chooses the device, builds environments, agent and trainer, and runs them."""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Dict, List, Optional, Type

import gymnasium as gym
import numpy as np

from ms_ppo.algo import build_agent
from ms_ppo.app.assembly import build_network, probe_spaces, run_env_id, seed_everything, set_up_device
from ms_ppo.config import Settings, load_settings, save_settings, settings_from_dict
from ms_ppo.distribution.actor_learner import ActorRank, attach_actors
from ms_ppo.distribution.placement import ACTOR, ENV, LEARNER, MULTI_ENV, MULTI_ENV_HETER, Placement, place
from ms_ppo.distribution.remote_envs import EnvRank, EnvSpaces, RemoteEnvs
from ms_ppo.envs import ObservationEncoder, action_dims, make_vector_env
from ms_ppo.errors import TrainingFailed, UserInputError
from ms_ppo.models import host_policy, wants_cnn
from ms_ppo.runtime.channel import Channel
from ms_ppo.runtime.collectives import identical_everywhere, weights_fingerprint
from ms_ppo.runtime.distributed import WorkerInfo, init_distributed, under_msrun
from ms_ppo.training import PPOTrainer, checkpoint
from ms_ppo.training.buffer import available_memory_bytes, rollout_memory_bytes
from ms_ppo.training.callbacks import (
    Callback,
    CheckpointCallback,
    EvaluateCallback,
    LossCallback,
    TimeCallback,
    VideoCallback,
)
from ms_ppo.training.loggers import CSVLogger, LearningCurvePlot, ProgressBar, TensorBoardLogger
from ms_ppo.training.tracking import make_tracker, require_client


class PPOSession:
    """Reads an env YAML and an algo YAML and trains PPO on them.

    :param env_yaml: environment YAML (ms_ppo or MindSpore Reinforcement layout); None for the defaults.
    :param algo_yaml: algorithm YAML; None for the one the env YAML names (``algo_yaml``), else the defaults.
    :param is_distribution: train across workers (reference argument name).
    :param overrides: ``{"section.key": value}`` applied after the YAMLs (``--set``).
    :param overwrite: allow training into an existing, non-empty output directory.
    :param quiet: no progress bar (log lines only), e.g. when the output goes to a file.
    :param log: where log lines go.
    :param settings: validated settings to use instead of YAMLs.
    :param env: your own environment as a Python callable returning a gymnasium.Env (a class or a factory);
        it is registered as ``python/<name>-v0`` and replaces ``env.id``.
    """

    def __init__(self, env_yaml: Optional[str] = None, algo_yaml: Optional[str] = None,
                 is_distribution: bool = False, overrides: Optional[Dict[str, Any]] = None,
                 overwrite: bool = False, quiet: bool = False, log: Callable[[str], None] = print,
                 settings: Optional[Settings] = None, env: Optional[Callable[..., gym.Env]] = None):
        overrides = dict(overrides or {})
        if is_distribution:
            overrides["runtime.enable_distribute"] = True
        self.settings: Settings = settings or load_settings(env_yaml, algo_yaml, overrides, notify=log)
        self.overwrite = overwrite
        self.quiet = quiet
        self.log = log
        self.env_id = run_env_id(self.settings, log, env)

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
        if self.settings.train.track != "none":
            require_client(self.settings.train.track)  # a missing client fails before anything is made

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
        obs_space, action_space = probe_spaces(self.env_id, self.settings)
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
        placement = self._placement()
        if placement is not None:
            settings.runtime.device_target = placement.device  # the heterogeneous policy's env ranks: CPU
        set_up_device(settings)
        worker = WorkerInfo()
        if placement is not None:
            worker = init_distributed(placement.policy, placement.backend)
            placement = place(placement.policy, worker.rank, worker.world_size, settings.runtime.device_target,
                              settings.ppo.num_envs)
        role = placement.role if placement is not None else None
        channel = Channel(worker.world_size) if role in (LEARNER, ACTOR, ENV) else None
        if role == ENV:  # steps environments for rank 0, nothing else
            return EnvRank(self._make_envs(), placement, channel)
        self._check_memory()
        envs = self._learner_envs(placement, channel) if role == LEARNER else self._make_envs()
        action_dims(envs.single_action_space)  # refuse unsupported spaces before anything is written
        output_dir = self.prepare_output_dir() if worker.is_main else settings.train.output_dir
        seed_everything(settings.train.seed)  # the same seed on every worker: identical initial replicas
        net = build_network(settings, envs.single_observation_space, envs.single_action_space, self.log)
        if worker.replicas > 1 and not identical_everywhere(weights_fingerprint(net.trainable_params()),
                                                             worker.replicas):
            raise TrainingFailed(f"rank {worker.rank}: the workers' initial weights differ (the same seed should make "
                                 f"them equal): is every worker running the same ms_ppo and settings?")
        # a single learner updates on the rollouts of every collecting rank at once: minibatches sized for them all
        agent = build_agent(net, settings, world_size=worker.replicas,
                            num_envs=envs.num_envs if role == LEARNER else None,
                            off_policy=role == LEARNER and placement.overlap)
        if settings.runtime.host_policy and host_policy.supports(net, settings.runtime.device_target,
                                                                 settings.runtime.precision_mode):
            agent.use_host_policy(settings.runtime.host_blas_threads)
        if role == ACTOR:
            return ActorRank(settings, agent, envs, placement, channel,
                             settings.ppo.num_envs * worker.collecting_ranks)
        if not worker.is_main:  # rank 0 logs, evaluates and checkpoints for the job
            return self._restored(class_type(settings, agent, envs, self.env_id, output_dir, [], lambda line: None,
                                             worker), resume)
        steps_per_iteration = settings.ppo.batch_size * worker.collecting_ranks
        if callbacks is None:
            callbacks = self.default_callbacks(output_dir, steps_per_iteration)
        self.log(f"Training {self.env_id} on {settings.runtime.device_target} ({settings.runtime.precision_mode}): "
                 f"{settings.ppo.num_envs} envs x {settings.ppo.rollout_steps} steps per iteration"
                 f"{self._job_description(worker)}, {settings.train.total_steps} steps in all; output in {output_dir}")
        trainer = class_type(settings, agent, envs, self.env_id, output_dir, callbacks, self.log, worker)
        if role == LEARNER and isinstance(envs, EnvSpaces) and not isinstance(envs, RemoteEnvs):
            attach_actors(trainer, channel, placement)
        trainer = self._restored(trainer, resume)
        save_settings(settings, os.path.join(output_dir, "config.yaml"))
        return trainer

    def _placement(self) -> Optional[Placement]:
        """This rank's part under ``runtime.distribution_policy`` (None in one process). msrun gives each worker
        its rank before communication starts, which the heterogeneous policy needs to pick the device first."""
        runtime = self.settings.runtime
        if not runtime.enable_distribute:
            if runtime.distribution_policy != WorkerInfo().policy:
                self.log(f"notice: runtime.distribution_policy {runtime.distribution_policy} applies with "
                         f"--enable_distribute; training in one process")
            return None
        world_size = int(os.environ.get("MS_WORKER_NUM", runtime.worker_num))
        return place(runtime.distribution_policy, int(os.environ.get("RANK_ID", "0")), world_size,
                     runtime.device_target, self.settings.ppo.num_envs)

    def _make_envs(self) -> gym.vector.VectorEnv:
        env = self.settings.env
        return make_vector_env(self.env_id, self.settings.ppo.num_envs, env.kwargs, env.vector_env,
                               wrappers=env.wrappers)

    def _learner_envs(self, placement: Placement, channel: Channel) -> EnvSpaces:
        """Rank 0's view of environments on the other ranks: stepped over the channel (MultiEnv policies), or
        only their spaces (the actors step them)."""
        obs_space, action_space = probe_spaces(self.env_id, self.settings)
        ranks, num_envs = placement.world_size - 1, self.settings.ppo.num_envs
        if placement.policy in (MULTI_ENV, MULTI_ENV_HETER):
            return RemoteEnvs(channel, obs_space, action_space, num_envs, ranks)
        return EnvSpaces(obs_space, action_space, num_envs * ranks)

    @staticmethod
    def _job_description(worker: WorkerInfo) -> str:
        if worker.world_size == 1:
            return ""
        if worker.replicas > 1:
            return f" x {worker.world_size} workers"
        return f" x {worker.collecting_ranks} ranks, rank 0 learning ({worker.policy})"

    def default_callbacks(self, output_dir: str, steps_per_iteration: int) -> List[Callback]:
        """What a run writes: log lines, evaluations, progress.csv, TensorBoard, checkpoints, the curve, a progress
        bar, videos if asked, and the tracker if asked (last: it sends what the others wrote)."""
        train = self.settings.train
        csv_path = os.path.join(output_dir, "progress.csv")
        eval_every = train.iterations_between("eval_every", steps_per_iteration)
        save_every = train.iterations_between("save_every", steps_per_iteration)
        for key, every in (("eval_every", eval_every), ("save_every", save_every)):
            if isinstance(getattr(train, key), str) and every:
                self.log(f"train.{key} {getattr(train, key)}: every {every} iterations "
                         f"({every * steps_per_iteration} steps)")
        callbacks = [
            TimeCallback(), LossCallback(train.log_every, train.log_format), EvaluateCallback(eval_every),
            CSVLogger(csv_path), TensorBoardLogger(os.path.join(output_dir, "tb")), CheckpointCallback(save_every),
            LearningCurvePlot(csv_path, os.path.join(output_dir, "learning_curve.png")),
            ProgressBar(train.total_steps, disable=True if self.quiet else None)]
        if train.video is not None:
            callbacks.append(VideoCallback(os.path.join(output_dir, "videos"), train.video))
        tracker = make_tracker(train.track, output_dir, train.track_project, os.path.basename(output_dir))
        if tracker is not None:
            callbacks.append(tracker)
        return callbacks

    def _restored(self, trainer: PPOTrainer, resume: Optional[str]) -> PPOTrainer:
        if resume is not None:
            loaded = trainer.restore(resume)
            finished = os.path.exists(os.path.join(trainer.output_dir, "result.json"))
            if finished and trainer.iteration >= trainer.planned_iterations():
                trainer.envs.close()
                raise UserInputError(f"--resume {resume}: the run already finished its {trainer.global_step} steps "
                                     f"(result.json); to train on, give a larger --total_steps")
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

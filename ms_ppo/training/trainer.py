"""The PPO training loop over one TrainerState: collect a rollout -> learn -> guard -> callbacks (log, evaluate,
checkpoint), until the step budget is spent; then evaluate and write result.json."""

from __future__ import annotations

import json
import os
import pickle
import signal
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import gymnasium as gym
import numpy as np

from ms_ppo.algo import PPOAgent
from ms_ppo.config import Settings
from ms_ppo.envs import RewardScaler, load_env_state, observation_pipeline, save_env_state
from ms_ppo.errors import DiskFull, EnvironmentFailed, UserInputError, disk_full_message, is_disk_full
from ms_ppo.evaluation import EVAL_SEED_OFFSET, DeterministicActor, evaluate
from ms_ppo.runtime.collectives import moment_merger
from ms_ppo.runtime.cpu_kernels import cpu_description
from ms_ppo.runtime.distributed import WorkerInfo
from ms_ppo.training import checkpoint
from ms_ppo.training.callbacks import Callback
from ms_ppo.training.collector import Collector
from ms_ppo.training.guard import NumericalGuard
from ms_ppo.training.learner import Learner
from ms_ppo.training.signals import StopRequest
from ms_ppo.training.state import TrainerState

RNG_RANK_STRIDE = 7919  # worker r draws from seed + 7919 r: rank 0 of one process equals a plain run
ENV_SEED_RANK_STRIDE = 100_003  # env i of worker r starts from seed + 100003 r + i: no two envs share a seed


class PPOTrainer:
    """Runs PPO iterations until ``total_steps`` environment steps have been collected.

    :param settings: the validated run settings.
    :param agent: the compiled actor-critic and its optimiser.
    :param envs: the collection vector env (N = settings.ppo.num_envs).
    :param env_id: the resolved Gymnasium id, for evaluation envs.
    :param output_dir: the run directory (result.json, ckpt/).
    :param callbacks: called in order after every iteration and at the end.
    :param log: where log lines go (print by default).
    :param worker: this process's place in a multi-worker job.
    """

    def __init__(self, settings: Settings, agent: PPOAgent, envs: gym.vector.VectorEnv, env_id: str,
                 output_dir: str, callbacks: Optional[List[Callback]] = None,
                 log: Callable[[str], None] = print, worker: WorkerInfo = WorkerInfo()):
        self.settings = settings
        self.worker = worker
        self.agent = agent
        self.envs = envs
        self.env_id = env_id
        self.output_dir = output_dir
        self.callbacks = callbacks or []
        self.log = log
        cfg, norm = settings.ppo, settings.normalize
        merge = None if worker.replicas == 1 else moment_merger(worker.replicas)
        encoder, obs_norm = observation_pipeline(envs.single_observation_space, agent.net.image_input, norm, merge)
        self.state = TrainerState.new(settings.train.seed + RNG_RANK_STRIDE * worker.rank, envs.num_envs,
                                      obs_norm.stats)
        reward_scaler = RewardScaler(cfg.gamma, norm.rewards, norm.clip_reward, self.state.reward_norm, merge)
        # Pixel wrapper sets report whole games with their raw score in info (ms_ppo.envs.pixels): count those.
        self.collector = Collector(envs, agent, cfg, encoder, obs_norm, reward_scaler,
                                   whole_games=settings.env.wrappers != "none", world_size=worker.replicas)
        self.learner = Learner(agent, cfg)
        self.guard = NumericalGuard(agent, cfg.num_minibatches, settings.train.max_bad_updates)
        self.stop = StopRequest(worker.replicas)
        self.deterministic_policy = DeterministicActor(agent.act_deterministic, encoder, obs_norm,
                                                       envs.single_action_space)
        self.eval_info: Dict[str, np.ndarray] = {}
        self.last_checkpoint: Optional[str] = None
        self.iterations = 0  # planned iterations of the current train() call

    # What callbacks read.
    @property
    def iteration(self) -> int:
        return self.state.iteration

    @property
    def global_step(self) -> int:
        return self.state.global_step

    @property
    def stop_signal(self) -> Optional[int]:
        """SIGINT/SIGTERM received: the run stops after this iteration."""
        return self.stop.signal

    @property
    def healthy(self) -> bool:
        """False while updates are failing: no checkpoint is written then, so the last good one is kept."""
        return self.guard.healthy

    def _env_seed(self) -> int:
        return self.settings.train.seed + ENV_SEED_RANK_STRIDE * self.worker.rank

    def train(self, total_steps: Optional[int] = None) -> Dict[str, Any]:
        """Train until ``total_steps`` (default: settings.train.total_steps); evaluate; write result.json.

        SIGINT/SIGTERM stop the run after the current iteration with a checkpoint (``interrupted`` in the result).
        :raises TrainingDiverged: after ``train.max_bad_updates`` consecutive non-finite updates.
        :raises TrainingFailed: when a write finds the disk full (the older checkpoints are intact).
        """
        try:
            return self._train(total_steps)
        except EnvironmentFailed as error:
            raise EnvironmentFailed(f"{error} at step {self.state.global_step}; nothing of this rollout was kept: "
                                    f"the last good checkpoint is {self.last_checkpoint}") from None
        except OSError as error:
            if not is_disk_full(error):
                raise
            raise DiskFull(f"{disk_full_message(error)} at step {self.state.global_step}; the last good "
                           f"checkpoint is {self.last_checkpoint}: free some space, then --resume") from None
        finally:
            for callback in self.callbacks:
                callback.close()

    def _train(self, total_steps: Optional[int]) -> Dict[str, Any]:
        state = self.state
        self.iterations = self.planned_iterations(total_steps)
        if state.obs is None:
            self.collector.reset(state, self._env_seed())
        for callback in self.callbacks:
            callback.on_train_begin(self)
        start = time.perf_counter()
        start_step = state.global_step
        warm: Optional[Tuple[float, int]] = None  # (wall, step) after this process's first iteration
        final_returns: Optional[np.ndarray] = None
        metrics: Dict[str, Any] = {}
        with self.stop.listening():
            while state.iteration < self.iterations and not self.stop.requested():
                rollout = self.collector.collect(state)
                snapshot = self.guard.snapshot()
                metrics = self.learner.learn(rollout, state.iteration / self.iterations, state.rng)
                metrics.update(self.collector.rollout_metrics())
                self.guard.check(metrics, snapshot, state)
                state.iteration += 1
                wall = time.perf_counter() - start
                if warm is None:
                    warm = (wall, state.global_step)
                    self.log(f"first iteration: {wall:.1f} s (it compiles the graphs; SPS counts from its end)")
                # SPS leaves out the first iteration, which is mostly compilation (on the first one itself, it cannot)
                warm_wall, warm_step = warm if wall > warm[0] else (0.0, start_step)
                metrics.update({
                    "iteration": state.iteration, "global_step": state.global_step, "wall_seconds": wall,
                    "charts/SPS": (state.global_step - warm_step) / max(wall - warm_wall, 1e-9),
                    "charts/episodic_return": float(np.mean(state.recent_returns)) if state.recent_returns else None,
                    "charts/episodic_length": float(np.mean(state.recent_lengths)) if state.recent_lengths else None,
                    "charts/episodes": state.episodes,
                })
                if state.iteration == self.iterations and self.stop.signal is None and self.worker.is_main:
                    # The final evaluation belongs to the last iteration: its row in progress.csv, TensorBoard and
                    # the plot show it, and the periodic evaluation does not run a second time on this iteration.
                    final_returns = self.evaluate()
                    metrics["eval/return_mean"] = float(final_returns.mean())
                    self.keep_if_best(metrics["eval/return_mean"])
                for callback in self.callbacks:
                    callback.on_iteration_end(self, metrics)
                # after the callbacks: the failing iteration is logged too
                self.guard.stop_if_diverged(state.global_step, self.last_checkpoint)
        wall = time.perf_counter() - start
        for callback in self.callbacks:
            callback.on_train_end(self, metrics)
        if self.stop.signal is not None:
            name = signal.Signals(self.stop.signal).name
            self.log(f"{name} received: stopped at step {state.global_step}; checkpoint {self.last_checkpoint}")
            return {"interrupted": name, "total_steps": state.global_step, "checkpoint": self.last_checkpoint}
        if not self.worker.is_main:  # rank 0 evaluates and reports for the whole job
            return {"total_steps": state.global_step, "rank": self.worker.rank}
        if final_returns is None:  # no iteration ran here (the budget was already spent)
            final_returns = self.evaluate()
            self.keep_if_best(float(final_returns.mean()))
        first = None if warm is None else round(warm[0], 3)
        return self._write_result(final_returns, wall, state.global_step - start_step, first)

    def planned_iterations(self, total_steps: Optional[int] = None) -> int:
        """Iterations for ``total_steps`` (default settings.train.total_steps), rounded up: never fewer steps."""
        batch = self.settings.ppo.batch_size * self.worker.collecting_ranks  # steps per iteration, all ranks
        return max(1, -(-(total_steps or self.settings.train.total_steps) // batch))

    def evaluate(self, episodes: Optional[int] = None) -> np.ndarray:
        """Deterministic returns over ``episodes`` separate episodes (default settings.train.eval_episodes)."""
        train, env = self.settings.train, self.settings.env
        self.eval_info = {}
        returns = evaluate(self.deterministic_policy, self.env_id, env.evaluation_kwargs,
                           episodes or train.eval_episodes, seed=train.seed + EVAL_SEED_OFFSET, wrappers=env.wrappers,
                           episode_info=self.eval_info, max_steps=train.eval_max_steps)
        capped = int(self.eval_info["capped"].sum())
        if capped:
            self.log(f"notice: {capped} of {returns.size} evaluation episodes reached train.eval_max_steps "
                     f"({train.eval_max_steps}) and count their return so far")
        return returns

    def _write_result(self, returns: np.ndarray, wall: float, steps: int,
                      first_iteration: Optional[float]) -> Dict[str, Any]:
        runtime = self.settings.runtime
        result = {
            "eval_return_mean": float(returns.mean()), "eval_return_std": float(returns.std()),
            "eval_episodes": int(returns.size), "total_steps": int(self.state.global_step),
            "wall_seconds": round(wall, 3), "sps": round(steps / max(wall, 1e-9), 1),  # end to end, compile included
            "first_iteration_seconds": first_iteration,
            "seed": self.settings.train.seed, "env_id": self.env_id,
            "precision_mode": runtime.precision_mode, "device_target": runtime.device_target,
            "iterations": self.state.iteration, "episodes": self.state.episodes,
            "worker_num": self.worker.world_size, "distribution_policy": self.worker.policy,
            "cpu_model": cpu_description()["model"],  # wall time and SPS depend on it (lscpu's "Model name")
        }
        best = checkpoint.list_checkpoints(os.path.join(self.output_dir, checkpoint.BEST_DIR))
        for key, path in (("checkpoint", self.last_checkpoint), ("best_checkpoint", best[-1] if best else None)):
            result[key] = path and os.path.relpath(path, self.output_dir)  # inside the run: it moves whole
        result["best_eval_return"] = self.state.best_eval_return
        if "flag_get" in self.eval_info:  # Super Mario Bros: evaluation episodes that reached the flag
            result["flag_get"] = int(self.eval_info["flag_get"].sum())
        path = os.path.join(self.output_dir, "result.json")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=1)
        self.log(f"Evaluation over {result['eval_episodes']} episodes: return {result['eval_return_mean']:.2f} "
                 f"+- {result['eval_return_std']:.2f}")
        self.log(f"result written to {path}")
        result["path"] = path
        return result

    def _save(self, directory: str, keep: int) -> str:
        """Weights, optimiser state and the whole TrainerState, with the environments mid-episode."""
        settings = self.settings.to_dict()
        meta = {"env_id": self.env_id, "settings": settings, "config_hash": checkpoint.settings_hash(settings),
                "worker_num": self.worker.world_size, "distribution_policy": self.worker.policy,
                **self.state.run_part()}
        episode = pickle.dumps({"envs": save_env_state(self.envs), **self.state.episode_part()})
        return checkpoint.save(directory, self.state.global_step,
                               checkpoint.named_parameters(self.agent.checkpoint_cells()), meta, episode, keep)

    def save_checkpoint(self) -> str:
        """A checkpoint in ``RUN_DIR/ckpt`` (the newest five are kept): everything a resume needs."""
        self.last_checkpoint = self._save(os.path.join(self.output_dir, checkpoint.CHECKPOINT_DIR), keep=5)
        return self.last_checkpoint

    def keep_if_best(self, eval_return: float) -> Optional[str]:
        """After an evaluation: if it beats every earlier one, save a checkpoint in ``RUN_DIR/best`` (only that one
        is kept there, as SB3's EvalCallback keeps its best model). Rank 0 only, and never a failing state."""
        state = self.state
        if not self.worker.is_main or not self.guard.healthy:
            return None
        if state.best_eval_return is not None and eval_return <= state.best_eval_return:
            return None
        state.best_eval_return = float(eval_return)
        return self._save(os.path.join(self.output_dir, checkpoint.BEST_DIR), keep=1)

    def restore(self, path: str) -> str:
        """Continue from a checkpoint: weights, optimiser and the TrainerState; for in-process environments with
        the same worker count, also the environments mid-episode, so the run goes on as if it had not stopped.
        Otherwise the environments start new episodes (a notice says so).

        :return: the checkpoint file loaded.
        """
        ckpt, meta = checkpoint.load(path, checkpoint.named_parameters(self.agent.checkpoint_cells()),
                                     optional=("update.",), notify=self.log)
        if meta.get("env_id", self.env_id) != self.env_id:
            raise UserInputError(f"checkpoint {ckpt} was trained on {meta['env_id']}, not {self.env_id}")
        for change in checkpoint.settings_diff(meta.get("settings", {}), self.settings.to_dict()):
            self.log(f"notice: resuming with a changed setting: {change}")
        state = self.state
        state.load_run_part(meta)
        self.last_checkpoint = ckpt
        same_job = (int(meta.get("worker_num", 1)) == self.worker.world_size and self.worker.is_main
                    and meta.get("distribution_policy", self.worker.policy) == self.worker.policy)
        if not same_job:  # another worker's stream, or a new worker layout: a fresh stream for this worker
            state.rng = np.random.default_rng([self.settings.train.seed, self.worker.rank, state.iteration])
        episode = checkpoint.read_episode_state(ckpt) if same_job else None
        if episode is not None:
            saved = pickle.loads(episode)  # checkpoints are trusted input, like any pickle-based format
            if load_env_state(self.envs, saved["envs"]):
                state.load_episode_part(saved)
                return ckpt
        self.log("notice: the environments start new episodes (their state is restored only for in-process "
                 "environments, rank 0, and the same worker count)")
        self.collector.reset(state, self._env_seed() + state.iteration * self.envs.num_envs)
        return ckpt

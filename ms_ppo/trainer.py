"""The PPO training loop: collect a rollout -> advantages -> learn -> callbacks (log, evaluate, checkpoint)."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import pickle
import signal
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional

import gymnasium as gym
import numpy as np

from ms_ppo import checkpoint
from ms_ppo.callbacks import Callback
from ms_ppo.cnn import uses_images
from ms_ppo.config import Settings
from ms_ppo.distributed import WorkerInfo, moment_merger
from ms_ppo.envs import ObservationEncoder, load_env_state, save_env_state
from ms_ppo.errors import TrainingDiverged, UserInputError
from ms_ppo.evaluation import ActionAdapter, DeterministicActor, evaluate
from ms_ppo.normalize import ObservationNormalizer, RewardScaler
from ms_ppo.ppo import PPOAgent, compute_gae
from ms_ppo.precision import PRECISION_STAT_NAMES
from ms_ppo.rollout import RolloutBuffer

EVAL_SEED_OFFSET = 1_000_000  # evaluation episodes start from seeds the training envs never use


class PPOTrainer:
    """Runs PPO iterations until ``total_steps`` environment steps have been collected.

    :param settings: the validated run settings.
    :param agent: the compiled actor-critic and its optimiser.
    :param envs: the collection vector env (N = settings.ppo.num_envs).
    :param env_id: the resolved Gymnasium id, for evaluation envs.
    :param callbacks: called in order after every iteration and at the end.
    :param log: where log lines go (print by default).
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
        self.encoder = ObservationEncoder(envs.single_observation_space, image=uses_images(agent.net))
        if self.encoder.image and norm.observations:
            raise UserInputError("normalize.observations is not available for image observations "
                                 "(the CNN scales its uint8 frames by 1/255)")
        # Pixel wrapper sets report whole games with their raw score in info (ms_ppo.pixels): log those.
        self.whole_games = settings.env.wrappers != "none"
        self.eval_info: Dict[str, np.ndarray] = {}
        merge = None if worker.world_size == 1 else moment_merger(worker.world_size)
        self.obs_norm = ObservationNormalizer(self.encoder.shape, norm.observations, norm.clip_obs, merge)
        self.reward_scaler = RewardScaler(cfg.num_envs, cfg.gamma, norm.rewards, norm.clip_reward)
        space = envs.single_action_space
        self.discrete = isinstance(space, gym.spaces.Discrete)
        self.action_shape = () if self.discrete else tuple(space.shape)
        self.noise_shape = (cfg.num_envs, int(space.n) if self.discrete else int(space.shape[0]))
        self.to_env_action = ActionAdapter(space)
        self.deterministic_policy = DeterministicActor(agent.act_deterministic, self.encoder, self.obs_norm, space)
        self.buffer = RolloutBuffer(cfg.rollout_steps, cfg.num_envs, self.encoder.shape, self.action_shape,
                                    self.encoder.dtype)
        # Each worker draws its own sampling noise and shuffles; rank 0 of one process equals a plain run.
        self.rng = np.random.default_rng(settings.train.seed + 7919 * worker.rank)
        self.global_step = 0
        self.iteration = 0
        self.episodes = 0
        self.recent_returns: collections.deque = collections.deque(maxlen=100)
        self.recent_lengths: collections.deque = collections.deque(maxlen=100)
        self._obs: Optional[np.ndarray] = None
        self._episode_return = np.zeros(cfg.num_envs)
        self._episode_length = np.zeros(cfg.num_envs, np.int64)
        self.skipped_steps = 0.0  # optimiser steps skipped for non-finite values, since the start of training
        self.bad_updates = 0  # consecutive updates with every step skipped (or non-finite parameters)
        self.last_checkpoint: Optional[str] = None
        self.stop_signal: Optional[int] = None  # SIGINT/SIGTERM received: stop after this iteration
        self._stop_vote = None if worker.world_size == 1 else moment_merger(worker.world_size)

    # ----------------------------------------------------------------------------------------------------------
    # Acting
    # ----------------------------------------------------------------------------------------------------------
    def _noise(self) -> np.ndarray:
        if self.discrete:  # Gumbel(0, 1) noise: argmax(logits + noise) samples the categorical
            return -np.log(-np.log(self.rng.uniform(1e-10, 1.0, self.noise_shape))).astype(np.float32)
        return self.rng.standard_normal(self.noise_shape).astype(np.float32)

    # ----------------------------------------------------------------------------------------------------------
    # Collecting
    # ----------------------------------------------------------------------------------------------------------
    def _track_episodes(self, rewards: np.ndarray, dones: np.ndarray, info: Optional[Dict[str, Any]] = None
                        ) -> None:
        self._episode_return += rewards
        self._episode_length += 1
        if self.whole_games:  # the wrappers' RecordEpisodeStatistics: whole games, unclipped, unshaped
            final = (info or {}).get("final_info", {})
            if "episode" in final:
                for i in np.flatnonzero(final["_episode"]):
                    self.recent_returns.append(float(final["episode"]["r"][i]))
                    self.recent_lengths.append(int(final["episode"]["l"][i]))
                    self.episodes += 1
            dones = dones.astype(bool)
            self._episode_return[dones] = 0.0
            self._episode_length[dones] = 0
            return
        for i in np.flatnonzero(dones):
            self.recent_returns.append(float(self._episode_return[i]))
            self.recent_lengths.append(int(self._episode_length[i]))
            self.episodes += 1
        self._episode_return[dones] = 0.0
        self._episode_length[dones] = 0

    def _bootstrap_truncated(self, rewards: np.ndarray, next_obs: np.ndarray, truncated: np.ndarray,
                             terminated: np.ndarray, info: Dict[str, Any]) -> np.ndarray:
        """Time-limit ends are not failures: add gamma * V(final observation) to their reward."""
        cut = truncated & ~terminated
        if not cut.any():
            return rewards
        final = np.array(self.encoder(next_obs))  # a copy (image frames are not); rows that did not end keep
        # any observation: a fixed compiled shape
        for i in np.flatnonzero(cut):
            final[i] = self.encoder(np.asarray(info["final_obs"][i])[None])[0]  # Discrete obs arrive as ints
        values = self.agent.value(self.obs_norm(final))
        return rewards + self.settings.ppo.gamma * values * cut

    def collect(self) -> np.ndarray:
        """Fill the rollout buffer; return the values of the observations after its last step (N,)."""
        self.agent.begin_rollout()
        for t in range(self.settings.ppo.rollout_steps):
            encoded = self.encoder(self._obs)
            obs = self.obs_norm(encoded, update=True)
            action, log_prob, value = self.agent.act(obs, self._noise())
            next_obs, rewards, terminated, truncated, info = self.envs.step(self.to_env_action(action))
            dones = terminated | truncated
            self._track_episodes(rewards, dones, info)
            scaled = self.reward_scaler(rewards, dones)
            scaled = self._bootstrap_truncated(scaled, next_obs, truncated, terminated, info)
            self.buffer.add(t, obs, action, log_prob, value, scaled, dones)
            self._obs = next_obs
            self.global_step += self.envs.num_envs * self.worker.world_size
        self.obs_norm.sync()
        return self.agent.value(self.obs_norm(self.encoder(self._obs)))

    # ----------------------------------------------------------------------------------------------------------
    # Learning
    # ----------------------------------------------------------------------------------------------------------
    def learn(self, last_values: np.ndarray, progress: float) -> Dict[str, float]:
        """GAE over the buffer, then the PPO epochs. ``progress`` in [0, 1) drives learning-rate annealing (and
        clip-range annealing with ``ppo.anneal_clip_range``)."""
        cfg = self.settings.ppo
        advantages, returns = compute_gae(self.buffer.rewards, self.buffer.values, self.buffer.dones,
                                          last_values, cfg.gamma, cfg.gae_lambda)
        learning_rate = cfg.learning_rate * (1.0 - progress) if cfg.anneal_lr else cfg.learning_rate
        self.agent.set_learning_rate(learning_rate)
        clip_range = cfg.clip_range * (1.0 - progress) if cfg.anneal_clip_range else cfg.clip_range
        stats = self.agent.update(self.buffer.flatten(advantages, returns), self.rng, clip_range)
        var_returns = returns.var()
        explained = float("nan") if var_returns == 0 else 1.0 - (returns - self.buffer.values).var() / var_returns
        metrics = {f"{'precision' if name in PRECISION_STAT_NAMES else 'losses'}/{name}": value
                   for name, value in stats.items()}
        metrics["losses/explained_variance"] = float(explained)
        metrics["charts/learning_rate"] = learning_rate
        metrics["charts/clip_range"] = clip_range
        return metrics

    # ----------------------------------------------------------------------------------------------------------
    # The loop
    # ----------------------------------------------------------------------------------------------------------
    def train(self, total_steps: Optional[int] = None) -> Dict[str, Any]:
        """Train until ``total_steps`` (default: settings.train.total_steps); evaluate; write result.json.

        SIGINT/SIGTERM stop the run after the current iteration with a checkpoint (``interrupted`` in the result).
        :raises TrainingDiverged: after ``train.max_bad_updates`` consecutive non-finite updates.
        """
        total_steps = total_steps or self.settings.train.total_steps
        batch = self.settings.ppo.batch_size * self.worker.world_size  # steps per iteration, all workers
        iterations = max(1, -(-total_steps // batch))  # ceil: never train on fewer steps than asked
        if self._obs is None:
            self._obs, _ = self.envs.reset(seed=self._env_seed())
        for callback in self.callbacks:
            callback.on_train_begin(self)
        start = time.perf_counter()
        start_step = self.global_step
        metrics: Dict[str, Any] = {}
        with self._stop_on_signals():
            while self.iteration < iterations and not self._stop_requested():
                last_values = self.collect()
                snapshot = self._parameter_snapshot()
                metrics = self.learn(last_values, self.iteration / iterations)
                self._guard(metrics, snapshot)
                self.iteration += 1
                wall = time.perf_counter() - start
                metrics.update({
                    "iteration": self.iteration, "global_step": self.global_step, "wall_seconds": wall,
                    "charts/SPS": (self.global_step - start_step) / max(wall, 1e-9),
                    "charts/episodic_return": float(np.mean(self.recent_returns)) if self.recent_returns else None,
                    "charts/episodic_length": float(np.mean(self.recent_lengths)) if self.recent_lengths else None,
                })
                for callback in self.callbacks:
                    callback.on_iteration_end(self, metrics)
                self._stop_if_diverged()  # after the callbacks: the failing iteration is logged too
        wall = time.perf_counter() - start
        for callback in self.callbacks:
            callback.on_train_end(self, metrics)
        if self.stop_signal is not None:
            name = signal.Signals(self.stop_signal).name
            self.log(f"{name} received: stopped at step {self.global_step}; checkpoint {self.last_checkpoint}")
            return {"interrupted": name, "total_steps": self.global_step, "checkpoint": self.last_checkpoint}
        if not self.worker.is_main:  # rank 0 evaluates and reports for the whole job
            return {"total_steps": self.global_step, "rank": self.worker.rank}
        returns = self.evaluate()
        return self._write_result(returns, wall, self.global_step - start_step)

    # ----------------------------------------------------------------------------------------------------------
    # Stopping cleanly: signals and the numerical guard
    # ----------------------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _stop_on_signals(self) -> Iterator[None]:
        """SIGINT/SIGTERM ask the loop to stop after the current iteration; a second one stops at once.

        While a graph runs, MindSpore 2.10's own SIGINT handler turns Ctrl-C into SIGTERM (checked), so a
        Ctrl-C is usually reported as SIGTERM; both stop the same way.
        """
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def request_stop(signum, frame):
            self.stop_signal = signum
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _stop_requested(self) -> bool:
        """Data-parallel, the workers agree (any worker's signal stops all at the same iteration)."""
        if self._stop_vote is None:
            return self.stop_signal is not None
        mean, _, _ = self._stop_vote(np.array([[float(self.stop_signal is not None)]]))
        if mean[0] > 0 and self.stop_signal is None:
            self.stop_signal = signal.SIGTERM
        return self.stop_signal is not None

    def _parameter_snapshot(self) -> List[np.ndarray]:
        return [param.asnumpy().copy() for param in self.agent.net.trainable_params()]

    def _guard(self, metrics: Dict[str, Any], snapshot: List[np.ndarray]) -> None:
        """Count updates that changed nothing (every step skipped) or left non-finite weights (undone here)."""
        skipped = float(metrics.get("precision/skipped_steps", self.skipped_steps))
        all_skipped = skipped - self.skipped_steps >= metrics["losses/epochs"] * self.settings.ppo.num_minibatches
        self.skipped_steps = skipped
        params = self.agent.net.trainable_params()
        finite = all(np.isfinite(param.asnumpy()).all() for param in params)
        if not finite:
            self.agent.set_weights(snapshot)
        self.bad_updates = self.bad_updates + 1 if (all_skipped or not finite) else 0

    def _stop_if_diverged(self) -> None:
        limit = self.settings.train.max_bad_updates
        if self.bad_updates >= limit:
            raise TrainingDiverged(
                f"training stopped at step {self.global_step}: {limit} updates in a row had non-finite losses, "
                f"gradients or weights (check the environment's observations and rewards for nan/inf); "
                f"last good checkpoint: {self.last_checkpoint or 'none yet'}")

    @property
    def healthy(self) -> bool:
        """False while updates are failing: no checkpoint is written then, so the last good one is kept."""
        return self.bad_updates == 0

    def _env_seed(self) -> int:
        """Env i of worker r starts from seed + r * 100003 + i: no two environments share a seed."""
        return self.settings.train.seed + 100_003 * self.worker.rank

    def evaluate(self, episodes: Optional[int] = None) -> np.ndarray:
        """Deterministic returns over ``episodes`` separate episodes (default settings.train.eval_episodes)."""
        train = self.settings.train
        env = self.settings.env
        kwargs = env.kwargs if env.eval_kwargs is None else env.eval_kwargs
        self.eval_info = {}
        return evaluate(self.deterministic_policy, self.env_id, kwargs, episodes or train.eval_episodes,
                        seed=train.seed + EVAL_SEED_OFFSET, wrappers=env.wrappers, episode_info=self.eval_info)

    def _write_result(self, returns: np.ndarray, wall: float, steps: int) -> Dict[str, Any]:
        runtime = self.settings.runtime
        result = {
            "eval_return_mean": float(returns.mean()), "eval_return_std": float(returns.std()),
            "eval_episodes": int(returns.size), "total_steps": int(self.global_step),
            "wall_seconds": round(wall, 3), "sps": round(steps / max(wall, 1e-9), 1),
            "seed": self.settings.train.seed, "env_id": self.env_id,
            "precision_mode": runtime.precision_mode, "device_target": runtime.device_target,
            "iterations": self.iteration, "episodes": self.episodes, "worker_num": self.worker.world_size,
        }
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

    # ----------------------------------------------------------------------------------------------------------
    # Checkpoints
    # ----------------------------------------------------------------------------------------------------------
    def save_checkpoint(self) -> str:
        """Weights, optimiser state and everything the loop needs to continue exactly (see ``restore``)."""
        settings = self.settings.to_dict()
        meta = {
            "global_step": self.global_step, "iteration": self.iteration, "episodes": self.episodes,
            "env_id": self.env_id, "settings": settings, "config_hash": checkpoint.settings_hash(settings),
            "worker_num": self.worker.world_size, "obs_norm": _jsonable(self.obs_norm.stats.state()),
            "reward_norm": _jsonable(self.reward_scaler.stats.state()),
            "rng": self.rng.bit_generator.state, "recent_returns": list(self.recent_returns),
            "recent_lengths": list(self.recent_lengths), "skipped_steps": self.skipped_steps,
        }
        state = pickle.dumps({
            "envs": save_env_state(self.envs), "obs": self._obs, "episode_return": self._episode_return,
            "episode_length": self._episode_length, "reward_returns": self.reward_scaler.returns})
        self.last_checkpoint = checkpoint.save(os.path.join(self.output_dir, "ckpt"), self.global_step,
                                               self.agent.checkpoint_parameters(), meta, state)
        return self.last_checkpoint

    def restore(self, path: str) -> str:
        """Continue from a checkpoint: weights, optimiser, normalisation, counters, the sampling RNG and, for
        in-process environments with the same worker count, the environments mid-episode, so the run goes on as
        if it had not stopped. Otherwise the environments start new episodes (a notice says so).

        :return: the checkpoint file loaded.
        """
        ckpt, meta = checkpoint.load(path, self.agent.checkpoint_parameters(), optional=("update.",))
        if meta.get("env_id", self.env_id) != self.env_id:
            raise UserInputError(f"checkpoint {ckpt} was trained on {meta['env_id']}, not {self.env_id}")
        for change in checkpoint.settings_diff(meta.get("settings", {}), self.settings.to_dict()):
            self.log(f"notice: resuming with a changed setting: {change}")
        self.global_step, self.iteration = int(meta["global_step"]), int(meta["iteration"])
        self.episodes = int(meta.get("episodes", 0))
        self.skipped_steps = float(meta.get("skipped_steps", 0.0))
        self.obs_norm.stats.load(meta["obs_norm"])
        self.reward_scaler.stats.load(meta["reward_norm"])
        self.recent_returns.extend(meta.get("recent_returns", []))
        self.recent_lengths.extend(meta.get("recent_lengths", []))
        self.last_checkpoint = ckpt
        same_workers = int(meta.get("worker_num", 1)) == self.worker.world_size
        if self.worker.is_main and same_workers:
            self.rng.bit_generator.state = meta["rng"]
        else:  # another worker's stream, or a new worker layout: a fresh stream for this worker and iteration
            self.rng = np.random.default_rng([self.settings.train.seed, self.worker.rank, self.iteration])
        state_path = ckpt[:-len(".ckpt")] + ".state.pkl"
        if same_workers and self.worker.is_main and os.path.exists(state_path):
            with open(state_path, "rb") as handle:
                state = pickle.load(handle)
            if load_env_state(self.envs, state["envs"]):
                self._obs = state["obs"]
                self._episode_return, self._episode_length = state["episode_return"], state["episode_length"]
                self.reward_scaler.returns = state["reward_returns"]
                return ckpt
        self.log("notice: the environments start new episodes (their state is restored only for in-process "
                 "environments, rank 0, and the same worker count)")
        self._obs, _ = self.envs.reset(seed=self._env_seed() + self.iteration * self.envs.num_envs)
        return ckpt


def _jsonable(state: Dict[str, np.ndarray]) -> Dict[str, Any]:
    return {key: np.asarray(value).tolist() for key, value in state.items()}

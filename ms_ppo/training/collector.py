"""The Collector: steps the environments with the current policy and turns one rollout into a RolloutBatch."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import gymnasium as gym
import numpy as np

from ms_ppo.algo import PPOAgent, RolloutBatch, compute_gae
from ms_ppo.config import PPOSettings
from ms_ppo.envs import ActionAdapter, ObservationEncoder, ObservationNormalizer, RewardScaler
from ms_ppo.errors import EnvironmentFailed
from ms_ppo.training.buffer import RolloutBuffer
from ms_ppo.training.state import TrainerState


class Collector:
    """Envs + policy -> a rollout of ``rollout_steps`` vector steps, with GAE advantages.

    Reads and advances the loop's state (observations, episode bookkeeping, step counter, sampling RNG); holds
    nothing of its own between rollouts except the preallocated buffer.

    :param envs: the collection vector env (N environments on this worker).
    :param agent: acts (``act``) and bootstraps (``value``).
    :param encoder: raw observations -> network inputs.
    :param obs_norm: observation normalisation (its statistics are the state's ``obs_norm``).
    :param reward_scaler: reward scaling (its statistics are the state's ``reward_norm``).
    :param whole_games: pixel wrapper sets: count episodes from the wrappers' whole-game statistics (raw score)
        instead of the learner's per-life, clipped ones.
    :param world_size: data-parallel replicas collecting at once; each step counts ``N * world_size`` environment
        steps.
    :param job_envs: an actor of a job whose environments act as one vector env (MultiActorSingleLearnerDP): the
        sampling noise is drawn for all ``job_envs`` of them and this collector takes the rows from ``env_offset``
        on, so the job draws exactly what one process with every environment would.
    """

    def __init__(self, envs: gym.vector.VectorEnv, agent: PPOAgent, cfg: PPOSettings, encoder: ObservationEncoder,
                 obs_norm: ObservationNormalizer, reward_scaler: RewardScaler, whole_games: bool = False,
                 world_size: int = 1, job_envs: Optional[int] = None, env_offset: int = 0):
        self.envs = envs
        self.agent = agent
        self.cfg = cfg
        self.encoder = encoder
        self.obs_norm = obs_norm
        self.reward_scaler = reward_scaler
        self.whole_games = whole_games
        self.world_size = world_size
        space = envs.single_action_space
        self.discrete = isinstance(space, gym.spaces.Discrete)
        action_shape = () if self.discrete else tuple(space.shape)
        num_envs = envs.num_envs
        self.noise_shape = (job_envs or num_envs, int(space.n) if self.discrete else int(space.shape[0]))
        self.noise_rows = slice(env_offset, env_offset + num_envs)
        self.to_env_action = ActionAdapter(space)
        self.buffer = RolloutBuffer(cfg.rollout_steps, num_envs, encoder.shape, action_shape, encoder.dtype)
        self.step_in_rollout = 0  # vector step within the current rollout
        self.finished: List[Tuple[int, int, float, int]] = []  # this rollout's episodes: (step, env, return, length)

    def reset(self, state: TrainerState, seed: int) -> None:
        """Start new episodes in every environment (env i from ``seed + i``)."""
        state.obs, _ = self.envs.reset(seed=seed)

    def _noise(self, rng: np.random.Generator) -> np.ndarray:
        if self.discrete:  # Gumbel(0, 1) noise: argmax(logits + noise) samples the categorical
            noise = -np.log(-np.log(rng.uniform(1e-10, 1.0, self.noise_shape))).astype(np.float32)
        else:
            noise = rng.standard_normal(self.noise_shape).astype(np.float32)
        return noise[self.noise_rows]

    def _episode_ended(self, state: TrainerState, env: int, episode_return: float, length: int) -> None:
        state.add_episode(episode_return, length)
        self.finished.append((self.step_in_rollout, env, episode_return, length))

    def rollout_metrics(self) -> Dict[str, float]:
        """Metrics of the last rollout beyond the episodes (a remote collector reports its policy lag)."""
        return {}

    def _track_episodes(self, state: TrainerState, rewards: np.ndarray, dones: np.ndarray,
                        info: Optional[Dict[str, Any]] = None) -> None:
        state.episode_return += rewards
        state.episode_length += 1
        if self.whole_games:  # the wrappers' RecordEpisodeStatistics: whole games, unclipped, unshaped
            final = (info or {}).get("final_info", {})
            if "episode" in final:
                for i in np.flatnonzero(final["_episode"]):
                    self._episode_ended(state, int(i), float(final["episode"]["r"][i]), int(final["episode"]["l"][i]))
            dones = dones.astype(bool)
        else:
            for i in np.flatnonzero(dones):
                self._episode_ended(state, int(i), float(state.episode_return[i]), int(state.episode_length[i]))
        state.episode_return[dones] = 0.0
        state.episode_length[dones] = 0

    def bootstrap_truncated(self, rewards: np.ndarray, next_obs: np.ndarray, truncated: np.ndarray,
                            terminated: np.ndarray, info: Dict[str, Any]) -> np.ndarray:
        """Time-limit ends are not failures: add gamma * V(final observation) to their reward (N,)."""
        cut = truncated & ~terminated
        if not cut.any():
            return rewards
        final = np.array(self.encoder(next_obs))  # a copy (image frames are not); rows that did not end keep
        # any observation: a fixed compiled shape
        for i in np.flatnonzero(cut):
            final[i] = self.encoder(np.asarray(info["final_obs"][i])[None])[0]  # Discrete obs arrive as ints
        values = self.agent.value(self.obs_norm(final))
        return rewards + self.cfg.gamma * values * cut

    def check_finite(self, obs: Any, rewards: np.ndarray, info: Dict[str, Any]) -> None:
        """A nan/inf reward or observation (the last one of an episode too) stops the run before it reaches the
        statistics or a checkpoint."""
        bad_rewards = ~np.isfinite(rewards)
        bad_obs = np.zeros_like(bad_rewards)
        if isinstance(obs, np.ndarray) and np.issubdtype(obs.dtype, np.floating):  # images and ints are finite
            bad_obs = ~np.isfinite(obs.reshape(len(rewards), -1)).all(axis=1)
            for i in np.flatnonzero(info.get("_final_obs", ())):
                bad_obs[i] |= not np.isfinite(np.asarray(info["final_obs"][i], dtype=np.float64)).all()
        if bad_rewards.any() or bad_obs.any():
            index = int(np.flatnonzero(bad_rewards | bad_obs)[0])
            what = f"reward {rewards[index]}" if bad_rewards[index] else "observation with nan/inf entries"
            raise EnvironmentFailed(f"env {index} returned a non-finite {what}")

    def collect(self, state: TrainerState) -> RolloutBatch:
        """One rollout from ``state.obs`` on; returns it flattened with its advantages and returns."""
        self.run_steps(state)
        return self.finish(self.buffer, self.bootstrap_inputs(state))

    def bootstrap_inputs(self, state: TrainerState) -> np.ndarray:
        """The network inputs (N, ...) after the last step, whose values bootstrap the advantages."""
        return self.obs_norm(self.encoder(state.obs))

    def finish(self, buffer: RolloutBuffer, inputs: np.ndarray) -> RolloutBatch:
        """GAE over a filled buffer, bootstrapped from the values of ``inputs``; the rollout flattened."""
        last_values = self.agent.value(inputs)
        advantages, returns = compute_gae(buffer.rewards, buffer.values, buffer.dones, last_values, self.cfg.gamma,
                                          self.cfg.gae_lambda)
        return buffer.flatten(advantages, returns)

    def run_steps(self, state: TrainerState) -> None:
        """Fill the buffer with ``rollout_steps`` vector steps from ``state.obs`` on; fold the statistics."""
        with self.agent.rollout():
            self._fill(state)
        self.obs_norm.sync()
        self.reward_scaler.sync()

    def _fill(self, state: TrainerState) -> None:
        buffer = self.buffer
        self.finished = []
        for t in range(self.cfg.rollout_steps):
            self.step_in_rollout = t
            obs = self.obs_norm(self.encoder(state.obs), update=True)
            action, log_prob, value = self.agent.act(obs, self._noise(state.rng))
            next_obs, rewards, terminated, truncated, info = self.envs.step(self.to_env_action(action))
            self.check_finite(next_obs, rewards, info)
            dones = terminated | truncated
            self._track_episodes(state, rewards, dones, info)
            scaled, state.reward_returns = self.reward_scaler(rewards, dones, state.reward_returns)
            scaled = self.bootstrap_truncated(scaled, next_obs, truncated, terminated, info)
            buffer.add(t, obs, action, log_prob, value, scaled, dones)
            state.obs = next_obs
            state.global_step += self.envs.num_envs * self.world_size

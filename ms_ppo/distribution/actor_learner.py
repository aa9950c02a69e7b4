"""MultiActorSingleLearnerDP and AsyncMultiActorSingleLearnerDP: actor ranks collect, rank 0 learns.

Each iteration the ranks meet in two collectives over a Channel: the learner broadcasts its weights (and the
normalisation statistics), the actors gather their rollouts to it.

- Sync: broadcast, then gather. Every rollout is collected with the newest weights (policy lag 0), and the job
  is one process with all the actors' environments: the sampling noise comes from one stream (the learner sends
  its generator's state, every actor draws the whole job's noise and keeps its rows, actor 1 sends the state
  back), env i of the job starts from seed + i, and the learner puts the actors' steps in its buffer's columns
  for their environments and computes the advantages there, bootstrapped on all environments at once. With
  observation and reward normalisation off, the parameters are bit-identical to one process's
  (tests/test_actor_learner.py, discrete and Gaussian). Two things make it approximate: with normalisation on,
  the statistics are frozen during a rollout and merged at its end (as under DataParallelDP); and an episode
  cut by a time limit is bootstrapped by its actor on its own rows, where a compiled value may round
  differently than on all rows.
- Async: gather, then broadcast. The actors start the next rollout with the weights they just received while
  the learner updates on the last one, so a rollout is one update behind (policy lag 1, reported each iteration
  as ``charts/policy_lag``). Each rollout carries the log-probabilities it was collected with (the behaviour
  policy). With ``ppo.off_policy_correction: decoupled`` (the default) the learner's update clips the ratio
  around its own policy at the start of the update and weights each transition by that policy's probability over
  the behaviour policy's (ms_ppo.algo.agent.PPOAgent.decoupled_inputs), so the full ratio to the behaviour policy
  is still what corrects for the lag; ``none`` clips around the behaviour policy. Each actor has its own noise
  stream.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import gymnasium as gym
import numpy as np

from ms_ppo.algo import PPOAgent, RolloutBatch
from ms_ppo.config import Settings
from ms_ppo.distribution.placement import Placement
from ms_ppo.distribution.remote_envs import EnvSpaces
from ms_ppo.envs import RewardScaler, observation_pipeline
from ms_ppo.training import Collector, TrainerState
from ms_ppo.training.signals import StopRequest

ACTOR_SEED_STRIDE = 7919  # async actor r draws its noise from (seed, 7919 r): streams that do not overlap


class LocalMoments:
    """An actor's normaliser ``merge``: the moments of its own rollout (float64), kept to send to the learner;
    the learner folds every actor's into the job's statistics and sends them back with the next weights."""

    def __init__(self):
        self.moments = None

    def __call__(self, batch: np.ndarray):
        data = batch.astype(np.float64)
        self.moments = (data.mean(0), data.var(0), float(data.shape[0]))
        return self.moments


class ActorLearnerCollector:
    """The learner's collector: it sends the current weights to the actor ranks and returns their rollouts as
    one batch, with the job's step count, episodes and statistics folded into the loop's state.

    :param channel: the job's Channel (rank 0 of it).
    :param overlap: Async: gather first, then send the weights the actors use next.
    :param stop: the trainer's stop request: an actor that received SIGINT/SIGTERM stops the job through it.
    :param local: the learner's own Collector over all the job's environments (EnvSpaces): its buffer receives
        the actors' steps, in their environments' columns, and its ``finish`` computes the advantages, so the
        values that bootstrap them are computed on all environments at once, as in one process.
    """

    def __init__(self, channel, overlap: bool, stop: StopRequest, local: Collector):
        self.channel, self.overlap, self.stop, self.local = channel, overlap, stop, local
        self.started = False  # Async: the first weights went out
        self.reset_seed: Optional[int] = None  # sent with the next weights: the actors start new episodes
        self.lag = 0
        self.closed = False

    def reset(self, state: TrainerState, seed: int) -> None:
        """The actors start new episodes from ``seed`` (env i of the job from seed + i) before their next rollout."""
        self.reset_seed = seed
        state.obs = np.zeros(0)  # the actors hold the observations

    def _message(self, state: TrainerState) -> Dict[str, Any]:
        message = {"stop": False, "version": state.iteration, "reset_seed": self.reset_seed,
                   "weights": [param.asnumpy() for param in self.local.agent.net.trainable_params()],
                   "obs_norm": state.obs_norm.state(), "reward_norm": state.reward_norm.state(),
                   "rng": state.rng.bit_generator.state}
        self.reset_seed = None
        return message

    def collect(self, state: TrainerState) -> RolloutBatch:
        if not self.overlap or not self.started:
            self.channel.broadcast(self._message(state))
            self.started = True
        parts = self.channel.gather(None)[1:]
        if self.overlap:
            self.channel.broadcast(self._message(state))
        return self._merge(state, parts)

    def _merge(self, state: TrainerState, parts: List[Dict[str, Any]]) -> RolloutBatch:
        episodes = sorted(episode for part in parts for episode in part["episodes"])  # by (step, job env index)
        for _, _, episode_return, length in episodes:
            state.add_episode(episode_return, length)
        state.global_step += sum(part["steps"] for part in parts)
        for part in parts:
            if part["obs_moments"] is not None:
                state.obs_norm.update_from_moments(*part["obs_moments"])
            if part["reward_moments"] is not None:
                state.reward_norm.update_from_moments(*part["reward_moments"])
        if not self.overlap:  # the job's noise stream continues where the actors' draws left it
            state.rng.bit_generator.state = parts[0]["rng"]
        self.lag = state.iteration - min(part["version"] for part in parts)
        signals = [part["signal"] for part in parts if part["signal"] is not None]
        if signals and self.stop.signal is None:
            self.stop.signal = signals[0]
        buffer, first = self.local.buffer, 0
        for part in parts:  # actor a's environments are the job's columns [first, first + n_a)
            for name, column in part["columns"].items():
                getattr(buffer, name)[:, first:first + column.shape[1]] = column
            first += part["columns"]["rewards"].shape[1]
        return self.local.finish(buffer, np.concatenate([part["last_inputs"] for part in parts]))

    def rollout_metrics(self) -> Dict[str, float]:
        return {"charts/policy_lag": float(self.lag)}

    def close(self) -> None:
        """Tell the actors to stop (Async: after taking the rollout they are collecting)."""
        if self.closed:
            return
        self.closed = True
        if self.overlap and self.started:
            self.channel.gather(None)
        self.channel.broadcast({"stop": True})


class ActorRank:
    """An actor rank: collects rollouts with the weights the learner sends until it says stop.

    :param envs: this rank's ``ppo.num_envs`` environments.
    :param job_envs: the environments of all actors (sync: the noise is drawn for all of them).
    """

    def __init__(self, settings: Settings, agent: PPOAgent, envs: gym.vector.VectorEnv, placement: Placement,
                 channel, job_envs: int):
        self.settings, self.agent, self.envs, self.placement, self.channel = settings, agent, envs, placement, channel
        cfg, norm = settings.ppo, settings.normalize
        self.obs_moments, self.reward_moments = LocalMoments(), LocalMoments()
        encoder, obs_norm = observation_pipeline(envs.single_observation_space, agent.net.image_input, norm,
                                                 self.obs_moments)
        seed = settings.train.seed
        self.state = TrainerState.new(seed if not placement.overlap else (seed, ACTOR_SEED_STRIDE * placement.rank),
                                      envs.num_envs, obs_norm.stats)
        reward_scaler = RewardScaler(cfg.gamma, norm.rewards, norm.clip_reward, self.state.reward_norm,
                                     self.reward_moments)
        shared_noise = dict(job_envs=job_envs, env_offset=placement.env_offset) if not placement.overlap else {}
        self.collector = Collector(envs, agent, cfg, encoder, obs_norm, reward_scaler,
                                   whole_games=settings.env.wrappers != "none", **shared_noise)
        self.stop = StopRequest()
        self.steps = 0

    def _apply(self, message: Dict[str, Any]) -> None:
        state = self.state
        self.agent.set_weights(message["weights"])
        state.obs_norm.load(message["obs_norm"])
        state.reward_norm.load(message["reward_norm"])
        if not self.placement.overlap:
            state.rng.bit_generator.state = message["rng"]
        if message["reset_seed"] is not None:
            self.collector.reset(state, message["reset_seed"] + self.placement.env_offset)
            state.episode_return[:] = 0.0
            state.episode_length[:] = 0
            state.reward_returns[:] = 0.0

    def _rollout(self, message: Dict[str, Any]) -> Dict[str, Any]:
        self._apply(message)
        self.obs_moments.moments = self.reward_moments.moments = None
        self.collector.run_steps(self.state)
        steps = self.envs.num_envs * self.settings.ppo.rollout_steps
        self.steps += steps
        offset = self.placement.env_offset
        return {"columns": self.collector.buffer.columns(), "last_inputs": self.collector.bootstrap_inputs(self.state),
                "steps": steps, "version": message["version"],
                "episodes": [(t, offset + env, r, length) for t, env, r, length in self.collector.finished],
                "obs_moments": self.obs_moments.moments, "reward_moments": self.reward_moments.moments,
                "rng": self.state.rng.bit_generator.state, "signal": self.stop.signal}

    def train(self) -> Dict[str, Any]:
        """Collect until the learner says stop; return this rank's step count."""
        channel = self.channel
        with self.stop.listening():
            message = channel.broadcast() if self.placement.overlap else None
            while True:
                if not self.placement.overlap:
                    message = channel.broadcast()
                if message["stop"]:
                    break
                channel.gather(self._rollout(message))
                if self.placement.overlap:
                    message = channel.broadcast()
        return {"total_steps": self.steps, "rank": self.placement.rank}


def attach_actors(trainer, channel, placement: Placement) -> None:
    """Make ``trainer`` (rank 0, built on EnvSpaces) learn from the actor ranks' rollouts."""
    collector = ActorLearnerCollector(channel, placement.overlap, trainer.stop, trainer.collector)
    trainer.collector = collector
    assert isinstance(trainer.envs, EnvSpaces)
    trainer.envs.on_close = collector.close

"""Environments: making them (ids, aliases, pixel wrapper sets), encoding their observations and actions,
normalising them, and saving their state mid-episode."""

from ms_ppo.envs.encoding import ActionAdapter, ObservationEncoder, action_dims
from ms_ppo.envs.make import make_env, make_vector_env, resolve_env_id
from ms_ppo.envs.normalize import ObservationNormalizer, RewardScaler, RunningMeanStd, observation_pipeline
from ms_ppo.envs.state import load_env_state, save_env_state

__all__ = ["ActionAdapter", "ObservationEncoder", "ObservationNormalizer", "RewardScaler", "RunningMeanStd",
           "action_dims", "load_env_state", "make_env", "make_vector_env", "observation_pipeline", "resolve_env_id",
           "save_env_state"]

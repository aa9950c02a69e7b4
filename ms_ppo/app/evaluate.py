"""Evaluating a checkpoint (``eval.py``): its settings, the same network and observation pipeline as training,
deterministic episodes, optionally a video or a window."""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

import gymnasium as gym
import numpy as np

from ms_ppo.app.assembly import EvaluationPolicy, evaluation_policy, run_env_id, set_up_device
from ms_ppo.config import Settings, load_settings, settings_from_dict
from ms_ppo.errors import UserInputError
from ms_ppo.evaluation import EVAL_SEED_OFFSET, evaluate
from ms_ppo.training import checkpoint
from ms_ppo.video import check_video_path, record_episode, write_video


def checkpoint_settings(path: str, meta: Dict[str, Any], env_yaml: Optional[str], algo_yaml: Optional[str],
                        overrides: Optional[Dict[str, Any]]) -> Settings:
    """The settings saved with a checkpoint, unless YAMLs are given (then those)."""
    if env_yaml is None and algo_yaml is None and "settings" in meta:
        return settings_from_dict(meta["settings"], overrides, source=path)
    if env_yaml is None:
        raise UserInputError(f"{path} has no saved settings: pass --env_yaml (and --algo_yaml) it was trained with")
    return load_settings(env_yaml, algo_yaml, overrides)


def checkpoint_policy(ckpt: str, env_yaml: Optional[str] = None, algo_yaml: Optional[str] = None,
                      overrides: Optional[Dict[str, Any]] = None, log: Callable[[str], None] = print,
                      env: Optional[Callable[..., gym.Env]] = None
                      ) -> Tuple[EvaluationPolicy, Settings, str, str]:
    """The deterministic policy of a checkpoint, weights and normalisation statistics loaded (what eval and export
    run): (policy, settings, env id, the .ckpt loaded)."""
    path = checkpoint.resolve(ckpt, log)
    meta = checkpoint.read_meta(path)
    settings = checkpoint_settings(path, meta, env_yaml, algo_yaml, overrides)
    set_up_device(settings)
    env_id = run_env_id(settings, log, env)
    policy = evaluation_policy(settings, env_id, log)
    checkpoint.load(path, checkpoint.named_parameters({"net": policy.net}))
    if "obs_norm" in meta:
        policy.obs_norm.stats.load(meta["obs_norm"])
    return policy, settings, env_id, path


def evaluate_checkpoint(ckpt: str, env_yaml: Optional[str] = None, algo_yaml: Optional[str] = None,
                        overrides: Optional[Dict[str, Any]] = None, episodes: int = 10,
                        log: Callable[[str], None] = print, video: Optional[str] = None,
                        render: Optional[str] = None, env: Optional[Callable[..., gym.Env]] = None) -> np.ndarray:
    """Load a checkpoint and return the deterministic returns of ``episodes`` episodes (episodes,).

    Without YAMLs the settings saved with the checkpoint are used, so the network and normalisation match.
    :param video: also record the first evaluation episode to this .gif/.mp4 file.
    :param render: ``human``: also play the first evaluation episode in a window.
    :param env: the Python callable the run was trained with (``PPOSession(env=...)``), if it was.
    """
    if video is not None:
        check_video_path(video)
    policy, settings, env_id, path = checkpoint_policy(ckpt, env_yaml, algo_yaml, overrides, log, env)
    env = settings.env
    log(f"Evaluating {path} on {env_id}")
    seed = settings.train.seed + EVAL_SEED_OFFSET
    returns = evaluate(policy.actor, env_id, env.evaluation_kwargs, episodes, seed=seed, wrappers=env.wrappers,
                       max_steps=settings.train.eval_max_steps)
    if render == "human":
        record_episode(policy.actor, env_id, env.evaluation_kwargs, seed, env.wrappers, render_mode="human")
    if video is not None:
        frames = record_episode(policy.actor, env_id, env.evaluation_kwargs, seed, env.wrappers)
        log(f"video of episode 1 ({len(frames)} frames) written to {write_video(frames, video)}")
    return returns

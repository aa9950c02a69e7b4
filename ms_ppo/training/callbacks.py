"""Callbacks the trainer calls after each iteration (one rollout + update), as in MindSpore Reinforcement: log,
evaluate, checkpoint, time, video. Writers of metrics (CSV, TensorBoard, plot, progress bar) are in loggers.py."""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Dict, Optional, Protocol

import numpy as np

from ms_ppo.config import Settings
from ms_ppo.evaluation import EVAL_SEED_OFFSET
from ms_ppo.video import record_episode, write_video


class TrainerView(Protocol):
    """What callbacks may read and call on the trainer (ms_ppo.training.trainer.PPOTrainer)."""

    settings: Settings
    env_id: str
    log: Callable[[str], None]
    deterministic_policy: Callable[[np.ndarray], np.ndarray]
    iteration: int
    iterations: int  # planned for this train() call
    global_step: int
    healthy: bool
    stop_signal: Optional[int]

    def evaluate(self, episodes: Optional[int] = None) -> np.ndarray: ...

    def save_checkpoint(self) -> str: ...

    def keep_if_best(self, eval_return: float) -> Optional[str]: ...


class Callback:
    """Hooks with no effect; subclasses override what they need."""

    def on_train_begin(self, trainer: TrainerView) -> None:
        pass

    def on_iteration_end(self, trainer: TrainerView, metrics: Dict[str, Any]) -> None:
        """After each iteration; ``metrics`` may be extended for the callbacks after this one."""

    def on_train_end(self, trainer: TrainerView, metrics: Dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        """After training, whether it ended or failed (a full disk, a diverged run): release files and threads."""


class LossCallback(Callback):
    """A log line every ``log_every`` iterations: iteration, steps, episodes, mean return of recent episodes and
    SPS; ``log_format="mindrl"`` prints MindSpore Reinforcement's "Episode N, loss is ..." line instead, for
    scripts that parse it."""

    def __init__(self, log_every: int = 1, log_format: str = "ms_ppo"):
        self.log_every = log_every
        self.log_format = log_format

    def on_iteration_end(self, trainer, metrics):
        if metrics["iteration"] % self.log_every and metrics["iteration"] != trainer.iterations:
            return
        reward = metrics.get("charts/episodic_return")
        if self.log_format == "mindrl":
            reward_text = "n/a" if reward is None else f"{reward:.3f}"
            trainer.log(f"Episode {metrics['iteration']}, steps {metrics['global_step']}, "
                        f"loss is {metrics['losses/loss']:.4f}, reward is {reward_text}, "
                        f"SPS {metrics['charts/SPS']:.0f}.")
            return
        reward_text = "n/a (no episode finished yet)" if reward is None else f"{reward:.2f}"
        trainer.log(f"iteration {metrics['iteration']}/{trainer.iterations}, steps {metrics['global_step']}, "
                    f"episodes {metrics['charts/episodes']}, mean return {reward_text}, "
                    f"SPS {metrics['charts/SPS']:.0f}")


class EvaluateCallback(Callback):
    """Deterministic evaluation every ``eval_every`` iterations (0: never during training); the best one's
    weights are kept in ``RUN_DIR/best``. The trainer evaluates the last iteration itself (the final
    evaluation), so that one is not run twice."""

    def __init__(self, eval_every: int):
        self.eval_every = eval_every

    def on_iteration_end(self, trainer, metrics):
        if "eval/return_mean" not in metrics and self.eval_every and metrics["iteration"] % self.eval_every == 0:
            returns = trainer.evaluate()
            metrics["eval/return_mean"] = float(returns.mean())
            trainer.keep_if_best(float(returns.mean()))
        if metrics.get("eval/return_mean") is not None:
            trainer.log(f"Evaluate result for episode {metrics['iteration']} total rewards is "
                        f"{metrics['eval/return_mean']:.3f}")


class CheckpointCallback(Callback):
    """Saves a checkpoint every ``save_every`` iterations and at the end of training."""

    def __init__(self, save_every: int):
        self.save_every = save_every

    def on_iteration_end(self, trainer, metrics):
        if self.save_every and metrics["iteration"] % self.save_every == 0 and trainer.healthy:
            trainer.save_checkpoint()

    def on_train_end(self, trainer, metrics):
        if trainer.healthy:
            metrics["checkpoint"] = trainer.save_checkpoint()


class TimeCallback(Callback):
    """Adds wall time per iteration to the metrics."""

    def __init__(self):
        self.last: Optional[float] = None

    def on_iteration_end(self, trainer, metrics):
        now = time.perf_counter()
        metrics["time/iteration_seconds"] = 0.0 if self.last is None else now - self.last
        self.last = now


class VideoCallback(Callback):
    """Before/after clips: one deterministic evaluation episode at the start and at the end of training,
    written to ``<output_dir>/videos/{before,after}.<gif|mp4>`` (``train.py --video``)."""

    def __init__(self, directory: str, video_format: str = "gif"):
        self.directory = directory
        self.video_format = video_format

    def _record(self, trainer, name: str) -> None:
        env = trainer.settings.env
        frames = record_episode(trainer.deterministic_policy, trainer.env_id, env.evaluation_kwargs,
                                trainer.settings.train.seed + EVAL_SEED_OFFSET, env.wrappers)
        os.makedirs(self.directory, exist_ok=True)
        path = write_video(frames, os.path.join(self.directory, f"{name}.{self.video_format}"))
        trainer.log(f"video ({len(frames)} frames) written to {path}")

    def on_train_begin(self, trainer):
        if trainer.iteration == 0:  # a resumed run already has its "before"
            self._record(trainer, "before")

    def on_train_end(self, trainer, metrics):
        if trainer.stop_signal is None:
            self._record(trainer, "after")

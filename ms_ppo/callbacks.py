"""Callbacks the trainer calls after each iteration (one rollout + update), as in MindSpore Reinforcement."""

from __future__ import annotations

import csv
import os
import time
from typing import TYPE_CHECKING, Any, Dict, Optional

if TYPE_CHECKING:
    from ms_ppo.trainer import PPOTrainer


class Callback:
    """Hooks with no effect; subclasses override what they need."""

    def on_train_begin(self, trainer: "PPOTrainer") -> None:
        pass

    def on_iteration_end(self, trainer: "PPOTrainer", metrics: Dict[str, Any]) -> None:
        pass

    def on_train_end(self, trainer: "PPOTrainer", metrics: Dict[str, Any]) -> None:
        pass


class LossCallback(Callback):
    """Prints the reference's log line every ``log_every`` iterations, with steps and SPS added."""

    def __init__(self, log_every: int = 1):
        self.log_every = log_every

    def on_iteration_end(self, trainer, metrics):
        if metrics["iteration"] % self.log_every:
            return
        reward = metrics.get("charts/episodic_return")
        reward_text = "n/a" if reward is None else f"{reward:.3f}"
        trainer.log(f"Episode {metrics['iteration']}, steps {metrics['global_step']}, "
                    f"loss is {metrics['losses/loss']:.4f}, reward is {reward_text}, "
                    f"SPS {metrics['charts/SPS']:.0f}.")


class EvaluateCallback(Callback):
    """Deterministic evaluation every ``eval_every`` iterations (0: never during training)."""

    def __init__(self, eval_every: int):
        self.eval_every = eval_every

    def on_iteration_end(self, trainer, metrics):
        if self.eval_every and metrics["iteration"] % self.eval_every == 0:
            returns = trainer.evaluate()
            metrics["eval/return_mean"] = float(returns.mean())
            trainer.log(f"Evaluate result for episode {metrics['iteration']} total rewards is {returns.mean():.3f}")


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


class CSVLogger(Callback):
    """Appends every iteration's metrics to ``<output_dir>/progress.csv``."""

    COLUMNS = ("iteration", "global_step", "wall_seconds", "charts/episodic_return", "charts/episodic_length",
               "charts/SPS", "charts/learning_rate", "losses/loss", "losses/policy_loss", "losses/value_loss",
               "losses/entropy", "losses/approx_kl", "losses/clipfrac", "losses/explained_variance",
               "losses/epochs", "eval/return_mean", "precision/skipped_steps", "precision/loss_scale")

    def __init__(self, path: str):
        self.path = path

    def on_train_begin(self, trainer):
        """A resumed run drops the rows written after its checkpoint, so each iteration appears once."""
        if trainer.iteration == 0 or not os.path.exists(self.path):
            return
        with open(self.path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        kept = rows[:1] + [row for row in rows[1:] if row and int(row[0]) <= trainer.iteration]
        with open(self.path, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(kept)

    def on_iteration_end(self, trainer, metrics):
        new = not os.path.exists(self.path)
        with open(self.path, "a", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(self.COLUMNS)
            writer.writerow(["" if metrics.get(c) is None else metrics[c] for c in self.COLUMNS])


class ProgressBar(Callback):
    """A tqdm bar over environment steps showing SPS and the mean return of recent episodes (ETA included)."""

    def __init__(self, total_steps: int, disable: Optional[bool] = None):
        self.total_steps = total_steps
        self.disable = disable  # None: draw only on a terminal
        self.bar = None

    def on_train_begin(self, trainer):
        from tqdm import tqdm

        self.bar = tqdm(total=self.total_steps, initial=trainer.global_step, unit="step", dynamic_ncols=True,
                        disable=self.disable, leave=False)

    def on_iteration_end(self, trainer, metrics):
        reward = metrics.get("charts/episodic_return")
        self.bar.set_postfix(SPS=f"{metrics['charts/SPS']:.0f}",
                             ret="n/a" if reward is None else f"{reward:.1f}", refresh=False)
        self.bar.update(metrics["global_step"] - self.bar.n)

    def on_train_end(self, trainer, metrics):
        self.bar.close()


class TensorBoardLogger(Callback):
    """Writes every numeric metric to TensorBoard event files in ``<output_dir>/tb`` (tensorboardX)."""

    def __init__(self, directory: str):
        self.directory = directory
        self.writer = None

    def on_train_begin(self, trainer):
        from tensorboardX import SummaryWriter

        self.writer = SummaryWriter(self.directory)

    def on_iteration_end(self, trainer, metrics):
        for key, value in metrics.items():
            if "/" in key and isinstance(value, (int, float)):
                self.writer.add_scalar(key, value, metrics["global_step"])

    def on_train_end(self, trainer, metrics):
        self.writer.close()


class LearningCurvePlot(Callback):
    """Writes ``learning_curve.png`` (episodic return and evaluations vs steps) from progress.csv after each
    evaluation during training and at the end. Put it after CSVLogger."""

    def __init__(self, csv_path: str, png_path: str):
        self.csv_path = csv_path
        self.png_path = png_path

    def _plot(self, trainer) -> None:
        from ms_ppo.plots import plot_learning_curves

        if os.path.exists(self.csv_path):
            plot_learning_curves({trainer.env_id: self.csv_path}, self.png_path)

    def on_iteration_end(self, trainer, metrics):
        if metrics.get("eval/return_mean") is not None:
            self._plot(trainer)

    def on_train_end(self, trainer, metrics):
        self._plot(trainer)


class VideoCallback(Callback):
    """Before/after clips: one deterministic evaluation episode at the start and at the end of training,
    written to ``<output_dir>/videos/{before,after}.<gif|mp4>`` (``train.py --video``)."""

    def __init__(self, directory: str, video_format: str = "gif"):
        self.directory = directory
        self.video_format = video_format

    def _record(self, trainer, name: str) -> None:
        from ms_ppo.trainer import EVAL_SEED_OFFSET
        from ms_ppo.video import record_episode, write_video

        env = trainer.settings.env
        kwargs = env.kwargs if env.eval_kwargs is None else env.eval_kwargs
        frames = record_episode(trainer.deterministic_policy, trainer.env_id, kwargs,
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

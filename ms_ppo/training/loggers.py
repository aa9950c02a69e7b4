"""Callbacks that write the metrics out: progress.csv, TensorBoard events, the learning-curve plot, a progress bar."""

from __future__ import annotations

import csv
import os
from typing import Optional

from ms_ppo.training.callbacks import Callback
from ms_ppo.training.plots import plot_learning_curves


class CSVLogger(Callback):
    """Appends every iteration's metrics to ``<output_dir>/progress.csv``."""

    COLUMNS = ("iteration", "global_step", "wall_seconds", "charts/episodic_return", "charts/episodic_length",
               "charts/SPS", "charts/learning_rate", "losses/loss", "losses/policy_loss", "losses/value_loss",
               "losses/entropy", "losses/approx_kl", "losses/clipfrac", "losses/explained_variance",
               "losses/epochs", "eval/return_mean", "precision/skipped_steps", "precision/loss_scale",
               "charts/policy_lag")

    def __init__(self, path: str):
        self.path = path

    def on_train_begin(self, trainer):
        """A resumed run drops the rows written after its checkpoint, so each iteration appears once."""
        if trainer.iteration == 0 or not os.path.exists(self.path):
            return
        with open(self.path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        # a file from an older version with fewer columns gets the current header, its rows padded
        pad = [""] * (len(self.COLUMNS) - len(rows[0])) if rows else []
        kept = [list(self.COLUMNS)] + [row + pad for row in rows[1:] if row and int(row[0]) <= trainer.iteration]
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
        self.close()

    def close(self):
        if self.bar is not None:
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
        self.close()

    def close(self):
        if self.writer is None:
            return
        writer, self.writer = self.writer, None
        try:
            writer.close()
        except OSError:  # a full disk: the final flush failed; stop tensorboardX's writer thread without it
            worker = getattr(getattr(writer.file_writer, "event_writer", None), "_worker", None)
            if worker is not None:
                worker.stop()


class LearningCurvePlot(Callback):
    """Writes ``learning_curve.png`` (episodic return and evaluations vs steps) from progress.csv after each
    evaluation during training and at the end. Put it after CSVLogger."""

    def __init__(self, csv_path: str, png_path: str):
        self.csv_path = csv_path
        self.png_path = png_path

    def _plot(self, trainer) -> None:
        if os.path.exists(self.csv_path):
            plot_learning_curves({trainer.env_id: self.csv_path}, self.png_path)

    def on_iteration_end(self, trainer, metrics):
        if metrics.get("eval/return_mean") is not None:
            self._plot(trainer)

    def on_train_end(self, trainer, metrics):
        self._plot(trainer)

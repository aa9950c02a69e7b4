"""Experiment tracking (``--track wandb|mlflow``): the metrics of every iteration, the settings, and at the end the
learning curve, the videos and the final evaluation, sent to Weights & Biases or MLflow.

Both clients are optional extras (``pip install 'ms_ppo[track]'``) and are configured as their users expect:
W&B by ``wandb login`` or ``WANDB_MODE=offline`` (files under ``RUN_DIR/wandb``); MLflow by
``MLFLOW_TRACKING_URI``, else a SQLite store ``mlflow.db`` beside the run directory with artifacts in ``mlruns/``
there (as ``tensorboard --logdir runs`` sees every run, so does ``mlflow ui --backend-store-uri
sqlite:///runs/mlflow.db``). A resumed run continues the same tracked run: its id is kept in
``RUN_DIR/tracking.json``.
"""

from __future__ import annotations

import glob
import importlib
import json
import os
from typing import Any, Dict, Optional

from ms_ppo.errors import UserInputError
from ms_ppo.training.callbacks import Callback

TRACKERS = {"wandb": "wandb", "mlflow": "mlflow"}  # --track value -> module it needs
RUN_ID_FILE = "tracking.json"


def require_client(track: str) -> Any:
    """Import the tracking client for ``track``, or a one-line error naming the extra to install."""
    try:
        return importlib.import_module(TRACKERS[track])
    except ImportError:
        raise UserInputError(f"--track {track} needs the {TRACKERS[track]} package: "
                             f"pip install 'ms_ppo[track]' (or pip install {TRACKERS[track]})") from None


def flat_settings(tree: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    """``{"ppo": {"gamma": 0.99}}`` -> ``{"ppo.gamma": 0.99}``: MLflow parameters are flat."""
    flat: Dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(flat_settings(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def numeric_metrics(metrics: Dict[str, Any]) -> Dict[str, float]:
    """The charts/losses/eval values of one iteration (the keys TensorBoard gets too)."""
    return {key: float(value) for key, value in metrics.items()
            if "/" in key and isinstance(value, (int, float)) and not isinstance(value, bool)}


class Tracker(Callback):
    """Sends a run to an experiment tracker; subclasses talk to one client."""

    def __init__(self, output_dir: str, project: str, run_name: str):
        self.output_dir = output_dir
        self.project = project
        self.run_name = run_name

    def _saved_run_id(self) -> Optional[str]:
        path = os.path.join(self.output_dir, RUN_ID_FILE)
        if not os.path.exists(path):
            return None
        with open(path, encoding="utf-8") as handle:
            return json.load(handle).get(type(self).__name__)

    def _save_run_id(self, run_id: str) -> None:
        with open(os.path.join(self.output_dir, RUN_ID_FILE), "w", encoding="utf-8") as handle:
            json.dump({type(self).__name__: run_id}, handle)

    def artifacts(self) -> list:
        """What a finished run uploads: the curve, the videos, the settings."""
        names = ["learning_curve.png", "config.yaml"] + sorted(
            os.path.relpath(path, self.output_dir) for path in glob.glob(os.path.join(self.output_dir, "videos", "*")))
        return [name for name in names if os.path.isfile(os.path.join(self.output_dir, name))]


class WandbTracker(Tracker):
    """Weights & Biases: one run per run directory, steps on the x axis."""

    def on_train_begin(self, trainer):
        wandb = require_client("wandb")
        self.run = wandb.init(project=self.project, name=self.run_name, dir=self.output_dir,
                              config=trainer.settings.to_dict(), id=self._saved_run_id(), resume="allow")
        self._save_run_id(self.run.id)

    def on_iteration_end(self, trainer, metrics):
        self.run.log(numeric_metrics(metrics), step=int(metrics["global_step"]))

    def on_train_end(self, trainer, metrics):
        wandb = require_client("wandb")
        for name in self.artifacts():
            path = os.path.join(self.output_dir, name)
            if name.endswith((".gif", ".mp4")):
                self.run.log({f"video/{os.path.basename(name)}": wandb.Video(path)}, step=int(trainer.global_step))
            elif name.endswith(".png"):
                self.run.log({"learning_curve": wandb.Image(path)}, step=int(trainer.global_step))
            else:
                self.run.save(path, base_path=self.output_dir, policy="now")
        if metrics.get("eval/return_mean") is not None:
            self.run.summary["eval/return_mean"] = metrics["eval/return_mean"]
        self.run.finish(exit_code=0 if trainer.stop_signal is None else 1)
        self.run = None

    def close(self):
        if getattr(self, "run", None) is not None:  # training failed before its end: the run is marked failed
            self.run.finish(exit_code=1)
            self.run = None


class MlflowTracker(Tracker):
    """MLflow: settings as parameters, metrics by step, files as artifacts."""

    def _client_setup(self, mlflow: Any) -> None:
        if os.environ.get("MLFLOW_TRACKING_URI"):
            mlflow.set_experiment(self.project)
            return
        runs = os.path.dirname(os.path.abspath(self.output_dir))
        mlflow.set_tracking_uri("sqlite:///" + os.path.join(runs, "mlflow.db"))
        if mlflow.get_experiment_by_name(self.project) is None:
            mlflow.create_experiment(self.project, artifact_location=os.path.join(runs, "mlruns"))
        mlflow.set_experiment(self.project)

    def on_train_begin(self, trainer):
        mlflow = require_client("mlflow")
        self._client_setup(mlflow)
        run_id = self._saved_run_id()
        self.run = mlflow.start_run(run_id=run_id, run_name=None if run_id else self.run_name)
        self._save_run_id(self.run.info.run_id)
        if run_id is None:  # parameters cannot change once logged: a resumed run keeps its first ones
            params = {key: json.dumps(value) if not isinstance(value, str) else value
                      for key, value in flat_settings(trainer.settings.to_dict()).items()}
            mlflow.log_params(params)

    def on_iteration_end(self, trainer, metrics):
        require_client("mlflow").log_metrics(numeric_metrics(metrics), step=int(metrics["global_step"]))

    def on_train_end(self, trainer, metrics):
        mlflow = require_client("mlflow")
        for name in self.artifacts():
            mlflow.log_artifact(os.path.join(self.output_dir, name), artifact_path=os.path.dirname(name) or None)
        mlflow.end_run(status="FINISHED" if trainer.stop_signal is None else "KILLED")
        self.run = None

    def close(self):
        if getattr(self, "run", None) is not None:  # training failed before its end: the run is marked failed
            require_client("mlflow").end_run(status="FAILED")
            self.run = None


def make_tracker(track: str, output_dir: str, project: str, run_name: str) -> Optional[Tracker]:
    """The tracker for ``--track`` (None for "none"); the client is imported now, so a missing one fails early."""
    if track == "none":
        return None
    require_client(track)
    return {"wandb": WandbTracker, "mlflow": MlflowTracker}[track](output_dir, project, run_name)

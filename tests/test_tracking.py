"""--track wandb|mlflow: the real clients, offline, read back. Metrics per iteration equal progress.csv, the
settings arrive, the curve and videos are uploaded, a resumed run continues the same tracked run."""

import csv
import glob
import json
import sys

import pytest
import yaml
from paths import CARTPOLE
from wandb_records import read_run

from ms_ppo.app.cli import train_main
from ms_ppo.training.tracking import flat_settings, numeric_metrics

# 4 iterations of 8 envs x 32 steps; evaluated every 2 iterations and at the end, 2 episodes each.
SHORT = ["--device_target", "CPU", "--env_yaml", CARTPOLE, "--total_steps", "1024", "--eval_every", "2",
         "--set", "train.eval_episodes=2", "--quiet"]


def csv_column(run_dir, column):
    with open(run_dir / "progress.csv", newline="", encoding="utf-8") as handle:
        return {int(row["global_step"]): float(row[column]) for row in csv.DictReader(handle) if row[column]}


@pytest.fixture
def offline_wandb(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")


def test_wandb_receives_metrics_settings_curve_and_videos(tmp_path, offline_wandb):
    run_dir = tmp_path / "run"
    assert train_main(SHORT + ["--output_dir", str(run_dir), "--track", "wandb", "--video", "gif"]) == 0
    (record_file,) = glob.glob(str(run_dir / "wandb" / "offline-run-*" / "run-*.wandb"))
    tracked = read_run(record_file)
    history = {row["_step"]: row for row in tracked["history"]}
    returns = csv_column(run_dir, "charts/episodic_return")
    assert sorted(history) == [256, 512, 768, 1024]
    assert {step: history[step]["charts/episodic_return"] for step in returns} == pytest.approx(returns)
    evaluations = csv_column(run_dir, "eval/return_mean")
    assert sorted(evaluations) == [512, 1024]  # the final evaluation is in the last iteration's row, once
    assert {step: history[step]["eval/return_mean"] for step in evaluations} == pytest.approx(evaluations)
    result = json.loads((run_dir / "result.json").read_text())
    assert tracked["summary"]["eval/return_mean"] == pytest.approx(result["eval_return_mean"])
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert tracked["config"]["ppo"] == saved["ppo"] and tracked["config"]["train"]["seed"] == saved["train"]["seed"]
    files = " ".join(tracked["files"])
    assert "learning_curve" in files and "before.gif" in files and "after.gif" in files and "config.yaml" in files


def test_mlflow_run_is_read_back_and_a_resume_continues_it(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run_dir = tmp_path / "runs" / "cartpole"
    half = [arg if arg != "1024" else "512" for arg in SHORT]
    assert train_main(half + ["--output_dir", str(run_dir), "--track", "mlflow"]) == 0
    assert train_main(SHORT + ["--resume", str(run_dir), "--track", "mlflow"]) == 0

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}")
    (experiment,) = [e for e in client.search_experiments() if e.name == "ms_ppo"]
    (run,) = client.search_runs([experiment.experiment_id])  # the resume went on in the same MLflow run
    history = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "charts/episodic_return")}
    assert history == pytest.approx(csv_column(run_dir, "charts/episodic_return"))
    assert sorted(history) == [256, 512, 768, 1024]  # no step twice, none missing
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert json.loads(run.data.params["ppo.gamma"]) == saved["ppo"]["gamma"]
    assert run.info.status == "FINISHED"
    artifacts = {item.path for item in client.list_artifacts(run.info.run_id)}
    assert {"learning_curve.png", "config.yaml"} <= artifacts


@pytest.mark.bad_input
def test_a_missing_client_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow now raises ImportError
    assert train_main(SHORT + ["--output_dir", str(tmp_path / "run"), "--track", "mlflow"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--track mlflow needs the mlflow package" in err[0]
    assert not (tmp_path / "run").exists()


def test_settings_are_flattened_and_only_numbers_are_sent():
    assert flat_settings({"ppo": {"gamma": 0.9, "x": {"y": 1}}, "env": {"kwargs": {}}}) == \
        {"ppo.gamma": 0.9, "ppo.x.y": 1, "env.kwargs": {}}
    assert numeric_metrics({"charts/SPS": 3, "iteration": 4, "eval/return_mean": None, "losses/flag": True,
                            "losses/loss": 0.5}) == {"charts/SPS": 3.0, "losses/loss": 0.5}

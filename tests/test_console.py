"""What a training run prints and records: the default log line, MindSpore Reinforcement's line by flag, SPS
without the compilation, the final evaluation once in every record, evaluation/checkpoint periods in steps, and no
SDL noise from off-screen rendering."""

import csv
import json
import os
import subprocess
import sys

import pytest
from paths import CARTPOLE, ROOT
from tensorboard_events import read_scalars

# 8 envs x 32 steps = 256 steps per iteration, 6 iterations.
SHORT = ["--device_target", "CPU", "--env_yaml", CARTPOLE, "--total_steps", "1536", "--quiet",
         "--set", "train.eval_episodes=2"]


def train(tmp_path, *flags):
    """train.py in a subprocess, as a user runs it: (stdout + stderr lines, run directory)."""
    out = tmp_path / "run"
    headless = {k: v for k, v in os.environ.items() if k not in ("SDL_VIDEODRIVER", "XDG_RUNTIME_DIR")}
    result = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), *SHORT, "--output_dir", str(out),
                             *flags], capture_output=True, text=True, cwd=tmp_path, timeout=600, env=headless)
    assert result.returncode == 0, result.stderr
    return (result.stdout + result.stderr).splitlines(), out


def rows(run_dir):
    with open(run_dir / "progress.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """Evaluation every 3 iterations: iteration 6 is both a periodic and the final evaluation."""
    return train(tmp_path_factory.mktemp("console"), "--eval_every", "3", "--video", "gif")


def test_default_line_names_iteration_steps_episodes_and_return(default_run):
    lines, run_dir = default_run
    iteration_lines = [line for line in lines if line.startswith("iteration ")]
    assert len(iteration_lines) == 6
    last = rows(run_dir)[-1]
    assert iteration_lines[-1].startswith("iteration 6/6, steps 1536, episodes ")
    assert f"mean return {float(last['charts/episodic_return']):.2f}" in iteration_lines[-1]
    assert not any(line.startswith("Episode ") for line in lines)


def test_the_final_evaluation_runs_once_and_is_in_csv_tensorboard_and_result(default_run):
    lines, run_dir = default_run
    evaluations = {int(row["iteration"]): float(row["eval/return_mean"]) for row in rows(run_dir)
                   if row["eval/return_mean"]}
    assert sorted(evaluations) == [3, 6]
    assert sum(line.startswith("Evaluate result for episode 6 ") for line in lines) == 1
    result = json.loads((run_dir / "result.json").read_text())
    assert result["eval_return_mean"] == pytest.approx(evaluations[6])
    tensorboard = dict(read_scalars(str(run_dir / "tb"))["eval/return_mean"])
    assert tensorboard == pytest.approx({256 * 3: evaluations[3], 256 * 6: evaluations[6]})


def test_sps_leaves_out_the_first_iteration(default_run):
    lines, run_dir = default_run
    table = rows(run_dir)
    (first,) = [line for line in lines if line.startswith("first iteration: ")]
    first_seconds = float(first.split()[2])
    assert first_seconds == pytest.approx(float(table[0]["wall_seconds"]), abs=0.05)
    wall, steps = float(table[-2]["wall_seconds"]), int(table[-2]["global_step"])  # before the final evaluation
    warm = (steps - 256) / (wall - float(table[0]["wall_seconds"]))
    assert float(table[-2]["charts/SPS"]) == pytest.approx(warm, rel=1e-6)
    assert json.loads((run_dir / "result.json").read_text())["first_iteration_seconds"] == pytest.approx(
        float(table[0]["wall_seconds"]), abs=1e-3)


def test_no_sdl_noise_from_off_screen_videos(default_run):
    lines, run_dir = default_run
    assert (run_dir / "videos" / "after.gif").exists()
    assert not [line for line in lines if "XDG_RUNTIME_DIR" in line or "error:" in line.lower()]


def test_mindrl_log_format_by_flag_and_periods_in_steps(tmp_path):
    lines, run_dir = train(tmp_path, "--log_format", "mindrl", "--eval_every", "700 steps", "--save_every",
                           "1k steps")
    assert sum(line.startswith("Episode ") and ", loss is " in line for line in lines) == 6
    assert "train.eval_every 700 steps: every 3 iterations (768 steps)" in lines
    evaluations = [int(row["iteration"]) for row in rows(run_dir) if row["eval/return_mean"]]
    assert evaluations == [3, 6]
    saved = sorted(name for name in os.listdir(run_dir / "ckpt") if name.endswith(".ckpt"))
    assert saved == ["step_0000001024.ckpt", "step_0000001536.ckpt"]  # every 4 iterations, and the last


@pytest.mark.bad_input
@pytest.mark.parametrize("value", ["-1", "1.5 steps", "ten", "3 hours"])
def test_a_bad_period_is_one_line(value, capsys):
    from ms_ppo.app.cli import train_main

    assert train_main(SHORT + ["--eval_every", value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "eval_every" in err[0]


def test_the_final_evaluation_is_not_repeated_when_the_period_divides_the_last_iteration(tmp_path):
    from ms_ppo.app.session import PPOSession

    session = PPOSession(CARTPOLE, overrides={"train.total_steps": 1536, "train.eval_every": 3,
                                              "train.eval_episodes": 1, "train.output_dir": str(tmp_path / "run")},
                         quiet=True, log=lambda line: None)
    trainer = session.build()
    calls = []
    evaluate = trainer.evaluate
    trainer.evaluate = lambda episodes=None: calls.append(trainer.iteration) or evaluate(episodes)
    try:
        trainer.train()
    finally:
        trainer.envs.close()
    assert calls == [3, 6]

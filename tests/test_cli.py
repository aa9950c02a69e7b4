"""Bad input on the command line: one line naming the problem, exit status 2, no traceback, nothing written."""

import os
import subprocess
import sys

import pytest

from ms_ppo.cli import eval_main, train_main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CARTPOLE = os.path.join(ROOT, "env_yaml", "CartPole-v1.yaml")


def run_cli(script, *args, cwd=None):
    return subprocess.run([sys.executable, os.path.join(ROOT, script), *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def assert_one_line_error(stderr, *fragments):
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("args, fragments", [
    (["--env_yaml", "missing.yaml"], ["YAML file not found: missing.yaml"]),
    (["--device_target", "TPU"], ["--device_target", "invalid choice"]),
    (["--precision_mode", "fp8"], ["--precision_mode"]),
    (["--total_steps", "0"], ["--total_steps", "at least 1"]),
    (["--total_steps", "-5"], ["--total_steps"]),
    (["--worker_num", "0"], ["--worker_num", "at least 1"]),
    (["--seed", "abc"], ["--seed", "whole number"]),
    (["--bogus"], ["unrecognized arguments: --bogus"]),
    (["--set", "ppo.gamma=2"], ["--set ppo.gamma", "less than or equal to 1"]),
    (["--set", "ppo.gama=0.9"], ["unknown key 'ppo.gama'", "did you mean 'gamma'"]),
    (["--set", "nonsense"], ["section.key=value"]),
])
def test_bad_flags_in_process(capsys, tmp_path, args, fragments):
    out_dir = tmp_path / "run"
    status = train_main(["--env_yaml", CARTPOLE, "--output_dir", str(out_dir), *args])
    assert status == 2
    assert_one_line_error(capsys.readouterr().err, *fragments)
    assert not out_dir.exists()


def test_bad_yaml_files_through_the_script(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("env:\n  id: CartPole-v1\n  kwargs: {a: 1\n")
    result = run_cli("train.py", "--env_yaml", str(bad), "--output_dir", str(tmp_path / "run"))
    assert result.returncode == 2
    assert_one_line_error(result.stderr, str(bad), "YAML syntax error")
    typo = tmp_path / "typo.yaml"
    typo.write_text("ppo:\n  learnig_rate: 0.001\n")
    result = run_cli("train.py", "--env_yaml", CARTPOLE, "--algo_yaml", str(typo))
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "unknown key 'ppo.learnig_rate'", "did you mean 'learning_rate'")
    wrong_type = tmp_path / "type.yaml"
    wrong_type.write_text("ppo:\n  num_envs: eight\n")
    result = run_cli("train.py", "--env_yaml", CARTPOLE, "--algo_yaml", str(wrong_type))
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "ppo.num_envs", "integer")
    assert not (tmp_path / "run").exists()


def test_unknown_env_id_and_missing_device(tmp_path):
    env = tmp_path / "env.yaml"
    env.write_text("env:\n  id: CartPol-v1\n")
    result = run_cli("train.py", "--env_yaml", str(env), "--output_dir", str(tmp_path / "a"))
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "unknown environment id 'CartPol-v1'", "did you mean 'CartPole-v1'")
    result = run_cli("train.py", "--env_yaml", CARTPOLE, "--device_target", "Ascend",
                     "--output_dir", str(tmp_path / "b"))
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "--device_target Ascend", "no usable Ascend")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_existing_run_directory_is_not_overwritten(capsys, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "result.json").write_text("{}")
    assert train_main(["--env_yaml", CARTPOLE, "--output_dir", str(run)]) == 2
    assert_one_line_error(capsys.readouterr().err, "already holds a run", "--overwrite")
    assert (run / "result.json").read_text() == "{}"


@pytest.mark.parametrize("make_ckpt, fragment", [
    (lambda d: str(d / "none.ckpt"), "checkpoint not found"),
    (lambda d: str(d), "no checkpoint found"),
])
def test_eval_bad_checkpoint_paths(capsys, tmp_path, make_ckpt, fragment):
    assert eval_main(["--ckpt", make_ckpt(tmp_path), "--env_yaml", CARTPOLE]) == 2
    assert_one_line_error(capsys.readouterr().err, fragment)


def test_eval_not_a_checkpoint(capsys, tmp_path):
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"this is not a checkpoint")
    assert eval_main(["--ckpt", str(junk), "--env_yaml", CARTPOLE]) == 2
    assert_one_line_error(capsys.readouterr().err, "cannot read checkpoint")

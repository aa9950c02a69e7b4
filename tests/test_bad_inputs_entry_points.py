"""More bad input, through every entry point: train, eval, export, tune and the scripts. Each case: one line naming
the problem, exit status 2, no traceback, nothing written (tests/test_bad_inputs.py holds the first cases).

Count them all with ``pytest -m bad_input --collect-only -q`` (docs/reliability.md)."""

import os
import subprocess
import sys

import pytest
from paths import ALGO_YAML, CARTPOLE, CLASSIC, ENV_YAML, ROOT
from test_bad_inputs import assert_env_yaml_refused, assert_one_line_error

from ms_ppo.app.cli import eval_main, export_main, train_main
from ms_ppo.app.session import PPOSession
from ms_ppo.app.tune import tune_main

pytestmark = pytest.mark.bad_input

ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(8))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished one-iteration CartPole run, with a periodic evaluation but no best/ yet removed."""
    run = tmp_path_factory.mktemp("finished") / "run"
    PPOSession(CARTPOLE, CLASSIC, overrides={"train.total_steps": 256, "train.output_dir": str(run),
                                             "train.eval_episodes": 1}, quiet=True, log=lambda line: None).run()
    return run


def snapshot(path) -> dict:
    return {os.path.join(root, name): os.path.getmtime(os.path.join(root, name))
            for root, _, names in os.walk(path) for name in names}


# ------------------------------------------------------------------------------------------------------------
# train.py: values, files of the wrong kind, environments, resume, distributed flags
# ------------------------------------------------------------------------------------------------------------
TRAIN_CASES = {
    "--set NaN": (["--set", "ppo.learning_rate=nan"], None, ["ppo.learning_rate", "finite"]),
    "--set infinity": (["--set", "ppo.max_grad_norm=inf"], None, ["ppo.max_grad_norm", "finite"]),
    "YAML .nan": ([], "ppo:\n  learning_rate: .nan\n", ["ppo.learning_rate", "finite"]),
    "YAML .inf": ([], "ppo:\n  ent_coef: .inf\n", ["ppo.ent_coef", "finite"]),
    "YAML -.inf": ([], "normalize:\n  clip_obs: -.inf\n", ["normalize.clip_obs"]),
    "absurd rollout": ([], "ppo:\n  num_envs: 100000\n  rollout_steps: 100000000\n", ["the rollout needs about"]),
    "seed out of range in YAML": ([], "train:\n  seed: 5000000000\n", ["train.seed", "less than or equal"]),
    "alias bomb": ([], ALIAS_BOMB, ["aliases"]),
    "a number where a mapping goes": ([], "train: 5\n", ["section 'train' must be a mapping, got int"]),
    "a boolean for a period": (["--set", "train.eval_every=true"], None, ["train.eval_every", "not a boolean"]),
    "negative period in steps": (["--save_every", "-5 steps"], None, ["save_every"]),
    "unknown log format": (["--log_format", "json"], None, ["--log_format", "invalid choice"]),
    "unknown tracker": (["--track", "comet"], None, ["--track", "invalid choice"]),
    "empty tracking project": (["--set", "train.track_project="], None, ["train.track_project"]),
    "eval step cap of zero": (["--set", "train.eval_max_steps=0"], None, ["train.eval_max_steps"]),
    "video format": (["--video", "avi"], None, ["--video", "invalid choice"]),
    "cpu threads zero": (["--cpu_threads", "0"], None, ["--cpu_threads", "at least 1"]),
}


@pytest.mark.parametrize("case", TRAIN_CASES)
def test_train_values(capsys, tmp_path, case):
    args, algo_text, fragments = TRAIN_CASES[case]
    algo = CLASSIC
    if algo_text is not None:
        algo = str(tmp_path / "algo.yaml")
        with open(algo, "w", encoding="utf-8") as handle:
            handle.write(algo_text)
    out_dir = tmp_path / "run"
    assert train_main(["--env_yaml", CARTPOLE, "--algo_yaml", algo, "--output_dir", str(out_dir), *args]) == 2
    assert_one_line_error(capsys.readouterr().err, *fragments)
    assert not out_dir.exists()


FILE_KIND_CASES = {
    "algo YAML given as env YAML": (["--env_yaml", CLASSIC], ["ppo_classic.yaml", "env YAML"]),
    "env YAML given as algo YAML": (["--env_yaml", CARTPOLE, "--algo_yaml", CARTPOLE],
                                    ["CartPole-v1.yaml", "algo YAML may not hold environment sections"]),
    "unknown bare algo name": (["--env_yaml", "CartPole-v1", "--algo_yaml", "ppo_clasic"],
                               ["ppo_clasic", "shipped algo_yamls", "ppo_classic"]),
    "a path to a missing env YAML": (["--env_yaml", "configs/none.yaml"], ["YAML file not found: configs/none.yaml"]),
}


@pytest.mark.parametrize("case", FILE_KIND_CASES)
def test_train_file_kinds(capsys, tmp_path, case):
    args, fragments = FILE_KIND_CASES[case]
    out_dir = tmp_path / "run"
    assert train_main([*args, "--output_dir", str(out_dir)]) == 2
    assert_one_line_error(capsys.readouterr().err, *fragments)
    assert not out_dir.exists()


ENV_CASES = {
    "module:EnvId with a missing module": ("env:\n  id: no_such_module:Foo-v0\n", ["no_such_module"]),
    "module:EnvId that registers nothing": ("env:\n  id: json:Foo-v0\n", ["Foo-v0"]),
    "entry point module missing": ("env:\n  id: Mine-v0\n  entry_point: no_such_pkg.envs:Mine\n", ["no_such_pkg"]),
    "entry point class missing": ("env:\n  id: Mine-v1\n  entry_point: json:NoSuchClass\n", ["NoSuchClass"]),
    "entry point without a colon": ("env:\n  id: Mine-v2\n  entry_point: json.JSONDecoder\n", ["entry_point"]),
    "entry point that is not an env": ("env:\n  id: Mine-v3\n  entry_point: json:JSONDecoder\n", ["Mine-v3"]),
    "wrapper set for the wrong env": ("env:\n  id: CartPole-v1\n  wrappers: atari\n", ["atari"]),
}


@pytest.mark.parametrize("case", ENV_CASES)
def test_train_environments(capsys, tmp_path, case):
    env_text, fragments = ENV_CASES[case]
    assert_env_yaml_refused(capsys, tmp_path, env_text, fragments)


def test_resume_of_an_empty_directory(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    assert train_main(["--resume", str(tmp_path / "empty")]) == 2
    assert_one_line_error(capsys.readouterr().err, "no checkpoint found")
    assert os.listdir(tmp_path / "empty") == []


def test_resume_of_a_finished_run(capsys, finished_run):
    before = snapshot(finished_run)
    assert train_main(["--resume", str(finished_run)]) == 2
    assert_one_line_error(capsys.readouterr().err, "already finished", "256", "--total_steps")
    assert snapshot(finished_run) == before


@pytest.mark.parametrize("args, fragments", [
    (["--enable_distribute", "--worker_num", "100000"], ["--worker_num 100000", "at most"]),
    (["--enable_distribute", "--worker_num", "two"], ["--worker_num", "whole number"]),
])
def test_distributed_flags_that_cannot_work(capsys, tmp_path, args, fragments):
    out_dir = tmp_path / "run"
    assert train_main(["--env_yaml", CARTPOLE, "--output_dir", str(out_dir), *args]) == 2
    assert_one_line_error(capsys.readouterr().err, *fragments)
    assert not out_dir.exists()


# ------------------------------------------------------------------------------------------------------------
# eval.py and export.py
# ------------------------------------------------------------------------------------------------------------
EVAL_CASES = {
    "--best without best/": (lambda run, tmp: ["--ckpt", str(tmp / "nobest"), "--best"], ["best"]),
    "video into a missing folder": (lambda run, tmp: ["--ckpt", str(run), "--video", str(tmp / "no" / "x.mp4")],
                                    ["--video"]),
    "video format": (lambda run, tmp: ["--ckpt", str(run), "--video", str(tmp / "x.avi")], [".avi"]),
    "episodes not a number": (lambda run, tmp: ["--ckpt", str(run), "--episodes", "ten"], ["--episodes"]),
    "negative seed": (lambda run, tmp: ["--ckpt", str(run), "--seed", "-3"], ["--seed"]),
}


@pytest.mark.parametrize("case", EVAL_CASES)
def test_eval(capsys, tmp_path, finished_run, case):
    make_args, fragments = EVAL_CASES[case]
    if case.startswith("--best"):
        (tmp_path / "nobest").mkdir()
        (tmp_path / "nobest" / "ckpt").symlink_to(finished_run / "ckpt")
    before = snapshot(finished_run)
    assert eval_main(make_args(finished_run, tmp_path)) == 2
    assert_one_line_error(capsys.readouterr().err, *fragments)
    assert snapshot(finished_run) == before


EXPORT_CASES = {
    "missing checkpoint": (lambda run, tmp: ["--ckpt", str(tmp / "none"), "--out", str(tmp / "p")],
                           ["checkpoint not found"]),
    "unknown format": (lambda run, tmp: ["--ckpt", str(run), "--format", "TFLITE", "--out", str(tmp / "p")],
                       ["--format", "invalid choice"]),
    "no --out": (lambda run, tmp: ["--ckpt", str(run)], ["--out"]),
    "--out is a directory": (lambda run, tmp: ["--ckpt", str(run), "--out", str(tmp)], ["--out", "directory"]),
    "--out in a missing folder": (lambda run, tmp: ["--ckpt", str(run), "--out", str(tmp / "no" / "p.mindir")],
                                  ["--out"]),
    "batch zero": (lambda run, tmp: ["--ckpt", str(run), "--out", str(tmp / "p"), "--batch", "0"], ["--batch"]),
    "--best without best/": (lambda run, tmp: ["--ckpt", str(run / "ckpt"), "--best", "--out", str(tmp / "p")],
                             ["best"]),
}


@pytest.mark.parametrize("case", EXPORT_CASES)
def test_export(capsys, tmp_path, finished_run, case):
    make_args, fragments = EXPORT_CASES[case]
    before, written = snapshot(finished_run), set(os.listdir(tmp_path))
    assert export_main(make_args(finished_run, tmp_path)) == 2
    assert_one_line_error(capsys.readouterr().err, *fragments)
    assert snapshot(finished_run) == before and set(os.listdir(tmp_path)) == written


# ------------------------------------------------------------------------------------------------------------
# tune.py
# ------------------------------------------------------------------------------------------------------------
TUNE_CASES = {
    "missing space file": (None, [], ["YAML file not found"]),
    "space not a mapping": ("- ppo.gamma\n", [], ["space"]),
    "unknown key in the space": ("ppo.gama: {low: 0.9, high: 0.99}\n", [], ["ppo.gama", "gamma"]),
    "low above high": ("ppo.gamma: {low: 0.99, high: 0.9}\n", [], ["low", "high"]),
    "trials zero": ("ppo.gamma: {low: 0.9, high: 0.99}\n", ["--trials", "0"], ["--trials"]),
    "steps negative": ("ppo.gamma: {low: 0.9, high: 0.99}\n", ["--steps", "-1"], ["--steps"]),
    "a key the tuner sets": ("ppo.gamma: {low: 0.9, high: 0.99}\n", ["--set", "train.seed=3"], ["train.seed"]),
}


@pytest.mark.parametrize("case", TUNE_CASES)
def test_tune(capsys, tmp_path, case):
    space_text, extra, fragments = TUNE_CASES[case]
    space = tmp_path / "space.yaml"
    if space_text is not None:
        space.write_text(space_text)
    study = tmp_path / "study"
    args = ["--env_yaml", CARTPOLE, "--space", str(space), "--trials", "2", "--steps", "256",
            "--study_dir", str(study)]
    for flag in ("--trials", "--steps"):
        if flag in extra:
            index = args.index(flag)
            del args[index:index + 2]
    assert tune_main(args + extra) == 2
    assert_one_line_error(capsys.readouterr().err, *fragments)
    assert not study.exists()


# ------------------------------------------------------------------------------------------------------------
# Distributed scripts
# ------------------------------------------------------------------------------------------------------------
SCRIPT_CASES = {
    "workers not a number": ("run_distribute_train.sh", ["two", f"{ENV_YAML}/CartPole-v1.yaml",
                                                         f"{ALGO_YAML}/ppo_classic.yaml"], ["WORKERS"]),
    "distributed: a flag for ENV_YAML": ("run_distribute_train.sh", ["2", "--env_yaml", "x"], ["ENV_YAML expected"]),
    "cluster: negative node rank": ("run_distribute_train_cluster.sh",
                                    ["2", "1", "127.0.0.1", "8118", "-1", "runs/x", "CartPole-v1", "ppo_classic"],
                                    ["NODE_RANK"]),
    "distributed: unknown policy": ("run_distribute_train.sh", ["3", "CartPole-v1", "ppo_classic", "Ring"],
                                    ["POLICY must be one of", "'Ring'"]),
    "cluster: unknown policy": ("run_distribute_train_cluster.sh",
                                ["2", "1", "127.0.0.1", "8118", "0", "runs/x", "CartPole-v1", "ppo_classic", "Ring"],
                                ["POLICY must be one of"]),
    "cluster: port not a number": ("run_distribute_train_cluster.sh",
                                   ["2", "1", "127.0.0.1", "port", "0", "runs/x", "CartPole-v1", "ppo_classic"],
                                   ["MASTER_PORT"]),
}


@pytest.mark.parametrize("case", SCRIPT_CASES)
def test_distributed_scripts(tmp_path, case):
    script, args, fragments = SCRIPT_CASES[case]
    result = subprocess.run(["bash", os.path.join(ROOT, "scripts", script), *args], cwd=tmp_path,
                            capture_output=True, text=True, env={**os.environ, "PYTHON": sys.executable}, timeout=120)
    assert result.returncode == 2
    assert_one_line_error(result.stderr, *fragments)
    assert os.listdir(tmp_path) == []

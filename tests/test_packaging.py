"""Packaging: the wheel carries the shipped YAMLs (found by bare name once installed), the licence and the type
hints; make refuses a Python MindSpore has no wheel for; the run_*.sh scripts answer bad usage in one line."""

import os
import shutil
import subprocess
import sys
import zipfile

import pytest
from paths import ROOT

SHIPPED = sorted(f"{kind}/{name}" for kind in ("env_yaml", "algo_yaml")
                 for name in os.listdir(os.path.join(ROOT, kind)) if name.endswith(".yaml"))


SOURCES = ("setup.py", "README.md", "LICENSE", "ms_ppo", "env_yaml", "algo_yaml")  # what the build reads


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """Built from a copy of the sources, so no earlier build/ folder can supply what the build step forgot."""
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for name in SOURCES:
        if os.path.isdir(os.path.join(ROOT, name)):
            shutil.copytree(os.path.join(ROOT, name), source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(os.path.join(ROOT, name), source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(source),
                    "-w", str(out)], check=True, capture_output=True)
    (path,) = out.glob("ms_ppo-*.whl")
    return path


def test_the_wheel_holds_every_shipped_yaml_the_licence_and_type_hints(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert sorted(n[len("ms_ppo/presets/"):] for n in names if n.startswith("ms_ppo/presets/")) == SHIPPED
    assert "ms_ppo/py.typed" in names
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "License: Apache-2.0" in metadata and any(n.endswith("licenses/LICENSE") or n.endswith("/LICENSE")
                                                     for n in names)


def test_installed_wheel_finds_yamls_by_bare_name(wheel, tmp_path):
    """Installed outside the source tree, `CartPole-v1` resolves to the wheel's copy and its tuned algo YAML."""
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    probe = ("import ms_ppo.config.presets as p, ms_ppo.config as c; "
             "s = c.load_settings('CartPole-v1'); "
             "print(p.preset_dir('env_yaml')); print(s.env.id, s.ppo.learning_rate)")
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(target)})
    assert result.returncode == 0, result.stderr
    folder, settings = result.stdout.split("\n")[:2]
    assert folder.startswith(str(target)) and folder.endswith(os.path.join("ms_ppo", "presets", "env_yaml"))
    from ms_ppo.config import load_settings

    tuned = load_settings(os.path.join(ROOT, "env_yaml", "CartPole-v1.yaml"))
    assert settings == f"{tuned.env.id} {tuned.ppo.learning_rate}"  # the algo_yaml pointer was followed


@pytest.mark.bad_input
def test_an_unknown_bare_name_lists_the_shipped_ones(capsys):
    from ms_ppo.app.cli import train_main

    assert train_main(["--env_yaml", "CartPol-v1", "--total_steps", "64"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "CartPol-v1" in err[0] and "CartPole-v1" in err[0]


@pytest.mark.bad_input
@pytest.mark.parametrize("version", ["3.12", "3.8"])
def test_make_refuses_a_python_without_mindspore_wheels(tmp_path, version):
    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/sh\necho {version}\n")
    fake.chmod(0o755)
    result = subprocess.run(["make", "-s", "-C", ROOT, "check-python", f"PYTHON={fake}"], capture_output=True,
                            text=True)
    assert result.returncode != 0
    assert f"ms_ppo needs Python 3.9-3.11 (MindSpore 2.10), {fake} is {version}" in result.stderr


def test_make_accepts_this_python():
    assert subprocess.run(["make", "-s", "-C", ROOT, "check-python", f"PYTHON={sys.executable}"]).returncode == 0


SCRIPT_CASES = {
    "no arguments": ("run_standalone_train.sh", [], "usage: bash"),
    "a flag for ENV_YAML": ("run_standalone_train.sh", ["--env_yaml", "x.yaml"], "ENV_YAML expected, got the flag"),
    "missing ALGO_YAML path": ("run_standalone_train.sh", ["env_yaml/CartPole-v1.yaml", "no/such.yaml"],
                               "ALGO_YAML not found: no/such.yaml"),
    "a directory as ENV_YAML": ("run_standalone_train.sh", ["env_yaml", "ppo_classic"], "got a directory"),
    "unknown device": ("run_standalone_train.sh", ["CartPole-v1", "ppo_classic", "TPU"], "DEVICE must be"),
    "unknown bare name": ("run_standalone_train.sh", ["CartPole-v1", "ppo_nope", "CPU"], "shipped algo_yamls"),
    "eval without arguments": ("run_eval.sh", [], "usage: bash"),
    "eval: a flag for the checkpoint": ("run_eval.sh", ["--ckpt", "runs"], "CKPT_OR_RUN_DIR expected"),
    "eval: missing checkpoint": ("run_eval.sh", ["no/such/run"], "checkpoint not found"),
    "eval: episodes not a number": ("run_eval.sh", ["env_yaml", "ten"], "EPISODES must be a positive integer"),
}


@pytest.mark.bad_input
@pytest.mark.parametrize("case", SCRIPT_CASES)
def test_scripts_answer_bad_usage_in_one_line(case, tmp_path):
    script, args, expected = SCRIPT_CASES[case]
    result = subprocess.run(["bash", os.path.join(ROOT, "scripts", script), *args], cwd=ROOT, capture_output=True,
                            text=True, env={**os.environ, "PYTHON": sys.executable}, timeout=120)
    # run_standalone_train.sh copies train.py's output, errors included, into the log through tee (stdout)
    output = result.stderr.splitlines() + result.stdout.splitlines()
    lines = [line for line in output if line.strip() and not line.startswith("training: log in")]
    assert result.returncode == 2 and len(lines) == 1 and expected in lines[0], result.stderr


def test_standalone_script_creates_runs_before_logging(tmp_path):
    """A fresh clone has no runs/: the script makes it, so the log is kept and the script's status is train.py's."""
    clone = tmp_path / "clone"
    (clone / "scripts").mkdir(parents=True)
    for name in ("_args.sh", "run_standalone_train.sh"):
        (clone / "scripts" / name).write_text(open(os.path.join(ROOT, "scripts", name)).read())
    (clone / "train.py").write_text("import sys\nprint('trained', sys.argv[1:3])\n")
    result = subprocess.run(["bash", str(clone / "scripts" / "run_standalone_train.sh"), "CartPole-v1",
                             "ppo_classic", "CPU"], capture_output=True, text=True,
                            env={**os.environ, "PYTHON": sys.executable})
    assert result.returncode == 0, result.stderr
    (log,) = (clone / "runs").glob("CartPole-v1_*.log")
    assert "trained ['--env_yaml', 'CartPole-v1']" in log.read_text()

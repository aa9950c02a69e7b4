"""benchmarks/learning.py --from-runs: a finished run is reported only when it was trained with exactly the
benchmark's settings for its seed."""

import json
import os
import shutil
import sys

import pytest
from paths import CARTPOLE, CLASSIC, ROOT

from ms_ppo import PPOSession

sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
import learning  # noqa: E402 - the benchmark script, importable once its folder is on the path

STEPS = 512  # two iterations of ppo_classic.yaml (8 envs x 32 steps)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp("adopt") / "CartPole_seed3")
    overrides = {"train.total_steps": STEPS, "train.seed": 3, "train.output_dir": run_dir, "train.eval_episodes": 2,
                 "runtime.device_target": "CPU"}
    PPOSession(CARTPOLE, CLASSIC, overrides=overrides, quiet=True, log=lambda line: None).run()
    return run_dir


def _report(tmp_path, run_dir, *extra):
    name = f"test_adopt_{os.getpid()}_{len(extra)}"
    out = str(tmp_path / f"{name}.json")
    try:
        learning.main(["--env", CARTPOLE, "--algo", CLASSIC, "--steps", str(STEPS),
                       "--seeds", "3", "--set", "train.eval_episodes=2", *extra, "--from-runs", run_dir,
                       "--out", out])
        with open(out, encoding="utf-8") as handle:
            return json.load(handle)
    finally:
        shutil.rmtree(os.path.join(learning.TMP_ROOT, name), ignore_errors=True)


def test_a_run_with_the_benchmarks_settings_is_reported_as_trained(tmp_path, finished_run):
    report = _report(tmp_path, finished_run)
    with open(os.path.join(finished_run, "result.json"), encoding="utf-8") as handle:
        result = json.load(handle)
    run = report["ms_ppo"]["runs"][0]
    assert run["seed"] == 3 and run["adopted_from"] == "CartPole_seed3"
    assert run["eval_return_mean"] == result["eval_return_mean"] and run["total_steps"] == result["total_steps"]
    assert report["ms_ppo"]["summary"]["eval_return"]["mean"] == result["eval_return_mean"]


@pytest.mark.parametrize("extra, named", [(["--set", "ppo.gamma=0.5"], "ppo.gamma"),
                                          (["--set", "ppo.epochs=3"], "ppo.epochs")])
def test_a_run_trained_with_other_settings_is_refused_naming_the_key(tmp_path, finished_run, extra, named):
    with pytest.raises(SystemExit, match=f"not trained with this benchmark's settings.*{named}"):
        _report(tmp_path, finished_run, *extra)

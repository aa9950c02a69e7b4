"""benchmarks/learning.py --from-runs and --merge-seeds: a finished run, or another report's seed, is reported only
when it was trained with exactly the benchmark's settings for its seed."""

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


def _trained_report(tmp_path, seed, *extra):
    """learning.py trains ``seed`` (STEPS steps) into its own report; its run directory is removed after."""
    name = f"test_merge_{os.getpid()}_{seed}_{len(extra)}"
    out = str(tmp_path / f"{name}.json")
    learning.main(["--env", CARTPOLE, "--algo", CLASSIC, "--steps", str(STEPS), "--seeds", str(seed),
                   "--set", "train.eval_episodes=2", *extra, "--out", out])
    shutil.rmtree(os.path.join(learning.TMP_ROOT, name), ignore_errors=True)
    with open(out, encoding="utf-8") as handle:
        return out, json.load(handle)


def test_seeds_trained_apart_are_merged_into_one_report(tmp_path):
    first, alone = _trained_report(tmp_path, 0)
    second, other = _trained_report(tmp_path, 1)
    assert learning.main(["--env", CARTPOLE, "--steps", str(STEPS), "--merge-seeds", second, "--out", first]) == 0
    with open(first, encoding="utf-8") as handle:
        merged = json.load(handle)
    returns = [alone["ms_ppo"]["runs"][0]["eval_return_mean"], other["ms_ppo"]["runs"][0]["eval_return_mean"]]
    assert merged["seeds"] == [0, 1] and [run["seed"] for run in merged["ms_ppo"]["runs"]] == [0, 1]
    assert merged["ms_ppo"]["summary"]["eval_return"]["mean"] == pytest.approx(sum(returns) / 2)
    # the run directories are gone (removed above): the curves the merged plot draws were kept in the reports
    for run in merged["ms_ppo"]["runs"]:
        assert not os.path.exists(os.path.join(learning.ROOT, run["run_dir"]))
        assert len(run["curve"]["steps"]) == len(run["curve"]["returns"]) == STEPS // 256
    with open(first[:-len(".json")] + ".md", encoding="utf-8") as handle:
        assert "--merge-seeds" in handle.read()


def test_seeds_trained_with_other_settings_are_not_merged(tmp_path):
    first, _ = _trained_report(tmp_path, 0)
    second, _ = _trained_report(tmp_path, 1, "--set", "ppo.ent_coef=0.5")
    with pytest.raises(SystemExit, match="other ms_ppo settings.*ppo.ent_coef"):
        learning.main(["--env", CARTPOLE, "--steps", str(STEPS), "--merge-seeds", second, "--out", first])

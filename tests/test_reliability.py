"""Nothing is lost: exact resume, SIGKILL at random moments, SIGINT/SIGTERM, the numerical guard, metadata."""

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time

import gymnasium as gym
import mindspore
import numpy as np
import pytest
from paths import CARTPOLE, CLASSIC, ROOT

from ms_ppo.algo import RolloutBatch
from ms_ppo.app.session import PPOSession
from ms_ppo.errors import TrainingDiverged
from ms_ppo.training import checkpoint

# 4 envs x 64 steps: 256 steps per iteration, a checkpoint after each
SMALL = {"ppo.num_envs": 4, "ppo.rollout_steps": 64, "train.seed": 5, "train.log_every": 1000,
         "normalize.observations": True, "normalize.rewards": True}


def session(out_dir, steps: int, **extra) -> PPOSession:
    overrides = {**SMALL, "train.total_steps": steps, "train.output_dir": str(out_dir), **extra}
    return PPOSession(CARTPOLE, CLASSIC, overrides=overrides, quiet=True, log=lambda line: None)


def stored(ckpt: str) -> dict:
    return {name: value.asnumpy() for name, value in mindspore.load_checkpoint(ckpt).items()}


def progress_rows(run_dir) -> list:
    """progress.csv without the columns that measure time."""
    with open(os.path.join(run_dir, "progress.csv"), newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    timing = ("wall_seconds", "charts/SPS", "time/iteration_seconds")
    return [{key: value for key, value in row.items() if key not in timing} for row in rows]


def test_resume_is_the_same_run_as_no_interruption(tmp_path):
    """Train 8 iterations straight, or 4 then resume for 4 more: the same parameters and the same curve on CPU.

    Everything is restored: weights, Adam state, normalisation statistics, the sampling RNG, the counters and the
    environments mid-episode (CartPole episodes span the iteration boundary here).
    """
    straight = session(tmp_path / "straight", 2048, **{"train.save_every": 4}).run()
    halfway = checkpoint.list_checkpoints(str(tmp_path / "straight" / "ckpt"))[0]
    assert halfway.endswith("step_0000001024.ckpt")
    resumed = session(tmp_path / "resumed", 2048, **{"train.save_every": 4}).run(resume=halfway)
    assert resumed["total_steps"] == straight["total_steps"] == 2048
    assert resumed["eval_return_mean"] == straight["eval_return_mean"]
    a = stored(checkpoint.resolve(str(tmp_path / "straight")))
    b = stored(checkpoint.resolve(str(tmp_path / "resumed")))
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert progress_rows(tmp_path / "resumed") == progress_rows(tmp_path / "straight")[4:]


def test_checkpoint_metadata_and_changed_settings_are_reported(tmp_path):
    session(tmp_path / "run", 256).run()
    ckpt = checkpoint.resolve(str(tmp_path / "run"))
    meta = checkpoint.read_meta(ckpt)
    assert meta["format"] == checkpoint.FORMAT_VERSION
    assert meta["mindspore_version"] == mindspore.__version__ and meta["ms_ppo_version"]
    assert meta["config_hash"] == checkpoint.settings_hash(meta["settings"])
    for key in ("global_step", "iteration", "obs_norm", "reward_norm", "rng", "episodes"):
        assert key in meta
    assert os.path.exists(ckpt[:-len(".ckpt")] + ".state.pkl")
    lines = []
    resumed = PPOSession(CARTPOLE, CLASSIC, quiet=True, log=lines.append, overrides={
        **SMALL, "train.total_steps": 512, "ppo.learning_rate": 0.01, "train.output_dir": str(tmp_path / "b")})
    resumed.run(resume=ckpt)
    saved_rate = meta["settings"]["ppo"]["learning_rate"]
    assert saved_rate != 0.01
    assert any(f"changed setting: ppo.learning_rate: {saved_rate} -> 0.01" in line for line in lines), lines
    assert not any("train.total_steps" in line for line in lines)  # a longer budget is not a different run


def _wait_for_checkpoint(run_dir, newer_than: int, process, timeout: float = 240.0) -> int:
    """The step of the newest checkpoint once it is beyond ``newer_than``."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = checkpoint.list_checkpoints(os.path.join(run_dir, "ckpt"))
        step = int(os.path.basename(found[-1])[5:15]) if found else 0
        if step > newer_than:
            return step
        assert process.poll() is None, process.communicate()[1][-2000:]
        time.sleep(0.05)
    raise AssertionError("no new checkpoint")


def _train_command(run_dir, steps: int, resume: bool) -> list:
    args = [sys.executable, os.path.join(ROOT, "train.py"), "--quiet"]
    if resume:
        return args + ["--resume", str(run_dir), "--total_steps", str(steps)]
    sets = [item for key, value in {**SMALL, "train.save_every": 1}.items() for item in ("--set", f"{key}={value}")]
    return args + ["--env_yaml", CARTPOLE, "--algo_yaml", CLASSIC, "--output_dir", str(run_dir),
                   "--total_steps", str(steps), *sets]


def test_sigkill_at_random_moments_never_loses_the_newest_intact_checkpoint(tmp_path):
    """Three kills at random moments (mid-rollout, mid-update or mid-write); each resume continues the count."""
    run_dir, total, last = tmp_path / "run", 256 * 40, 0
    rng = random.Random(1234)
    for trial in range(3):
        process = subprocess.Popen(_train_command(run_dir, total, resume=trial > 0), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        last = _wait_for_checkpoint(run_dir, last, process)
        time.sleep(rng.uniform(0.0, 1.0))
        process.send_signal(signal.SIGKILL)
        process.communicate()
        newest = checkpoint.resolve(str(run_dir))
        step = int(checkpoint.read_meta(newest)["global_step"])
        assert step >= last  # never goes back
        assert set(stored(newest)) >= {"net.actor.0.weight", "optimizer.moment1.actor.0.weight"}  # loads
        last = step
    result = subprocess.run(_train_command(run_dir, total, resume=True), capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"at step {last}" in result.stdout + result.stderr
    summary = json.loads((run_dir / "result.json").read_text())
    assert summary["total_steps"] == total
    steps = [int(row["global_step"]) for row in progress_rows(run_dir)]
    assert steps == sorted(set(steps)) and steps[-1] == total  # each iteration once, in order


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_save_a_final_checkpoint(tmp_path, sig):
    run_dir = tmp_path / "run"
    process = subprocess.Popen(_train_command(run_dir, 256 * 400, resume=False) + ["--set", "train.save_every=0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while not (run_dir / "progress.csv").exists():
        assert time.time() < deadline and process.poll() is None, process.communicate()[1][-2000:]
        time.sleep(0.05)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=120)
    # MindSpore turns SIGINT into SIGTERM while a graph runs (ms_ppo/training/signals.py): either status is a clean stop
    assert process.returncode in (128 + sig, 128 + signal.SIGTERM), stderr[-2000:]
    assert f"--resume {run_dir}" in stderr
    newest = checkpoint.resolve(str(run_dir))  # save_every=0: this one was written on the way out
    assert int(checkpoint.read_meta(newest)["global_step"]) >= 256
    assert not (run_dir / "result.json").exists()


class HugeRewardsAfter(gym.Wrapper):
    """CartPole whose rewards turn to 3e38 after ``start`` steps: finite, so the environment check lets them
    through, but their discounted sums overflow float32 and every update becomes non-finite."""

    def __init__(self, env, start: int = 1024):
        super().__init__(env)
        self.start, self.count = start, 0

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.count += 1
        return obs, 3e38 if self.count > self.start else reward, terminated, truncated, info


gym.register("HugeRewardCartPole-v0", entry_point=lambda **kw: HugeRewardsAfter(gym.make("CartPole-v1", **kw)))


def test_numerical_guard_skips_non_finite_updates_and_stops_with_the_last_good_checkpoint(tmp_path):
    run = session(tmp_path / "run", 256 * 40, **{"env.id": "HugeRewardCartPole-v0", "train.save_every": 1,
                                                  "train.max_bad_updates": 3, "normalize.rewards": False})
    with pytest.raises(TrainingDiverged, match="3 updates in a row had non-finite") as failure:
        run.run()
    good = checkpoint.resolve(str(tmp_path / "run"))
    assert good in str(failure.value)
    # Each env turns bad after 1024 of its own steps, i.e. from iteration 17 (4 envs x 64 steps per iteration);
    # the three failing updates that follow write no checkpoint.
    assert int(checkpoint.read_meta(good)["global_step"]) == 256 * 16
    assert all(np.isfinite(value).all() for value in stored(good).values())
    rows = progress_rows(tmp_path / "run")
    skipped = [float(row["precision/skipped_steps"]) for row in rows]
    per_update = 20  # ppo_classic: 20 epochs x 1 minibatch
    assert skipped[15] == 0 and skipped[-1] == 3 * per_update


def small_agent(**ppo):
    """An fp32 agent for a 4-feature, 2-action discrete task, seeded, with PPO settings ``ppo`` (256-step batch)."""
    from ms_ppo.algo import build_agent
    from ms_ppo.config import Settings
    from ms_ppo.models import ActorCritic

    settings = Settings.model_validate({"ppo": {"num_envs": 8, "rollout_steps": 32, **ppo}})
    mindspore.set_seed(0)
    return build_agent(ActorCritic(4, 2, True, [16]), settings), settings


def fixed_batch(**columns) -> RolloutBatch:
    """A seeded 256-transition batch for ``small_agent``; ``columns`` replace its arrays."""
    rng = np.random.default_rng(0)
    batch = {"obs": rng.standard_normal((256, 4)).astype(np.float32),
             "actions": rng.integers(0, 2, 256).astype(np.int32),
             "log_probs": np.full(256, np.log(0.5), np.float32), "values": np.zeros(256, np.float32),
             "advantages": rng.standard_normal(256).astype(np.float32),
             "returns": rng.standard_normal(256).astype(np.float32)}
    return RolloutBatch(**{**batch, **columns})


def test_a_non_finite_gradient_changes_nothing_in_fp32():
    agent, settings = small_agent(num_minibatches=2)
    batch = fixed_batch(returns=np.full(256, np.inf, np.float32))
    params = checkpoint.named_parameters(agent.checkpoint_cells())
    before = {name: param.asnumpy().copy() for name, param in params.items() if not name.startswith("update")}
    stats = agent.update(batch, np.random.default_rng(0), 0.2)
    assert stats["skipped_steps"] == settings.ppo.epochs * 2
    for name, param in params.items():
        if name in before:
            np.testing.assert_array_equal(param.asnumpy(), before[name], err_msg=name)


def test_weights_and_learning_rate_reach_a_graph_that_has_already_run():
    """Host-side Parameter.set_data does not reach a compiled graph after its first run (MindSpore 2.10), so the
    learning rate and restored weights go in through the graph: check both take effect."""
    agent, _ = small_agent(num_minibatches=1, epochs=1)
    batch = fixed_batch()
    weights = lambda: [p.asnumpy().copy() for p in agent.net.trainable_params()]  # noqa: E731
    agent.update(batch, np.random.default_rng(0), 0.2)  # the graph has run
    agent.set_learning_rate(0.0)
    before = weights()
    agent.update(batch, np.random.default_rng(0), 0.2)
    for old, new in zip(before, weights()):
        np.testing.assert_array_equal(old, new)  # a zero learning rate leaves Adam's step at zero
    agent.set_weights([np.zeros_like(w) for w in before])
    assert all(not w.any() for w in weights())
    agent.set_learning_rate(1e-3)
    agent.update(batch, np.random.default_rng(0), 0.2)
    assert any(w.any() for w in weights())  # the update started from the assigned zeros and moved

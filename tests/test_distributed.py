"""Data parallelism is real: 2 msrun workers on halves of a batch end where 1 process on the whole batch ends."""

import json
import os
import subprocess
import sys

import dist_equivalence_worker as worker
import numpy as np
import pytest
from paths import ROOT

from ms_ppo.runtime.collectives import merge_moments
from ms_ppo.runtime.distributed import msrun_command, msrun_environment


def msrun(tmp_path, script_args, workers=2, timeout=240):
    env = msrun_environment()
    command = msrun_command(workers, script_args, str(tmp_path / "logs"))
    return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_two_workers_match_one_process_on_the_whole_batch(tmp_path):
    """SGD without clipping and advantage normalisation on (tests/dist_equivalence_worker.py): the parameters and
    the statistics of 2 workers on halves of each minibatch equal one process on the whole minibatches."""
    result = msrun(tmp_path, [os.path.join(ROOT, "tests", "dist_equivalence_worker.py"), str(tmp_path)])
    logs = "".join((tmp_path / "logs" / name).read_text() for name in sorted(os.listdir(tmp_path / "logs")))
    assert result.returncode == 0, logs[-3000:]
    cfg, batch = worker.fixed_problem()
    net, update = worker.make_update(cfg, 1)
    initial = {n: p.asnumpy().copy() for n, p in net.parameters_and_names()}
    single, single_stats = worker.run_update(net, update, batch,
                                             np.arange(worker.BATCH).reshape(worker.MINIBATCHES, -1))
    for rank in (0, 1):
        distributed = np.load(tmp_path / f"params_rank{rank}.npz")
        assert set(distributed.files) == set(single) | {"stats", "same_start", "sees_difference"}
        assert distributed["same_start"] and distributed["sees_difference"]  # the replicas check works both ways
        for name, value in single.items():
            np.testing.assert_allclose(distributed[name], value, rtol=1e-5, atol=1e-6, err_msg=f"rank {rank} {name}")
        # the averaged statistics: approx KL, hence the target-KL decision, is the same on every worker
        np.testing.assert_allclose(distributed["stats"], single_stats, rtol=1e-4, atol=1e-6)
    moved = max(np.max(np.abs(single[n] - initial[n])) for n in single)
    assert moved > 1e-2  # the update really changed the weights, so the comparison means something


class TwoWorkers:
    """A fake sum-collective: this worker's contribution plus the other worker's for the same pass, in float32 on
    the wire as MindSpore's CPU collectives reduce (the second pass needs the global mean from the first)."""

    def __init__(self, other: np.ndarray):
        self.other = other.astype(np.float64).reshape(len(other), -1)
        self.mean = None

    def __call__(self, flat: np.ndarray) -> np.ndarray:
        if self.mean is None:
            theirs = np.concatenate([[len(self.other)], self.other.sum(0)])
            total = (flat.astype(np.float32) + theirs.astype(np.float32)).astype(np.float64)
            self.mean = total[1:] / total[0]
            return total
        theirs = ((self.other - self.mean) ** 2).sum(0)
        return (flat.astype(np.float32) + theirs.astype(np.float32)).astype(np.float64)


def test_merge_moments_keeps_a_small_spread_around_a_large_mean():
    """Mean 50, std 0.05: the merged variance must be right to well within 1 % (E[x^2] - mean^2 was 9 % off)."""
    rng = np.random.default_rng(3)
    a, b = (50.0 + 0.05 * rng.standard_normal((2048, 2)) for _ in range(2))
    mean, var, count = merge_moments(a.astype(np.float32), 2, all_reduce_sum=TwoWorkers(b.astype(np.float32)))
    both = np.concatenate([a.astype(np.float32), b.astype(np.float32)]).astype(np.float64)
    assert count == 4096
    np.testing.assert_allclose(mean, both.mean(0), rtol=1e-6)
    np.testing.assert_allclose(var, both.var(0), rtol=1e-3)


def test_merge_moments_single_worker_and_with_a_fake_collective():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((10, 3)), rng.standard_normal((30, 3)) + 2.0
    mean, var, count = merge_moments(a, 1)
    np.testing.assert_allclose(mean, a.mean(0))
    np.testing.assert_allclose(var, a.var(0))
    # a collective that adds the other worker's contribution: the result is the moments of both batches
    mean, var, count = merge_moments(a, 2, all_reduce_sum=TwoWorkers(b))
    both = np.concatenate([a, b])
    assert count == 40
    np.testing.assert_allclose(mean, both.mean(0), rtol=1e-6)
    np.testing.assert_allclose(var, both.var(0), rtol=1e-5)


@pytest.mark.slow
def test_two_worker_cartpole_run_learns(tmp_path):
    """`train.py --enable_distribute` launches msrun itself; rank 0 writes the run's result. 100k steps in all
    are 50k per worker: the same number of updates as the one-process CartPole test, each on twice the data.

    Marked slow (`make test-all`): in the default suite, the update of 2 workers equals one process on the whole
    batch (test_two_workers_match_one_process_on_the_whole_batch) and train.py launches 2 data-parallel workers in
    test_killed_worker_fails_the_job_and_resume_continues_with_another_worker_count; this is the learning claim."""
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "train.py"), "--env_yaml", os.path.join(ROOT, "env_yaml/CartPole-v1.yaml"),
         "--algo_yaml", os.path.join(ROOT, "algo_yaml/ppo_classic.yaml"), "--enable_distribute", "--worker_num", "2",
         "--total_steps", "100000", "--seed", "0", "--output_dir", str(out), "--quiet"],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "msrun --worker_num=2" in result.stdout
    import json
    summary = json.loads((out / "result.json").read_text())
    assert summary["worker_num"] == 2 and summary["total_steps"] >= 100_000
    assert summary["eval_return_mean"] >= 475, summary
    assert (out / "msrun_logs" / "worker_1.log").exists()


def test_killed_worker_fails_the_job_and_resume_continues_with_another_worker_count(tmp_path):
    """SIGKILL one worker: the launcher exits non-zero within 60 s naming the rank; the last checkpoint is
    intact, and the run resumes from it in one process (a different worker count)."""
    import signal
    import time

    from ms_ppo.training import checkpoint

    run = tmp_path / "run"
    launcher = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "train.py"), "--env_yaml", os.path.join(ROOT, "env_yaml/CartPole-v1.yaml"),
         "--algo_yaml", os.path.join(ROOT, "algo_yaml/ppo_classic.yaml"), "--enable_distribute", "--worker_num", "2",
         "--total_steps", "2000000", "--save_every", "1", "--output_dir", str(run), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not checkpoint.list_checkpoints(str(run / "ckpt")):
        assert time.time() < deadline and launcher.poll() is None, launcher.communicate()
        time.sleep(0.2)
    rank1 = _worker_pid(str(run), rank=1)
    os.kill(rank1, signal.SIGKILL)
    killed_at = time.time()
    _, stderr = launcher.communicate(timeout=120)
    assert launcher.returncode == 1, stderr
    assert time.time() - killed_at < 60
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"rank 1 (process {rank1}) failed first, killed by signal 9" in lines[0], stderr
    newest = checkpoint.resolve(str(run))
    step = int(checkpoint.read_meta(newest)["global_step"])
    assert checkpoint.read_meta(newest)["worker_num"] == 2
    result = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), "--resume", str(run), "--quiet",
                             "--total_steps", str(step + 512)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"at step {step}" in result.stdout and "start new episodes" in result.stdout
    summary = json.loads((run / "result.json").read_text())
    assert summary["worker_num"] == 1 and summary["total_steps"] >= step + 512


def _worker_pid(run_dir: str, rank: int) -> int:
    """The process id of the msrun worker of this rank training into run_dir."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                cmdline = handle.read().decode(errors="replace")
            with open(f"/proc/{pid}/environ", "rb") as handle:
                environ = dict(item.split("=", 1) for item in handle.read().decode(errors="replace").split("\0")
                               if "=" in item)
        except OSError:
            continue
        if run_dir in cmdline and environ.get("MS_ROLE") == "MS_WORKER" and environ.get("RANK_ID") == str(rank):
            return int(pid)
    raise AssertionError(f"no worker of rank {rank}")


@pytest.mark.parametrize("policy", [
    None, "SingleActorLearnerMultiEnvDP",  # the data-parallel default, and a policy whose envs step on node 1
    # the same launch with the actor-learner policies of tests/test_actor_learner.py: `make test-all`
    pytest.param("MultiActorSingleLearnerDP", marks=pytest.mark.slow),
    pytest.param("AsyncMultiActorSingleLearnerDP", marks=pytest.mark.slow),
])
def test_two_nodes_on_loopback_train_one_job(tmp_path, policy):
    """scripts/run_distribute_train_cluster.sh as two "nodes" of one worker each on this machine: node 0 runs
    msrun (scheduler + rank 0), node 1 joins it; rank 0 writes one run that counts both workers' steps (under the
    actor-learner policies, node 1's rank collects or steps the environments for rank 0)."""
    from ms_ppo.runtime.distributed import _free_port

    out, port = tmp_path / "run", str(_free_port())
    script = os.path.join(ROOT, "scripts", "run_distribute_train_cluster.sh")
    env = dict(os.environ, PYTHON=sys.executable)

    def node(rank):
        return subprocess.Popen(
            ["bash", script, "2", "1", "127.0.0.1", port, str(rank), str(out),
             os.path.join(ROOT, "env_yaml/CartPole-v1.yaml"), os.path.join(ROOT, "algo_yaml/ppo_classic.yaml"),
             *([policy] if policy else []), "--device_target", "CPU", "--total_steps", "2048", "--quiet"],
            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    nodes = [node(0), node(1)]
    outputs = [n.communicate(timeout=400)[0] for n in nodes]
    assert [n.returncode for n in nodes] == [0, 0], "\n".join(o[-2000:] for o in outputs)
    summary = json.loads((out / "result.json").read_text())
    assert summary["worker_num"] == 2 and summary["total_steps"] == 2048
    assert summary["distribution_policy"] == (policy or "DataParallelDP")
    assert "ms_ppo worker rank 1" in (out / "msrun_logs_node1" / "worker_1.log").read_text()
    assert "ms_ppo worker rank 0" in (out / "msrun_logs_node0" / "worker_0.log").read_text()


def test_reward_scaling_statistics_are_merged_over_workers():
    """Data-parallel, the discounted returns of every worker are folded in at the end of the rollout, so every
    worker scales by the same statistics (here: this worker's returns and a fake other worker's)."""
    from ms_ppo.envs.normalize import RewardScaler, RunningMeanStd

    rng = np.random.default_rng(0)
    other = rng.normal(3.0, 2.0, 40)
    merge = lambda mine: merge_moments(mine, 2, all_reduce_sum=TwoWorkers(other))  # noqa: E731
    scaler = RewardScaler(0.9, True, 10.0, merge=merge)
    returns, seen = np.zeros(4), []
    for t in range(10):
        rewards = rng.normal(1.0, 1.0, 4)
        _, returns = scaler(rewards, np.array([t == 4, False, False, False]), returns)
        assert scaler.stats.count == pytest.approx(1e-4)  # deferred: nothing folded in during the rollout
        seen.append(scaler.merged.pending[-1])
    scaler.sync()
    reference = RunningMeanStd(())
    reference.update(np.concatenate(seen + [other]))
    assert scaler.stats.count == pytest.approx(reference.count)
    assert scaler.stats.var == pytest.approx(reference.var, rel=1e-5)
    assert scaler.stats.mean == pytest.approx(reference.mean, rel=1e-5)

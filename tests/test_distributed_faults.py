"""Distributed faults: any rank killed, or one stopped (a hang), ends the job non-zero within 60 s, naming the
rank; the checkpoints stay intact and the run resumes."""

import os
import signal
import subprocess
import sys
import time

import pytest
from paths import ALGO_YAML, ENV_YAML, ROOT
from test_distributed import _worker_pid

from ms_ppo.training import checkpoint

FAULT_DEADLINE = 60  # seconds from the fault to the launcher's exit


def start_job(run_dir, policy="DataParallelDP", workers=2):
    return subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "train.py"), "--env_yaml", os.path.join(ENV_YAML, "CartPole-v1.yaml"),
         "--algo_yaml", os.path.join(ALGO_YAML, "ppo_classic.yaml"), "--enable_distribute",
         "--worker_num", str(workers), "--distribution_policy", policy, "--set", f"ppo.num_envs={8 // (workers - 1)}",
         "--total_steps", "2000000", "--save_every", "1", "--output_dir", str(run_dir), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_a_checkpoint(run_dir, launcher):
    deadline = time.time() + 300
    while not checkpoint.list_checkpoints(str(run_dir / "ckpt")):
        assert time.time() < deadline and launcher.poll() is None, launcher.communicate()
        time.sleep(0.2)


KILLED = "rank {rank} (process {pid}) failed first, killed by signal 9"


@pytest.mark.parametrize("policy, workers, rank, sig, expected", [
    ("DataParallelDP", 2, 0, signal.SIGKILL, KILLED),
    ("DataParallelDP", 2, 1, signal.SIGSTOP, "rank 1 (process {pid}) stopped responding"),
    ("MultiActorSingleLearnerDP", 3, 1, signal.SIGKILL, KILLED),  # an actor
    ("AsyncMultiActorSingleLearnerDP", 3, 0, signal.SIGKILL, KILLED),  # the learner
    ("SingleActorLearnerMultiEnvDP", 3, 2, signal.SIGKILL, KILLED),  # an env rank
], ids=["dp-rank0-killed", "dp-rank1-stopped", "actor-killed", "async-learner-killed", "env-rank-killed"])
def test_a_killed_or_hung_rank_ends_the_job_within_60_s(tmp_path, policy, workers, rank, sig, expected):
    run_dir = tmp_path / "run"
    launcher = start_job(run_dir, policy, workers)
    wait_for_a_checkpoint(run_dir, launcher)
    pid = _worker_pid(str(run_dir), rank=rank)
    os.kill(pid, sig)
    fault_at = time.time()
    try:
        _, stderr = launcher.communicate(timeout=FAULT_DEADLINE + 60)
    finally:
        if sig == signal.SIGSTOP:
            os.kill(pid, signal.SIGKILL) if os.path.exists(f"/proc/{pid}") else None
    elapsed = time.time() - fault_at
    assert launcher.returncode == 1, stderr
    assert elapsed < FAULT_DEADLINE, f"the job took {elapsed:.0f} s to end"
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and expected.format(rank=rank, pid=pid) in lines[0], stderr
    saved = checkpoint.list_checkpoints(str(run_dir / "ckpt"))
    for path in saved:
        assert checkpoint.damage(path) is None
    if policy != "DataParallelDP":  # the newest checkpoint goes on in one process, another layout
        step = int(checkpoint.read_meta(saved[-1])["global_step"])
        resumed = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), "--resume", str(run_dir),
                                  "--total_steps", str(step + 256), "--set", "ppo.num_envs=8", "--quiet"],
                                 capture_output=True, text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
        assert f"at step {step}" in resumed.stdout + resumed.stderr


def test_watchdog_names_a_stopped_worker_and_a_silent_one(tmp_path):
    from ms_ppo.runtime.distributed import Watchdog, heartbeat_path

    stopped = subprocess.Popen(["sleep", "60"])
    running = subprocess.Popen(["sleep", "60"])
    try:
        for rank, process in enumerate((stopped, running)):
            with open(heartbeat_path(str(tmp_path), rank), "w") as handle:
                handle.write(f"{process.pid}\n")
        os.kill(stopped.pid, signal.SIGSTOP)
        time.sleep(0.2)
        watchdog = Watchdog(str(tmp_path), timeout=30, stopped_after=5)
        now = time.time()
        assert watchdog.hung(now) == []  # stopped, but not yet for 5 s
        assert watchdog.hung(now + 6) == [f"rank 0 (process {stopped.pid}) stopped responding (its process is "
                                          f"stopped)"]
        os.utime(heartbeat_path(str(tmp_path), 1), (now - 100, now - 100))  # rank 1 beat 100 s ago
        hung = watchdog.hung(now + 6)
        assert len(hung) == 2 and hung[1].startswith(f"rank 1 (process {running.pid}) stopped responding (no "
                                                     f"heartbeat for 10")
        os.kill(stopped.pid, signal.SIGCONT)
        os.utime(heartbeat_path(str(tmp_path), 1))
        assert Watchdog(str(tmp_path), timeout=30, stopped_after=0).hung() == []  # both fine again
    finally:
        for process in (stopped, running):
            process.kill()
            process.wait()


def test_watchdog_tells_a_dead_worker_from_a_finished_one(tmp_path):
    """A worker whose process is gone without the finished line in its log is dead (the launcher ends the job
    then, instead of MindSpore's scheduler waiting MS_NODE_TIMEOUT); one that printed it finished. Neither is
    reported as hung, however old its last heartbeat."""
    from ms_ppo.runtime.distributed import FINISHED_MARK, Watchdog, heartbeat_path

    exited = [subprocess.Popen(["true"]) for _ in range(2)]
    running = subprocess.Popen(["sleep", "60"])
    try:
        for process in exited:
            process.wait()
        for rank, process in enumerate([*exited, running]):
            with open(heartbeat_path(str(tmp_path), rank), "w") as handle:
                handle.write(f"{process.pid}\n")
            os.utime(heartbeat_path(str(tmp_path), rank), (time.time() - 1000, time.time() - 1000))
        (tmp_path / "worker_0.log").write_text("training...\n")  # rank 0 died mid-run
        (tmp_path / "worker_1.log").write_text(f"training...\n{FINISHED_MARK}\n")  # rank 1 ran to the end
        watchdog = Watchdog(str(tmp_path), timeout=30)
        assert watchdog.dead() == [0]
        assert [line.split(" (")[0] for line in watchdog.hung()] == ["rank 2"]  # only the live, silent one
    finally:
        running.kill()
        running.wait()

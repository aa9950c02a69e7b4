"""Multi-worker jobs on MindSpore's own ``msrun``: launching, joining, and telling which worker failed.

The other distribution policies (actor-learner, remote environments) are in ms_ppo.distribution.
``DataParallelDP``: every worker steps its own environments and holds a replica of the agent; the gradients of
each minibatch are averaged across workers (``nn.DistributedGradReducer``) before the optimiser step, so the
replicas stay identical. Rank 0 logs, evaluates and checkpoints. The communication backend follows the device
(HCCL on Ascend, NCCL on GPU, MindSpore's CPU collectives on CPU).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from ms_ppo.errors import UserInputError

HUNG_FILE = "hung_ranks"  # written by the launcher when it ends a job whose workers stopped beating
HUNG_STATUS = 124  # the launcher's status for a job it ended because a worker hung
FINISHED_MARK = "worker finished"  # the last line of a worker log that ran to the end
WORKER_MARK = "ms_ppo worker"  # the first line of a worker log: rank and process id


DATA_PARALLEL = "DataParallelDP"


@dataclass(frozen=True)
class WorkerInfo:
    """This process's place in the job: rank in [0, world_size), under a distribution policy (its name, as in
    MindSpore Reinforcement; ms_ppo.distribution)."""

    rank: int = 0
    world_size: int = 1
    policy: str = DATA_PARALLEL

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def replicas(self) -> int:
        """Processes that each hold a replica of the agent and all-reduce its gradients: all of them under
        DataParallelDP, else one (a single learner)."""
        return self.world_size if self.policy == DATA_PARALLEL else 1

    @property
    def collecting_ranks(self) -> int:
        """Ranks whose ``ppo.num_envs`` environments make up one iteration: all of them under DataParallelDP,
        else every rank but the learner (rank 0)."""
        return self.world_size if self.policy == DATA_PARALLEL or self.world_size == 1 else self.world_size - 1


def under_msrun() -> bool:
    """True inside a process started by msrun: a worker, or the scheduler (it runs the script too and serves
    the job from inside ``init()``). msrun sets MS_ROLE for both."""
    return os.environ.get("MS_ROLE") in ("MS_WORKER", "MS_SCHED")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def msrun_command(worker_num: int, script_args: Sequence[str], log_dir: str, master_port: Optional[int] = None,
                  local_worker_num: Optional[int] = None, master_addr: str = "127.0.0.1",
                  node_rank: int = 0) -> List[str]:
    """The msrun command line that runs ``train.py script_args`` on ``worker_num`` workers."""
    return ["msrun", f"--worker_num={worker_num}", f"--local_worker_num={local_worker_num or worker_num}",
            f"--master_addr={master_addr}", f"--master_port={master_port or _free_port()}",
            f"--node_rank={node_rank}", f"--log_dir={log_dir}", "--join=True", *script_args]


# How long a rank may wait in one CPU collective (MindSpore reads MS_NODE_TIMEOUT, in seconds; its default, about
# 30 s, ended a job whose rank 0 spent 50 s on an evaluation while the others waited for its next broadcast). It is
# also how long MindSpore's scheduler waits for a worker that died: the launcher's watchdog ends such a job after
# DEAD_GRACE instead; across machines (the cluster script, no watchdog) a vanished node takes this long.
COLLECTIVE_TIMEOUT = 600


def msrun_environment() -> Dict[str, str]:
    """This process's environment with its interpreter's directory first on PATH (msrun starts ``python``, and
    the workers must use the same environment (venv) as this process) and COLLECTIVE_TIMEOUT as MS_NODE_TIMEOUT
    unless the user set one."""
    return dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
                MS_NODE_TIMEOUT=os.environ.get("MS_NODE_TIMEOUT", str(COLLECTIVE_TIMEOUT)))


# Local workers per machine: Ascend and GPU servers hold at most 8 devices (HCCL/NCCL one process per device);
# on CPU, workers beyond the cores time-share them: up to two per core (a learner waiting for its actors, an
# env rank waiting for actions, use little), never the thousands a typo can ask for.
MAX_LOCAL_DEVICES = 8
WORKERS_PER_CORE = 2


def max_local_workers(device_target: str) -> int:
    """How many workers ``train.py --enable_distribute`` may start on this machine."""
    if device_target in ("Ascend", "GPU"):
        return MAX_LOCAL_DEVICES
    return WORKERS_PER_CORE * max(2, os.cpu_count() or 1)


def check_local_workers(worker_num: int, device_target: str) -> None:
    """Refuse a local launch that cannot work before any process starts (more workers span several machines:
    scripts/run_distribute_train_cluster.sh)."""
    limit = max_local_workers(device_target)
    if worker_num > limit:
        accelerator = device_target in ("Ascend", "GPU")
        where = f"{limit} devices per machine" if accelerator else f"{WORKERS_PER_CORE} per CPU core here"
        raise UserInputError(f"--worker_num {worker_num}: at most {limit} workers on one machine ({where}); "
                             f"for more, run scripts/run_distribute_train_cluster.sh on several")


HEARTBEAT_EVERY = 2.0  # seconds between a worker's heartbeats (a file it touches from a background thread)
# A worker silent this long is frozen: the launcher ends the job. Generous, because a long graph compilation may
# hold the interpreter; a stopped worker (SIGSTOP, a debugger) is seen from its process state within STOPPED_AFTER.
HEARTBEAT_TIMEOUT = 300.0
STOPPED_AFTER = 10.0
# A worker that exited without finishing ends the job this long after (msrun logs the exit within ~5 s, and
# failed_workers reads it from there); MindSpore itself would wait MS_NODE_TIMEOUT (COLLECTIVE_TIMEOUT).
DEAD_GRACE = 8.0


def heartbeat_path(log_dir: str, rank: int) -> str:
    return os.path.join(log_dir, f"heartbeat_{rank}")


def start_heartbeat(log_dir: str, rank: int, every: float = HEARTBEAT_EVERY) -> threading.Thread:
    """Write this process id to ``heartbeat_<rank>`` every ``every`` seconds while this process runs. A worker
    that waits in a collective keeps beating; one that is stopped or frozen holding the interpreter does not."""
    path = heartbeat_path(log_dir, rank)

    def beat() -> None:
        while True:
            try:
                with open(path, "w", encoding="utf-8") as handle:
                    handle.write(f"{os.getpid()}\n")
            except OSError:  # the run directory went away or the disk is full: the job will say so
                pass
            time.sleep(every)

    thread = threading.Thread(target=beat, name="ms_ppo-heartbeat", daemon=True)
    thread.start()
    return thread


def _process_state(pid: int) -> Optional[str]:
    """Linux: the process's state letter (R, S, T, Z, ...); None when it no longer exists (or /proc cannot tell)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _process_stopped(pid: int) -> bool:
    """The process is stopped (state T/t: SIGSTOP, or traced)."""
    return _process_state(pid) in ("T", "t")


def _process_gone(pid: int) -> bool:
    """The process has exited (a zombie not yet reaped by msrun counts); False where /proc is absent."""
    return os.path.isdir("/proc") and _process_state(pid) in (None, "Z", "X")


class Watchdog:
    """Watches a job's workers from the launcher: a rank whose process has been stopped for ``stopped_after``
    seconds, or whose heartbeat is older than ``timeout`` seconds, is reported as hung; one whose process exited
    without finishing, as dead."""

    def __init__(self, log_dir: str, timeout: float = HEARTBEAT_TIMEOUT, stopped_after: float = STOPPED_AFTER):
        self.log_dir, self.timeout, self.stopped_after = log_dir, timeout, stopped_after
        self.stopped_since: Dict[int, float] = {}

    def _heartbeats(self, now: float) -> List[Tuple[int, int, float]]:
        """(rank, process id, heartbeat age in seconds) of every worker that has beaten."""
        found = []
        names = os.listdir(self.log_dir) if os.path.isdir(self.log_dir) else []
        for name in sorted(names):
            match = re.fullmatch(r"heartbeat_(\d+)", name)
            if not match:
                continue
            path = os.path.join(self.log_dir, name)
            try:
                age = now - os.path.getmtime(path)
                with open(path, encoding="utf-8") as handle:
                    pid = int(handle.read().strip() or 0)
            except (OSError, ValueError):
                continue
            if pid:
                found.append((int(match.group(1)), pid, age))
        return found

    def dead(self) -> List[int]:
        """Ranks whose process exited without finishing (its log lacks FINISHED_MARK). msrun logs such an exit
        within seconds, but MindSpore's scheduler waits MS_NODE_TIMEOUT before it ends the job."""
        found = []
        for rank, pid, _ in self._heartbeats(time.time()):
            if _process_gone(pid):
                try:
                    with open(os.path.join(self.log_dir, f"worker_{rank}.log"), encoding="utf-8",
                              errors="replace") as handle:
                        finished = FINISHED_MARK in handle.read()
                except OSError:
                    finished = False
                if not finished:
                    found.append(rank)
        return found

    def hung(self, now: Optional[float] = None) -> List[str]:
        """``"rank R (process P) <why>"`` for every hung rank."""
        now = time.time() if now is None else now
        found = []
        for rank, pid, age in self._heartbeats(now):
            if _process_gone(pid):  # finished, or dead (``dead``): not beating is no sign of a hang then
                continue
            if _process_stopped(pid):
                since = self.stopped_since.setdefault(rank, now)
                if now - since >= self.stopped_after:
                    found.append(f"rank {rank} (process {pid}) stopped responding (its process is stopped)")
                continue
            self.stopped_since.pop(rank, None)
            if age > self.timeout:
                found.append(f"rank {rank} (process {pid}) stopped responding (no heartbeat for {age:.0f} s)")
        return found


def launch(worker_num: int, script: str, argv: Sequence[str], log_dir: str,
           heartbeat_timeout: float = HEARTBEAT_TIMEOUT) -> int:
    """Re-run this training command under msrun with ``worker_num`` local workers; return its exit status.

    msrun starts ``python script argv`` in each worker, with ``msrun_environment()``. While it runs, a Watchdog
    looks at the workers: one stopped, or silent for ``heartbeat_timeout`` seconds, ends the whole job, which
    returns HUNG_STATUS; ``failed_workers`` then names that rank.
    """
    env = msrun_environment()
    if shutil.which("msrun", path=env["PATH"]) is None:
        raise UserInputError("msrun was not found on PATH: install MindSpore in this environment")
    os.makedirs(log_dir, exist_ok=True)
    command = msrun_command(worker_num, [script, *argv], log_dir)
    print("launching: " + " ".join(command), flush=True)
    print(f"worker logs: {log_dir}/worker_<rank>.log (msrun's own output: {log_dir}/msrun.log)", flush=True)
    with open(os.path.join(log_dir, "msrun.log"), "w", encoding="utf-8") as output:
        job = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        watchdog = Watchdog(log_dir, heartbeat_timeout)
        dead_since: Optional[float] = None
        try:
            while job.poll() is None:
                hung = watchdog.hung()
                if hung:
                    with open(os.path.join(log_dir, HUNG_FILE), "w", encoding="utf-8") as handle:
                        handle.write("\n".join(hung) + "\n")
                    os.killpg(job.pid, signal.SIGKILL)  # msrun and every worker it started (a stopped one too)
                    job.wait()
                    return HUNG_STATUS
                dead_since = (dead_since or time.time()) if watchdog.dead() else None
                if dead_since is not None and time.time() - dead_since >= DEAD_GRACE:
                    os.killpg(job.pid, signal.SIGKILL)  # msrun has logged which worker exited by now
                    job.wait()
                    return 1
                time.sleep(1.0)
        except BaseException:
            os.killpg(job.pid, signal.SIGKILL)
            raise
    return job.returncode


def init_distributed(policy: str = DATA_PARALLEL, backend: Optional[str] = None) -> WorkerInfo:
    """Join the msrun job: initialise communication (``backend`` None: the device's own; "mccl": MindSpore's CPU
    collectives) and, for DataParallelDP, the data-parallel context; return this worker's place."""
    import mindspore
    from mindspore.communication import get_group_size, get_rank, init

    init(backend)
    world_size = get_group_size()
    if policy == DATA_PARALLEL:
        mindspore.set_auto_parallel_context(parallel_mode=mindspore.ParallelMode.DATA_PARALLEL,
                                            gradients_mean=True, device_num=world_size)
    return WorkerInfo(rank=get_rank(), world_size=world_size, policy=policy)


def worker_banner() -> str:
    """The first line a worker logs: its rank and process id, so a failure that msrun reports by process id can be
    named by rank (msrun exports RANK_ID to each worker)."""
    return f"{WORKER_MARK} rank {os.environ.get('RANK_ID', '?')} pid {os.getpid()}"


def failed_workers(log_dir: str) -> str:
    """Which ranks of an msrun job failed, from its logs: the first worker msrun saw exit with an error (its process
    id mapped to a rank by ``worker_banner``), else the ranks whose log lacks FINISHED_MARK."""
    if not os.path.isdir(log_dir):
        return "no worker logs"
    texts = {}
    for name in sorted(os.listdir(log_dir)):
        if name.endswith(".log"):
            with open(os.path.join(log_dir, name), encoding="utf-8", errors="replace") as handle:
                texts[name] = handle.read()
    rank_of = {pid: rank for text in texts.values()
               for rank, pid in re.findall(rf"{WORKER_MARK} rank (\S+) pid (\d+)", text)}
    hung = os.path.join(log_dir, HUNG_FILE)
    if os.path.exists(hung):
        with open(hung, encoding="utf-8") as handle:
            return "; ".join(line.strip() for line in handle if line.strip()) + f" (see {log_dir}/worker_<rank>.log)"
    exits = re.findall(r"Worker process (\d+) exit with exception\. Error code: (-?\d+)", texts.get("msrun.log", ""))
    if exits:
        pid, code = exits[0]
        how = f"killed by signal {-int(code)}" if int(code) < 0 else f"exit code {code}"
        rank = rank_of.get(pid, "?")
        return f"rank {rank} (process {pid}) failed first, {how} (see {log_dir}/worker_{rank}.log)"
    unfinished = [name[len("worker_"):-len(".log")] for name, text in texts.items()
                  if name.startswith("worker_") and FINISHED_MARK not in text]
    if not unfinished:
        return "every worker finished"
    return f"rank {', '.join(unfinished)} stopped before finishing (see {log_dir}/worker_<rank>.log)"

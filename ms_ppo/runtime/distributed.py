"""Multi-worker jobs on MindSpore's own ``msrun``: launching, joining, and telling which worker failed.

``DataParallelDP``: every worker steps its own environments and holds a replica of the agent; the gradients of
each minibatch are averaged across workers (``nn.DistributedGradReducer``) before the optimiser step, so the
replicas stay identical. Rank 0 logs, evaluates and checkpoints. The communication backend follows the device
(HCCL on Ascend, NCCL on GPU, MindSpore's CPU collectives on CPU).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

from ms_ppo.errors import UserInputError

FINISHED_MARK = "worker finished"  # the last line of a worker log that ran to the end
WORKER_MARK = "ms_ppo worker"  # the first line of a worker log: rank and process id


@dataclass(frozen=True)
class WorkerInfo:
    """This process's place in the job: rank in [0, world_size)."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


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


def msrun_environment() -> Dict[str, str]:
    """This process's environment with its interpreter's directory first on PATH: msrun starts ``python``, and
    the workers must use the same environment (venv) as this process."""
    return dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))


# Local workers per machine: Ascend and GPU servers hold at most 8 devices (HCCL/NCCL one process per device);
# on CPU, more workers than cores only time-share them.
MAX_LOCAL_DEVICES = 8


def max_local_workers(device_target: str) -> int:
    """How many workers ``train.py --enable_distribute`` may start on this machine."""
    if device_target in ("Ascend", "GPU"):
        return MAX_LOCAL_DEVICES
    return max(2, os.cpu_count() or 1)


def check_local_workers(worker_num: int, device_target: str) -> None:
    """Refuse a local launch that cannot work before any process starts (more workers span several machines:
    scripts/run_distribute_train_cluster.sh)."""
    limit = max_local_workers(device_target)
    if worker_num > limit:
        where = f"{limit} devices per machine" if device_target in ("Ascend", "GPU") else f"{limit} CPU cores here"
        raise UserInputError(f"--worker_num {worker_num}: at most {limit} workers on one machine ({where}); "
                             f"for more, run scripts/run_distribute_train_cluster.sh on several")


def launch(worker_num: int, script: str, argv: Sequence[str], log_dir: str) -> int:
    """Re-run this training command under msrun with ``worker_num`` local workers; return its exit status.

    msrun starts ``python script argv`` in each worker, with ``msrun_environment()``.
    """
    env = msrun_environment()
    if shutil.which("msrun", path=env["PATH"]) is None:
        raise UserInputError("msrun was not found on PATH: install MindSpore in this environment")
    os.makedirs(log_dir, exist_ok=True)
    command = msrun_command(worker_num, [script, *argv], log_dir)
    print("launching: " + " ".join(command), flush=True)
    print(f"worker logs: {log_dir}/worker_<rank>.log (msrun's own output: {log_dir}/msrun.log)", flush=True)
    with open(os.path.join(log_dir, "msrun.log"), "w", encoding="utf-8") as output:
        return subprocess.call(command, env=env, stdout=output, stderr=subprocess.STDOUT)


def init_data_parallel() -> WorkerInfo:
    """Join the msrun job: initialise communication and the data-parallel context; return this worker's place."""
    import mindspore
    from mindspore.communication import get_group_size, get_rank, init

    init()
    world_size = get_group_size()
    mindspore.set_auto_parallel_context(parallel_mode=mindspore.ParallelMode.DATA_PARALLEL,
                                        gradients_mean=True, device_num=world_size)
    return WorkerInfo(rank=get_rank(), world_size=world_size)


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

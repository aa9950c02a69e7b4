"""What the benchmark scripts share: the paths, the machine description and log lines of a report, running a
command with its output in a log, the worker protocol, the Stable-Baselines3 venv, warm SPS from progress.csv,
and writing JSON and PNG results.

The scripts are run as ``python benchmarks/NAME.py``, which puts this folder first on ``sys.path``: they import
this module, and each other, by name. Standard library only (matplotlib is imported where a plot is drawn):
sb3_ppo.py and atari.py's SB3 worker import it inside benchmarks/.venv-sb3, which has no ms_ppo.

Worker protocol: a worker is a subprocess (this folder's scripts with ``--worker NAME``, or sb3_ppo.py) that
prints its result as one JSON line, the last line of its stdout (``emit``); its stderr goes to a log.
``run_worker`` runs one and returns that result.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import subprocess
import sys
import time
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)
RESULTS_DIR = os.path.join(BENCH_DIR, "results")
TMP_DIR = os.path.join(RESULTS_DIR, "tmp")  # run directories and logs (ignored by git)

SB3_VENV = os.path.join(BENCH_DIR, ".venv-sb3")
SB3_PYTHON = os.path.join(SB3_VENV, "bin", "python")
SB3_REQUIREMENTS = os.path.join(BENCH_DIR, "requirements-sb3.txt")
SB3_SCRIPT = os.path.join(BENCH_DIR, "sb3_ppo.py")
TORCH_VERSION = "2.13.0"

# ms_ppo is imported from this checkout also by a Python that has not pip-installed it (scripts/
# compare_precision.sh falls back to python3).
if ROOT not in sys.path:
    sys.path.insert(1, ROOT)


def rel(path: str) -> str:
    """A path relative to the repository, for reports (no machine-specific absolute paths)."""
    return os.path.relpath(os.path.abspath(path), ROOT)


def load_average() -> List[float]:
    return [round(x, 2) for x in os.getloadavg()]


def cpu_model() -> Optional[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), None)
    except OSError:
        return None


def logger(name: str) -> Callable[[str], None]:
    """A log function printing ``[name HH:MM:SS] message``, flushed (the benchmarks run for hours)."""
    def log(message: str) -> None:
        print(f"[{name} {time.strftime('%H:%M:%S')}] {message}", flush=True)
    return log


def _run(cmd: List[str], log_path: str, env: Optional[Dict[str, str]], worker: bool) -> Tuple[str, float]:
    """Run ``cmd`` from the repository root, its output to ``log_path`` (a worker's stderr only: its stdout is
    returned); raise with the log's last lines if it fails. Returns (stdout, wall seconds)."""
    os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
    start = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE if worker else log,
                              stderr=log if worker else subprocess.STDOUT, env=env, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        with open(log_path, encoding="utf-8", errors="replace") as log:
            tail = "".join(log.readlines()[-15:])
        raise RuntimeError(f"{' '.join(cmd[:3])} ... exited with {proc.returncode}; last lines of "
                           f"{rel(log_path)}:\n{tail}")
    return proc.stdout or "", wall


def run_logged(cmd: List[str], log_path: str, env: Optional[Dict[str, str]] = None) -> float:
    """Run ``cmd`` from the repository root, its output to ``log_path``; return its wall seconds."""
    return _run(cmd, log_path, env, worker=False)[1]


def emit(result: Dict[str, Any]) -> None:
    """A worker's side of the protocol: its result, as the last line of its stdout."""
    print(json.dumps(result), flush=True)


def run_worker(cmd: List[str], log_path: str, env: Optional[Dict[str, str]] = None
               ) -> Tuple[Dict[str, Any], float]:
    """Run the worker ``cmd`` from the repository root, its stderr to ``log_path``; return the result it
    emitted and its wall seconds."""
    stdout, wall = _run(cmd, log_path, env, worker=True)
    lines = stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"{' '.join(cmd[:3])} ... printed no result; see {rel(log_path)}")
    return json.loads(lines[-1]), wall


def ensure_sb3_venv(tmp_dir: str, log: Callable[[str], None]) -> Dict[str, Any]:
    """Create benchmarks/.venv-sb3 when absent (its pip logs in ``tmp_dir``): torch first and alone, as only a
    bare ``torch==VERSION`` gets the CPU wheel (any other spec pulls the CUDA build, gigabytes), then
    requirements-sb3.txt. Checks it and returns its versions."""
    stamp = os.path.join(SB3_VENV, ".installed")
    created = False
    if not os.path.exists(stamp):
        created = True
        if not os.path.exists(SB3_PYTHON):
            log(f"creating {rel(SB3_VENV)}")
            run_logged([sys.executable, "-m", "venv", SB3_VENV], os.path.join(tmp_dir, "sb3_venv.log"))
        pip = [SB3_PYTHON, "-m", "pip", "install", "--quiet"]
        log(f"installing torch=={TORCH_VERSION} (CPU wheel) alone into {rel(SB3_VENV)}")
        run_logged(pip + [f"torch=={TORCH_VERSION}"], os.path.join(tmp_dir, "sb3_pip_torch.log"))
        log(f"installing {rel(SB3_REQUIREMENTS)}")
        run_logged(pip + ["-r", SB3_REQUIREMENTS], os.path.join(tmp_dir, "sb3_pip_requirements.log"))
    probe = subprocess.run([SB3_PYTHON, "-c", "import torch, stable_baselines3, gymnasium, mujoco; "
                            "print(torch.__version__, stable_baselines3.__version__, gymnasium.__version__, "
                            "mujoco.__version__)"], capture_output=True, text=True, cwd=ROOT)
    if probe.returncode != 0:
        raise RuntimeError(f"{rel(SB3_VENV)} is broken (delete it to rebuild): {probe.stderr.strip()[-500:]}")
    torch_v, sb3_v, gym_v, mujoco_v = probe.stdout.split()
    if torch_v.split("+")[0] != TORCH_VERSION:
        raise RuntimeError(f"{rel(SB3_VENV)} has torch {torch_v}, not {TORCH_VERSION}: delete it to rebuild")
    if created:
        with open(stamp, "w", encoding="utf-8") as handle:
            handle.write(probe.stdout)
    return {"venv": rel(SB3_VENV), "created_now": created, "torch": torch_v, "stable_baselines3": sb3_v,
            "gymnasium": gym_v, "mujoco": mujoco_v}


class WarmSpan(NamedTuple):
    """The first and last rows (global_step, wall_seconds) of a run's progress.csv. The first iteration is the
    warm-up, where every graph is compiled: warm speed is measured from its end to the last row."""

    first: Dict[str, float]
    last: Dict[str, float]

    @property
    def steps(self) -> int:
        return int(self.last["global_step"] - self.first["global_step"])

    @property
    def seconds(self) -> float:
        return self.last["wall_seconds"] - self.first["wall_seconds"]

    @property
    def sps(self) -> float:
        return self.steps / self.seconds


def warm_span(progress_csv: str, before_final_evaluation: bool = False) -> WarmSpan:
    """From the end of the first iteration (compilation) to the last row, or to the row before it (the last
    iteration's row includes the final evaluation)."""
    with open(progress_csv, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    first, last = ({"global_step": int(row["global_step"]), "wall_seconds": float(row["wall_seconds"])}
                   for row in (rows[0], rows[-2] if before_final_evaluation else rows[-1]))
    return WarmSpan(first, last)


def write_json(path: str, data: Dict[str, Any]) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1)
        handle.write("\n")


@contextlib.contextmanager
def saved_figure(path: str, figsize: Tuple[float, float]) -> Iterator[Any]:
    """The axes of a new figure (headless backend), gridded and saved to ``path`` at 100 dpi on exit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize)
    try:
        yield ax
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)

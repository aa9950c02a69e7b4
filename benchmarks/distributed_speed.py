"""Data-parallel scaling: SPS of 1 worker against 2 msrun workers on the same machine, in one run.

    python benchmarks/distributed_speed.py --steps 50000 --out benchmarks/results/distributed_speed.json

Each run is ``train.py`` with the default HalfCheetah YAMLs (``--enable_distribute --worker_num 2`` for the
second: every worker steps its own ``ppo.num_envs`` environments, so one iteration collects twice the steps).
SPS is warm: steps and wall time after the first iteration, from rank 0's progress.csv (its ``global_step``
counts every worker's steps). Threads: each worker count runs twice, with MindSpore's default CPU kernel threads
(2 on this machine) and with ``--cpu_threads 1``, so 2 workers on 2 cores run either 4 or 2 kernel threads
beside their environments. Writes JSON and a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from typing import Any, Dict, List, Optional, Tuple

from _common import (
    BENCH_DIR,
    RESULTS_DIR,
    ROOT,
    TMP_DIR,
    load_average,
    run_logged,
    warm_span,
    write_json,
)

TMP_ROOT = os.path.join(TMP_DIR, "distributed")


def run(workers: int, threads: Optional[int], steps: int, seed: int) -> Dict[str, Any]:
    run_dir = os.path.join(TMP_ROOT, f"workers{workers}_threads{threads or 'default'}")
    command = [sys.executable, os.path.join(ROOT, "train.py"), "--device_target", "CPU", "--total_steps", str(steps),
               "--seed", str(seed), "--output_dir", run_dir, "--overwrite", "--quiet", "--save_every", "0"]
    if workers > 1:
        command += ["--enable_distribute", "--worker_num", str(workers)]
    if threads:
        command += ["--cpu_threads", str(threads)]
    run_logged(command, run_dir + ".log")
    with open(os.path.join(run_dir, "result.json"), encoding="utf-8") as handle:
        result = json.load(handle)
    return {"workers": workers, "cpu_threads": threads or "default",
            "warm_sps": round(warm_span(os.path.join(run_dir, "progress.csv")).sps, 1),
            "total_steps": result["total_steps"], "eval_return_mean": result["eval_return_mean"],
            "load_average": load_average()}


def allreduce_ms() -> Tuple[float, int]:
    """(milliseconds per gradient-sized all-reduce between 2 idle msrun workers, floats in the gradient), from
    benchmarks/allreduce_latency.py."""
    from ms_ppo.runtime.distributed import msrun_command, msrun_environment

    log_dir = os.path.join(TMP_ROOT, "allreduce")
    subprocess.run(msrun_command(2, [os.path.join(BENCH_DIR, "allreduce_latency.py")], log_dir), check=True,
                   capture_output=True, env=msrun_environment())
    with open(os.path.join(log_dir, "worker_0.log"), encoding="utf-8") as handle:
        line = next(line for line in handle if line.startswith("all-reduce of"))
    return float(line.split(": ")[1].split(" ms")[0]), int(line.split()[2].replace(",", ""))


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50_000, help="environment steps per run (all workers)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join(RESULTS_DIR, "distributed_speed.json"))
    args = parser.parse_args(argv)
    runs = [run(workers, threads, args.steps, args.seed) for threads in (None, 1) for workers in (1, 2)]
    best_single = max(r["warm_sps"] for r in runs if r["workers"] == 1)
    best_double = max(r["warm_sps"] for r in runs if r["workers"] == 2)
    speedup = best_double / best_single
    reduce_ms, weights = allreduce_ms()
    from ms_ppo.app.cli import (  # the YAMLs the train.py runs above used
        DEFAULT_ALGO_YAML,
        DEFAULT_ENV_YAML,
    )
    from ms_ppo.config import load_settings

    ppo = load_settings(DEFAULT_ENV_YAML, DEFAULT_ALGO_YAML).ppo
    summary = {"env": "HalfCheetah-v5 (default YAMLs)", "cpu_count": os.cpu_count(), "runs": runs,
               "speedup_2_vs_1": round(speedup, 2), "allreduce_ms": reduce_ms, "allreduce_floats": weights,
               "command": f"python benchmarks/distributed_speed.py --steps {args.steps} --seed {args.seed}"}
    write_json(args.out, summary)
    table = ["| workers | CPU kernel threads per worker | warm SPS | load average (1, 5, 15 min) at the end |",
             "|---:|---|---:|---|"]
    table += [f"| {r['workers']} | {r['cpu_threads']} | {r['warm_sps']:,.0f} | {r['load_average']} |" for r in runs]
    table.append(f"\nBest 2-worker / best 1-worker SPS: {speedup:.2f}x on {os.cpu_count()} cores. One all-reduce of "
                 f"the gradients ({weights:,} float32) between 2 idle workers: {reduce_ms:.2f} ms "
                 f"(benchmarks/allreduce_latency.py); the update does {ppo.epochs * ppo.num_minibatches} per "
                 f"iteration.")
    with open(os.path.splitext(args.out)[0] + ".md", "w", encoding="utf-8") as handle:
        handle.write("\n".join(table) + "\n")
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())

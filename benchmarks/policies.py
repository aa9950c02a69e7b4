"""Every distribution policy against one process, at the same total steps and the same number of environments.

    python benchmarks/policies.py --env HalfCheetah-v5 --algo ppo_halfcheetah --steps 300000 --seeds 0

One process runs ``ppo.num_envs`` environments; DataParallelDP runs 2 workers with half as many each; the
actor-learner and remote-environment policies run rank 0 plus 2 ranks with half as many each. Each run is
``train.py`` (with ``--enable_distribute`` for the policies), one after the other; the result is each run's own
final deterministic evaluation (``train.eval_episodes`` episodes) and its wall time, against one process's;
with several seeds, each policy's mean over them against one process's mean.
Writes ``benchmarks/results/policies_<env>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._common import cpu_model, load_average, write_json  # noqa: E402
from ms_ppo.config import load_settings  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
RUNS = [  # (policy, processes); None: one process
    (None, 1), ("DataParallelDP", 2), ("MultiActorSingleLearnerDP", 3), ("AsyncMultiActorSingleLearnerDP", 3),
    ("SingleActorLearnerMultiEnvDP", 3)]


def run(env: str, algo: str, steps: int, seed: int, policy, processes: int, num_envs: int) -> Dict[str, Any]:
    out = tempfile.mkdtemp(prefix="policies_")
    command = [sys.executable, os.path.join(ROOT, "train.py"), "--env_yaml", env, "--algo_yaml", algo,
               "--device_target", "CPU", "--total_steps", str(steps), "--seed", str(seed), "--output_dir", out,
               "--quiet"]
    if policy is not None:
        collecting = processes if policy == "DataParallelDP" else processes - 1
        command += ["--enable_distribute", "--worker_num", str(processes), "--distribution_policy", policy,
                    "--set", f"ppo.num_envs={num_envs // collecting}"]
    start = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=6 * 3600)
    if completed.returncode != 0:
        raise SystemExit(f"{policy or 'one process'} failed: {completed.stderr.strip()[-500:]}")
    with open(os.path.join(out, "result.json"), encoding="utf-8") as handle:
        result = json.load(handle)
    return {"policy": policy or "one process", "processes": processes, "eval_return_mean": result["eval_return_mean"],
            "eval_return_std": result["eval_return_std"], "total_steps": result["total_steps"],
            "wall_seconds": round(time.perf_counter() - start, 1), "sps": result["sps"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="HalfCheetah-v5")
    parser.add_argument("--algo", default="ppo_halfcheetah")
    parser.add_argument("--steps", type=int, default=300_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--policies", nargs="+", default=[policy for policy, _ in RUNS[1:]],
                        choices=[policy for policy, _ in RUNS[1:]], help="compared with one process (always run)")
    parser.add_argument("--out", default=None, help="results file stem (default: policies_<env>)")
    parser.add_argument("--also-running", default="nothing else",
                        help="what else shared the machine, for the report")
    args = parser.parse_args()
    num_envs = load_settings(args.env, args.algo).ppo.num_envs
    started, load_before = time.strftime("%Y-%m-%d %H:%M:%S"), load_average()
    rows: List[Dict[str, Any]] = []
    runs = [(policy, processes) for policy, processes in RUNS if policy is None or policy in args.policies]
    for seed in args.seeds:
        for policy, processes in runs:
            rows.append({"seed": seed, **run(args.env, args.algo, args.steps, seed, policy, processes, num_envs)})
            print(rows[-1], flush=True)
    summary = []
    for policy, processes in runs:
        mine = [row for row in rows if row["processes"] == processes and row["policy"] == (policy or "one process")]
        summary.append({"policy": policy or "one process", "processes": processes,
                        "eval_return_mean": round(float(np.mean([row["eval_return_mean"] for row in mine])), 1),
                        "per_seed": [round(row["eval_return_mean"], 1) for row in mine],
                        "wall_seconds": round(float(np.mean([row["wall_seconds"] for row in mine])), 1),
                        "sps": round(float(np.mean([row["sps"] for row in mine])), 1)})
    base = summary[0]
    for row in summary:
        row["return_vs_one_process"] = round(row["eval_return_mean"] / base["eval_return_mean"], 3)
        row["within_10_percent"] = abs(row["eval_return_mean"] - base["eval_return_mean"]) <= 0.1 * abs(
            base["eval_return_mean"])
    name = os.path.basename(args.env).replace(".yaml", "")
    stem = args.out or f"policies_{name}"
    report = {"cpu": cpu_model(), "cores": os.cpu_count(), "started": started, "load_average_before": load_before,
              "load_average_after": load_average(), "also_running": args.also_running,
              "command": " ".join(["python benchmarks/policies.py", *sys.argv[1:]]), "num_envs": num_envs,
              "seeds": args.seeds, "summary": summary, "runs": rows}
    write_json(os.path.join(RESULTS, f"{stem}.json"), report)
    lines = [f"# Distribution policies against one process: {name}, {args.steps} steps, seeds "
             f"{', '.join(map(str, args.seeds))}", "",
             f"CPU: `{report['cpu']}` ({report['cores']} logical CPUs); {started}; load average before "
             f"{load_before}, after {report['load_average_after']}; also running: {args.also_running}.", "",
             f"Command: `{report['command']}`. {num_envs} environments in every run (one process: all of them; "
             f"DataParallelDP: 2 workers with half each; the others: rank 0 and 2 ranks with half each).", "",
             "| policy | processes | eval return (mean of seeds) | per seed | vs one process | within 10 % | wall s "
             "| SPS |", "|---|---|---|---|---|---|---|---|"]
    for row in summary:
        lines.append(f"| {row['policy']} | {row['processes']} | {row['eval_return_mean']:.1f} | "
                     f"{', '.join(map(str, row['per_seed']))} | {row['return_vs_one_process']:.2f} | "
                     f"{'yes' if row['within_10_percent'] else 'no'} | {row['wall_seconds']} | {row['sps']} |")
    with open(os.path.join(RESULTS, f"{stem}.md"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

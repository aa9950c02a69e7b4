"""Collection speed with NumPy's BLAS at one thread (runtime.host_blas_threads 1, the default) against NumPy's own
choice (null: one thread per core), in one process, the two settings alternating rollout by rollout.

    python benchmarks/host_blas_threads.py --env_yaml env_yaml/HalfCheetah-v5.yaml --rollouts 6 \
        --out benchmarks/results/host_blas_threads.json

The host policy's matmuls have one row per environment; the setting matters most when other processes share the
CPU, so the result records the load average: run it on an idle machine and beside other work, and compare the
ratios, not the absolute steps/s. Writes the JSON and a Markdown table beside it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from typing import Dict, List

from _common import cpu_model, load_average, rel, write_json

from ms_ppo import PPOSession

SETTINGS = {"one thread (default)": 1, "NumPy's own choice": None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env_yaml", default="env_yaml/HalfCheetah-v5.yaml")
    parser.add_argument("--algo_yaml", default=None)
    parser.add_argument("--rollouts", type=int, default=6, help="timed rollouts per setting")
    parser.add_argument("--note", default="", help="what else was running (goes into the report)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        trainer = PPOSession(args.env_yaml, args.algo_yaml, quiet=True, log=lambda line: None,
                             overrides={"runtime.device_target": "CPU", "train.output_dir": out}).build()
    if trainer.agent.host_policy is None:
        raise SystemExit("error: this run does not collect with the host policy (an fp32 MLP on CPU): nothing to "
                         "measure")
    collector, state = trainer.collector, trainer.state
    collector.reset(state, 0)
    collector.collect(state)  # warm-up
    steps = trainer.settings.ppo.batch_size
    seconds: Dict[str, List[float]] = {name: [] for name in SETTINGS}
    load_start = load_average()
    for _ in range(args.rollouts):
        for name, threads in SETTINGS.items():
            trainer.agent.use_host_policy(threads)  # the same network, another thread setting
            start = time.perf_counter()
            collector.collect(state)
            seconds[name].append(time.perf_counter() - start)
    sps = {name: steps / statistics.median(values) for name, values in seconds.items()}
    report = {
        "env_yaml": rel(args.env_yaml), "steps_per_rollout": steps, "rollouts_per_setting": args.rollouts,
        "cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "load_average_start": load_start,
        "load_average_end": load_average(), "note": args.note,
        "seconds_per_rollout": seconds, "median_sps": sps,
        "ratio_one_thread_over_default": sps["one thread (default)"] / sps["NumPy's own choice"],
    }
    write_json(args.out, report)
    lines = [f"# Collection with NumPy's BLAS at one thread vs NumPy's own choice: {report['env_yaml']}", "",
             f"CPU: `{report['cpu_model']}`, {report['cpu_count']} logical CPUs. Load average (1/5/15 min) at the "
             f"start {load_start}, at the end {report['load_average_end']}. {args.note}", "",
             "| runtime.host_blas_threads | median collection steps/s | rollouts (s) |", "|---|---:|---|"]
    for name, values in seconds.items():
        lines.append(f"| {name} | {sps[name]:,.0f} | {', '.join(f'{v:.2f}' for v in values)} |")
    lines += ["", f"One thread / NumPy's own choice: **{report['ratio_one_thread_over_default']:.2f}x**.", "",
              f"Command: `python benchmarks/host_blas_threads.py --env_yaml {report['env_yaml']} --rollouts "
              f"{args.rollouts} --out {rel(args.out)}`"]
    with open(os.path.splitext(args.out)[0] + ".md", "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

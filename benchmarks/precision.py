"""fp32 vs fp16: train the same environment with the same seeds in both precisions and compare.

    python benchmarks/precision.py --env_yaml env_yaml/CartPole-v1.yaml --algo_yaml algo_yaml/ppo_classic.yaml \
        --total_steps 50000 --seeds 0 1

Each run is ``train.py --precision_mode MODE --seed S --output_dir DIR``, one after the other in its own process
(peak RSS is that process's ``ru_maxrss``). From each run's result.json (final deterministic evaluation, wall
time, SPS) and progress.csv (skipped optimiser steps, the learning curve) it writes into ``--out_dir``:
``precision_<env>.md`` (one row per precision: mean ± std over seeds, then one row per run) and
``precision_<env>.png`` (charts/episodic_return against global_step, one line per run). Run directories go to
``--runs_dir`` (default benchmarks/results/tmp/precision, ignored by git). The runs alternate fp32/fp16 seed by
seed, one at a time; timings are only comparable on an otherwise idle machine. The report names the CPU.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
from typing import Any, Dict, List

from _common import RESULTS_DIR, ROOT, TMP_DIR, cpu_model, saved_figure

from ms_ppo.training.plots import read_curve

MODES = ("fp32", "fp16")


def train(args: argparse.Namespace, mode: str, seed: int) -> Dict[str, Any]:
    """One training process; returns its result.json plus the run directory, peak RSS and skipped steps."""
    run_dir = os.path.join(args.runs_dir, f"{args.env_name}_{mode}_seed{seed}")
    command = [sys.executable, os.path.join(ROOT, "train.py"), "--env_yaml", args.env_yaml_copy,
               "--algo_yaml", args.algo_yaml_copy, "--device_target", "CPU", "--precision_mode", mode,
               "--seed", str(seed), "--total_steps", str(args.total_steps), "--output_dir", run_dir,
               "--overwrite", "--quiet", "--set", "train.save_every=0"]
    print(f"[{mode} seed {seed}] {' '.join(command)}", flush=True)
    with open(run_dir + ".log", "w", encoding="utf-8") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        # wait4 gives this child's own resource usage; ru_maxrss is in KiB on Linux.
        _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{mode} seed {seed} failed; see {run_dir}.log")
    with open(os.path.join(run_dir, "result.json"), encoding="utf-8") as handle:
        result = json.load(handle)
    with open(os.path.join(run_dir, "progress.csv"), newline="", encoding="utf-8") as handle:
        last = list(csv.DictReader(handle))[-1]
    result.update(run_dir=run_dir, peak_rss_mb=usage.ru_maxrss / 1024,
                  skipped_steps=int(float(last["precision/skipped_steps"] or 0)),
                  loss_scale=float(last["precision/loss_scale"]) if last["precision/loss_scale"] else None)
    print(f"[{mode} seed {seed}] return {result['eval_return_mean']:.1f}, {result['wall_seconds']:.0f} s, "
          f"{result['sps']:.0f} SPS, {result['skipped_steps']} skipped, {result['peak_rss_mb']:.0f} MB", flush=True)
    return result


def _mean_std(values: List[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} ± {spread:.1f}"


def markdown(args: argparse.Namespace, runs: Dict[str, List[Dict[str, Any]]]) -> str:
    """Summary rows (mean ± std over seeds) and one row per run."""
    episodes = sorted({run["eval_episodes"] for mode_runs in runs.values() for run in mode_runs})
    lines = [f"# fp32 vs fp16 on {args.env_name}", "",
             f"{args.total_steps} steps per run, seeds {', '.join(map(str, args.seeds))}, "
             f"`{os.path.relpath(args.env_yaml, ROOT)}` + `{os.path.relpath(args.algo_yaml, ROOT)}`, CPU. "
             f"Return: deterministic evaluation after training ({'/'.join(map(str, episodes))} episodes), "
             "mean ± std over seeds. "
             "Skipped steps: optimiser steps dropped by the loss scaler over the whole run (fp32 has none). "
             "Wall time and SPS include graph compilation.", "",
             f"CPU: {cpu_model() or 'unknown'} (command: `python benchmarks/precision.py "
             f"--env_yaml {os.path.relpath(args.env_yaml, ROOT)} "
             f"--algo_yaml {os.path.relpath(args.algo_yaml, ROOT)} --total_steps {args.total_steps} "
             f"--seeds {' '.join(map(str, args.seeds))}`).", "",
             "| precision | eval return | wall time (s) | SPS | skipped steps | peak RSS (MB) |",
             "|---|---|---|---|---|---|"]
    for mode, results in runs.items():
        lines.append(f"| {mode} | {_mean_std([r['eval_return_mean'] for r in results])} "
                     f"| {_mean_std([r['wall_seconds'] for r in results])} "
                     f"| {_mean_std([r['sps'] for r in results])} "
                     f"| {statistics.mean(r['skipped_steps'] for r in results):.1f} "
                     f"| {max(r['peak_rss_mb'] for r in results):.0f} |")
    lines += ["", "| precision | seed | eval return | wall time (s) | SPS | skipped steps | final loss scale "
              "| peak RSS (MB) |", "|---|---|---|---|---|---|---|---|"]
    for mode, results in runs.items():
        for r in results:
            scale = "–" if r["loss_scale"] is None else f"{r['loss_scale']:.0f}"
            lines.append(f"| {mode} | {r['seed']} | {r['eval_return_mean']:.1f} ± {r['eval_return_std']:.1f} "
                         f"| {r['wall_seconds']:.1f} | {r['sps']:.0f} | {r['skipped_steps']} | {scale} "
                         f"| {r['peak_rss_mb']:.0f} |")
    return "\n".join(lines) + "\n"


def plot(args: argparse.Namespace, runs: Dict[str, List[Dict[str, Any]]], png_path: str) -> None:
    """Both precisions' learning curves (charts/episodic_return vs global_step) in one PNG."""
    with saved_figure(png_path, (7, 4.5)) as ax:
        for color, (mode, results) in zip(("tab:blue", "tab:orange"), runs.items()):
            for r, style in zip(results, ("-", "--", ":", "-.")):
                steps, returns = read_curve(os.path.join(r["run_dir"], "progress.csv"))
                ax.plot(steps, returns, style, color=color, label=f"{mode} seed {r['seed']}")
        ax.set_xlabel("environment steps")
        ax.set_ylabel("episode return (last 100 training episodes)")
        ax.set_title(f"PPO on {args.env_name}: fp32 vs fp16")
        ax.legend(fontsize=8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env_yaml", default=os.path.join(ROOT, "env_yaml", "CartPole-v1.yaml"))
    parser.add_argument("--algo_yaml", default=os.path.join(ROOT, "algo_yaml", "ppo_classic.yaml"))
    parser.add_argument("--total_steps", type=int, default=50_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--out_dir", default=RESULTS_DIR)
    parser.add_argument("--runs_dir", default=os.path.join(TMP_DIR, "precision"))
    args = parser.parse_args()
    args.env_yaml, args.algo_yaml = os.path.abspath(args.env_yaml), os.path.abspath(args.algo_yaml)
    args.env_name = os.path.splitext(os.path.basename(args.env_yaml))[0]
    os.makedirs(args.runs_dir, exist_ok=True)
    # Every run reads the same copy of the YAMLs, so an edit made during the (long) comparison cannot make the
    # precisions train different configurations.
    args.env_yaml_copy = os.path.join(args.runs_dir, f"{args.env_name}_env.yaml")
    args.algo_yaml_copy = os.path.join(args.runs_dir, f"{args.env_name}_algo.yaml")
    shutil.copyfile(args.env_yaml, args.env_yaml_copy)
    shutil.copyfile(args.algo_yaml, args.algo_yaml_copy)
    os.makedirs(args.out_dir, exist_ok=True)
    runs: Dict[str, List[Dict[str, Any]]] = {mode: [] for mode in MODES}
    for seed in args.seeds:  # alternate the precisions so that changes in machine load hit both alike
        for mode in MODES:
            runs[mode].append(train(args, mode, seed))
    stem = os.path.join(args.out_dir, f"precision_{args.env_name}")
    table = markdown(args, runs)
    with open(stem + ".md", "w", encoding="utf-8") as handle:
        handle.write(table)
    plot(args, runs, stem + ".png")
    print(table)
    print(f"written: {stem}.md, {stem}.png")


if __name__ == "__main__":
    main()

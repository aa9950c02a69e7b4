"""Learning benchmark: ms_ppo's final deterministic return over several seeds, optionally next to SB3 PPO.

    python benchmarks/learning.py --env env_yaml/CartPole-v1.yaml --algo algo_yaml/ppo_classic.yaml \
        --steps 50000 --seeds 0 1 2 3 4 --peer sb3 --out benchmarks/results/learning_CartPole-v1.json

Run it with ms_ppo's venv (``.venv/bin/python``). For each seed, one after the other in this process:
``PPOSession(env_yaml, algo_yaml, overrides={train.total_steps, train.seed, train.output_dir, --set ...}).run()``,
each run writing its directory under ``benchmarks/results/tmp/learning/`` (progress.csv, checkpoints,
result.json). The final evaluation is ms_ppo's own: ``train.eval_episodes`` deterministic episodes, episode i reset
with seed ``seed + 1_000_000 + i``, normalisation statistics frozen.

With ``--peer sb3`` each seed is then trained by Stable-Baselines3 PPO with RL-Zoo's hyperparameters for the task
(benchmarks/sb3_ppo.py in benchmarks/.venv-sb3, created when absent as benchmarks/speed.py does), on the same
number of steps, and evaluated on the same episode seeds. One process at a time: timings are not shared.

With ``--from-runs RUN_DIR ...`` (one per seed) no ms_ppo seed is trained: finished runs made before with
``train.py`` are reported instead, after checking that each run's config.yaml holds exactly the settings this
benchmark would use for its seed (runs are deterministic on CPU: the same settings train the same run).

With ``--merge-seeds REPORT.json ...`` nothing is trained: the ms_ppo seeds of other reports made with the same
env, steps and settings (e.g. one process per seed) are added to ``--out``; ``--merge-peer`` does the same for SB3.

Writes ``--out`` (JSON: settings, per-seed results, summary), a Markdown table (``--out`` with .md) and a learning
curve PNG (``--out`` with .png; mean return of the last 100 training episodes against steps, every seed, both
libraries). For FrozenLake the return of an episode is 1 at the goal and 0 otherwise, so the mean return is the
success rate; the JSON also names it ``success_rate``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import time
from typing import Any, Callable, Dict, List, Optional

import numpy as np
from _common import (
    ROOT,
    SB3_PYTHON,
    SB3_SCRIPT,
    TMP_DIR,
    cpu_model,
    ensure_sb3_venv,
    load_average,
    logger,
    rel,
    run_worker,
    saved_figure,
    write_json,
)

from ms_ppo import PPOSession
from ms_ppo.config import load_settings, parse_override
from ms_ppo.envs import resolve_env_id
from ms_ppo.errors import UserInputError
from ms_ppo.evaluation import EVAL_SEED_OFFSET
from ms_ppo.training.plots import read_curve
from ms_ppo.training.tracking import flat_settings

TMP_ROOT = os.path.join(TMP_DIR, "learning")


def _mean_std(values: List[float]) -> Dict[str, float]:
    return {"mean": statistics.fmean(values), "std": statistics.pstdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values)}


def run_ms_ppo(args: argparse.Namespace, seed: int, env_id: str, run_dir: str) -> Dict[str, Any]:
    overrides = dict(args.overrides)
    overrides.update({"train.total_steps": args.steps, "train.seed": seed, "train.output_dir": run_dir,
                      "runtime.device_target": args.device_target})
    log_path = run_dir + ".log"
    shutil.rmtree(run_dir, ignore_errors=True)  # a fresh directory: progress.csv is appended to, not replaced
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "w", encoding="utf-8") as log_file:
        def log(line: str) -> None:
            log_file.write(line + "\n")
            log_file.flush()

        start = time.perf_counter()
        result = PPOSession(args.env, args.algo, overrides=overrides, overwrite=True, quiet=True, log=log).run()
        process_seconds = time.perf_counter() - start
    out = {key: result[key] for key in ("eval_return_mean", "eval_return_std", "eval_episodes", "total_steps",
                                        "wall_seconds", "sps", "iterations")}
    out.update({"seed": seed, "wall_seconds_with_setup": round(process_seconds, 3), "run_dir": rel(run_dir),
                "log": rel(log_path)})
    return out


def adopt_ms_ppo_run(args: argparse.Namespace, seed: int, source: str, run_dir: str) -> Dict[str, Any]:
    """A finished ms_ppo run made before (train.py, or learning.py in another session) reported as if this script
    had trained it: its config.yaml must hold exactly the settings this benchmark would run for ``seed`` (a key
    that the run's ms_ppo did not have yet is listed in ``keys_added_since``: it must be one that changes
    nothing in a one-process on-policy run, e.g. the async policy's settings). The run's files are copied into
    ``run_dir`` so that the report's curve reads them like its own runs'."""
    import yaml

    expected = load_settings(args.env, args.algo, dict(args.overrides, **{
        "train.total_steps": args.steps, "train.seed": seed, "runtime.device_target": args.device_target})).to_dict()
    with open(os.path.join(source, "config.yaml"), encoding="utf-8") as handle:
        recorded = yaml.safe_load(handle)
    want, have = flat_settings(expected), flat_settings(recorded)
    ignore = {"train.output_dir"}
    wrong = {key: (have.get(key), want.get(key)) for key in set(want) & set(have) - ignore if have[key] != want[key]}
    removed = sorted(set(have) - set(want) - ignore)
    if wrong or removed:
        raise SystemExit(f"error: {source} was not trained with this benchmark's settings for seed {seed}: "
                         + "; ".join(f"{k} is {a!r}, expected {b!r}" for k, (a, b) in sorted(wrong.items()))
                         + (f"; unknown keys {removed}" if removed else ""))
    with open(os.path.join(source, "result.json"), encoding="utf-8") as handle:
        result = json.load(handle)
    if result["total_steps"] < args.steps:
        raise SystemExit(f"error: {source} trained {result['total_steps']} steps, fewer than --steps {args.steps}")
    shutil.rmtree(run_dir, ignore_errors=True)
    os.makedirs(run_dir)
    for name in ("config.yaml", "result.json", "progress.csv"):
        shutil.copy2(os.path.join(source, name), run_dir)
    out = {key: result[key] for key in ("eval_return_mean", "eval_return_std", "eval_episodes", "total_steps",
                                        "wall_seconds", "sps", "iterations")}
    out.update({"seed": seed, "run_dir": rel(run_dir), "adopted_from": os.path.basename(os.path.normpath(source)),
                "cpu_model": result.get("cpu_model"),
                "keys_added_since": sorted(set(want) - set(have))})
    return out


def run_sb3(args: argparse.Namespace, seed: int, env_id: str, env_kwargs: Dict[str, Any], eval_episodes: int,
            eval_seed: int, run_dir: str) -> Dict[str, Any]:
    shutil.rmtree(run_dir, ignore_errors=True)
    os.makedirs(run_dir, exist_ok=True)
    progress = os.path.join(run_dir, "progress.csv")
    cmd = [SB3_PYTHON, SB3_SCRIPT, "--learning", "--env", env_id, "--env-kwargs", json.dumps(env_kwargs),
           "--steps", str(args.steps), "--seed", str(seed), "--threads", str(args.torch_threads),
           "--eval-episodes", str(eval_episodes), "--eval-seed", str(eval_seed), "--progress-csv", progress]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.torch_threads), MKL_NUM_THREADS=str(args.torch_threads))
    result, process_seconds = run_worker(cmd, run_dir + ".log", env=env)
    write_json(os.path.join(run_dir, "result.json"), result)  # beside its progress.csv, as in an ms_ppo run
    out = {key: result[key] for key in ("eval_return_mean", "eval_return_std", "eval_episodes", "total_steps",
                                        "wall_seconds", "sps")}
    out.update({"seed": seed, "wall_seconds_with_setup": round(process_seconds, 3), "run_dir": rel(run_dir),
                "hyperparameters": result["hyperparameters"], "versions": result["versions"],
                "command": " ".join(rel(c) if os.path.isabs(c) else f"'{c}'" if c.startswith("{") else c
                                    for c in cmd)})
    return out


def frozenlake_best_success(env_id: str, kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """The highest success rate any policy can reach within the time limit, by dynamic programming on the
    environment's transition table: V_h(s) = max_a sum_s' p(s'|s,a) [goal(s') or (not terminal(s') and
    V_{h-1}(s'))], h = the episode step limit, read at s = the start state."""
    import gymnasium as gym
    import numpy as np

    env = gym.make(env_id, **kwargs)
    horizon = env.spec.max_episode_steps
    table = env.unwrapped.P
    env.close()
    values = np.zeros(len(table))
    for _ in range(horizon):
        values = np.array([max(sum(p * (1.0 if reward > 0 else (0.0 if done else values[s2]))
                                   for p, s2, reward, done in table[s][a]) for a in table[s])
                           for s in range(len(table))])
    return {"best_success_rate_within_time_limit": round(float(values[0]), 4), "time_limit": horizon}


def summarise(runs: List[Dict[str, Any]], target: Optional[float], success: bool) -> Dict[str, Any]:
    returns = [r["eval_return_mean"] for r in runs]
    summary: Dict[str, Any] = {
        "seeds": [r["seed"] for r in runs], "eval_return": _mean_std(returns),
        "wall_seconds": _mean_std([r["wall_seconds"] for r in runs]), "sps": _mean_std([r["sps"] for r in runs]),
    }
    if success:
        summary["success_rate"] = summary["eval_return"]
    if target is not None:
        summary["target"] = target
        summary["seeds_reaching_target"] = sum(value >= target for value in returns)
    return summary


def write_markdown(report: Dict[str, Any], path: str) -> None:
    success = report["success_rate_metric"]
    metric = "success rate" if success else "return"
    lines = [f"# Learning benchmark: {report['env_id']}, {report['steps']:,} steps, seeds "
             f"{', '.join(str(s) for s in report['seeds'])}", ""]
    for key in ("ms_ppo", "sb3"):
        done = [run["seed"] for run in report.get(key, {}).get("runs", [])]
        if key in report and sorted(done) != sorted(report["seeds"]):
            lines += [f"**{key}: results for seeds {', '.join(map(str, done))} only**, of the seeds above.", ""]
    lines.append(f"Deterministic evaluation after training: {report['eval_episodes']} episodes per seed "
                 f"(episode i reset with seed + {report['eval_seed_offset']:,} + i), "
                 f"{'success rate = mean return (reward 1 at the goal)' if success else 'undiscounted return'}.")
    if report.get("optimum"):
        lines.append(f"Best possible success rate within the {report['optimum']['time_limit']}-step limit (dynamic "
                     f"programming on the transition table): "
                     f"{report['optimum']['best_success_rate_within_time_limit']:.3f}.")
    if report.get("ms_ppo_runs_adopted"):
        cpus = sorted({run.get("cpu_model") or "not recorded (result.json older than that key)"
                       for run in report["ms_ppo"]["runs"]})
        lines.append(f"CPU of the ms_ppo runs: {'; '.join(cpus)}; their wall times and SPS are as they recorded "
                     f"them, on a shared machine. CPU where this report was made: {report.get('cpu_model')}.")
    elif report.get("cpu_model"):
        lines.append(f"CPU: {report['cpu_model']} (load average {report.get('load_average_start')} at the start, "
                     f"{report.get('load_average_end')} at the end: other work shared the machine when it is above "
                     f"about 1).")
    lines.append("")
    target = report.get("target")
    header = f"| library | {metric}: mean ± std over seeds | per seed | "
    header += "seeds ≥ target | " if target is not None else ""
    header += "wall time per seed (s) | SPS |"
    lines += [header, "|" + "---|" * (header.count("|") - 1)]
    for name, key in (("ms_ppo", "ms_ppo"), ("SB3 PPO (RL-Zoo)", "sb3")):
        if key not in report:
            continue
        summary = report[key]["summary"]
        ret = summary["eval_return"]
        per_seed = ", ".join(f"{r['eval_return_mean']:.{2 if success else 1}f}" for r in report[key]["runs"])
        row = f"| {name} | {ret['mean']:.{3 if success else 1}f} ± {ret['std']:.{3 if success else 1}f} | " \
              f"{per_seed} | "
        if target is not None:
            row += f"{summary['seeds_reaching_target']}/{len(report[key]['runs'])} | "
        row += f"{summary['wall_seconds']['mean']:.1f} | {summary['sps']['mean']:.0f} |"
        lines.append(row)
    lines += ["", f"ms_ppo: `{report['command']}`", ""]
    if report.get("ms_ppo_runs_adopted"):
        adopted = [run for run in report["ms_ppo"]["runs"] if run.get("adopted_from")]
        lines += [f"ms_ppo runs {report['ms_ppo_runs_adopted']}: "
                  + ", ".join(f"seed {r['seed']} from `{r['adopted_from']}`" for r in adopted)
                  + (f"; settings added to ms_ppo since (at their defaults): {adopted[0]['keys_added_since']}"
                     if adopted and adopted[0].get("keys_added_since") else "") + ".", ""]
    if report.get("merged_commands"):
        lines += ["ms_ppo seeds merged from other reports of the same settings (`--merge-seeds`): "
                  + "; ".join(report["merged_commands"]), ""]
    if report.get("peer_command"):
        lines += [f"SB3 (merged with `--merge-peer`): `{report['peer_command']}`", ""]
    if "sb3" in report:
        hyper = report["sb3"]["runs"][0]["hyperparameters"]
        lines.append(f"SB3: {hyper['source']}; " + ", ".join(f"{k}={v}" for k, v in hyper.items() if k != "source"))
        lines.append("")
    if report.get("png"):
        lines.append(f"![learning curves]({os.path.basename(report['png'])})")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


CURVE_POINTS = 250  # a curve kept in the report's JSON: at most this many (step, return) points


def keep_curves(report: Dict[str, Any]) -> None:
    """Copy each run's training curve from its progress.csv into the report (thinned to CURVE_POINTS), so that a
    later merge can draw it after the run directory is gone (run directories live under benchmarks/results/tmp/)."""
    for key in ("ms_ppo", "sb3"):
        for run in report.get(key, {}).get("runs", []):
            path = os.path.join(ROOT, run["run_dir"], "progress.csv")
            if "curve" not in run and os.path.exists(path):
                steps, returns = read_curve(path)
                keep = sorted(set(np.linspace(0, len(steps) - 1, min(len(steps), CURVE_POINTS)).astype(int)))
                run["curve"] = {"steps": steps[keep].tolist(), "returns": returns[keep].round(3).tolist()}


def write_plot(report: Dict[str, Any], png: str) -> None:
    """Every seed of both libraries on one axis (the curves ``keep_curves`` stored; one colour per library)."""
    with saved_figure(png, (7, 4.5)) as ax:
        for key, colour, name in (("ms_ppo", "tab:blue", "ms_ppo"), ("sb3", "tab:orange", "SB3 PPO (RL-Zoo)")):
            runs = report.get(key, {}).get("runs", [])
            drawn = [run for run in runs if "curve" in run]  # runs reported before curves were kept: dots only
            for i, run in enumerate(drawn):
                seeds = ", ".join(str(r["seed"]) for r in drawn)
                ax.plot(run["curve"]["steps"], run["curve"]["returns"], color=colour, alpha=0.75, lw=1.2,
                        label=f"{name} (seeds {seeds})" if i == 0 else None)
            for i, run in enumerate(runs):
                ax.plot([report["steps"]], [run["eval_return_mean"]], "o", color=colour, ms=4,
                        label=f"{name}: final deterministic evaluation" if i == 0 else None)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("success rate" if report["success_rate_metric"] else "episode return")
        ax.set_title(f"{report['env_id']}: mean return of the last 100 training episodes", fontsize=10)
        ax.legend(fontsize=8)


def write_report(report: Dict[str, Any], out: str) -> None:
    """The finished report: the JSON at ``out``, its PNG and Markdown table beside it."""
    base = os.path.splitext(out)[0]
    report["png"] = rel(base + ".png")
    keep_curves(report)
    write_plot(report, base + ".png")
    write_json(out, report)
    write_markdown(report, base + ".md")


def merge_reports(out: str, paths: List[str], key: str) -> int:
    """Put the ``key`` runs ("sb3" or "ms_ppo") of the reports at ``paths`` into the report ``out``, seed by seed
    (a merged seed replaces the same seed of ``out``), then rewrite its Markdown and PNG.

    Every report must be of the same env and steps; for ms_ppo also of exactly the same settings (the seeds of one
    benchmark command, trained in separate processes), since ms_ppo's settings are what its runs depend on. SB3's
    settings are benchmarks/sb3_ppo.py's table for the env, recorded in each of its runs."""
    with open(out, encoding="utf-8") as handle:
        report = json.load(handle)
    runs = {run["seed"]: run for run in report.get(key, {}).get("runs", [])}
    commands = []
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            other = json.load(handle)
        for name in ("env_id", "steps"):
            if report[name] != other[name]:
                raise SystemExit(f"error: {path} has {name} {other[name]!r}, {out} has {report[name]!r}")
        if key == "ms_ppo":
            want, have = flat_settings(report["settings"]), flat_settings(other["settings"])
            wrong = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
            if wrong:
                raise SystemExit(f"error: {path} was trained with other ms_ppo settings than {out}: {wrong}")
        if key not in other:
            raise SystemExit(f"error: {path} has no {key} runs")
        for run in other[key]["runs"]:
            run.setdefault("cpu_model", other.get("cpu_model"))  # the CPU of the process that trained it
            runs[run["seed"]] = run
        commands.append((other["command"], [run["seed"] for run in other[key]["runs"]]))
    merged = [runs[seed] for seed in sorted(runs)]
    report[key] = {"runs": merged, "summary": summarise(merged, report["target"], report["success_rate_metric"])}
    if key == "ms_ppo":
        report["seeds"] = sorted(set(report["seeds"]) | set(runs))
        report["merged_commands"] = [f"`{command}` (seeds {', '.join(map(str, seeds))})" for command, seeds in commands]
    else:
        report["peer_command"] = "; ".join(command for command, _ in commands)
    write_report(report, out)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", required=True, help="env YAML")
    parser.add_argument("--algo", default=None, help="algo YAML")
    parser.add_argument("--steps", type=int, required=True, help="environment steps per seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--peer", choices=["sb3"], default=None, help="also train SB3 PPO (RL-Zoo settings)")
    parser.add_argument("--peer-only", action="store_true", help="train only the peer (e.g. beside an ms_ppo run "
                                                                 "of the same seeds in another process)")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="ms_ppo setting override, as train.py's --set (repeatable)")
    parser.add_argument("--target", type=float, default=None, help="report how many seeds reach this return")
    parser.add_argument("--device_target", default="CPU")
    parser.add_argument("--torch_threads", type=int, default=1, help="SB3: torch threads (and OMP_NUM_THREADS)")
    parser.add_argument("--out", required=True, help="JSON path; the .md and .png go next to it")
    parser.add_argument("--from-runs", nargs="+", default=None, metavar="RUN_DIR",
                        help="train no ms_ppo seed: report these finished runs (one per seed, in --seeds order) "
                             "after checking that each was trained with exactly this benchmark's settings")
    parser.add_argument("--merge-peer", nargs="+", default=None, metavar="PEER.json",
                        help="train nothing: add the SB3 runs of --peer-only reports to --out (same env and "
                             "steps), then rewrite its Markdown and PNG")
    parser.add_argument("--merge-seeds", nargs="+", default=None, metavar="REPORT.json",
                        help="train nothing: add the ms_ppo seeds of other reports of the same env, steps and "
                             "settings (e.g. seeds trained in separate processes) to --out, then rewrite its "
                             "Markdown and PNG")
    args = parser.parse_args(argv)
    if args.merge_peer:
        return merge_reports(args.out, args.merge_peer, "sb3")
    if args.merge_seeds:
        return merge_reports(args.out, args.merge_seeds, "ms_ppo")
    try:
        args.overrides = dict(parse_override(text) for text in args.sets)
        settings = load_settings(args.env, args.algo, args.overrides)
    except UserInputError as error:
        parser.error(str(error))
    env_id = resolve_env_id(settings.env.id, notify=lambda line: None)
    success = env_id.startswith("FrozenLake")
    eval_kwargs = settings.env.evaluation_kwargs
    name = os.path.splitext(os.path.basename(args.out))[0]
    base = os.path.splitext(args.out)[0]
    command = " ".join(["python benchmarks/learning.py", "--env", rel(args.env)]
                       + (["--algo", rel(args.algo)] if args.algo else [])
                       + ["--steps", str(args.steps), "--seeds", *map(str, args.seeds)]
                       + [f"--set {s}" for s in args.sets] + (["--peer", args.peer] if args.peer else [])
                       + (["--peer-only"] if args.peer_only else [])
                       + (["--from-runs"] + [f"<runs>/{os.path.basename(os.path.normpath(d))}"
                                             for d in args.from_runs] if args.from_runs else [])
                       + (["--target", f"{args.target:g}"] if args.target is not None else [])
                       + ["--out", rel(args.out)])
    report: Dict[str, Any] = {
        "env_id": env_id, "env_yaml": rel(args.env), "algo_yaml": rel(args.algo) if args.algo else None,
        "overrides": args.overrides, "steps": args.steps, "seeds": args.seeds, "target": args.target,
        "eval_episodes": settings.train.eval_episodes, "eval_seed_offset": EVAL_SEED_OFFSET,
        "success_rate_metric": success, "command": command, "settings": settings.to_dict(),
        "python": platform.python_version(), "cpu_model": cpu_model(), "load_average_start": load_average(),
    }
    report["settings"]["train"]["output_dir"] = None
    if success:
        report["optimum"] = frozenlake_best_success(env_id, eval_kwargs)

    def run_seeds(key: str, label: str, train_one: Callable[[int, str], Dict[str, Any]]) -> None:
        """Train ``train_one(seed, run_dir)`` for every seed; the report is saved after each."""
        runs: List[Dict[str, Any]] = []
        for seed in args.seeds:
            run = train_one(seed, os.path.join(TMP_ROOT, name, f"{key}_seed{seed}"))
            if success:
                run["success_rate"] = run["eval_return_mean"]
            runs.append(run)
            print(f"{label} seed {seed}: eval {run['eval_return_mean']:.3f} in {run['wall_seconds']:.1f} s "
                  f"({run['sps']:.0f} SPS)", flush=True)
            report[key] = {"runs": runs, "summary": summarise(runs, args.target, success)}
            write_json(args.out, report)

    if args.from_runs:
        if len(args.from_runs) != len(args.seeds):
            parser.error(f"--from-runs names {len(args.from_runs)} runs for {len(args.seeds)} --seeds")
        sources = dict(zip(args.seeds, args.from_runs))
        report["ms_ppo_runs_adopted"] = ("trained before by train.py with the settings above (checked key by key "
                                         "against each run's config.yaml); wall time and SPS as they recorded")
        run_seeds("ms_ppo", "ms_ppo", lambda seed, run_dir: adopt_ms_ppo_run(args, seed, sources[seed], run_dir))
    elif not args.peer_only:
        run_seeds("ms_ppo", "ms_ppo", lambda seed, run_dir: run_ms_ppo(args, seed, env_id, run_dir))
    if args.peer == "sb3":
        ensure_sb3_venv(os.path.join(TMP_ROOT, "sb3_venv"), logger("learning"))
        run_seeds("sb3", "SB3", lambda seed, run_dir: run_sb3(
            args, seed, env_id, eval_kwargs, settings.train.eval_episodes, seed + EVAL_SEED_OFFSET, run_dir))
    report["load_average_end"] = load_average()
    write_report(report, args.out)
    with open(base + ".md", encoding="utf-8") as handle:
        print(handle.read())
    return 0


if __name__ == "__main__":
    sys.exit(main())

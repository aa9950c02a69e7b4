"""Atari benchmark: a learning run with its curve and a random-policy baseline, and end-to-end speed of ms_ppo
and Stable-Baselines3's PPO CnnPolicy on the same machine, in one run.

    # everything: speed of both libraries (short), then the learning run (1M frames = 250k agent steps)
    .venv/bin/python benchmarks/atari.py --env_yaml env_yaml/Breakout-v5.yaml --steps 250000 --seed 1 \
        --out benchmarks/results/atari_breakout.json
    # report on a learning run made before (train.py with algo_yaml/ppo_atari.yaml), with the speed part
    .venv/bin/python benchmarks/atari.py --env_yaml env_yaml/Breakout-v5.yaml --run_dir runs/<run> \
        --out benchmarks/results/atari_breakout.json

Run it with ms_ppo's venv. Phases, one after the other, each training in its own process:

1. speed, ms_ppo: a worker process (this script, ``--worker ms_ppo``) builds the run like train.py does
   (env YAML + algo_yaml/ppo_atari.yaml) and trains ``--speed_steps`` agent steps after one warm-up iteration
   (graph compilation); warm SPS = timed steps / time. It also reports the bytes of the rollout buffer per
   environment (uint8 frames and the float32/int32 columns), the resident memory that ``num_envs`` wrapped
   environments add to the process (after one environment was made, so imports are not counted), divided by
   ``num_envs``, and the peak resident memory of the process.
2. speed, Stable-Baselines3: the same script run by ``benchmarks/.venv-sb3/bin/python`` (``--worker sb3``; the
   venv is made by benchmarks/speed.py from benchmarks/requirements-sb3.txt, with ``ale-py`` and
   ``opencv-python-headless``). SB3's own Atari
   stack (``make_atari_env``: no-op reset, skip 4 with max-pool, episodic life, fire reset, 84x84 grayscale,
   reward clipping; ``VecFrameStack(4)``) on the same env id and kwargs, PPO CnnPolicy with the hyperparameters
   of ppo_atari.yaml (8 envs, n_steps 128, batch 256, 4 epochs, lr 2.5e-4 linear, clip 0.1, ent 0.01, vf 0.5,
   grad clip 0.5). Same warm-up rule and timing. torch uses ``--torch_threads`` threads.
3. learning: ``train.py --total_steps --steps`` (or an existing ``--run_dir``): progress.csv gives the curve
   (mean return of the last 100 whole games, raw score, against frames = 4 x agent steps); the final
   deterministic evaluation comes from result.json, or, for a run stopped early, from evaluating its newest
   checkpoint. A uniformly random policy is evaluated on the same evaluation starts.

Writes ``--out`` (JSON), a Markdown summary next to it (.md) and the curve (.png).
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import resource
import sys
import time
from typing import Any, Dict, List, Optional

from _common import (
    ROOT,
    SB3_PYTHON,
    TMP_DIR,
    cpu_model,
    emit,
    load_average,
    logger,
    rel,
    run_logged,
    run_worker,
    saved_figure,
    write_json,
)

ALGO_YAML = os.path.join(ROOT, "algo_yaml", "ppo_atari.yaml")
FRAMES_PER_STEP = 4

log = logger("atari bench")


def _rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


# ------------------------------------------------------------------------------------------------------------
# Workers (one JSON line on stdout)
# ------------------------------------------------------------------------------------------------------------

def worker_ms_ppo(args: argparse.Namespace) -> Dict[str, Any]:
    from ms_ppo import PPOSession
    from ms_ppo.envs import make_vector_env, resolve_env_id

    session = PPOSession(args.env_yaml, ALGO_YAML, overrides={
        "train.seed": args.seed, "train.output_dir": args.tmp_dir, "train.save_every": 0,
        "runtime.device_target": "CPU"}, overwrite=True, quiet=True, log=lambda line: None)
    settings = session.settings
    num_envs = settings.ppo.num_envs
    env_id = resolve_env_id(settings.env.id)
    warm = make_vector_env(env_id, 1, settings.env.kwargs, wrappers=settings.env.wrappers)  # imports, ROM loading
    warm.reset(seed=0)
    before = _rss_bytes()
    probe = make_vector_env(resolve_env_id(settings.env.id), num_envs, settings.env.kwargs,
                            wrappers=settings.env.wrappers)
    probe.reset(seed=0)
    env_bytes = (_rss_bytes() - before) / num_envs
    probe.close()
    warm.close()
    trainer = session.build(callbacks=[])
    collector, learner, state = trainer.collector, trainer.learner, trainer.state
    buffer = collector.buffer
    buffer_bytes = sum(array.nbytes for array in vars(buffer).values() if hasattr(array, "nbytes"))
    collector.reset(state, args.seed)
    batch = settings.ppo.batch_size
    iterations = 1 + -(-args.speed_steps // batch)
    times = []
    collect_seconds = []
    for i in range(iterations):
        start = time.perf_counter()
        rollout = collector.collect(state)
        collected = time.perf_counter()
        learner.learn(rollout, i / iterations, state.rng)
        times.append(time.perf_counter() - start)
        collect_seconds.append(collected - start)
    trainer.envs.close()
    timed_steps = batch * (iterations - 1)
    return {
        "library": "ms_ppo", "num_envs": num_envs, "rollout_steps": settings.ppo.rollout_steps,
        "warmup_seconds": round(times[0], 2), "timed_steps": timed_steps,
        "timed_seconds": round(sum(times[1:]), 2), "warm_sps": round(timed_steps / sum(times[1:]), 1),
        "collect_sps": round(timed_steps / sum(collect_seconds[1:]), 1),
        "rollout_obs_dtype": str(buffer.obs.dtype),
        "rollout_buffer_bytes_per_env": int(buffer_bytes / num_envs),
        "rollout_obs_bytes_per_env": int(buffer.obs.nbytes / num_envs),
        "env_rss_bytes_per_env": int(env_bytes), "peak_rss_bytes": _peak_rss_bytes(),
    }


def worker_sb3(args: argparse.Namespace) -> Dict[str, Any]:
    import ale_py
    import gymnasium as gym
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    torch.set_num_threads(args.torch_threads)
    gym.register_envs(ale_py)
    kwargs = dict(json.loads(args.env_kwargs), frameskip=1)
    num_envs, n_steps = 8, 128
    warm = make_atari_env(args.env_id, n_envs=1, seed=args.seed, env_kwargs=kwargs)  # imports, ROM loading
    warm.reset()
    before = _rss_bytes()
    envs = VecFrameStack(make_atari_env(args.env_id, n_envs=num_envs, seed=args.seed, env_kwargs=kwargs), 4)
    envs.reset()
    env_bytes = (_rss_bytes() - before) / num_envs
    warm.close()

    class Timer(BaseCallback):
        def __init__(self):
            super().__init__()
            self.starts: List[float] = []
            self.collect: List[float] = []

        def _on_rollout_start(self) -> None:
            self.starts.append(time.perf_counter())

        def _on_rollout_end(self) -> None:
            self.collect.append(time.perf_counter() - self.starts[-1])

        def _on_step(self) -> bool:
            return True

    batch = num_envs * n_steps
    iterations = 1 + -(-args.speed_steps // batch)
    model = PPO("CnnPolicy", envs, n_steps=n_steps, batch_size=256, n_epochs=4,
                learning_rate=lambda remaining: 2.5e-4 * remaining, clip_range=0.1, ent_coef=0.01, vf_coef=0.5,
                max_grad_norm=0.5, gamma=0.99, gae_lambda=0.95, seed=args.seed, device="cpu", verbose=0)
    timer = Timer()
    start = time.perf_counter()
    model.learn(total_timesteps=iterations * batch, callback=timer)
    end = time.perf_counter()
    # timed: from the start of the second rollout to the end of training
    timed_seconds = end - timer.starts[1]
    timed_steps = batch * (iterations - 1)
    envs.close()
    return {
        "library": "stable_baselines3", "num_envs": num_envs, "rollout_steps": n_steps,
        "warmup_seconds": round(timer.starts[1] - start, 2), "timed_steps": timed_steps,
        "timed_seconds": round(timed_seconds, 2), "warm_sps": round(timed_steps / timed_seconds, 1),
        "collect_sps": round(timed_steps / sum(timer.collect[1:]), 1),
        "env_rss_bytes_per_env": int(env_bytes), "peak_rss_bytes": _peak_rss_bytes(),
        "torch": torch.__version__, "torch_threads": args.torch_threads,
        "stable_baselines3": __import__("stable_baselines3").__version__,
    }


def worker_random(args: argparse.Namespace) -> Dict[str, Any]:
    from random_baseline import random_returns

    from ms_ppo.config import load_settings

    _, returns = random_returns(load_settings(args.env_yaml, ALGO_YAML).env, args.episodes, args.seed)
    return {"random_return_mean": float(returns.mean()), "random_return_std": float(returns.std()),
            "episodes": int(returns.size)}


def worker_checkpoint(args: argparse.Namespace) -> Dict[str, Any]:
    from ms_ppo import evaluate_checkpoint

    returns = evaluate_checkpoint(args.run_dir, episodes=args.episodes, log=lambda line: None)
    return {"eval_return_mean": float(returns.mean()), "eval_return_std": float(returns.std()),
            "eval_episodes": int(returns.size)}


WORKERS = {"ms_ppo": worker_ms_ppo, "sb3": worker_sb3, "random": worker_random, "checkpoint": worker_checkpoint}


def run_atari_worker(python: str, name: str, extra: List[str], log_path: str) -> Dict[str, Any]:
    return run_worker([python, os.path.abspath(__file__), "--worker", name] + extra, log_path)[0]


# ------------------------------------------------------------------------------------------------------------
# Learning run and report
# ------------------------------------------------------------------------------------------------------------

def read_curve(run_dir: str) -> List[Dict[str, float]]:
    with open(os.path.join(run_dir, "progress.csv"), encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [{"step": float(row["global_step"]), "wall": float(row["wall_seconds"]),
             "return": float(row["charts/episodic_return"]) if row.get("charts/episodic_return") else None}
            for row in rows]


def plot_curve(curve: List[Dict[str, float]], random_return: Optional[float], env_id: str, path: str) -> None:
    points = [(row["step"] * FRAMES_PER_STEP, row["return"]) for row in curve if row["return"] is not None]
    with saved_figure(path, (7, 4)) as ax:
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], label="ms_ppo (mean of the last 100 games)")
        if random_return is not None:
            ax.axhline(random_return, color="grey", linestyle="--", label="random policy")
        ax.set_xlabel("frames (4 per agent step)")
        ax.set_ylabel("game score")
        ax.set_title(f"PPO on {env_id}")
        ax.legend()


def _split(row: Dict[str, Any]) -> str:
    """'collection X s + update Y s' of one iteration, from the end-to-end and collection-only SPS."""
    steps = row["num_envs"] * row["rollout_steps"]
    total, collect = steps / row["warm_sps"], steps / row["collect_sps"]
    return f"{total:.2f} s = collection {collect:.2f} s + update {total - collect:.2f} s"


def markdown(report: Dict[str, Any]) -> str:
    lines = [f"# Atari benchmark: {report['env_id']}", "",
             f"CPU: `{report.get('cpu_model', 'not recorded')}`, {report['cpu_count']} logical CPUs.", ""]
    speed = report.get("speed", {})
    if speed:
        lines += ["| library | warm SPS (agent steps/s) | frames/s | collection-only SPS | peak RSS "
                  "| env RSS per env |",
                  "|---|---|---|---|---|---|"]
        for name in ("ms_ppo", "sb3"):
            row = speed.get(name)
            if row:
                lines.append(f"| {row['library']} | {row['warm_sps']:.1f} | {row['warm_sps'] * 4:.0f} | "
                             f"{row['collect_sps']:.1f} | {row['peak_rss_bytes'] / 2 ** 20:.0f} MiB | "
                             f"{row['env_rss_bytes_per_env'] / 2 ** 20:.1f} MiB |")
        ms = speed.get("ms_ppo")
        if ms:
            lines += ["", f"ms_ppo rollout buffer per environment ({ms['rollout_steps']} steps): "
                          f"{ms['rollout_buffer_bytes_per_env'] / 2 ** 20:.2f} MiB, of which observations "
                          f"({ms['rollout_obs_dtype']}) {ms['rollout_obs_bytes_per_env'] / 2 ** 20:.2f} MiB."]
        lines += ["", f"Timed: {speed.get('speed_steps')} agent steps after one warm-up iteration; "
                      f"load average before: {speed.get('load_before')}."]
        if ms and speed.get("sb3"):
            lines += ["", "Per iteration (8 envs x 128 steps), from the SPS above: "
                          + "; ".join(f"{row['library']} {_split(row)}" for row in (ms, speed["sb3"])) + "."]
    learning = report.get("learning")
    if learning:
        lines += ["", f"Learning run `{learning['run_dir']}`: {learning['agent_steps']} agent steps "
                      f"({learning['frames']} frames, {learning['fraction_of_target']:.0%} of the "
                      f"{learning['target_agent_steps']} asked), {learning['wall_seconds']:.0f} s, "
                      f"{learning['sps']:.1f} SPS.",
                  f"- last training mean return (last 100 games): {learning['last_train_return']}",
                  f"- deterministic evaluation ({learning['eval_episodes']} episodes, {learning['eval_source']}): "
                  f"{learning['eval_return_mean']:.2f} +- {learning['eval_return_std']:.2f}",
                  f"- random policy (same starts): {report['random']['random_return_mean']:.2f} +- "
                  f"{report['random']['random_return_std']:.2f}",
                  f"- curve: `{learning['curve_png']}`"]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env_yaml", default="env_yaml/Breakout-v5.yaml")
    parser.add_argument("--steps", type=int, default=250_000, help="agent steps of the learning run (x4 frames)")
    parser.add_argument("--speed_steps", type=int, default=8192, help="timed agent steps per library")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--run_dir", help="report on this learning run instead of training one")
    parser.add_argument("--skip_speed", action="store_true")
    parser.add_argument("--skip_sb3", action="store_true")
    parser.add_argument("--skip_learning", action="store_true")
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes (trained and random)")
    parser.add_argument("--torch_threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", default="benchmarks/results/atari_breakout.json")
    # worker mode
    parser.add_argument("--worker", choices=sorted(WORKERS))
    parser.add_argument("--tmp_dir")
    parser.add_argument("--env_id")
    parser.add_argument("--env_kwargs", default="{}")
    args = parser.parse_args()
    if args.worker:
        emit(WORKERS[args.worker](args))
        return 0

    from ms_ppo.config import load_settings

    settings = load_settings(args.env_yaml, ALGO_YAML)
    tmp_root = os.path.join(TMP_DIR, "atari")
    os.makedirs(tmp_root, exist_ok=True)
    out_base = os.path.splitext(args.out)[0]
    report: Dict[str, Any] = {"env_id": settings.env.id, "env_yaml": args.env_yaml, "algo_yaml": rel(ALGO_YAML),
                              "command": " ".join([".venv/bin/python", "benchmarks/atari.py"] + sys.argv[1:]),
                              "cpu_count": os.cpu_count(), "cpu_model": cpu_model()}
    common = ["--env_yaml", args.env_yaml, "--seed", str(args.seed), "--speed_steps", str(args.speed_steps)]
    if not args.skip_speed:
        report["speed"] = {"speed_steps": args.speed_steps, "load_before": load_average()}
        log("speed: ms_ppo")
        report["speed"]["ms_ppo"] = run_atari_worker(sys.executable, "ms_ppo", common + [
            "--tmp_dir", os.path.join(tmp_root, "ms_ppo_speed")], os.path.join(tmp_root, "ms_ppo_speed.log"))
        log(f"ms_ppo warm SPS {report['speed']['ms_ppo']['warm_sps']}")
        if not args.skip_sb3:
            if not os.path.exists(SB3_PYTHON):
                raise SystemExit("benchmarks/.venv-sb3 is missing: run benchmarks/speed.py once to create it, "
                                 "then install ale-py and opencv-python-headless into it")
            log("speed: stable-baselines3")
            report["speed"]["sb3"] = run_atari_worker(SB3_PYTHON, "sb3", common + [
                "--env_id", settings.env.id, "--env_kwargs", json.dumps(settings.env.kwargs),
                "--torch_threads", str(args.torch_threads)], os.path.join(tmp_root, "sb3_speed.log"))
            log(f"sb3 warm SPS {report['speed']['sb3']['warm_sps']}")
            report["speed"]["ms_ppo_over_sb3"] = round(
                report["speed"]["ms_ppo"]["warm_sps"] / report["speed"]["sb3"]["warm_sps"], 3)
    if not args.skip_learning:
        run_dir = args.run_dir
        if run_dir is None:
            run_dir = os.path.join("runs", f"atari_{os.path.basename(args.env_yaml)[:-5]}_seed{args.seed}")
            log(f"learning: {args.steps} agent steps into {run_dir}")
            cmd = [sys.executable, "train.py", "--env_yaml", args.env_yaml, "--algo_yaml", rel(ALGO_YAML),
                   "--device_target", "CPU", "--total_steps", str(args.steps), "--seed", str(args.seed),
                   "--output_dir", run_dir, "--overwrite", "--quiet"]
            run_logged(cmd, os.path.join(tmp_root, "learning.log"))
        curve = read_curve(run_dir)
        result_path = os.path.join(run_dir, "result.json")
        if os.path.exists(result_path):
            with open(result_path, encoding="utf-8") as handle:
                result = json.load(handle)
            evaluation = {key: result[key] for key in ("eval_return_mean", "eval_return_std", "eval_episodes")}
            source = "result.json of the run"
        else:  # stopped early: evaluate its newest checkpoint
            log("learning: evaluating the newest checkpoint")
            evaluation = run_atari_worker(sys.executable, "checkpoint", ["--run_dir", run_dir, "--episodes",
                                                                   str(args.episodes)],
                                    os.path.join(tmp_root, "checkpoint_eval.log"))
            ckpts = sorted(glob.glob(os.path.join(run_dir, "ckpt", "*.ckpt")))
            source = f"newest checkpoint {os.path.basename(ckpts[-1]) if ckpts else '?'}"
        log("random policy")
        report["random"] = run_atari_worker(sys.executable, "random", ["--env_yaml", args.env_yaml, "--seed",
                                                                 str(args.seed), "--episodes", str(args.episodes)],
                                      os.path.join(tmp_root, "random.log"))
        png = out_base + ".png"
        plot_curve(curve, report["random"]["random_return_mean"], settings.env.id, png)
        last = curve[-1]
        returns = [row["return"] for row in curve if row["return"] is not None]
        report["learning"] = dict(
            run_dir=rel(run_dir), agent_steps=int(last["step"]), frames=int(last["step"]) * FRAMES_PER_STEP,
            target_agent_steps=args.steps, fraction_of_target=last["step"] / args.steps,
            wall_seconds=last["wall"], sps=last["step"] / max(last["wall"], 1e-9),
            last_train_return=round(returns[-1], 2) if returns else None, eval_source=source,
            curve_png=rel(png), **evaluation)
    write_json(args.out, report)
    text = markdown(report)
    with open(out_base + ".md", "w", encoding="utf-8") as handle:
        handle.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

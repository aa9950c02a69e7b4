"""Side-by-side speed benchmark: physics limit, ms_ppo and Stable-Baselines3 PPO on the same machine, in one run.

    python benchmarks/speed.py --steps 100000 --out benchmarks/results/speed_halfcheetah.json [--cartpole]

Run it with ms_ppo's venv (``.venv/bin/python``). Measured one after the other, each in its own process:

1. physics limit: random actions (pre-generated, uniform in the action bounds) stepped through the vector env
   ms_ppo collects with (``ms_ppo.envs.make_vector_env``, ``ppo.num_envs`` of the algo YAML, sync mode);
   median of ``--physics_repeats`` timings.
2. ms_ppo end to end: ``train.py --total_steps steps + one iteration --seed 0`` with the default YAMLs.
   *cold* SPS is result.json's ``sps`` (includes the first iteration, where every graph is compiled);
   *warm* SPS comes from progress.csv: steps and wall time after the first iteration. Also ms_ppo's
   collection-only SPS and update time per iteration, timed around ``trainer.collector.collect`` and
   ``trainer.learner.learn``.
3. Stable-Baselines3 PPO with RL-Zoo's tuned HalfCheetah hyperparameters (benchmarks/sb3_ppo.py), in its
   own venv ``benchmarks/.venv-sb3``, created here when absent: ``pip install torch==2.13.0`` first and alone
   (the CPU wheel), then benchmarks/requirements-sb3.txt.
4. optional (``--cartpole``): ms_ppo on CartPole-v1 with algo_yaml/ppo_classic.yaml, 50k steps: wall time and
   final evaluation (solved at 475).

Threads: ms_ppo runs with its own settings (it sets none: MindSpore's defaults, reported in the JSON); torch
runs with ``torch.set_num_threads(--torch_threads)`` and ``OMP_NUM_THREADS`` set to the same value.
The ratios use warm SPS for both libraries. Writes ``--out`` (JSON) and a Markdown table (``--md``,
default: ``--out`` with .md), and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, Optional, Tuple

from _common import (
    ROOT,
    SB3_PYTHON,
    SB3_SCRIPT,
    TMP_DIR,
    cpu_model,
    emit,
    ensure_sb3_venv,
    load_average,
    logger,
    rel,
    run_logged,
    run_worker,
    warm_span,
    write_json,
)

ONE_MILLION = 1_000_000

log = logger("speed")


def _git_state() -> Dict[str, Any]:
    """The commit measured, and whether ms_ppo's files differ from it (uncommitted edits are measured too)."""
    def git(*cmd: str) -> str:
        proc = subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True)
        return proc.stdout if proc.returncode == 0 else ""
    changed = [line[3:] for line in git("status", "--porcelain", "--", "ms_ppo", "train.py").splitlines()]
    return {"commit": git("rev-parse", "--short", "HEAD").strip() or None, "uncommitted_ms_ppo_changes": changed}


# ------------------------------------------------------------------------------------------------------------
# Workers: run in a subprocess of ms_ppo's venv (python speed.py --worker NAME ...), print one JSON line.
# ------------------------------------------------------------------------------------------------------------
def worker_physics(args: argparse.Namespace) -> Dict[str, Any]:
    import numpy as np

    from ms_ppo.config import load_settings
    from ms_ppo.envs import make_vector_env, resolve_env_id

    settings = load_settings(args.env_yaml, args.algo_yaml)
    env_id = resolve_env_id(settings.env.id, notify=lambda line: None)
    num_envs = settings.ppo.num_envs
    envs = make_vector_env(env_id, num_envs, settings.env.kwargs, args.vector_env)
    space = envs.single_action_space
    vector_steps = max(1, args.physics_steps // num_envs)
    rng = np.random.default_rng(0)
    if hasattr(space, "n"):
        actions = rng.integers(0, int(space.n), size=(vector_steps, num_envs))
    else:
        actions = rng.uniform(space.low, space.high, size=(vector_steps, num_envs) + space.shape).astype(space.dtype)
    envs.reset(seed=0)
    for t in range(min(200, vector_steps)):  # warm-up: first resets, caches
        envs.step(actions[t])
    timings = []
    for _ in range(args.physics_repeats):
        start = time.perf_counter()
        for t in range(vector_steps):
            envs.step(actions[t])
        timings.append(time.perf_counter() - start)
    envs.close()
    rates = [vector_steps * num_envs / seconds for seconds in timings]
    return {"env_id": env_id, "num_envs": num_envs, "vector_env": f"{args.vector_env} (gymnasium "
            f"{'Sync' if args.vector_env == 'sync' else 'Async'}VectorEnv, same-step autoreset, as "
            f"ms_ppo.envs.make_vector_env)", "steps_per_repeat": vector_steps * num_envs,
            "repeats": args.physics_repeats, "sps_each": [round(r, 1) for r in rates],
            "sps": round(statistics.median(rates), 1), "actions": "pre-generated, uniform in the action bounds"}


def worker_collect(args: argparse.Namespace) -> Dict[str, Any]:
    """Time the trainer's collection and update separately, after one warm-up iteration that compiles."""
    import mindspore

    from ms_ppo import PPOSession

    out_dir = tempfile.mkdtemp(prefix="collect_", dir=args.tmp_dir)
    session = PPOSession(args.env_yaml, args.algo_yaml, log=lambda line: None,
                         overrides={"train.output_dir": out_dir, "train.seed": 0, "train.save_every": 0,
                                    "env.vector_env": args.vector_env})
    trainer = session.build(callbacks=[])
    batch = trainer.settings.ppo.batch_size
    iterations = max(1, -(-args.collect_steps // batch))
    collector, learner, state = trainer.collector, trainer.learner, trainer.state
    collector.reset(state, 0)  # what train() does before its first iteration
    start = time.perf_counter()
    learner.learn(collector.collect(state), 0.0, state.rng)
    warmup = time.perf_counter() - start
    collect_s, learn_s = 0.0, 0.0
    for i in range(iterations):
        t0 = time.perf_counter()
        rollout = collector.collect(state)
        t1 = time.perf_counter()
        learner.learn(rollout, (i + 1) / (iterations + 1), state.rng)
        t2 = time.perf_counter()
        collect_s += t1 - t0
        learn_s += t2 - t1
    trainer.envs.close()
    threads: Dict[str, Any] = {}
    for key in ("runtime_num_threads", "inter_op_parallel_num"):
        try:
            threads[key] = mindspore.get_context(key)
        except Exception as error:  # noqa: BLE001 - a key this MindSpore version lacks is only not reported
            threads[key] = f"n/a ({type(error).__name__})"
    steps = iterations * batch
    return {"vector_env": args.vector_env, "iterations": iterations, "steps": steps,
            "warmup_iteration_seconds": round(warmup, 3),
            "collect_seconds": round(collect_s, 3), "collect_sps": round(steps / collect_s, 1),
            "update_seconds_per_iteration": round(learn_s / iterations, 4),
            "collect_plus_update_sps": round(steps / (collect_s + learn_s), 1),
            "mindspore_version": mindspore.__version__, "mindspore_threads": threads,
            "device_target": trainer.settings.runtime.device_target}


def worker_arithmetic(args: argparse.Namespace) -> Dict[str, Any]:
    """The update's arithmetic limit: its FLOPs per iteration over the GFLOP/s a compiled MindSpore matmul of
    the update's own shape (minibatch x hidden) @ (hidden x hidden) reaches here, with training's threads.

    FLOPs per gradient step: 6 x minibatch x (sum of in x out over every dense layer of actor and critic): the
    forward pass's multiply-adds (2 FLOPs each) and the backward pass's two products (input and weight
    gradients), the usual estimate; activations, the loss and Adam are left out (they are O(parameters))."""
    import mindspore
    import numpy as np
    from mindspore import Tensor, nn, ops

    from ms_ppo import PPOSession

    out_dir = tempfile.mkdtemp(prefix="arithmetic_", dir=args.tmp_dir)
    session = PPOSession(args.env_yaml, args.algo_yaml, log=lambda line: None,
                         overrides={"train.output_dir": out_dir, "train.seed": 0, "train.save_every": 0})
    trainer = session.build(callbacks=[])
    ppo = trainer.settings.ppo
    minibatch = ppo.batch_size // ppo.num_minibatches
    dense = [p.shape for p in trainer.learner.agent.net.trainable_params() if len(p.shape) == 2]
    multiply_adds = sum(int(a) * int(b) for a, b in dense)  # per sample, forward
    gradient_steps = ppo.epochs * ppo.num_minibatches
    flops_per_iteration = 6 * minibatch * multiply_adds * gradient_steps
    trainer.envs.close()

    hidden = max(int(h) for h in trainer.settings.policy.hidden_sizes)  # the update's largest matmuls
    chain_length = 50

    class MatmulChain(nn.Cell):
        def construct(self, x, w):
            for _ in range(chain_length):
                x = ops.matmul(x, w)
            return x

    rng = np.random.default_rng(0)
    weight = np.linalg.qr(rng.standard_normal((hidden, hidden)))[0].astype(np.float32)  # orthogonal: no overflow
    x = Tensor(rng.standard_normal((minibatch, hidden)).astype(np.float32))
    w = Tensor(weight)
    chain = MatmulChain()
    x_host = x.asnumpy()

    def gflops_of(call) -> float:
        """GFLOP/s of ``call`` (one chain of matmuls): median of 20 timed calls after 3 untimed ones."""
        for _ in range(3):
            call()
        timings = []
        for _ in range(20):
            start = time.perf_counter()
            call()
            timings.append(time.perf_counter() - start)
        return 2 * minibatch * hidden * hidden * chain_length / statistics.median(timings) / 1e9

    gflops = gflops_of(lambda: chain(x, w).asnumpy())
    numpy_gflops = gflops_of(lambda: [x_host @ weight for _ in range(chain_length)])
    return {"minibatch": minibatch, "gradient_steps_per_iteration": gradient_steps,
            "dense_layers": [list(map(int, shape)) for shape in dense],
            "multiply_adds_per_sample": multiply_adds, "flops_per_iteration": flops_per_iteration,
            "matmul_shape": [minibatch, hidden, hidden], "matmul_gflops": round(gflops, 2),
            "numpy_matmul_gflops": round(numpy_gflops, 2),
            "arithmetic_limit_seconds_per_iteration": round(flops_per_iteration / (gflops * 1e9), 4),
            "mindspore_version": mindspore.__version__}


def worker_settings(args: argparse.Namespace) -> Dict[str, Any]:
    from ms_ppo.config import load_settings
    from ms_ppo.envs import resolve_env_id

    settings = load_settings(args.env_yaml, args.algo_yaml)
    return {"env_id": resolve_env_id(settings.env.id, notify=lambda line: None), "settings": settings.to_dict()}


WORKERS = {"physics": worker_physics, "collect": worker_collect, "arithmetic": worker_arithmetic,
           "settings": worker_settings}


def run_speed_worker(name: str, args: argparse.Namespace, tmp_dir: str, vector_env: str = "sync") -> Dict[str, Any]:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", name, "--vector_env", vector_env,
           "--env_yaml", args.env_yaml, "--algo_yaml", args.algo_yaml, "--physics_steps", str(args.physics_steps),
           "--physics_repeats", str(args.physics_repeats), "--collect_steps", str(args.collect_steps),
           "--tmp_dir", tmp_dir]
    result, wall = run_worker(cmd, os.path.join(tmp_dir, f"{name}_{vector_env}.log"))
    result["process_wall_seconds"] = round(wall, 2)
    return result


# ------------------------------------------------------------------------------------------------------------
# ms_ppo end to end
# ------------------------------------------------------------------------------------------------------------
def _train(tmp_dir: str, name: str, env_yaml: str, algo_yaml: str, total_steps: int
           ) -> Tuple[Dict[str, Any], str, str, float]:
    """``train.py`` into ``tmp_dir/name_run``: its result.json, the command (run directory as ``<tmp>``), the
    run directory and the process's wall seconds."""
    out_dir = os.path.join(tmp_dir, f"{name}_run")
    cmd = [sys.executable, "train.py", "--env_yaml", env_yaml, "--algo_yaml", algo_yaml,
           "--total_steps", str(total_steps), "--output_dir", out_dir, "--seed", "0"]
    wall = run_logged(cmd, os.path.join(tmp_dir, f"{name}_train.log"))
    with open(os.path.join(out_dir, "result.json"), encoding="utf-8") as handle:
        result = json.load(handle)
    return result, " ".join(["python"] + cmd[1:]).replace(out_dir, "<tmp>"), out_dir, wall


def run_ms_ppo(args: argparse.Namespace, tmp_dir: str, batch: int) -> Dict[str, Any]:
    # the first iteration (graph compilation) is the warm-up
    result, command, out_dir, wall = _train(tmp_dir, "ms_ppo", args.env_yaml, args.algo_yaml, args.steps + batch)
    span = warm_span(os.path.join(out_dir, "progress.csv"))
    iterations_1m = -(-ONE_MILLION // batch)
    # Callbacks after the last iteration (a periodic evaluation/checkpoint when it falls there) are in
    # result.json's wall_seconds but not in the last progress row: their cost, for the 1M projection.
    tail_callbacks = max(0.0, result["wall_seconds"] - span.last["wall_seconds"])
    return {
        "command": command,
        "total_steps": result["total_steps"], "iterations": result["iterations"],
        "sps_cold": result["sps"], "wall_seconds": result["wall_seconds"],
        "first_iteration_seconds": round(span.first["wall_seconds"], 3),
        "first_iteration_steps": span.first["global_step"],
        "timed_steps": span.steps, "timed_seconds": round(span.seconds, 3), "sps": round(span.sps, 1),
        "seconds_after_last_iteration": round(tail_callbacks, 3),
        "eval_return_mean": result["eval_return_mean"], "process_wall_seconds": round(wall, 2),
        "iterations_per_1M": iterations_1m,
    }


def run_cartpole(tmp_dir: str) -> Dict[str, Any]:
    result, command, _, wall = _train(tmp_dir, "cartpole", "env_yaml/CartPole-v1.yaml", "algo_yaml/ppo_classic.yaml",
                                      50_000)
    return {"command": command,
            "total_steps": result["total_steps"], "wall_seconds": result["wall_seconds"], "sps": result["sps"],
            "eval_return_mean": result["eval_return_mean"], "eval_return_std": result["eval_return_std"],
            "eval_episodes": result["eval_episodes"], "reached_475": result["eval_return_mean"] >= 475,
            "process_wall_seconds": round(wall, 2)}


# ------------------------------------------------------------------------------------------------------------
# Stable-Baselines3
# ------------------------------------------------------------------------------------------------------------
def run_sb3(args: argparse.Namespace, env_id: str, tmp_dir: str) -> Dict[str, Any]:
    env = dict(os.environ, OMP_NUM_THREADS=str(args.torch_threads), MKL_NUM_THREADS=str(args.torch_threads))
    cmd = [SB3_PYTHON, SB3_SCRIPT, "--env", env_id, "--steps", str(args.steps), "--threads",
           str(args.torch_threads), "--seed", "0"]
    result, wall = run_worker(cmd, os.path.join(tmp_dir, "sb3.log"), env=env)
    result["process_wall_seconds"] = round(wall, 2)
    result["command"] = (f"OMP_NUM_THREADS={args.torch_threads} {rel(SB3_PYTHON)} {rel(SB3_SCRIPT)} "
                         f"--env {env_id} --steps {args.steps} --threads {args.torch_threads} --seed 0")
    return result


# ------------------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------------------
def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return round(a / b, 3) if a and b else None


def _hms(seconds: Optional[float]) -> str:
    if seconds is None:
        return "n/a"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _fmt(value: Optional[float], spec: str = ",.0f") -> str:
    return "n/a" if value is None else format(value, spec)


def project_1m(first_seconds: float, first_steps: int, warm_sps: float, extra: float = 0.0) -> float:
    """Wall seconds for 1M steps: the measured first iteration, the rest at the warm rate, plus ``extra``."""
    return first_seconds + (ONE_MILLION - first_steps) / warm_sps + extra


def markdown(report: Dict[str, Any]) -> str:
    res, settings = report, report["settings"]
    phys, ms, coll, sb3 = (res.get("physics_limit"), res.get("ms_ppo"), res.get("ms_ppo_collect"), res.get("sb3"))
    limit = res.get("physics_limit_sps")
    sb3_sps = res.get("sb3_sps")
    proj = res["projected_1M_seconds"]
    lines = [
        f"## Speed on {settings['env_id']}: {settings['steps']:,} timed steps per library, "
        f"{settings['cpu_count']} cores, {report['date']}",
        "",
        f"CPU: `{settings.get('cpu_model') or 'not recorded'}` (lscpu's Model name).",
        "",
        "| run | steps/s | vs SB3 | vs physics limit | projected wall for 1M steps |",
        "|---|---:|---:|---:|---:|",
    ]

    def row(name: str, sps: Optional[float], projected: Optional[float]) -> None:
        vs_sb3 = _ratio(sps, sb3_sps)
        vs_phys = _ratio(sps, limit)
        lines.append(f"| {name} | {_fmt(sps)} | {_fmt(vs_sb3, '.2f') if vs_sb3 else 'n/a'} | "
                     f"{_fmt(vs_phys, '.3f') if vs_phys else 'n/a'} | {_hms(projected)} |")

    if phys:
        row(f"physics limit: random actions, SyncVectorEnv x{phys['num_envs']}", limit, proj.get("physics_limit"))
    if ms:
        row("**ms_ppo end to end, warm** (after iteration 1)", ms["sps"], proj.get("ms_ppo"))
        row("ms_ppo end to end, cold (result.json, incl. compilation)", ms["sps_cold"], None)
    if coll:
        row("ms_ppo collection only (`trainer.collector.collect()`), SyncVectorEnv", coll["collect_sps"], None)
    if res.get("physics_limit_async"):
        row(f"physics limit, AsyncVectorEnv x{res['physics_limit_async']['num_envs']} (subprocesses)",
            res["physics_limit_async"]["sps"], None)
    if res.get("ms_ppo_collect_async"):
        row("ms_ppo collection only, AsyncVectorEnv (`env.vector_env: async`)",
            res["ms_ppo_collect_async"]["collect_sps"], None)
    if sb3:
        row("**SB3 PPO end to end, warm** (after iteration 1)", sb3["sps"], proj.get("sb3"))
        row("SB3 PPO end to end, cold (whole `learn()`)", sb3["sps_cold"], None)
        row("SB3 PPO collection only", sb3["collect_sps"], None)
    lines.append("")
    if res.get("ms_ppo_vs_sb3"):
        lines.append(f"ms_ppo / SB3 (warm SPS): **{res['ms_ppo_vs_sb3']:.2f}x**; ms_ppo / physics limit: "
                     f"{_fmt(res['ms_ppo_vs_physics'], '.3f')}; ms_ppo collection / physics limit: "
                     f"{_fmt(res.get('ms_ppo_collect_vs_physics'), '.3f')}.")
    if ms:
        lines.append(f"ms_ppo: {ms['first_iteration_steps']:,} warm-up steps in {ms['first_iteration_seconds']:.1f} s "
                     f"(graph compilation), then {ms['timed_steps']:,} steps in {ms['timed_seconds']:.1f} s; "
                     f"default YAMLs ({settings['ms_ppo']['algo_yaml']}: {settings['ms_ppo']['num_envs']} envs x "
                     f"{settings['ms_ppo']['rollout_steps']} steps, {settings['ms_ppo']['epochs']} epochs x "
                     f"{settings['ms_ppo']['num_minibatches']} minibatches, MLP {settings['ms_ppo']['hidden_sizes']}).")
    if coll:
        lines.append(f"ms_ppo update: {coll['update_seconds_per_iteration']:.3f} s per iteration "
                     f"({settings['ms_ppo']['batch_size']} steps).")
    arith = res.get("update_arithmetic")
    if coll and arith:
        limit_s = arith["arithmetic_limit_seconds_per_iteration"]
        lines.append(f"Update against its arithmetic limit: {arith['flops_per_iteration'] / 1e9:.1f} GFLOP per "
                     f"iteration ({arith['gradient_steps_per_iteration']} gradient steps of {arith['minibatch']} "
                     f"rows, 6 x rows x {arith['multiply_adds_per_sample']:,} multiply-adds); a compiled "
                     f"{' x '.join(map(str, arith['matmul_shape']))} matmul runs at {arith['matmul_gflops']:.1f} "
                     f"GFLOP/s here (NumPy's BLAS: {arith['numpy_matmul_gflops']:.1f}), so the limit is "
                     f"{limit_s:.3f} s per iteration: the update takes "
                     f"{coll['update_seconds_per_iteration'] / limit_s:.1f}x its arithmetic.")
    if sb3:
        lines.append(f"SB3: {sb3['warmup_steps']:,} warm-up steps in {sb3['first_iteration_seconds']:.1f} s, then "
                     f"{sb3['timed_steps']:,} steps in {sb3['timed_seconds']:.1f} s; RL-Zoo HalfCheetah "
                     f"hyperparameters (1 env, n_steps 512, 20 epochs x batch 64, MLP 256x256 ReLU, VecNormalize).")
    work = res.get("work_per_1M_steps", {})
    if "ms_ppo" in work and "sb3" in work:
        a, b = work["ms_ppo"], work["sb3"]
        lines.append(f"Not the same work per step: per 1M steps ms_ppo takes {a['gradient_steps']:,} gradient steps "
                     f"(minibatch {a['minibatch']}, MLP {a['hidden_sizes']} {a['activation']}), SB3 with RL-Zoo's "
                     f"settings {b['gradient_steps']:,} (minibatch {b['minibatch']}, MLP {b['hidden_sizes']} "
                     f"{b['activation']}): the ratio compares the two tuned set-ups, not per-gradient-step overhead.")
    if res.get("cartpole"):
        cp = res["cartpole"]
        lines.append(f"ms_ppo CartPole-v1 ({cp['total_steps']:,} steps, ppo_classic.yaml): {cp['wall_seconds']:.1f} s "
                     f"training, eval {cp['eval_return_mean']:.1f} +- {cp['eval_return_std']:.1f} over "
                     f"{cp['eval_episodes']} episodes ({'reached' if cp['reached_475'] else 'did not reach'} 475).")
    lines.append(f"Threads: {settings['threads']['summary']}")
    loads = report["load_average"]
    lines.append("Load average (1, 5, 15 min): start " + ", ".join(map(str, loads["start"])) + "; end "
                 + ", ".join(map(str, loads["end"])) + ".")
    for name, error in report.get("errors", {}).items():
        lines.append(f"**{name} failed**: {error.splitlines()[0]}")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100_000,
                        help="steps timed after the warm-up iteration, for ms_ppo and for SB3 (the issue: >= 100k)")
    parser.add_argument("--out", default=os.path.join("benchmarks", "results", "speed_halfcheetah.json"))
    parser.add_argument("--md", default=None, help="Markdown table (default: --out with .md)")
    parser.add_argument("--env_yaml", default="env_yaml/HalfCheetah-v5.yaml")
    parser.add_argument("--algo_yaml", default="algo_yaml/ppo_halfcheetah.yaml",
                        help="ms_ppo's default for HalfCheetah")
    parser.add_argument("--torch_threads", type=int, default=1,
                        help="torch.set_num_threads and OMP_NUM_THREADS for SB3. 1: on an idle 2-core machine "
                             "1 and 2 threads ran at the same speed (468-524 vs 456-516 steps/s); with other jobs "
                             "competing, 2 threads fell to 21-28 steps/s against 150-158 for 1")
    parser.add_argument("--physics_steps", type=int, default=100_000, help="env steps per physics timing")
    parser.add_argument("--physics_repeats", type=int, default=3)
    parser.add_argument("--collect_steps", type=int, default=20_480, help="steps for ms_ppo's collection timing")
    parser.add_argument("--cartpole", action="store_true", help="also time ms_ppo on CartPole-v1 (50k steps)")
    parser.add_argument("--skip", action="append", default=[], choices=["physics", "ms_ppo", "collect", "sb3"],
                        help="leave a measurement out (repeatable)")
    parser.add_argument("--keep_tmp", action="store_true", help="keep the run directories and logs")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--tmp_dir", help=argparse.SUPPRESS)
    parser.add_argument("--vector_env", default="sync", choices=["sync", "async"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        emit(WORKERS[args.worker](args))
        return 0

    out = os.path.abspath(args.out)  # --out/--md: relative to where the command runs; YAMLs: to the repository
    md_path = os.path.abspath(args.md) if args.md else os.path.splitext(out)[0] + ".md"
    os.chdir(ROOT)
    os.makedirs(TMP_DIR, exist_ok=True)
    tmp_dir = tempfile.mkdtemp(prefix=time.strftime("speed_%Y%m%d-%H%M%S_"), dir=TMP_DIR)
    # The merged settings (defaults, env YAML, algo YAML), read by ms_ppo itself in a subprocess.
    resolved = run_speed_worker("settings", args, tmp_dir)
    env_id, cfg = resolved["env_id"], resolved["settings"]
    algo, policy, train_cfg = cfg["ppo"], cfg["policy"], cfg["train"]
    num_envs, rollout = int(algo.get("num_envs", 8)), int(algo.get("rollout_steps", 256))
    batch = num_envs * rollout
    omp = os.environ.get("OMP_NUM_THREADS")
    report: Dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": "python benchmarks/speed.py " + " ".join(sys.argv[1:]),
        "git": _git_state(),
        "settings": {
            "env_id": env_id, "env_yaml": args.env_yaml, "steps": args.steps, "cpu_count": os.cpu_count(),
            "cpu_model": cpu_model(), "platform": platform.platform(), "python": platform.python_version(),
            "ms_ppo": {"algo_yaml": args.algo_yaml, "num_envs": num_envs, "rollout_steps": rollout,
                       "batch_size": batch, "epochs": algo.get("epochs"),
                       "num_minibatches": algo.get("num_minibatches"), "hidden_sizes": policy.get("hidden_sizes"),
                       "total_steps_run": args.steps + batch, "vector_env": "sync",
                       "eval_every": train_cfg.get("eval_every"), "save_every": train_cfg.get("save_every")},
            "threads": {"torch_threads": args.torch_threads, "OMP_NUM_THREADS_inherited": omp},
        },
        "load_average": {"start": load_average()},
        "errors": {},
    }
    failures = report["errors"]

    def phase(name: str, func, *func_args):
        log(f"{name}: starting (load average {load_average()})")
        report["load_average"][f"before_{name}"] = load_average()
        start = time.perf_counter()
        try:
            value = func(*func_args)
        except Exception as error:  # noqa: BLE001 - one failed measurement must not lose the others
            failures[name] = str(error)
            log(f"{name}: FAILED: {error}")
            return None
        log(f"{name}: done in {time.perf_counter() - start:.1f} s")
        return value

    if "physics" not in args.skip:
        report["physics_limit"] = phase("physics_limit", run_speed_worker, "physics", args, tmp_dir)
        report["physics_limit_async"] = phase("physics_limit_async", run_speed_worker, "physics", args, tmp_dir,
                                              "async")
    if "ms_ppo" not in args.skip:
        report["ms_ppo"] = phase("ms_ppo", run_ms_ppo, args, tmp_dir, batch)
    if "collect" not in args.skip:
        report["ms_ppo_collect"] = phase("ms_ppo_collect", run_speed_worker, "collect", args, tmp_dir)
        report["ms_ppo_collect_async"] = phase("ms_ppo_collect_async", run_speed_worker, "collect", args, tmp_dir,
                                               "async")
        report["update_arithmetic"] = phase("update_arithmetic", run_speed_worker, "arithmetic", args, tmp_dir)
    if "sb3" not in args.skip and not env_id.startswith("HalfCheetah-"):
        failures["sb3"] = f"the SB3 baseline has RL-Zoo's HalfCheetah hyperparameters only, not {env_id}'s"
    elif "sb3" not in args.skip:
        report["sb3_venv"] = phase("sb3_venv", ensure_sb3_venv, tmp_dir, log)
        if report["sb3_venv"]:
            report["sb3"] = phase("sb3", run_sb3, args, env_id, tmp_dir)
    if args.cartpole:
        report["cartpole"] = phase("cartpole", run_cartpole, tmp_dir)
    report["load_average"]["end"] = load_average()

    phys, ms, coll, sb3 = (report.get(k) for k in ("physics_limit", "ms_ppo", "ms_ppo_collect", "sb3"))
    report["physics_limit_sps"] = phys["sps"] if phys else None
    report["ms_ppo_sps"] = ms["sps"] if ms else None
    report["ms_ppo_sps_cold"] = ms["sps_cold"] if ms else None
    report["ms_ppo_collect_sps"] = coll["collect_sps"] if coll else None
    report["sb3_sps"] = sb3["sps"] if sb3 else None
    report["sb3_sps_cold"] = sb3["sps_cold"] if sb3 else None
    report["sb3_collect_sps"] = sb3["collect_sps"] if sb3 else None
    report["ms_ppo_vs_sb3"] = _ratio(report["ms_ppo_sps"], report["sb3_sps"])
    report["ms_ppo_vs_sb3_cold"] = _ratio(report["ms_ppo_sps_cold"], report["sb3_sps_cold"])
    report["ms_ppo_vs_physics"] = _ratio(report["ms_ppo_sps"], report["physics_limit_sps"])
    report["ms_ppo_collect_vs_physics"] = _ratio(report["ms_ppo_collect_sps"], report["physics_limit_sps"])
    report["sb3_vs_physics"] = _ratio(report["sb3_sps"], report["physics_limit_sps"])
    projected: Dict[str, Optional[float]] = {}
    if phys:
        projected["physics_limit"] = round(ONE_MILLION / phys["sps"], 1)
    if ms:
        # The warm SPS has no periodic evaluation in it when the run's last iteration is the first evaluation
        # one (--steps 100000: iteration 50 = eval_every); that evaluation (+ checkpoint) is then timed after the
        # last progress row, and the 1M projection adds it once per eval_every iterations.
        eval_every = int(train_cfg.get("eval_every") or 0)
        if eval_every and ms["iterations"] % eval_every == 0:
            extra = ms["iterations_per_1M"] // eval_every * ms["seconds_after_last_iteration"]
            note = (f"includes {ms['iterations_per_1M'] // eval_every} periodic evaluations + checkpoints "
                    f"(every {eval_every} iterations) at the {ms['seconds_after_last_iteration']:.1f} s measured")
        else:
            extra = 0.0
            note = "periodic evaluations not in the projection (the run's last iteration was not an eval one)"
        projected["ms_ppo"] = round(project_1m(ms["first_iteration_seconds"], ms["first_iteration_steps"],
                                               ms["sps"], extra), 1)
        projected["ms_ppo_periodic_eval_checkpoint_seconds"] = round(extra, 1)
        report["projection_notes"] = {"ms_ppo": note, "sb3": "no evaluation during training",
                                      "method": "first iteration as measured + remaining steps at the warm SPS"}
    if sb3:
        projected["sb3"] = round(project_1m(sb3["first_iteration_seconds"], sb3["warmup_steps"], sb3["sps"]), 1)
    report["projected_1M_seconds"] = projected
    # The two set-ups differ in work per step: gradient steps (minibatch x network) per 1M environment steps.
    grads: Dict[str, Any] = {}
    if ms:
        per_iter = int(algo["epochs"]) * int(algo["num_minibatches"])
        grads["ms_ppo"] = {"gradient_steps": ms["iterations_per_1M"] * per_iter,
                           "minibatch": batch // int(algo["num_minibatches"]), "hidden_sizes": policy["hidden_sizes"],
                           "activation": policy["activation"]}
    if sb3:
        hyper = sb3["hyperparameters"]
        grads["sb3"] = {"gradient_steps": -(-ONE_MILLION // hyper["n_steps"]) * hyper["n_epochs"]
                        * (hyper["n_steps"] // hyper["batch_size"]), "minibatch": hyper["batch_size"],
                        "hidden_sizes": [256, 256], "activation": "relu"}
    report["work_per_1M_steps"] = grads
    report["projected_1M_hms"] = {k: _hms(v) for k, v in projected.items() if not k.endswith("_seconds")}
    ms_threads = coll["mindspore_threads"] if coll else "not measured (collect skipped)"
    report["settings"]["threads"].update({
        "ms_ppo": ms_threads,
        "summary": (f"SB3: torch.set_num_threads({args.torch_threads}), OMP_NUM_THREADS={args.torch_threads}. "
                    f"ms_ppo: MindSpore's CPU threads at their defaults {ms_threads}; NumPy's BLAS at one thread while "
                    f"the NumPy policy collects (runtime.host_blas_threads); OMP_NUM_THREADS "
                    f"{'unset' if omp is None else omp}. Environments step in the training process for both."),
    })
    if sb3:
        report["settings"]["sb3"] = sb3.pop("hyperparameters")

    write_json(out, report)
    md = markdown(report)
    with open(md_path, "w", encoding="utf-8") as handle:
        handle.write(md)
    print()
    print(md)
    log(f"wrote {rel(out)} and {rel(md_path)}")
    if args.keep_tmp or failures:
        log(f"run directories and logs kept in {rel(tmp_dir)}")
    else:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

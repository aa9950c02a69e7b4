"""A scaling model of the distribution policies: SPS predicted from measured component costs, checked against
measured runs of 1, 2 and 3 processes here, then extended to 1-64 ranks (clearly a model beyond 3).

    python benchmarks/scaling_model.py            # measure, validate, write benchmarks/results/scaling_model.*

What is measured, on CartPole-v1 with ppo_classic (``ppo.num_envs`` envs per collecting rank):

1. In one process: a vector step of N environments alone (``env``), the collection policy alone at batch N
   (``act``), a whole collection step (``collect``: environments, policy, bookkeeping), and one PPO update of a
   batch of B transitions (``update``), each at two sizes and fitted as a + b x size.
2. Under msrun with 2 and 3 ranks: the Channel's broadcast and gather (the actor-learner and remote-env
   exchanges) at several payload sizes, fitted as latency + bytes / bandwidth (gather: per rank's payload), and
   the all-reduce of the gradient (DataParallelDP).
3. Runs of every policy with 1 (one process), 2 and 3 processes, 4 envs per collecting rank: warm SPS from
   progress.csv (the mean over iterations after the first).

The model per iteration of T steps, with W ranks on C cores (processes beyond the cores share them: a busy
phase of k processes runs at min(1, C / k) of a core each):

- one process: T collect(N) + update(N T)
- DataParallelDP: T collect(N) + update(N T) + E M allreduce(gradient), all W busy; SPS x W
- MultiActorSingleLearnerDP: broadcast(weights) + T collect(N) [W - 1 busy] + gather(rollout) + update((W-1) N T)
- AsyncMultiActorSingleLearnerDP: broadcast + gather + max(T collect(N), update((W-1) N T)) [W busy]
- SingleActorLearnerMultiEnvDP: T (broadcast(actions) + env(N) [W - 1 busy] + gather(step) + act((W-1) N))
  + update((W-1) N T)

Beyond this machine the model assumes one core (or device) per rank, no contention, and the loopback
collective costs measured here; across nodes it adds an assumed network (``--net-latency-us``,
``--net-gbps``). Those rows are a model, not a measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._common import cpu_model, load_average, warm_span, write_json  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POLICIES = ("one process", "DataParallelDP", "MultiActorSingleLearnerDP", "AsyncMultiActorSingleLearnerDP",
            "SingleActorLearnerMultiEnvDP")
NUM_ENVS = 4
SIZES = (1 << 10, 1 << 14, 1 << 18, 1 << 21)  # payload bytes for the channel timings


def _fit(xs, ys) -> Dict[str, float]:
    """Least-squares a + b x through the measured points (b >= 0)."""
    b, a = np.polyfit(np.asarray(xs, float), np.asarray(ys, float), 1)
    return {"a": float(max(a, 0.0)), "b": float(max(b, 0.0))}


def _line(fit: Dict[str, float], x: float) -> float:
    return fit["a"] + fit["b"] * x


def _timed(fn, repeats: int) -> float:
    fn()  # warm-up (compiles)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def measure_components() -> Dict[str, Dict[str, float]]:
    """Seconds per call of the in-process pieces, fitted over two sizes."""
    from ms_ppo.app.session import PPOSession

    points: Dict[str, List] = {"env": [], "act": [], "collect": [], "update": []}
    for num_envs in (4, 8):
        session = PPOSession("CartPole-v1", "ppo_classic", quiet=True, log=lambda line: None,
                             overrides={"ppo.num_envs": num_envs, "runtime.device_target": "CPU",
                                        "train.output_dir": tempfile.mkdtemp(), "train.total_steps": 10 ** 6})
        trainer = session.build(callbacks=[])
        state, collector, agent = trainer.state, trainer.collector, trainer.agent
        collector.reset(state, 0)
        steps = trainer.settings.ppo.rollout_steps
        envs = trainer.envs
        actions = np.zeros(num_envs, np.int64)
        points["env"].append((num_envs, _timed(lambda: envs.step(actions), 400)))
        obs = collector.bootstrap_inputs(state)
        noise = np.zeros((num_envs, 2), np.float32)
        points["act"].append((num_envs, _timed(lambda: agent.act(obs, noise), 400)))
        points["collect"].append((num_envs, _timed(lambda: collector.run_steps(state), 10) / steps))
        batch = collector.collect(state)
        points["update"].append((batch.size, _timed(lambda: trainer.learner.learn(batch, 0.0, state.rng), 5)))
        envs.close()
    fits = {name: _fit(*zip(*rows)) for name, rows in points.items()}
    fits["weights_bytes"] = {"a": float(sum(p.asnumpy().nbytes for p in agent.net.trainable_params())), "b": 0.0}
    fits["epochs_x_minibatches"] = {"a": float(trainer.settings.ppo.epochs * trainer.settings.ppo.num_minibatches),
                                    "b": 0.0}
    return fits


COMM_WORKER = r'''
import json, sys, time
import numpy as np
from mindspore import Tensor, nn, ops
from ms_ppo.runtime.channel import Channel
from ms_ppo.runtime.device import configure_device
from ms_ppo.runtime.distributed import init_distributed
configure_device("CPU")
worker = init_distributed("MultiActorSingleLearnerDP")
channel = Channel(worker.world_size)
sizes, gradient_floats, repeats = json.loads(sys.argv[2]), int(sys.argv[3]), 20
out = {"broadcast": [], "gather": [], "allreduce": None}
for size in sizes:
    data = np.zeros(size, np.uint8)
    for name, call in (("broadcast", lambda: channel.broadcast(data if worker.rank == 0 else None)),
                       ("gather", lambda: channel.gather(data))):
        call(); call()
        start = time.perf_counter()
        for _ in range(repeats):
            call()
        out[name].append([size, (time.perf_counter() - start) / repeats])
class Reduce(nn.Cell):
    def __init__(self):
        super().__init__()
        self.op = ops.AllReduce()
    def construct(self, x):
        return self.op(x)
reduce, grads = Reduce(), Tensor(np.ones(gradient_floats, np.float32))
reduce(grads).asnumpy()
start = time.perf_counter()
for _ in range(repeats):
    reduce(grads).asnumpy()
out["allreduce"] = (time.perf_counter() - start) / repeats
if worker.rank == 0:
    with open(sys.argv[1], "w") as handle:
        json.dump(out, handle)
'''


def measure_comm(ranks: int, gradient_floats: int) -> Dict[str, Dict[str, float]]:
    """Channel and all-reduce costs under msrun with ``ranks`` ranks on this machine."""
    from ms_ppo.runtime.distributed import msrun_command, msrun_environment

    with tempfile.TemporaryDirectory() as tmp:
        script, out = os.path.join(tmp, "comm.py"), os.path.join(tmp, "comm.json")
        with open(script, "w", encoding="utf-8") as handle:
            handle.write(COMM_WORKER)
        env = dict(msrun_environment(), PYTHONPATH=ROOT)
        command = msrun_command(ranks, [script, out, json.dumps(SIZES), str(gradient_floats)],
                                os.path.join(tmp, "logs"))
        subprocess.run(command, env=env, cwd=ROOT, check=True, capture_output=True, timeout=600)
        with open(out, encoding="utf-8") as handle:
            raw = json.load(handle)
    return {"broadcast": _fit(*zip(*raw["broadcast"])), "gather": _fit(*zip(*raw["gather"])),
            "allreduce": {"a": raw["allreduce"], "b": 0.0}}


def measure_run(policy: str, processes: int, steps: int) -> float:
    """Warm SPS of a CartPole run: the mean of progress.csv's per-iteration rate after the first iteration."""
    out = tempfile.mkdtemp(prefix="scaling_")
    command = [sys.executable, os.path.join(ROOT, "train.py"), "--env_yaml", "CartPole-v1", "--device_target", "CPU",
               "--set", f"ppo.num_envs={NUM_ENVS}", "--total_steps", str(steps), "--output_dir", out, "--quiet",
               "--set", "train.eval_episodes=1"]
    if processes > 1:
        command += ["--enable_distribute", "--worker_num", str(processes), "--distribution_policy", policy]
    subprocess.run(command, check=True, capture_output=True, timeout=1200, cwd=ROOT)
    return warm_span(os.path.join(out, "progress.csv")).sps


def predict(policy: str, ranks: int, c: Dict[str, Dict[str, float]], comm: Dict[str, Dict[str, float]],
            cores: float, steps_per_rollout: int) -> float:
    """Model SPS of ``policy`` on ``ranks`` ranks sharing ``cores`` cores (cores=inf: one each)."""
    n, t = NUM_ENVS, steps_per_rollout

    def share(busy: int) -> float:
        return min(1.0, cores / max(busy, 1))

    def update(transitions: int) -> float:
        return _line(c["update"], transitions)

    if policy == "one process" or ranks == 1:
        return n * t / (t * _line(c["collect"], n) + update(n * t))
    if policy == "DataParallelDP":
        per_iteration = (t * _line(c["collect"], n) + update(n * t)) / share(ranks) \
            + c["epochs_x_minibatches"]["a"] * comm["allreduce"]["a"]
        return ranks * n * t / per_iteration
    actors = ranks - 1
    weights = c["weights_bytes"]["a"]
    rollout_bytes = t * n * 4 * 8  # obs (4 floats), action, log-prob, value, reward, done, last inputs: ~8 words
    exchange = _line(comm["broadcast"], weights) + _line(comm["gather"], rollout_bytes)
    if policy == "MultiActorSingleLearnerDP":
        per_iteration = t * _line(c["collect"], n) / share(actors) + exchange + update(actors * n * t)
    elif policy == "AsyncMultiActorSingleLearnerDP":
        per_iteration = exchange + max(t * _line(c["collect"], n), update(actors * n * t)) / share(ranks)
    else:  # SingleActorLearnerMultiEnvDP
        step_exchange = _line(comm["broadcast"], 8 * actors * n + 200) + _line(comm["gather"], 8 * n * 6 + 300)
        per_step = step_exchange + _line(c["env"], n) / share(actors) + _line(c["act"], actors * n)
        per_iteration = t * per_step + update(actors * n * t)
    return actors * n * t / per_iteration


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12_800, help="environment steps of each validation run")
    parser.add_argument("--net-latency-us", type=float, default=50.0, help="assumed network latency between nodes")
    parser.add_argument("--net-gbps", type=float, default=10.0, help="assumed network bandwidth between nodes")
    parser.add_argument("--ranks-per-node", type=int, default=8)
    args = parser.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    load_before = load_average()
    components = measure_components()
    gradient_floats = int(components["weights_bytes"]["a"] // 4)
    comm = {ranks: measure_comm(ranks, gradient_floats) for ranks in (2, 3)}
    rollout_steps = 32  # ppo_classic
    cores = float(os.cpu_count() or 1)
    validation = []
    for policy in POLICIES:
        for processes in ((1,) if policy == "one process" else (2, 3)):
            measured = measure_run(policy, processes, args.steps)
            predicted = predict(policy, processes, components, comm[max(processes, 2)], cores, rollout_steps)
            validation.append({"policy": policy, "processes": processes, "measured_sps": round(measured, 1),
                               "predicted_sps": round(predicted, 1),
                               "error": round(predicted / measured - 1.0, 3)})
            print(validation[-1], flush=True)
    # Beyond this machine: one core per rank; across nodes the collectives also pay the assumed network.
    network = {"a": args.net_latency_us * 1e-6, "b": 8.0 / (args.net_gbps * 1e9)}
    model_rows = []
    for ranks in (1, 2, 4, 8, 16, 32, 64):
        nodes = -(-ranks // args.ranks_per_node)
        link = comm[3] if nodes == 1 else {
            name: {"a": comm[3][name]["a"] + network["a"], "b": comm[3][name]["b"] + network["b"]}
            for name in ("broadcast", "gather")} | {"allreduce": {
                "a": comm[3]["allreduce"]["a"] + 2 * network["a"] + network["b"] * components["weights_bytes"]["a"],
                "b": 0.0}}
        row = {"ranks": ranks, "nodes": nodes}
        for policy in POLICIES[1:]:
            row[policy] = round(predict(policy, ranks, components, link, float("inf"), rollout_steps), 0)
        model_rows.append(row)
    result = {"cpu": cpu_model(), "machine": platform.machine(), "cores": cores, "started": started,
              "load_average_before": load_before, "load_average_after": load_average(),
              "command": "python benchmarks/scaling_model.py " + " ".join(sys.argv[1:]),
              "components_seconds": components, "comm_seconds": {str(k): v for k, v in comm.items()},
              "validation": validation, "model": model_rows,
              "assumed_network": {"latency_us": args.net_latency_us, "gbps": args.net_gbps,
                                  "ranks_per_node": args.ranks_per_node}}
    write_json(os.path.join(RESULTS, "scaling_model.json"), result)
    write_report(result)


def write_report(result: Dict) -> None:
    lines = ["# Scaling model of the distribution policies (CartPole-v1, ppo_classic, 4 envs per collecting rank)", "",
             f"CPU: `{result['cpu']}` ({result['cores']:.0f} logical CPUs); {result['started']}; load average "
             f"before {result['load_average_before']}, after {result['load_average_after']}.", "",
             f"Command: `{result['command']}` (the model and its equations: the script's docstring).", "",
             "## Validation: model against measured runs on this machine", "",
             "| policy | processes | measured SPS | model SPS | model / measured - 1 |", "|---|---|---|---|---|"]
    for row in result["validation"]:
        lines.append(f"| {row['policy']} | {row['processes']} | {row['measured_sps']} | {row['predicted_sps']} | "
                     f"{row['error']:+.0%} |")
    worst = max(abs(row["error"]) for row in result["validation"])
    lines += ["", f"Largest error: {worst:.0%} (goal: within 25 %: {'met' if worst <= 0.25 else 'NOT met'}).", "",
              "## Model beyond this machine (not measured)", "",
              f"One core or device per rank, the collective costs measured here with 3 ranks, and across nodes an "
              f"assumed network of {result['assumed_network']['latency_us']} us and "
              f"{result['assumed_network']['gbps']} Gbit/s ({result['assumed_network']['ranks_per_node']} ranks per "
              f"node). SPS:", "",
              "| ranks | nodes | " + " | ".join(POLICIES[1:]) + " |", "|---|---|" + "---|" * (len(POLICIES) - 1)]
    for row in result["model"]:
        lines.append(f"| {row['ranks']} | {row['nodes']} | " + " | ".join(f"{row[p]:.0f}" for p in POLICIES[1:]) + " |")
    lines += ["", "Measured component costs (seconds; a + b x size):", "", "```",
              json.dumps(result["components_seconds"], indent=1), json.dumps(result["comm_seconds"], indent=1), "```"]
    with open(os.path.join(RESULTS, "scaling_model.md"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

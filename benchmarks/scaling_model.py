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
3. Runs of every policy with 1 (one process), 2 and 3 processes, 4 envs per collecting rank: SPS from
   progress.csv between the end of the first iteration (compilation) and the last one before the final
   evaluation.

The components are measured twice, with MindSpore's own thread count and with 1 thread: the ratio of the update
times says how many cores one update keeps busy (u). A whole iteration with the default callbacks is measured
too: one pass of the default callbacks is rank 0's overhead O per iteration (log, CSV, TensorBoard, the plot).
With W ranks on C cores, k processes collecting at once take max(1, k / C) times as long (Python and NumPy use
one core each), k processes updating at once max(1, k u / C) times. Per iteration of T steps of N envs:

- one process: T collect(N) + update(N T) + O
- DataParallelDP (SPS x W): T collect(N) f_c(W) + update(N T) f_u(W) + E M allreduce(gradient) + O
- MultiActorSingleLearnerDP: broadcast(weights) + T collect(N) f_c(W-1) + gather(rollout) + update((W-1) N T) + O
- AsyncMultiActorSingleLearnerDP: broadcast + gather + max(T collect(N) f_c(W), (update((W-1) N T) + O) f_u(W))
- SingleActorLearnerMultiEnvDP: T (broadcast(actions) + env(N) f_c(W-1) + gather(step) + the rest of a collection
  step at (W-1) N envs) + update((W-1) N T) + O

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
    """a + b x through the smallest and the largest measured point (a: the small-size cost, kept exact)."""
    (x0, y0), (x1, y1) = min(zip(xs, ys)), max(zip(xs, ys))
    b = max((y1 - y0) / (x1 - x0), 0.0) if x1 > x0 else 0.0
    return {"a": float(max(y0 - b * x0, 0.0)), "b": float(b)}


def _line(fit: Dict[str, float], x: float) -> float:
    return fit["a"] + fit["b"] * x


def _timed(fn, repeats: int) -> float:
    fn()  # warm-up (compiles)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def _components_here(threads: int) -> Dict[str, Dict[str, float]]:
    """This process's component costs with ``threads`` MindSpore CPU kernel threads (0: MindSpore's choice).

    ``overhead`` is one pass of the default callbacks after an iteration (log line, CSV, TensorBoard, the plot,
    the progress bar): what rank 0 spends beyond collecting and learning."""
    from ms_ppo.app.session import PPOSession

    points: Dict[str, List] = {"env": [], "act": [], "collect": [], "update": [], "overhead": []}
    overrides = {"runtime.device_target": "CPU", "train.total_steps": 10 ** 6, "train.eval_episodes": 1}
    if threads:
        overrides["runtime.cpu_threads"] = threads
    for num_envs in (4, 8):
        session = PPOSession("CartPole-v1", "ppo_classic", quiet=True, log=lambda line: None,
                             overrides={**overrides, "ppo.num_envs": num_envs,
                                        "train.output_dir": tempfile.mkdtemp(prefix="scaling_components_")})
        trainer = session.build()
        state, collector, agent = trainer.state, trainer.collector, trainer.agent
        collector.reset(state, 0)
        steps = trainer.settings.ppo.rollout_steps
        envs = trainer.envs
        actions = np.zeros(num_envs, np.int64)
        points["env"].append((num_envs, _timed(lambda: envs.step(actions), 400)))
        obs = collector.bootstrap_inputs(state)
        noise = np.zeros((num_envs, 2), np.float32)
        points["act"].append((num_envs, _timed(lambda: agent.act(obs, noise), 400)))
        # collection and update alternate, as in training (timed back to back, the update ran twice as fast: its
        # kernel threads stay awake between calls, not after a rollout)
        collect_seconds, update_seconds = [], []
        for repeat in range(12):
            start = time.perf_counter()
            batch = collector.collect(state)
            middle = time.perf_counter()
            trainer.learner.learn(batch, 0.0, state.rng)
            if repeat >= 2:  # the first calls compile
                collect_seconds.append((middle - start) / steps)
                update_seconds.append(time.perf_counter() - middle)
        points["collect"].append((num_envs, float(np.median(collect_seconds))))
        points["update"].append((batch.size, float(np.median(update_seconds))))
        metrics = trainer.learner.learn(batch, 0.0, state.rng)
        metrics.update({"iteration": 1, "global_step": batch.size, "wall_seconds": 1.0, "charts/SPS": 100.0,
                        "charts/episodic_return": 20.0, "charts/episodic_length": 20.0, "charts/episodes": 10})
        state.iteration = 1  # not an iteration that saves or evaluates
        for callback in trainer.callbacks:
            callback.on_train_begin(trainer)

        def callbacks():
            for callback in trainer.callbacks:
                callback.on_iteration_end(trainer, metrics)
        points["overhead"].append((num_envs, _timed(callbacks, 20)))
        for callback in trainer.callbacks:
            callback.close()
        envs.close()
    fits = {name: _fit(*zip(*rows)) for name, rows in points.items()}
    fits["weights_bytes"] = {"a": float(sum(p.asnumpy().nbytes for p in agent.net.trainable_params())), "b": 0.0}
    fits["epochs_x_minibatches"] = {"a": float(trainer.settings.ppo.epochs * trainer.settings.ppo.num_minibatches),
                                    "b": 0.0}
    return fits


def measure_components(threads: int) -> Dict[str, Dict[str, float]]:
    """``_components_here`` in a fresh process (MindSpore fixes its thread count once per process)."""
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); from benchmarks.scaling_model import "
            "_components_here; print('COMPONENTS ' + json.dumps(_components_here(int(sys.argv[2]))))")
    output = subprocess.run([sys.executable, "-c", code, ROOT, str(threads)], check=True, capture_output=True,
                            text=True, timeout=1200, cwd=ROOT).stdout
    return json.loads(next(line for line in output.splitlines() if line.startswith("COMPONENTS "))[11:])


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
    return warm_span(os.path.join(out, "progress.csv"), before_final_evaluation=True).sps


def predict(policy: str, ranks: int, c: Dict[str, Dict[str, float]], comm: Dict[str, Dict[str, float]],
            cores: float, update_cores: float, steps_per_rollout: int) -> float:
    """Model SPS of ``policy`` on ``ranks`` ranks sharing ``cores`` cores (inf: a core or device each).

    :param update_cores: how many cores one process's update keeps busy (its 1-thread time over its default-thread
        time): k processes updating at once on C cores take max(1, k x update_cores / C) times as long.
    """
    n, t = NUM_ENVS, steps_per_rollout

    def collect_factor(busy: int) -> float:  # Python and NumPy: one core per process
        return max(1.0, busy / cores)

    def update_factor(busy: int) -> float:
        return max(1.0, busy * update_cores / cores)

    def update(transitions: int) -> float:
        return _line(c["update"], transitions)

    overhead = _line(c["overhead"], n)  # rank 0's callbacks after each iteration
    if policy == "one process" or ranks == 1:
        return n * t / (t * _line(c["collect"], n) + update(n * t) + overhead)
    if policy == "DataParallelDP":
        per_iteration = (t * _line(c["collect"], n) * collect_factor(ranks) + update(n * t) * update_factor(ranks)
                         + c["epochs_x_minibatches"]["a"] * comm["allreduce"]["a"] + overhead)
        return ranks * n * t / per_iteration
    actors = ranks - 1
    weights = c["weights_bytes"]["a"]
    rollout_bytes = t * n * 4 * 8  # obs (4 floats), action, log-prob, value, reward, done, last inputs: ~8 words
    exchange = _line(comm["broadcast"], weights) + _line(comm["gather"], rollout_bytes)
    learn = update(actors * n * t) + overhead
    if policy == "MultiActorSingleLearnerDP":
        per_iteration = t * _line(c["collect"], n) * collect_factor(actors) + exchange + learn
    elif policy == "AsyncMultiActorSingleLearnerDP":  # collection and learning overlap: all ranks busy
        per_iteration = exchange + max(t * _line(c["collect"], n) * collect_factor(ranks),
                                       learn * update_factor(ranks))
    else:  # SingleActorLearnerMultiEnvDP: two exchanges per vector step
        per_step = (_line(comm["broadcast"], 8 * actors * n + 200) + _line(comm["gather"], 8 * n * 6 + 300)
                    + _line(c["env"], n) * collect_factor(actors)
                    + _line(c["collect"], actors * n) - _line(c["env"], actors * n))
        per_iteration = t * per_step + learn
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
    components = measure_components(0)
    single_thread = measure_components(1)
    update_cores = min(max(_line(single_thread["update"], 256) / _line(components["update"], 256), 1.0),
                       float(os.cpu_count() or 1))
    gradient_floats = int(components["weights_bytes"]["a"] // 4)
    comm = {ranks: measure_comm(ranks, gradient_floats) for ranks in (2, 3)}
    rollout_steps = 32  # ppo_classic
    cores = float(os.cpu_count() or 1)
    validation = []
    for policy in POLICIES:
        for processes in ((1,) if policy == "one process" else (2, 3)):
            measured = measure_run(policy, processes, args.steps)
            predicted = predict(policy, processes, components, comm[max(processes, 2)], cores, update_cores,
                                rollout_steps)
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
            row[policy] = round(predict(policy, ranks, components, link, float("inf"), 1.0, rollout_steps), 0)
        model_rows.append(row)
    result = {"cpu": cpu_model(), "machine": platform.machine(), "cores": cores, "started": started,
              "load_average_before": load_before, "load_average_after": load_average(),
              "command": " ".join(["python benchmarks/scaling_model.py", *sys.argv[1:]]),
              "components_seconds": components, "components_seconds_one_thread": single_thread,
              "update_cores": round(update_cores, 2), "comm_seconds": {str(k): v for k, v in comm.items()},
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

"""Speed of ms_ppo's Nature-CNN actor-critic on CPU (MindSpore graph mode) against the same network in PyTorch,
measured in one run on this host.

    .venv/bin/python benchmarks/cnn_speed.py                   # writes benchmarks/results/cnn_speed_<cpu tag>.*
    .venv/bin/python benchmarks/cnn_speed.py --threads 1 --budget 30

Run it with ms_ppo's venv. The network is ms_ppo.models.CnnActorCritic: 4x84x84 uint8 frames, 6 discrete
actions. Two measurements, each in milliseconds, the median of ``--repeats`` calls after ``--warmup`` calls (the
first compiles the graphs); a measurement stops early after ``--budget`` seconds of timed calls (at least 3):

- policy forward, batch 8 (what collection does each step, NumPy in, NumPy out): ms_ppo's
  ``PPOAgent.act``, i.e. its compiled ``PolicyStep`` (``CnnActorCritic.sample`` with host-drawn Gumbel noise);
  in torch, under ``no_grad``: frames / 255, trunk, both heads, arg-max of logits + the same noise, log-prob.
- one PPO train step, batch 256: ms_ppo's real compiled update, ``PPOAgent.update`` (``EpochUpdate``) with
  epochs=1 and num_minibatches=1 on a ``RolloutBatch`` of 256 transitions (clip 0.1, vf_coef 0.5, ent_coef 0.01,
  grad clip 0.5, Adam lr 2.5e-4 eps 1e-5, advantage normalisation: algo_yaml/ppo_atari.yaml); in torch the same:
  a permutation of the batch, forward, clipped surrogate + value loss - entropy bonus, backward, global grad-norm
  clip 0.5, Adam step, the statistics read back.

Each measurement runs in its own subprocess, one at a time (oneDNN fixes its instruction set per process): the
MindSpore side with this script's ``--worker ms_ppo`` under ms_ppo's venv, the torch side with ``--worker torch``
under benchmarks/.venv-sb3's python (created here when absent, ``_common.ensure_sb3_venv``). Both libraries get
``--threads`` CPU threads (MindSpore: ``runtime.cpu_threads`` / ``configure_device``; torch:
``torch.set_num_threads`` and OMP_NUM_THREADS). The default is 1: on a machine shared with other jobs, OpenMP
threads that wait for each other at every barrier collapse (torch's forward at batch 8 took 349 ms with 2 threads
against 14 ms with 1 at load 7 on 2 cores); on an idle host ``--threads 2`` measures both with all cores.

oneDNN kernels: ms_ppo picks oneDNN's instruction-set cap for the CNN itself (ms_ppo/runtime/cpu_kernels.py,
``runtime.cpu_isa_cap: auto``); the ms_ppo column is that default path, and the report says what it chose on this
host. The MindSpore worker is run once more with ONEDNN_VERBOSE=1 (a short run, not timed) to record which
convolution implementations oneDNN executed (``exec,cpu,convolution`` lines: e.g. ``gemm:jit``,
``jit_uni_ncsp``). On a CPU with AVX-512 a further column runs ms_ppo with ONEDNN_MAX_CPU_ISA=AVX2 set before the
process starts (and, when the default path already caps, one with ``runtime.cpu_isa_cap none``, oneDNN as
installed).

Goal: ms_ppo within 1.5x of torch (ratio ms_ppo / torch <= 1.5) on the forward at batch 8 and on the train step
at batch 256. Writes benchmarks/results/cnn_speed_<cpu tag>.json and .md (the tag from the CPU model, family and
model number unless ``--tag``); logs in benchmarks/results/tmp/cnn_speed/.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from typing import Any, Callable, Dict, List, Optional

from _common import (
    RESULTS_DIR,
    SB3_PYTHON,
    TMP_DIR,
    cpu_model,
    emit,
    ensure_sb3_venv,
    load_average,
    logger,
    rel,
    run_logged,
    run_worker,
    write_json,
)

OBS_SHAPE = (4, 84, 84)
NUM_ACTIONS = 6
FORWARD_BATCH = 8
TRAIN_BATCH = 256
GOAL_RATIO = 1.5
# algo_yaml/ppo_atari.yaml's loss settings; one epoch of one minibatch of 256 transitions
PPO = {"learning_rate": 2.5e-4, "clip_range": 0.1, "ent_coef": 0.01, "vf_coef": 0.5, "max_grad_norm": 0.5,
       "adam_eps": 1e-5}
ISA_VARIABLE = "ONEDNN_MAX_CPU_ISA"  # ms_ppo.runtime.cpu_kernels.ISA_VARIABLE (not imported: torch's venv)
MEASUREMENTS = (("forward_b8", f"policy forward, batch {FORWARD_BATCH} (NumPy in, NumPy out)"),
                ("train_b256", f"PPO train step, batch {TRAIN_BATCH} (forward, loss, backward, clip, Adam)"))

log = logger("cnn speed")


# ---------------------------------------------------------------------------------------------------- workers
def _inputs(seed: int) -> Dict[str, Any]:
    """The same NumPy inputs for both libraries: frames, Gumbel noise and a rollout batch of 256 transitions."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return {
        "obs8": rng.integers(0, 256, (FORWARD_BATCH,) + OBS_SHAPE, dtype=np.uint8),
        "noise8": -np.log(-np.log(rng.uniform(1e-10, 1.0, (FORWARD_BATCH, NUM_ACTIONS)))).astype(np.float32),
        "obs": rng.integers(0, 256, (TRAIN_BATCH,) + OBS_SHAPE, dtype=np.uint8),
        "actions": rng.integers(0, NUM_ACTIONS, TRAIN_BATCH).astype(np.int32),
        "log_probs": (np.log(1.0 / NUM_ACTIONS) + 0.01 * rng.standard_normal(TRAIN_BATCH)).astype(np.float32),
        "advantages": rng.standard_normal(TRAIN_BATCH).astype(np.float32),
        "returns": rng.standard_normal(TRAIN_BATCH).astype(np.float32),
        "values": rng.standard_normal(TRAIN_BATCH).astype(np.float32),
    }


def _time(call: Callable[[], Any], warmup: int, repeats: int, budget: float) -> Dict[str, Any]:
    """Milliseconds of ``call``: ``warmup`` untimed calls (the first compiles), then up to ``repeats`` timed ones,
    stopping after ``budget`` seconds once 3 are done."""
    start = time.perf_counter()
    for _ in range(warmup):
        call()
    warmup_s = time.perf_counter() - start
    times: List[float] = []
    begin, cpu_begin = time.perf_counter(), time.process_time()
    while len(times) < repeats:
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) * 1000)
        if len(times) >= 3 and time.perf_counter() - begin > budget:
            break
    cpu_ms = (time.process_time() - cpu_begin) * 1000 / len(times)  # all threads of the process
    return {**summarize(times), "warmup_calls": warmup, "warmup_seconds": round(warmup_s, 2),
            "cpu_ms_per_call": round(cpu_ms, 3)}


def summarize(times: List[float]) -> Dict[str, Any]:
    return {"median_ms": round(statistics.median(times), 3), "min_ms": round(min(times), 3),
            "max_ms": round(max(times), 3), "repeats": len(times), "times_ms": [round(t, 3) for t in times]}


def worker_ms_ppo(args: argparse.Namespace) -> Dict[str, Any]:
    """ms_ppo's own path: configure_device, the CNN's oneDNN cap (cpu_kernels), CnnActorCritic, PPOAgent."""
    inherited_isa = os.environ.get(ISA_VARIABLE)
    import mindspore
    import numpy as np

    from ms_ppo.algo import PPOAgent, RolloutBatch
    from ms_ppo.config import PPOSettings
    from ms_ppo.models import CnnActorCritic
    from ms_ppo.runtime.cpu_kernels import apply_cpu_isa_cap, choose_cpu_isa_cap, cpu_description
    from ms_ppo.runtime.device import configure_device

    configure_device("CPU", cpu_threads=args.threads)
    # What ms_ppo chooses for the CNN on this host (the probe runs here if it is not cached), then ms_ppo's own
    # call that sets it, as build_network does before the network's first compiled call.
    cpu = cpu_description()
    choice = choose_cpu_isa_cap(args.isa_setting, True, "CPU", cpu, dict(os.environ), mindspore.__version__)
    notices: List[str] = []
    applied = apply_cpu_isa_cap(args.isa_setting, True, "CPU", notices.append)
    mindspore.set_seed(0)
    net = CnnActorCritic(OBS_SHAPE, NUM_ACTIONS, discrete=True)
    cfg = PPOSettings(num_envs=8, rollout_steps=TRAIN_BATCH // 8, epochs=1, num_minibatches=1,
                      learning_rate=PPO["learning_rate"], clip_range=PPO["clip_range"], ent_coef=PPO["ent_coef"],
                      vf_coef=PPO["vf_coef"], max_grad_norm=PPO["max_grad_norm"], adam_eps=PPO["adam_eps"],
                      anneal_lr=False)
    agent = PPOAgent(net, cfg)
    data = _inputs(args.seed)
    batch = RolloutBatch(data["obs"], data["actions"], data["log_probs"], data["advantages"], data["returns"],
                         data["values"])
    rng = np.random.default_rng(args.seed)
    result: Dict[str, Any] = {"library": "ms_ppo", "mindspore": mindspore.__version__}
    result["forward_b8"] = _time(lambda: agent.act(data["obs8"], data["noise8"]), args.warmup, args.repeats,
                                 args.budget)
    result["train_b256"] = _time(lambda: agent.update(batch, rng, PPO["clip_range"]), args.warmup, args.repeats,
                                 args.budget)
    stats = agent.update(batch, rng, PPO["clip_range"])
    threads: Dict[str, Any] = {"cpu_threads_requested": args.threads}
    for key in ("runtime_num_threads", "inter_op_parallel_num"):
        try:
            threads[key] = mindspore.get_context(key)
        except Exception as error:  # noqa: BLE001 - a key this MindSpore version lacks is only not reported
            threads[key] = f"n/a ({type(error).__name__})"
    result.update({
        "threads": threads, "last_update_stats": {k: round(v, 5) for k, v in stats.items()},
        "isa": {"setting": args.isa_setting, "inherited_env": inherited_isa, "choice": choice, "applied": applied,
                "env_in_effect": os.environ.get(ISA_VARIABLE), "notices": notices,
                "avx512f": "avx512f" in cpu["flags"]},  # type: ignore[operator]
    })
    return result


def worker_torch(args: argparse.Namespace) -> Dict[str, Any]:
    """The same network, policy step and PPO step in PyTorch on CPU (runs under benchmarks/.venv-sb3)."""
    import numpy as np
    import torch
    from torch import nn

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    class CnnActorCritic(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(4, 32, 8, 4), nn.ReLU(), nn.Conv2d(32, 64, 4, 2), nn.ReLU(),
                nn.Conv2d(64, 64, 3, 1), nn.ReLU(), nn.Flatten(), nn.Linear(64 * 7 * 7, 512), nn.ReLU())
            self.actor = nn.Linear(512, NUM_ACTIONS)
            self.critic = nn.Linear(512, 1)
            for module, gain in [(m, 2 ** 0.5) for m in self.features if isinstance(m, (nn.Conv2d, nn.Linear))] + [
                    (self.actor, 0.01), (self.critic, 1.0)]:
                nn.init.orthogonal_(module.weight, gain)
                nn.init.zeros_(module.bias)

        def heads(self, obs):
            hidden = self.features(obs.float() / 255.0)
            return self.actor(hidden), self.critic(hidden).squeeze(-1)

    net = CnnActorCritic()
    optimizer = torch.optim.Adam(net.parameters(), lr=PPO["learning_rate"], eps=PPO["adam_eps"])
    data = _inputs(args.seed)
    rng = np.random.default_rng(args.seed)

    def policy_step():
        with torch.no_grad():
            logits, value = net.heads(torch.as_tensor(data["obs8"]))
            action = torch.argmax(logits + torch.as_tensor(data["noise8"]), -1)
            log_prob = torch.log_softmax(logits, -1).gather(-1, action[:, None]).squeeze(-1)
        return action.int().numpy(), log_prob.numpy(), value.numpy()

    columns = {k: torch.as_tensor(data[k]) for k in ("obs", "actions", "log_probs", "advantages", "returns")}

    def train_step():
        rows = torch.as_tensor(rng.permutation(TRAIN_BATCH))
        obs, actions, old_log_prob, advantages, returns = (columns[k][rows] for k in (
            "obs", "actions", "log_probs", "advantages", "returns"))
        logits, values = net.heads(obs)
        log_p = torch.log_softmax(logits, -1)
        log_prob = log_p.gather(-1, actions.long()[:, None]).squeeze(-1)
        entropy = -(log_p.exp() * log_p).sum(-1).mean()
        log_ratio = log_prob - old_log_prob
        ratio = log_ratio.exp()
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        clip = PPO["clip_range"]
        policy_loss = torch.max(-advantages * ratio, -advantages * ratio.clamp(1 - clip, 1 + clip)).mean()
        value_loss = (returns - values).pow(2).mean()
        loss = policy_loss + PPO["vf_coef"] * value_loss - PPO["ent_coef"] * entropy
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), PPO["max_grad_norm"])
        optimizer.step()
        with torch.no_grad():
            approx_kl = ((ratio - 1) - log_ratio).mean()
            clipfrac = ((ratio - 1).abs() > clip).float().mean()
            return torch.stack([loss, policy_loss, value_loss, entropy, approx_kl, clipfrac]).numpy()

    result: Dict[str, Any] = {"library": "torch", "torch": torch.__version__}
    result["forward_b8"] = _time(policy_step, args.warmup, args.repeats, args.budget)
    result["train_b256"] = _time(train_step, args.warmup, args.repeats, args.budget)
    result["threads"] = {"torch_num_threads": torch.get_num_threads(),
                         "torch_interop_threads": torch.get_num_interop_threads(),
                         "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
                         "mkldnn_enabled": bool(torch.backends.mkldnn.is_available()
                                                and torch.backends.mkldnn.enabled)}
    return result


WORKERS = {"ms_ppo": worker_ms_ppo, "torch": worker_torch}


# ------------------------------------------------------------------------------------------------ the driver
def lscpu_model_name() -> Optional[str]:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return None
    match = re.search(r"^Model name:\s*(.+)$", out, re.MULTILINE)
    return match.group(1).strip() if match else None


def cpu_identity() -> Dict[str, Any]:
    fields: Dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("cpu family", "model", "flags", "vendor_id") and key not in fields:
                    fields[key] = value.strip()
    except OSError:
        pass
    flags = set(fields.get("flags", "").split())
    return {"model_name": cpu_model(), "lscpu_model_name": lscpu_model_name(), "vendor": fields.get("vendor_id"),
            "family": fields.get("cpu family"), "model": fields.get("model"), "avx2": "avx2" in flags,
            "avx512f": "avx512f" in flags, "cpu_count": os.cpu_count(), "platform": platform.platform()}


def cpu_tag(cpu: Dict[str, Any]) -> str:
    """A short file-name tag: the CPU model slug and its family/model (two EPYCs both say 'AMD EPYC')."""
    name = (cpu.get("model_name") or platform.machine() or "cpu").lower()
    name = re.sub(r"\(r\)|\(tm\)|cpu|processor|@.*|\d+-core", " ", name)
    slug = "_".join(re.findall(r"[a-z0-9]+", name))[:24] or "cpu"
    if cpu.get("family") and cpu.get("model"):
        slug += f"_f{cpu['family']}m{cpu['model']}"
    return slug


def parse_onednn_verbose(log_path: str) -> Dict[str, Any]:
    """The convolution implementations oneDNN executed, from ``exec,cpu,convolution`` verbose lines (counted by
    implementation and by implementation + propagation kind + problem shape)."""
    by_impl: Counter = Counter()
    by_shape: Counter = Counter()
    exec_ms: Counter = Counter()
    info: List[str] = []
    with open(log_path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if (line.startswith("onednn_verbose") and ",info," in line and ",gpu," not in line
                    and ",template:" not in line):
                info.append(line.strip().split(",info,", 1)[1])
            if "exec,cpu,convolution" not in line:
                continue
            fields = line.strip().split(",")
            at = next((i for i in range(len(fields) - 2)
                       if fields[i:i + 3] == ["exec", "cpu", "convolution"]), None)
            if at is None or at + 4 >= len(fields):
                continue
            impl, prop = fields[at + 3], fields[at + 4]
            shape = next((f for f in fields if f.startswith("mb") and "ic" in f), "?")
            by_impl[impl] += 1
            by_shape[f"{impl} {prop} {shape}"] += 1
            try:
                exec_ms[f"{impl} {prop} {shape}"] += float(fields[-1])
            except ValueError:
                pass
    return {"implementations": dict(by_impl), "by_shape": dict(by_shape), "lines": sum(by_impl.values()),
            "exec_ms_total_by_shape": {k: round(v, 3) for k, v in exec_ms.items()}, "onednn_info": info}


def ratio(ms: Optional[Dict[str, Any]], torch: Optional[Dict[str, Any]], key: str) -> Optional[float]:
    if not ms or not torch:
        return None
    return round(ms[key]["median_ms"] / torch[key]["median_ms"], 3)


def markdown(report: Dict[str, Any]) -> str:
    cpu, runs = report["cpu"], report["runs"]
    ms_cols = [name for name in report["ms_ppo_columns"] if runs.get(name)]
    torch_run = runs.get("torch")
    lines = ["# Nature-CNN speed on CPU: ms_ppo (MindSpore graph mode) against PyTorch", "",
             f"CPU: `Model name: {cpu['lscpu_model_name'] or cpu['model_name']}` (family {cpu['family']}, model "
             f"{cpu['model']}, {cpu['cpu_count']} logical CPUs, AVX2 {'yes' if cpu['avx2'] else 'no'}, AVX-512 "
             f"{'yes' if cpu['avx512f'] else 'no'}); {report['date']}.", "",
             f"Command: `{report['command']}`", "",
             f"Load average (1/5/15 min) before: {report['load_average']['before']}, after: "
             f"{report['load_average']['after']} (the machine was shared with other jobs; per phase: "
             f"{report['load_average']['phases']}).", ""]
    header = "| measurement | " + " | ".join(report["column_titles"][c] + " ms" for c in ms_cols)
    header += " | torch ms | " + " | ".join(f"ratio {report['column_titles'][c]} / torch" for c in ms_cols)
    header += f" | goal <= {GOAL_RATIO}x met |"
    lines += [header, "|" + "---|" * (2 + 2 * len(ms_cols) + 1)]
    for key, title in MEASUREMENTS:
        cells = [title]
        cells += [f"{runs[c][key]['median_ms']:.2f}" for c in ms_cols]
        cells.append(f"{torch_run[key]['median_ms']:.2f}" if torch_run else "not measured")
        cells += [f"{report['ratios'][c][key]:.2f}" if report["ratios"][c][key] is not None else "-"
                  for c in ms_cols]
        met = report["goal"][key]
        cells.append("n/a" if met is None else ("yes" if met else "**no**"))
        lines.append("| " + " | ".join(cells) + " |")
    settings = report["settings"]
    lines += ["", f"Each value: the median of all timed calls after warm-up ({settings['warmup']} untimed calls per "
                  f"process, the first compiles), pooled over {settings['rounds']} rounds in which the columns ran "
                  f"one after the other, each in its own process. Calls, range, and the median of each round:"]
    for name in ms_cols + (["torch"] if torch_run else []):
        parts = [f"{key}: {runs[name][key]['repeats']} calls, {runs[name][key]['min_ms']:.2f}-"
                 f"{runs[name][key]['max_ms']:.2f} ms, rounds "
                 f"{' / '.join(f'{m:.2f}' for m in runs[name][key]['round_medians_ms'])}, process CPU ms per call "
                 f"{' / '.join(f'{m:.1f}' for m in runs[name][key]['cpu_ms_per_call'])}" for key, _ in MEASUREMENTS]
        lines.append(f"- {report['column_titles'].get(name, name)}: " + "; ".join(parts))
    if torch_run:
        best = ", ".join(f"{key} {report['best_call_ratios'][c][key]:.2f}" for c in ms_cols for key, _ in MEASUREMENTS
                         if report["best_call_ratios"][c][key] is not None)
        lines.append(f"- ratio of the fastest calls (ms_ppo min / torch min, less sensitive to the other jobs; not "
                     f"the goal's measure): {best}")
    goal = report["goal"]
    verdict = {True: "met", False: "NOT met", None: "not measured"}
    lines += ["", f"Goal: ms_ppo within {GOAL_RATIO}x of torch on the forward at batch {FORWARD_BATCH} and on the "
                  f"train step at batch {TRAIN_BATCH} (default path, column "
                  f"'{report['column_titles']['default']}'). On this host: forward {verdict[goal['forward_b8']]}, "
                  f"train step {verdict[goal['train_b256']]}.", ""]
    isa = report["isa_choice"]
    lines += [f"oneDNN instruction-set cap chosen by ms_ppo for the CNN (ms_ppo/runtime/cpu_kernels.py, "
              f"runtime.cpu_isa_cap auto): {isa['summary']}"]
    for name in ms_cols:
        kernels = report["onednn_convolutions"].get(name)
        if kernels:
            impls = ", ".join(f"`{impl}` ({count})" for impl, count in kernels["implementations"].items())
            info = "; ".join(kernels.get("onednn_info", []))
            lines.append(f"- oneDNN convolutions executed, {report['column_titles'][name]} "
                         f"(ONEDNN_VERBOSE=1 run, `exec,cpu,convolution` lines): {impls or 'none found'}"
                         + (f" (oneDNN: {info})" if info else ""))
    versions = report["versions"]
    lines += ["", f"Versions: MindSpore {versions.get('mindspore')}, torch {versions.get('torch')}, Python "
                  f"{versions['python']}.",
              f"Threads: {report['threads_summary']}", "",
              f"Network: ms_ppo.models.CnnActorCritic, {OBS_SHAPE[0]}x{OBS_SHAPE[1]}x{OBS_SHAPE[2]} uint8, "
              f"{NUM_ACTIONS} discrete actions. Forward = `PPOAgent.act` (compiled PolicyStep); train step = "
              f"`PPOAgent.update` (compiled EpochUpdate, 1 epoch x 1 minibatch of {TRAIN_BATCH}); torch does the "
              f"same work (see benchmarks/cnn_speed.py)."]
    if report["errors"]:
        lines += ["", "Errors: " + "; ".join(f"{k}: {v}" for k, v in report["errors"].items())]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads of both libraries (default 1: on the shared 2-core host, load 7, torch's "
                             "forward at batch 8 took 349 ms with 2 threads and 14 ms with 1)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls first (the first compiles)")
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per measurement, at most")
    parser.add_argument("--budget", type=float, default=40.0,
                        help="seconds of timed calls per measurement before stopping early (at least 3 calls)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="each column measured this many times, alternating (pooled): load changes hit all alike")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tag", help="results file tag (default: from the CPU model, family and model)")
    parser.add_argument("--skip_torch", action="store_true", help="MindSpore side only")
    parser.add_argument("--skip_verbose", action="store_true", help="no ONEDNN_VERBOSE run")
    # worker mode
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--isa_setting", default="auto", choices=("auto", "none", "avx2"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        emit(WORKERS[args.worker](args))
        return 0

    cpu = cpu_identity()
    tag = args.tag or cpu_tag(cpu)
    tmp_dir = os.path.join(TMP_DIR, "cnn_speed")
    os.makedirs(tmp_dir, exist_ok=True)
    loads: Dict[str, Any] = {}
    runs: Dict[str, Any] = {}
    report: Dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": " ".join([".venv/bin/python", "benchmarks/cnn_speed.py"] + sys.argv[1:]),
        "cpu": cpu, "tag": tag, "load_average": {"before": load_average(), "phases": loads},
        "settings": {"obs_shape": OBS_SHAPE, "num_actions": NUM_ACTIONS, "forward_batch": FORWARD_BATCH,
                     "train_batch": TRAIN_BATCH, "ppo": PPO, "threads": args.threads, "warmup": args.warmup,
                     "repeats": args.repeats, "budget_seconds": args.budget, "rounds": args.rounds,
                     "seed": args.seed},
        "runs": runs, "onednn_convolutions": {}, "errors": {},
        "versions": {"python": platform.python_version()},
    }
    log(f"CPU {cpu['lscpu_model_name'] or cpu['model_name']} (family {cpu['family']} model {cpu['model']}, "
        f"AVX-512 {cpu['avx512f']}), load average {report['load_average']['before']}")
    worker_args = ["--threads", str(args.threads), "--warmup", str(args.warmup), "--repeats", str(args.repeats),
                   "--budget", str(args.budget), "--seed", str(args.seed)]
    base_env = dict(os.environ, GLOG_v=os.environ.get("GLOG_v", "3"))
    base_env.pop(ISA_VARIABLE, None)
    user_isa = os.environ.get(ISA_VARIABLE)
    if user_isa:
        report["errors"]["environment"] = f"{ISA_VARIABLE}={user_isa} was set; ignored (the columns set it)"

    def phase(name: str, func: Callable[..., Any], *func_args: Any) -> Any:
        loads[name] = load_average()
        log(f"{name}: starting (load average {loads[name]})")
        start = time.perf_counter()
        try:
            value = func(*func_args)
        except Exception as error:  # noqa: BLE001 - one failed measurement must not lose the others
            report["errors"][name] = str(error)
            log(f"{name}: FAILED: {error}")
            return None
        log(f"{name}: done in {time.perf_counter() - start:.1f} s")
        return value

    def ms_worker(name: str, setting: str, isa: Optional[str]) -> Dict[str, Any]:
        env = dict(base_env)
        if isa:
            env[ISA_VARIABLE] = isa
        result = run_worker([sys.executable, os.path.abspath(__file__), "--worker", "ms_ppo", "--isa_setting",
                             setting] + worker_args, os.path.join(tmp_dir, f"{name}.log"), env)[0]
        log(f"{name}: forward {result['forward_b8']['median_ms']} ms, train step "
            f"{result['train_b256']['median_ms']} ms, oneDNN cap {result['isa']['env_in_effect']}")
        return result

    def ms_verbose(name: str, setting: str, isa: Optional[str]) -> Dict[str, Any]:
        """A short untimed run with ONEDNN_VERBOSE=1 (oneDNN prints to stdout: both streams go to the log)."""
        env = dict(base_env, ONEDNN_VERBOSE="1")
        if isa:
            env[ISA_VARIABLE] = isa
        log_path = os.path.join(tmp_dir, f"{name}_onednn_verbose.log")
        run_logged([sys.executable, os.path.abspath(__file__), "--worker", "ms_ppo", "--isa_setting", setting,
                    "--threads", str(args.threads), "--warmup", "1", "--repeats", "1", "--budget", "0",
                    "--seed", str(args.seed)], log_path, env)
        kernels = parse_onednn_verbose(log_path)
        kernels["log"] = rel(log_path)
        log(f"{name}: oneDNN convolutions {kernels['implementations']}")
        return kernels

    # Rounds: every column once per round, one process at a time, so that a change in the machine's load
    # falls on all columns alike; each column's timed calls of all rounds are pooled.
    columns = ["default"]
    titles = {"default": "ms_ppo (default path)", "avx2": "ms_ppo, ONEDNN_MAX_CPU_ISA=AVX2",
              "none": "ms_ppo, cpu_isa_cap none", "torch": "torch"}
    if cpu["avx512f"]:
        columns.append("avx2")  # the AVX2 cap set before the process starts
    settings = {"default": ("auto", None), "avx2": ("auto", "AVX2"), "none": ("none", None)}
    torch_env = None
    if not args.skip_torch:
        venv = phase("sb3_venv", ensure_sb3_venv, tmp_dir, log)
        if venv:
            report["sb3_venv"] = venv
            torch_env = dict(base_env, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))

    def torch_worker(name: str) -> Dict[str, Any]:
        result = run_worker([SB3_PYTHON, os.path.abspath(__file__), "--worker", "torch"] + worker_args,
                            os.path.join(tmp_dir, f"{name}.log"), torch_env)[0]
        log(f"{name}: forward {result['forward_b8']['median_ms']} ms, train step "
            f"{result['train_b256']['median_ms']} ms")
        return result

    per_round: Dict[str, List[Dict[str, Any]]] = {}
    for round_no in range(1, args.rounds + 1):
        index = 0
        while index < len(columns):  # "none" may join after the default's first run
            name = columns[index]
            index += 1
            setting, isa = settings[name]
            result = phase(f"ms_ppo_{name}_r{round_no}", ms_worker, f"ms_ppo_{name}_r{round_no}", setting, isa)
            if result:
                per_round.setdefault(name, []).append(result)
            if round_no == 1 and not args.skip_verbose:
                report["onednn_convolutions"][name] = phase(f"ms_ppo_{name}_verbose", ms_verbose,
                                                            f"ms_ppo_{name}", setting, isa)
            # AVX-512 hosts where the default path already caps: oneDNN as installed too
            if round_no == 1 and name == "default" and cpu["avx512f"] and result and result["isa"]["applied"]:
                columns.append("none")
        if torch_env is not None:
            result = phase(f"torch_r{round_no}", torch_worker, f"torch_r{round_no}")
            if result:
                per_round.setdefault("torch", []).append(result)
    for name, results in per_round.items():
        merged = dict(results[0])
        for key, _ in MEASUREMENTS:
            pooled = [t for r in results for t in r[key]["times_ms"]]
            merged[key] = {**summarize(pooled), "round_medians_ms": [r[key]["median_ms"] for r in results],
                           "warmup_seconds": [r[key]["warmup_seconds"] for r in results],
                           "cpu_ms_per_call": [r[key]["cpu_ms_per_call"] for r in results]}
        merged["rounds"] = len(results)
        runs[name] = merged
    report["load_average"]["after"] = load_average()

    report["ms_ppo_columns"] = columns
    report["column_titles"] = titles
    report["ratios"] = {c: {key: ratio(runs.get(c), runs.get("torch"), key) for key, _ in MEASUREMENTS}
                        for c in columns}
    report["best_call_ratios"] = {c: {key: (None if not (runs.get(c) and runs.get("torch")) else round(
        runs[c][key]["min_ms"] / runs["torch"][key]["min_ms"], 3)) for key, _ in MEASUREMENTS} for c in columns}
    report["goal"] = {key: (None if report["ratios"]["default"][key] is None
                            else report["ratios"]["default"][key] <= GOAL_RATIO) for key, _ in MEASUREMENTS}
    report["goal_ratio"] = GOAL_RATIO
    default = runs.get("default") or {}
    isa = default.get("isa", {})
    if not isa:
        summary = "not known (the default run failed)"
    elif isa.get("applied"):
        summary = f"capped at {isa['applied']} ({(isa.get('choice') or {}).get('why', '')})."
    elif not cpu["avx512f"]:
        summary = ("no cap: this CPU has no AVX-512, so there is nothing above AVX2 to cap (choose_cpu_isa_cap "
                   "returns None without probing); the default path is oneDNN's own choice, which is the AVX2 "
                   "path.")
    else:
        summary = "no cap: the probe found the capped convolutions not faster by the margin (cached verdict)."
    if cpu["avx512f"] and runs.get("avx2") and runs.get("default"):
        faster = all(runs["default"][k]["median_ms"] <= runs["avx2"][k]["median_ms"] * 1.1 for k, _ in MEASUREMENTS)
        summary += (" The default path is the fast one here." if faster else
                    " The default path is NOT the fast one here: the AVX2 column is faster.")
    isa["summary"] = summary
    report["isa_choice"] = isa
    report["versions"]["mindspore"] = default.get("mindspore")
    report["versions"]["torch"] = (runs.get("torch") or {}).get("torch")
    ms_threads = default.get("threads")
    torch_threads = (runs.get("torch") or {}).get("threads")
    report["threads_summary"] = (f"--threads {args.threads} for both. MindSpore: runtime.cpu_threads "
                                 f"{args.threads} (op_tuning.threads_num), context {ms_threads}. torch: "
                                 f"{torch_threads}.")

    out = os.path.join(RESULTS_DIR, f"cnn_speed_{tag}.json")
    write_json(out, report)
    text = markdown(report)
    with open(os.path.splitext(out)[0] + ".md", "w", encoding="utf-8") as handle:
        handle.write(text)
    print(text)
    log(f"wrote {rel(out)} and its .md")
    return 0 if not report["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""The compiled PPO epoch with the gradient check and clip as MindSpore's per-tensor helpers, against ms_ppo's.

    python benchmarks/update_ops.py --rounds 25 --out benchmarks/results/update_ops.json --note "machine idle"

``ms_ppo.algo.update.EpochUpdate.checked_and_clipped`` takes the global gradient norm from one concatenation and
one reduction, and tests finiteness on that norm. The reference here overrides only that method with
``amp.all_finite`` and ``ops.clip_by_global_norm``, which launch a few operations per gradient tensor; a third
epoch drops the skip of non-finite steps, to show what that branch costs. The epochs run on the same network and
optimiser (``--env_yaml``/``--algo_yaml`` of a continuous-action task, default HalfCheetah with ppo_mujoco.yaml) on
a random rollout of the YAML's size, alternately, ``--rounds`` times each after two warm-up calls (compilation);
the table gives the median time per epoch and the ratio. Alternating in one process puts them under the same
machine load; the report names the CPU, the load average and ``--note`` (what else was running).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import _common
import gymnasium as gym
import numpy as np
from mindspore import Tensor, amp, ops

from ms_ppo import PPOSession
from ms_ppo.algo.update import EpochUpdate


class PerTensorEpochUpdate(EpochUpdate):
    """The epoch with MindSpore's per-tensor finiteness check and global-norm clip (the reference)."""

    def checked_and_clipped(self, grads, loss):
        finite = amp.all_finite(grads + (loss,))
        if self.max_grad_norm is not None:
            grads = ops.clip_by_global_norm(grads, self.max_grad_norm)
        return finite, grads


class UncheckedEpochUpdate(EpochUpdate):
    """The epoch without the skip (for measurement only): a constant True resolves ``if finite:`` when the graph is
    compiled, so no data-dependent branch is left. Not what ms_ppo runs: a non-finite step would reach Adam."""

    def checked_and_clipped(self, grads, loss):
        _, grads = super().checked_and_clipped(grads, loss)
        return True, grads


def random_rollout(rows: int, obs_dim: int, action_dim: int, rng: np.random.Generator) -> list:
    """obs, actions, log_probs, advantages, returns, values: the columns an epoch reads."""
    return [Tensor(rng.standard_normal((rows, obs_dim)).astype(np.float32)),
            Tensor(rng.uniform(-1, 1, (rows, action_dim)).astype(np.float32)),
            Tensor(rng.normal(-5.0, 1.0, rows).astype(np.float32))] + \
        [Tensor(rng.standard_normal(rows).astype(np.float32)) for _ in range(3)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env_yaml", default=os.path.join(_common.ROOT, "env_yaml", "HalfCheetah-v5.yaml"))
    parser.add_argument("--algo_yaml", default=os.path.join(_common.ROOT, "algo_yaml", "ppo_mujoco.yaml"))
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--note", default="not stated", help="what else was running on the machine")
    parser.add_argument("--out", default=os.path.join(_common.RESULTS_DIR, "update_ops.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        session = PPOSession(args.env_yaml, args.algo_yaml, overrides={"train.output_dir": out},
                             log=lambda line: None)
        trainer = session.build()
    agent, cfg = trainer.agent, trainer.agent.cfg
    rows = cfg.num_envs * cfg.rollout_steps
    rng = np.random.default_rng(0)
    space = trainer.envs.single_action_space
    if not isinstance(space, gym.spaces.Box):
        raise SystemExit(f"update_ops.py times continuous-action tasks; {_common.rel(args.env_yaml)} has {space}")
    rollout = random_rollout(rows, int(np.prod(trainer.envs.single_observation_space.shape)),
                             int(np.prod(space.shape)), rng)
    epochs = {"ms_ppo (one norm)": agent.epoch_update,
              "per-tensor (amp.all_finite + ops.clip_by_global_norm)":
                  PerTensorEpochUpdate(agent.net, agent.optimizer, cfg),
              "without the skip (not shipped)": UncheckedEpochUpdate(agent.net, agent.optimizer, cfg)}
    scalars = (Tensor(np.float32(0.2)), Tensor(np.float32(cfg.learning_rate)), Tensor(np.ones(1, np.float32)))

    def timed(epoch) -> float:
        indices = Tensor(rng.permutation(rows).reshape(cfg.num_minibatches, -1).astype(np.int32))
        start = time.perf_counter()
        epoch(*rollout, indices, *scalars).asnumpy()
        return time.perf_counter() - start

    for epoch in epochs.values():  # compile, then one warm call
        timed(epoch), timed(epoch)
    times = {name: [] for name in epochs}
    for _ in range(args.rounds):
        for name, epoch in epochs.items():
            times[name].append(timed(epoch))
    medians = {name: statistics.median(values) for name, values in times.items()}
    ours, reference, unchecked = medians.values()
    result = {"cpu_model": _common.cpu_model(), "load_average": _common.load_average(), "note": args.note,
              "env_yaml": _common.rel(args.env_yaml), "algo_yaml": _common.rel(args.algo_yaml),
              "rows": rows, "minibatches_per_epoch": cfg.num_minibatches, "epochs_per_update": cfg.epochs,
              "rounds": args.rounds, "median_seconds_per_epoch": medians, "ratio": reference / ours,
              "skip_share": 1.0 - unchecked / ours}
    _common.write_json(args.out, result)
    lines = ["# The compiled epoch: one gradient norm against MindSpore's per-tensor helpers", "",
             f"CPU: {result['cpu_model']}; load average at the end {result['load_average']}; also running: "
             f"{args.note}. {_common.rel(args.env_yaml)} + {_common.rel(args.algo_yaml)}: {rows} rows, "
             f"{cfg.num_minibatches} minibatches per epoch, {cfg.epochs} epochs per update; "
             f"{args.rounds} alternating rounds.", "",
             f"Command: `python benchmarks/update_ops.py --rounds {args.rounds} --out {_common.rel(args.out)} "
             f"--note \"{args.note}\"`", "",
             "| epoch | median ms per epoch | ms per update |", "|---|---:|---:|"]
    for name, seconds in medians.items():
        lines.append(f"| {name} | {1000 * seconds:.1f} | {1000 * seconds * cfg.epochs:.0f} |")
    lines += ["", f"Per-tensor / ms_ppo: **{result['ratio']:.2f}×**. The data-dependent skip is "
              f"{100 * result['skip_share']:.0f} % of ms_ppo's epoch."]
    md = os.path.splitext(args.out)[0] + ".md"
    with open(md, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

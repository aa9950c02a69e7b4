"""Cost of the data-parallel update's collective on this machine: MindSpore all-reduces between msrun workers.

    msrun --worker_num=2 --local_worker_num=2 --master_port=8129 --log_dir=benchmarks/results/tmp/allreduce \
        --join=True benchmarks/allreduce_latency.py

One compiled call runs one all-reduce per gradient step of an epoch (``ppo.num_minibatches``) on a float32 vector
the size of the actor-critic train.py builds by default (``ms_ppo.app.cli.DEFAULT_ENV_YAML`` / ``DEFAULT_ALGO_YAML``):
the same shape of work the update's ``nn.DistributedGradReducer`` does in one epoch. Rank 0 prints the time per
all-reduce.
"""

import argparse
import time

import gymnasium as gym
import mindspore
import numpy as np
from mindspore import Tensor, nn, ops
from mindspore.communication import get_rank, init

from ms_ppo.app.assembly import build_network
from ms_ppo.app.cli import DEFAULT_ALGO_YAML, DEFAULT_ENV_YAML
from ms_ppo.config import load_settings

CALLS = 200


def default_gradient() -> tuple:
    """(number of trainable weights, gradient steps per epoch) of train.py's default set-up."""
    settings = load_settings(DEFAULT_ENV_YAML, DEFAULT_ALGO_YAML)
    env = gym.make(settings.env.id)
    net = build_network(settings, env.observation_space, env.action_space)
    env.close()
    return sum(int(np.prod(p.shape)) for p in net.trainable_params()), settings.ppo.num_minibatches


class EpochOfAllReduces(nn.Cell):
    def __init__(self, per_call: int):
        super().__init__()
        self.all_reduce = ops.AllReduce()
        self.per_call = per_call

    def construct(self, x):
        for _ in range(self.per_call):
            x = self.all_reduce(x) * 0.5
        return x


def main() -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    mindspore.set_device("CPU")
    mindspore.set_context(mode=mindspore.GRAPH_MODE)
    init()
    weights, per_call = default_gradient()
    cell, x = EpochOfAllReduces(per_call), Tensor(np.ones(weights, np.float32))
    for _ in range(10):  # compile and warm up
        cell(x).asnumpy()
    start = time.perf_counter()
    for _ in range(CALLS):
        cell(x).asnumpy()
    per_reduce_ms = (time.perf_counter() - start) / (CALLS * per_call) * 1e3
    if get_rank() == 0:
        print(f"all-reduce of {weights:,} float32 between 2 workers: {per_reduce_ms:.2f} ms each "
              f"({per_call} per compiled call, {CALLS} calls)", flush=True)


if __name__ == "__main__":
    main()

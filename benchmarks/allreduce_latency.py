"""Cost of the data-parallel update's collective on this machine: MindSpore all-reduces between msrun workers.

    msrun --worker_num=2 --local_worker_num=2 --master_port=8129 --log_dir=benchmarks/results/tmp/allreduce \
        --join=True benchmarks/allreduce_latency.py

One compiled call runs 8 all-reduces of a gradient-sized float32 vector (the [64, 64] HalfCheetah actor-critic
has 11,341 weights; ppo_mujoco.yaml takes 8 gradient steps per epoch), the same shape of work the update's
``nn.DistributedGradReducer`` does in one epoch. Rank 0 prints the time per all-reduce.
"""

import time

import mindspore
import numpy as np
from mindspore import Tensor, nn, ops
from mindspore.communication import get_rank, init

WEIGHTS = 11_341  # 17*64+64 + 64*64+64 + 64*6+6 (actor) + 17*64+64 + 64*64+64 + 64+1 (critic) + 6 (log std)
PER_CALL = 8  # gradient steps per epoch in ppo_mujoco.yaml
CALLS = 200


class EightAllReduces(nn.Cell):
    def __init__(self):
        super().__init__()
        self.all_reduce = ops.AllReduce()

    def construct(self, x):
        for _ in range(PER_CALL):
            x = self.all_reduce(x) * 0.5
        return x


def main() -> None:
    mindspore.set_device("CPU")
    mindspore.set_context(mode=mindspore.GRAPH_MODE)
    init()
    cell, x = EightAllReduces(), Tensor(np.ones(WEIGHTS, np.float32))
    for _ in range(10):  # compile and warm up
        cell(x).asnumpy()
    start = time.perf_counter()
    for _ in range(CALLS):
        cell(x).asnumpy()
    per_reduce_ms = (time.perf_counter() - start) / (CALLS * PER_CALL) * 1e3
    if get_rank() == 0:
        print(f"all-reduce of {WEIGHTS:,} float32 between 2 workers: {per_reduce_ms:.2f} ms each "
              f"({PER_CALL} per compiled call, {CALLS} calls)", flush=True)


if __name__ == "__main__":
    main()

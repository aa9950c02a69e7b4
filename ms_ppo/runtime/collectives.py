"""Collectives used by data-parallel training: the gradient all-reduce inside the compiled update and the
host-side merge of statistics (observation moments, the stop vote), over MindSpore's communication backend."""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np


def gradient_reducer(parameters, world_size: int):
    """Averages a tuple of gradients over all workers (inside the compiled update)."""
    from mindspore import nn

    return nn.DistributedGradReducer(parameters, mean=True, degree=world_size)


class _AllReduceSum:
    """Sums a float64 NumPy array over all workers (used for host-side statistics, once per rollout)."""

    def __init__(self):
        from mindspore import nn, ops

        class Sum(nn.Cell):
            def __init__(self):
                super().__init__()
                self.all_reduce = ops.AllReduce()

            def construct(self, x):
                return self.all_reduce(x)

        self.cell = Sum()

    def __call__(self, array: np.ndarray) -> np.ndarray:
        from mindspore import Tensor

        # float32 on the wire: the CPU collectives reduce float32; sums of moments need no more precision here.
        return self.cell(Tensor(np.asarray(array, np.float32))).asnumpy().astype(np.float64)


def merge_moments(batch: np.ndarray, world_size: int,
                  all_reduce_sum: Optional[Callable[[np.ndarray], np.ndarray]] = None):
    """Global (mean, var, count) of the rows of ``batch`` (B, ...) over every worker's batch.

    :param all_reduce_sum: sums a flat array over the workers; needed when world_size > 1 (``moment_merger``
        builds one and reuses it, so its collective compiles once).
    """
    count = float(batch.shape[0])
    if world_size == 1:
        return batch.mean(0), batch.var(0), count
    flat = np.concatenate([[count], batch.sum(0).ravel(), (batch.astype(np.float64) ** 2).sum(0).ravel()])
    total = all_reduce_sum(flat)
    n = total[0]
    size = batch[0].size
    mean = (total[1:1 + size] / n).reshape(batch.shape[1:])
    var = np.maximum(total[1 + size:] / n - mean.ravel() ** 2, 0.0).reshape(batch.shape[1:])
    return mean, var, n


def moment_merger(world_size: int):
    """``batch -> (mean, var, count)`` over every worker's batch, with one compiled collective reused."""
    all_reduce_sum = _AllReduceSum()
    return lambda batch: merge_moments(batch, world_size, all_reduce_sum)

"""Run under msrun by tests/test_distributed.py: data-parallel PPO epochs on this worker's share of a fixed batch;
rank r writes its parameters and the epochs' statistics to OUT_DIR/params_rank<r>.npz.

The optimiser is plain SGD without gradient clipping, so a step is exactly -lr x the reduced gradient: summing the
workers' gradients instead of averaging them doubles it, which Adam (scale invariant) and a global-norm clip would
hide. Advantage normalisation is on, as in the default settings.
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ms_ppo.runtime.device import configure_device  # noqa: E402
from ms_ppo.runtime.distributed import init_distributed  # noqa: E402

BATCH, MINIBATCHES, EPOCHS = 64, 2, 2
LEARNING_RATE = 0.05


def fixed_problem(seed: int = 0):
    """Settings and the whole fixed batch (a RolloutBatch), the same in every process."""
    from ms_ppo.algo import RolloutBatch
    from ms_ppo.config import PPOSettings

    cfg = PPOSettings(num_envs=1, rollout_steps=BATCH, num_minibatches=MINIBATCHES, normalize_advantage=True,
                      max_grad_norm=None, clip_range_vf=0.2)
    rng = np.random.default_rng(seed)
    batch = RolloutBatch(obs=rng.standard_normal((BATCH, 5)).astype(np.float32),
                         actions=rng.standard_normal((BATCH, 2)).astype(np.float32),
                         log_probs=rng.normal(-2.0, 0.5, BATCH).astype(np.float32),
                         advantages=(3.0 + 2.0 * rng.standard_normal(BATCH)).astype(np.float32),
                         returns=rng.standard_normal(BATCH).astype(np.float32),
                         values=rng.standard_normal(BATCH).astype(np.float32))
    return cfg, batch


def make_update(cfg, world_size):
    """The network (same seed, same weights everywhere) and its compiled epoch with an SGD optimiser."""
    import mindspore
    from mindspore import nn

    from ms_ppo.algo import EpochUpdate
    from ms_ppo.models import ActorCritic
    from ms_ppo.runtime.collectives import gradient_reducer

    mindspore.set_seed(0)
    net = ActorCritic(5, 2, False, [16, 16])
    optimizer = nn.SGD(net.trainable_params(), learning_rate=LEARNING_RATE)
    reducer = gradient_reducer(optimizer.parameters, world_size) if world_size > 1 else None
    return net, EpochUpdate(net, optimizer, cfg, reducer, world_size=world_size)


def run_update(net, update, batch, indices):
    """EPOCHS epochs on ``batch`` in the minibatch order ``indices``: final parameters and each epoch's stats."""
    from mindspore import Tensor

    tensors = [Tensor(column) for column in batch]
    stats = [update(*tensors, Tensor(indices.astype(np.int32)), Tensor(0.2), Tensor(LEARNING_RATE),
                    Tensor(np.ones(1, np.float32))).asnumpy()
             for _ in range(EPOCHS)]
    params = {name: p.asnumpy() for name, p in net.parameters_and_names()}
    return params, np.stack(stats)


def worker_rows(rank: int, world_size: int) -> np.ndarray:
    """Minibatch i of the one-process update is rows [i * 32, (i + 1) * 32); this worker takes its share of each."""
    size = BATCH // MINIBATCHES
    share = size // world_size
    return np.concatenate([np.arange(i * size + rank * share, i * size + (rank + 1) * share)
                           for i in range(MINIBATCHES)])


def main(out_dir: str) -> None:
    from ms_ppo.algo import RolloutBatch
    from ms_ppo.runtime.collectives import identical_everywhere, weights_fingerprint

    configure_device("CPU")
    worker = init_distributed()
    cfg, batch = fixed_problem()
    rows = worker_rows(worker.rank, worker.world_size)
    local = RolloutBatch(*(column[rows] for column in batch))
    net, update = make_update(cfg, worker.world_size)
    # The start-of-run check of identical replicas: it holds here, and it sees a difference on one rank.
    fingerprint = weights_fingerprint(net.trainable_params())
    same = identical_everywhere(fingerprint, worker.world_size)
    changed = fingerprint.copy()
    changed[0] = (changed[0] + worker.rank) % 2 ** 16  # rank 1's weights as if one byte differed
    sees_difference = not identical_everywhere(changed, worker.world_size)
    params, stats = run_update(net, update, local, np.arange(rows.size).reshape(MINIBATCHES, -1))
    np.savez(os.path.join(out_dir, f"params_rank{worker.rank}.npz"), stats=stats, same_start=same,
             sees_difference=sees_difference, **params)


if __name__ == "__main__":
    main(sys.argv[1])

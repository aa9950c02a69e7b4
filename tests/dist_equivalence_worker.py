"""Run under msrun by tests/test_distributed.py: one data-parallel PPO update on this worker's half of a fixed
batch; rank r writes its parameters to OUT_DIR/params_rank<r>.npz."""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ms_ppo.runtime.device import configure_device  # noqa: E402
from ms_ppo.runtime.distributed import init_data_parallel  # noqa: E402

BATCH, MINIBATCHES, EPOCHS = 64, 2, 2


def fixed_problem(seed: int = 0):
    """Settings, an initialised agent's inputs and the whole fixed batch, the same in every process."""
    from ms_ppo.config import PPOSettings

    cfg = PPOSettings(num_envs=1, rollout_steps=BATCH, num_minibatches=MINIBATCHES, normalize_advantage=False,
                      learning_rate=1e-3, max_grad_norm=0.5, clip_range_vf=0.2)
    rng = np.random.default_rng(seed)
    batch = {"obs": rng.standard_normal((BATCH, 5)).astype(np.float32),
             "actions": rng.standard_normal((BATCH, 2)).astype(np.float32),
             "log_probs": rng.normal(-2.0, 0.5, BATCH).astype(np.float32),
             "advantages": rng.standard_normal(BATCH).astype(np.float32),
             "returns": rng.standard_normal(BATCH).astype(np.float32),
             "values": rng.standard_normal(BATCH).astype(np.float32)}
    return cfg, batch


def run_update(agent, batch, indices):
    from mindspore import Tensor

    tensors = [Tensor(batch[k]) for k in ("obs", "actions", "log_probs", "advantages", "returns", "values")]
    for _ in range(EPOCHS):
        agent.epoch_update(*tensors, Tensor(indices.astype(np.int32)), Tensor(0.2), Tensor(agent.learning_rate))
    return {name: p.asnumpy() for name, p in agent.net.parameters_and_names()}


def make_agent(cfg, world_size):
    import mindspore

    from ms_ppo.algo import PPOAgent
    from ms_ppo.models import ActorCritic

    mindspore.set_seed(0)
    return PPOAgent(ActorCritic(5, 2, False, [16, 16]), cfg, world_size=world_size)


def main(out_dir: str) -> None:
    configure_device("CPU")
    worker = init_data_parallel()
    cfg, batch = fixed_problem()
    half = BATCH // MINIBATCHES // worker.world_size
    # Minibatch i of the single-process update is rows [i*32, (i+1)*32); this worker takes its share of each.
    rows = np.concatenate([np.arange(i * BATCH // MINIBATCHES + worker.rank * half,
                                     i * BATCH // MINIBATCHES + (worker.rank + 1) * half)
                           for i in range(MINIBATCHES)])
    local = {k: v[rows] for k, v in batch.items()}
    params = run_update(make_agent(cfg, worker.world_size), local, np.arange(rows.size).reshape(MINIBATCHES, -1))
    np.savez(os.path.join(out_dir, f"params_rank{worker.rank}.npz"), **params)


if __name__ == "__main__":
    main(sys.argv[1])

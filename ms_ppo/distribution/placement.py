"""Which rank does what under each distribution policy, and on which device: pure logic, checked before any
process starts.

The policies are MindSpore Reinforcement's (mindspore_rl/distribution/distribution_policies), on msrun ranks:

| policy | rank 0 | ranks 1.. | exchanged each iteration |
|---|---|---|---|
| DataParallelDP | a replica (logs, evaluates, saves) | replicas | gradients (all-reduce, per minibatch) |
| MultiActorSingleLearnerDP | the learner | actors | weights (broadcast), then rollouts (gather) |
| AsyncMultiActorSingleLearnerDP | the learner | actors, collecting while it learns | rollouts, then weights |
| SingleActorLearnerMultiEnvDP | actor and learner | environments | actions and observations, every step |
| SingleActorLearnerMultiEnvHeterDP | actor and learner on GPU/Ascend | environments on CPU | as above |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ms_ppo.errors import UserInputError
from ms_ppo.runtime.distributed import DATA_PARALLEL

MULTI_ACTOR = "MultiActorSingleLearnerDP"
ASYNC_MULTI_ACTOR = "AsyncMultiActorSingleLearnerDP"
MULTI_ENV = "SingleActorLearnerMultiEnvDP"
MULTI_ENV_HETER = "SingleActorLearnerMultiEnvHeterDP"
POLICIES = (DATA_PARALLEL, MULTI_ACTOR, ASYNC_MULTI_ACTOR, MULTI_ENV, MULTI_ENV_HETER)

REPLICA, LEARNER, ACTOR, ENV = "replica", "learner", "actor", "env"
ACCELERATORS = ("GPU", "Ascend")


@dataclass(frozen=True)
class Placement:
    """One rank's part in the job.

    :param role: ``replica`` (DataParallelDP), ``learner`` (rank 0 of the other policies: it also acts under the
        MultiEnv ones), ``actor`` (collects rollouts) or ``env`` (steps environments for rank 0).
    :param device: the device this rank computes on.
    :param backend: the collectives' backend: None for the device's own (HCCL, NCCL, CPU), "mccl" (MindSpore's
        CPU collectives) when the ranks' devices differ.
    :param env_offset: index of this rank's first environment among the job's (env seeds, noise rows).
    """

    policy: str
    rank: int
    world_size: int
    role: str
    device: str
    backend: Optional[str]
    env_offset: int

    @property
    def overlap(self) -> bool:
        """Actors collect while the learner updates (AsyncMultiActorSingleLearnerDP)."""
        return self.policy == ASYNC_MULTI_ACTOR


def check_policy(policy: str, world_size: int, device_target: str) -> None:
    """Refuse a policy that cannot run with these ranks and this device, in one line."""
    if policy not in POLICIES:
        raise UserInputError(f"--distribution_policy {policy}: choose one of {', '.join(POLICIES)}")
    if policy != DATA_PARALLEL and world_size < 2:
        raise UserInputError(f"--distribution_policy {policy} needs rank 0 and at least one more rank: "
                             f"--worker_num 2 or more")
    if policy == MULTI_ENV_HETER and device_target not in ACCELERATORS:
        raise UserInputError(f"--distribution_policy {policy} puts the learner on GPU or Ascend and the "
                             f"environments on CPU: give --device_target GPU or Ascend (not {device_target}); on "
                             f"CPU alone use {MULTI_ENV}")


def place(policy: str, rank: int, world_size: int, device_target: str, num_envs: int) -> Placement:
    """This rank's placement; ``num_envs`` is ``ppo.num_envs`` (per collecting rank)."""
    check_policy(policy, world_size, device_target)
    if policy == DATA_PARALLEL:
        return Placement(policy, rank, world_size, REPLICA, device_target, None, rank * num_envs)
    if rank == 0:
        role = LEARNER
    else:
        role = ACTOR if policy in (MULTI_ACTOR, ASYNC_MULTI_ACTOR) else ENV
    heterogeneous = policy == MULTI_ENV_HETER
    device = "CPU" if heterogeneous and rank > 0 else device_target
    offset = 0 if rank == 0 else (rank - 1) * num_envs
    return Placement(policy, rank, world_size, role, device, "mccl" if heterogeneous else None, offset)

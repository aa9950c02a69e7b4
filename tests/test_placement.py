"""Which rank does what under each distribution policy, on which device, and what is refused before launch."""

import os
import subprocess
import sys

import numpy as np
import pytest
from paths import CARTPOLE, ROOT

from ms_ppo.distribution.placement import (
    ACTOR,
    ENV,
    LEARNER,
    POLICIES,
    REPLICA,
    check_policy,
    place,
)
from ms_ppo.distribution.remote_envs import merge_infos
from ms_ppo.errors import UserInputError
from ms_ppo.runtime.distributed import WorkerInfo


def test_roles_devices_and_env_offsets_of_every_policy():
    roles = {policy: [place(policy, rank, 3, "Ascend", 4) for rank in range(3)] for policy in POLICIES}
    assert [p.role for p in roles["DataParallelDP"]] == [REPLICA] * 3
    assert [p.env_offset for p in roles["DataParallelDP"]] == [0, 4, 8]
    for policy in ("MultiActorSingleLearnerDP", "AsyncMultiActorSingleLearnerDP"):
        assert [p.role for p in roles[policy]] == [LEARNER, ACTOR, ACTOR]
        assert [p.env_offset for p in roles[policy]] == [0, 0, 4]  # the actors' envs are the job's 0-3, 4-7
    assert [p.overlap for p in roles["AsyncMultiActorSingleLearnerDP"]] == [True] * 3
    assert not any(p.overlap for p in roles["MultiActorSingleLearnerDP"])
    for policy in ("SingleActorLearnerMultiEnvDP", "SingleActorLearnerMultiEnvHeterDP"):
        assert [p.role for p in roles[policy]] == [LEARNER, ENV, ENV]
    # homogeneous policies compute everywhere on the requested device, with its own collectives
    for policy in POLICIES[:-1]:
        assert {(p.device, p.backend) for p in roles[policy]} == {("Ascend", None)}
    # heterogeneous: the learner on the accelerator, the environments on CPU, collectives on the CPU backend
    heter = roles["SingleActorLearnerMultiEnvHeterDP"]
    assert [(p.device, p.backend) for p in heter] == [("Ascend", "mccl"), ("CPU", "mccl"), ("CPU", "mccl")]


def test_collecting_ranks_and_replicas_follow_the_policy():
    assert (WorkerInfo(0, 3).replicas, WorkerInfo(0, 3).collecting_ranks) == (3, 3)
    single_learner = WorkerInfo(0, 3, "MultiActorSingleLearnerDP")
    assert (single_learner.replicas, single_learner.collecting_ranks) == (1, 2)
    assert (WorkerInfo().replicas, WorkerInfo().collecting_ranks) == (1, 1)


@pytest.mark.bad_input
@pytest.mark.parametrize("policy, world_size, device, message", [
    ("MultiActorSingleLearnerDP", 1, "CPU", "needs rank 0 and at least one more rank"),
    ("SingleActorLearnerMultiEnvHeterDP", 2, "CPU", "give --device_target GPU or Ascend (not CPU)"),
    ("SingleActorLearnerMultiEnvHeterDP", 2, "Auto", "give --device_target GPU or Ascend (not Auto)"),
    ("RingAllReduce", 2, "CPU", "choose one of DataParallelDP, MultiActorSingleLearnerDP"),
])
def test_a_policy_that_cannot_run_is_refused(policy, world_size, device, message):
    with pytest.raises(UserInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_policy(policy, world_size, device)


@pytest.mark.bad_input
@pytest.mark.parametrize("flags, message", [
    (["--distribution_policy", "SingleActorLearnerMultiEnvHeterDP", "--device_target", "CPU"],
     "puts the learner on GPU or Ascend"),
    (["--distribution_policy", "SingleActorLearnerMultiEnvHeterDP", "--device_target", "GPU"],
     "--device_target GPU: no usable GPU device"),
    (["--distribution_policy", "MultiActorSingleLearnerDP", "--worker_num", "1"], "at least one more rank"),
    (["--distribution_policy", "Ring"], "invalid choice: 'Ring'"),
])
def test_train_py_refuses_in_one_line_before_launching(tmp_path, flags, message):
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), "--env_yaml", CARTPOLE,
                             "--enable_distribute", "--output_dir", str(out), *flags],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "launching" not in result.stdout and not (out / "msrun_logs").exists()


def test_merge_infos_as_one_vector_env_reports_them():
    first = {"final_obs": np.array([None, np.ones(2)], dtype=object), "_final_obs": np.array([False, True]),
             "final_info": {"episode": {"r": np.array([0.0, 5.0]), "l": np.array([0, 7])},
                            "_episode": np.array([False, True])}}
    second = {}  # no episode ended in this rank's environments at this step
    merged = merge_infos([first, second], [2, 3])
    assert merged["_final_obs"].tolist() == [False, True, False, False, False]
    assert merged["final_obs"][1].tolist() == [1.0, 1.0] and merged["final_obs"][4] is None
    assert merged["final_info"]["episode"]["r"].tolist() == [0.0, 5.0, 0.0, 0.0, 0.0]
    assert merged["final_info"]["_episode"].tolist() == [False, True, False, False, False]
    assert merge_infos([second, first], [3, 2])["_final_obs"].tolist() == [False, False, False, False, True]

"""The NumPy collection policy computes what the compiled PolicyStep computes, and follows the weights."""

import numpy as np
import pytest
from paths import CARTPOLE

from ms_ppo.algo import PPOAgent
from ms_ppo.config import Settings
from ms_ppo.models import ActorCritic
from ms_ppo.models.host_policy import HostPolicy, supports


def _randomise(net: ActorCritic, seed: int) -> None:
    """Weights far from their initialisation (the policy head starts at gain 0.01), through the agent's
    in-graph assignment so the compiled calls see them too."""
    rng = np.random.default_rng(seed)
    agent = PPOAgent(net, Settings().ppo)
    agent.set_weights([rng.normal(0.0, 0.5, p.shape).astype(np.float32) for p in net.trainable_params()])


def _inputs(discrete: bool, seed: int = 0):
    rng = np.random.default_rng(seed)
    obs = rng.standard_normal((8, 5)).astype(np.float32)
    noise = rng.gumbel(size=(8, 3)) if discrete else rng.standard_normal((8, 3))
    return obs, noise.astype(np.float32)


@pytest.mark.parametrize("discrete, activation", [(False, "tanh"), (False, "relu"), (True, "tanh"), (True, "relu")])
def test_host_sample_matches_the_compiled_policy_step(discrete, activation):
    agent = PPOAgent(ActorCritic(5, 3, discrete, [32, 16], activation, log_std_init=-0.7), Settings().ppo)
    _randomise(agent.net, seed=1)
    obs, noise = _inputs(discrete)
    compiled = agent.act(obs, noise)
    agent.use_host_policy()
    host = agent.act(obs, noise)
    assert [h.dtype for h in host] == [c.dtype for c in compiled]
    for h, c in zip(host, compiled):
        np.testing.assert_allclose(h, c, rtol=1e-4, atol=1e-4)  # float32 sums in another order
    assert np.ptp(host[2]) > 0.1  # values vary with the observation: the comparison covers real outputs


def test_host_policy_takes_new_weights_at_the_next_rollout():
    agent = PPOAgent(ActorCritic(5, 3, False, [16]), Settings().ppo)
    agent.use_host_policy()
    obs, noise = _inputs(False)
    before = agent.act(obs, noise)[2]
    _randomise(agent.net, seed=2)
    np.testing.assert_array_equal(agent.act(obs, noise)[2], before)  # a rollout keeps its weights
    with agent.rollout():
        after = agent.act(obs, noise)
    assert np.max(np.abs(after[2] - before)) > 1e-2
    agent.host_policy = None
    for h, c in zip(after, agent.act(obs, noise)):
        np.testing.assert_allclose(h, c, rtol=1e-4, atol=1e-4)  # float32 sums in another order


def test_supports_only_fp32_mlp_gaussian_or_categorical_on_cpu():
    net = ActorCritic(5, 3, False, [16])
    assert supports(net, "CPU", "fp32")
    assert not supports(net, "GPU", "fp32") and not supports(net, "CPU", "fp16")
    assert not supports(ActorCritic(5, 3, False, [16], distribution="tanh_normal"), "CPU", "fp32")
    assert isinstance(HostPolicy(net).sample(*_inputs(False))[0], np.ndarray)


def _blas_threads():
    """Threads of every BLAS library loaded in this process, by file, as threadpoolctl reads them."""
    from threadpoolctl import threadpool_info

    return {pool["filepath"]: pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


@pytest.mark.parametrize("host_policy, blas_threads", [(True, 1), (True, None), (False, 1)])
def test_numpy_blas_runs_one_thread_while_the_host_policy_collects(tmp_path, host_policy, blas_threads):
    """The host policy's rollouts run NumPy's BLAS on runtime.host_blas_threads threads (one by default) and give
    NumPy its own setting back after; null, or the compiled policy, leaves NumPy's setting alone."""
    from threadpoolctl import threadpool_limits

    from ms_ppo import PPOSession

    overrides = {"runtime.device_target": "CPU", "train.output_dir": str(tmp_path), "ppo.rollout_steps": 4,
                 "runtime.host_policy": host_policy, "runtime.host_blas_threads": blas_threads}
    trainer = PPOSession(CARTPOLE, None, overrides=overrides, quiet=True, log=lambda line: None).build()
    seen = []
    act = trainer.agent.act

    def act_and_look(obs, noise):
        seen.append(_blas_threads())
        return act(obs, noise)

    trainer.agent.act = act_and_look
    with threadpool_limits(limits=2, user_api="blas"):  # the same starting point on every host: 2 threads
        # the libraries a limit reaches: NumPy's; a single-threaded build (OpenCV's OpenBLAS 0.3.3) stays at 1
        settable = [path for path, threads in _blas_threads().items() if threads == 2]
        trainer.collector.reset(trainer.state, 0)
        trainer.collector.collect(trainer.state)
        after = _blas_threads()
    assert any("numpy" in path for path in settable), settable
    assert len(seen) == 4 and all(after[path] == 2 for path in settable)
    during = 1 if host_policy and blas_threads == 1 else 2
    assert all(threads[path] == during for threads in seen for path in settable), seen

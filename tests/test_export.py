"""Export for deployment: the exported graph (MindIR, ONNX) acts as eval.py's policy does on the same observations,
normalisation and action mapping included."""

import os

import mindspore
import numpy as np
import pytest
from mindspore import Tensor, nn
from paths import ENV_YAML

from ms_ppo.app.cli import export_main
from ms_ppo.app.export import load_policy
from ms_ppo.app.session import PPOSession


def trained(tmp_path, env_yaml, **overrides):
    run = tmp_path / "run"
    PPOSession(os.path.join(ENV_YAML, env_yaml), quiet=True, log=lambda line: None,
               overrides={"train.total_steps": 1024, "train.eval_episodes": 1, "train.output_dir": str(run),
                          **overrides}).run()
    return run


def observations(space, rng, count=64):
    """Raw observations as the environment gives them, spread wider than its usual range."""
    import gymnasium as gym

    if isinstance(space, gym.spaces.Discrete):
        return rng.integers(0, space.n, count)
    return (rng.standard_normal((count,) + space.shape) * 3.0).astype(np.float32)


@pytest.mark.parametrize("env_yaml, overrides", [
    ("CartPole-v1.yaml", {"normalize.observations": True}),  # Box observations, Discrete actions
    ("Pendulum-v1.yaml", {}),  # normalisation on in its YAML; Box actions clipped to [-2, 2]
    ("FrozenLake-v1.yaml", {}),  # Discrete observations, one-hot inside the graph
])
def test_the_mindir_acts_as_eval_does(tmp_path, env_yaml, overrides):
    run = trained(tmp_path, env_yaml, **overrides)
    out = tmp_path / "policy"
    assert export_main(["--ckpt", str(run), "--out", str(out)]) == 0
    graph = nn.GraphCell(mindspore.load(str(out) + ".mindir"))
    _, policy, _ = load_policy(str(run), log=lambda line: None)
    rng = np.random.default_rng(0)
    for _ in range(3):
        obs = observations(policy.observation_space, rng, count=1)
        expected = policy.actor(obs)  # what eval.py's policy does with a raw observation
        got = graph(Tensor(obs.astype(np.int32) if obs.dtype.kind == "i" else obs)).asnumpy()
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    if overrides.get("normalize.observations") or env_yaml.startswith("Pendulum"):
        assert not np.allclose(policy.obs_norm.stats.mean, 0.0)  # the statistics really were in play


def test_the_onnx_acts_as_eval_does(tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="ONNX is checked where onnxruntime installs (.[export])")
    run = trained(tmp_path, "Pendulum-v1.yaml")
    out = tmp_path / "policy.onnx"
    assert export_main(["--ckpt", str(run), "--format", "onnx", "--out", str(out), "--batch", "16"]) == 0
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    _, policy, _ = load_policy(str(run), log=lambda line: None)
    obs = observations(policy.observation_space, np.random.default_rng(1), count=16)
    got = session.run(None, {session.get_inputs()[0].name: obs})[0]
    expected = policy.actor(obs)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_the_action_bounds_are_in_the_graph(tmp_path):
    """A policy pushed far outside Pendulum's [-2, 2]: the exported graph clips as the environment adapter does."""
    run = trained(tmp_path, "Pendulum-v1.yaml")
    deployed, policy, _ = load_policy(str(run), log=lambda line: None)
    head = policy.net.actor[len(policy.net.actor) - 1]
    head.bias.set_data(Tensor(np.full(head.bias.shape, 10.0, np.float32)))
    obs = observations(policy.observation_space, np.random.default_rng(2), count=1)
    mindspore.export(deployed, Tensor(obs), file_name=str(tmp_path / "pushed"), file_format="MINDIR")
    got = nn.GraphCell(mindspore.load(str(tmp_path / "pushed.mindir")))(Tensor(obs)).asnumpy()
    np.testing.assert_array_equal(got, policy.actor(obs))
    np.testing.assert_array_equal(got, [[2.0]])


@pytest.mark.bad_input
@pytest.mark.parametrize("args, fragment", [
    (["--format", "TFLITE"], "--format: invalid choice"),
    (["--out", "/no/such/dir/policy"], "directory /no/such/dir does not exist"),
])
def test_bad_export_arguments_are_one_line(tmp_path, capsys, args, fragment):
    run = tmp_path / "missing"
    full = ["--ckpt", str(run), "--out", str(tmp_path / "p")] + args
    assert export_main(full) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")

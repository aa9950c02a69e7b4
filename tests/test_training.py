"""End-to-end runs on CartPole: learning, determinism, checkpoints and evaluation from them."""

import csv
import json
import os

import numpy as np
import pytest
from paths import CARTPOLE, CLASSIC

from ms_ppo.app.evaluate import evaluate_checkpoint
from ms_ppo.app.session import PPOSession
from ms_ppo.errors import UserInputError
from ms_ppo.training import checkpoint


def short_run(tmp_path, name, steps=2048, **extra):
    overrides = {"train.total_steps": steps, "train.output_dir": str(tmp_path / name), "train.seed": 3,
                 "train.log_every": 1000, **extra}
    session = PPOSession(CARTPOLE, CLASSIC, overrides=overrides, log=lambda line: None)
    return session.run(), session


def parameters(run_dir):
    ckpt = checkpoint.resolve(str(run_dir))
    import mindspore
    return {k: v.asnumpy() for k, v in mindspore.load_checkpoint(ckpt).items()}


def test_cartpole_learns_to_475_in_50k_steps(tmp_path):
    """The learning bar of the foundation: seed 0, 50k steps, deterministic evaluation over 10 episodes, from the
    env YAML alone (it names ppo_classic.yaml), as a user runs it."""
    overrides = {"train.total_steps": 50_000, "train.output_dir": str(tmp_path / "cp"), "train.seed": 0}
    result = PPOSession(CARTPOLE, overrides=overrides, log=lambda line: None).run()
    assert result["total_steps"] >= 50_000
    assert result["eval_return_mean"] >= 475, result


def test_run_directory_contents_and_result_json(tmp_path):
    result, _ = short_run(tmp_path, "run")
    run = tmp_path / "run"
    for name in ("config.yaml", "progress.csv", "result.json"):
        assert (run / name).is_file(), name
    saved = json.loads((run / "result.json").read_text())
    for key in ("eval_return_mean", "eval_return_std", "eval_episodes", "total_steps", "wall_seconds", "sps",
                "seed", "env_id", "precision_mode", "device_target"):
        assert key in saved
    assert saved["total_steps"] == 2048 and saved["env_id"] == "CartPole-v1" and saved["seed"] == 3
    assert checkpoint.list_checkpoints(str(run / "ckpt"))
    with open(run / "progress.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["global_step"]) for r in rows] == [256 * i for i in range(1, 9)]
    assert all(float(r["charts/SPS"]) > 0 and r["losses/approx_kl"] for r in rows)
    from PIL import Image
    with Image.open(run / "learning_curve.png") as image:
        assert image.format == "PNG" and image.size[0] > 100
    from tensorboard_events import read_scalars
    scalars = read_scalars(str(run / "tb"))
    assert [step for step, _ in scalars["charts/SPS"]] == [256 * i for i in range(1, 9)]


def test_same_seed_same_result_on_cpu(tmp_path):
    first, _ = short_run(tmp_path, "a")
    second, _ = short_run(tmp_path, "b")
    assert first["eval_return_mean"] == second["eval_return_mean"]
    a, b = parameters(tmp_path / "a"), parameters(tmp_path / "b")
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert (tmp_path / "a" / "progress.csv").read_text().split("\n")[1].split(",")[3:] != []


def test_checkpoint_evaluation_reproduces_the_trained_policy(tmp_path):
    result, _ = short_run(tmp_path, "run", steps=4096, **{"normalize.observations": True})
    returns = evaluate_checkpoint(str(tmp_path / "run"), log=lambda line: None)
    assert returns.mean() == pytest.approx(result["eval_return_mean"])


def test_checkpoint_from_another_network_is_refused(tmp_path):
    short_run(tmp_path, "run")
    with pytest.raises(UserInputError, match="does not fit this network"):
        evaluate_checkpoint(str(tmp_path / "run"), CARTPOLE, CLASSIC, {"policy.hidden_sizes": [32]},
                            log=lambda line: None)


def test_checkpoints_are_pruned_and_latest_points_at_newest(tmp_path):
    directory = tmp_path / "ckpt"
    from ms_ppo.models import ActorCritic
    net = ActorCritic(2, 2, True, [4])
    for step in range(1, 8):
        checkpoint.save(str(directory), step, checkpoint.named_parameters({"net": net}), {"global_step": step},
                        keep=3)
    kept = checkpoint.list_checkpoints(str(directory))
    assert [os.path.basename(p) for p in kept] == [f"step_{s:010d}.ckpt" for s in (5, 6, 7)]
    assert checkpoint.resolve(str(directory)) == kept[-1]
    assert checkpoint.read_meta(kept[-1])["global_step"] == 7
    assert not [n for n in os.listdir(directory) if n.startswith(".tmp_")]


def test_reference_session_run_signature(tmp_path):
    overrides = {"train.output_dir": str(tmp_path / "ref"), "train.log_every": 1000}
    session = PPOSession(CARTPOLE, CLASSIC, False, overrides=overrides, log=lambda line: None)
    result = session.run(episode=3, duration=16)
    assert result["total_steps"] == 3 * 16 * session.settings.ppo.num_envs
    assert result["iterations"] == 3


def test_resume_continues_the_step_count_and_restores_state(tmp_path):
    _, first = short_run(tmp_path, "run", steps=2048, **{"normalize.observations": True})
    saved = parameters(tmp_path / "run")
    meta = checkpoint.read_meta(checkpoint.resolve(str(tmp_path / "run")))
    session = PPOSession(CARTPOLE, CLASSIC, log=lambda line: None,
                         overrides={"train.total_steps": 4096, "train.seed": 3, "train.log_every": 1000,
                                    "normalize.observations": True})
    trainer = session.build()
    trainer.restore(str(tmp_path / "run"))
    assert (trainer.global_step, trainer.iteration) == (2048, 8)
    np.testing.assert_allclose(trainer.state.obs_norm.mean, meta["obs_norm"]["mean"])
    for name, param in trainer.agent.net.parameters_and_names():
        np.testing.assert_array_equal(param.asnumpy(), saved[f"net.{name}"])
    trainer.envs.close()
    result = PPOSession(CARTPOLE, CLASSIC, log=lambda line: None,
                        overrides={"train.total_steps": 4096, "train.seed": 3, "train.log_every": 1000,
                                   "normalize.observations": True}).run(resume=str(tmp_path / "run"))
    assert result["total_steps"] == 4096 and result["iterations"] == 16
    assert result["path"] == str(tmp_path / "run" / "result.json")
    rows = (tmp_path / "run" / "progress.csv").read_text().splitlines()
    assert [int(r.split(",")[1]) for r in rows[1:]] == [256 * i for i in range(1, 17)]


def test_resume_from_a_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(UserInputError, match="checkpoint not found"):
        PPOSession(CARTPOLE, CLASSIC, log=lambda line: None).run(resume=str(tmp_path / "nope.ckpt"))


def test_videos_from_training_and_from_eval(tmp_path):
    """`train.py --video` writes before/after clips; `eval.py --video` records a GIF or an MP4."""
    from PIL import Image

    from ms_ppo.app.cli import eval_main

    short_run(tmp_path, "run", steps=256, **{"train.video": "gif"})
    for name in ("before.gif", "after.gif"):
        with Image.open(tmp_path / "run" / "videos" / name) as image:
            assert image.format == "GIF" and image.n_frames > 1, name
    assert eval_main(["--ckpt", str(tmp_path / "run"), "--episodes", "1",
                      "--video", str(tmp_path / "eval.mp4")]) == 0
    assert (tmp_path / "eval.mp4").read_bytes()[4:8] == b"ftyp"  # an MP4 container


def test_eval_every_flag_evaluates_during_training_and_redraws_the_curve(tmp_path):
    from ms_ppo.app.cli import train_main

    run = tmp_path / "run"
    assert train_main(["--env_yaml", CARTPOLE, "--algo_yaml", CLASSIC, "--total_steps", "1024", "--quiet",
                       "--eval_every", "2", "--save_every", "2", "--output_dir", str(run)]) == 0
    with open(run / "progress.csv", newline="") as handle:
        evals = [row["eval/return_mean"] for row in csv.DictReader(handle)]
    assert [bool(value) for value in evals] == [False, True, False, True]
    assert [os.path.basename(p) for p in checkpoint.list_checkpoints(str(run / "ckpt"))] == [
        "step_0000000512.ckpt", "step_0000001024.ckpt"]
    assert (run / "learning_curve.png").stat().st_size > 0


def test_cpu_threads_reach_the_device_in_training_and_in_evaluation(tmp_path, monkeypatch):
    import ms_ppo.app.assembly as assembly_module
    seen = []

    def record(device_target, graph_op_run=1, cpu_threads=None):
        seen.append(cpu_threads)
        return real(device_target, graph_op_run)  # leave this test process's thread count alone

    real = assembly_module.configure_device
    monkeypatch.setattr(assembly_module, "configure_device", record)
    short_run(tmp_path, "run", steps=256, **{"runtime.cpu_threads": 1})
    evaluate_checkpoint(str(tmp_path / "run"), episodes=1, log=lambda line: None)
    assert seen == [1, 1]


def test_cpu_thread_count_cannot_change_within_a_process(monkeypatch):
    from ms_ppo.runtime import device
    monkeypatch.setattr(device, "_cpu_threads", 2)
    device.set_cpu_threads(2)  # the same count again is fine
    device.set_cpu_threads(None)
    with pytest.raises(UserInputError, match="cannot change it to 3"):
        device.set_cpu_threads(3)

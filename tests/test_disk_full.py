"""A full disk ends a run with one line and exit status 1, the older checkpoints intact and loadable, no
temporary files left; once there is space again, --resume finishes the run with every iteration once."""

import csv
import errno
import os
import subprocess
import sys
import uuid

import pytest
from paths import CARTPOLE, ROOT

from ms_ppo.app.cli import train_main
from ms_ppo.training import checkpoint

# 4 envs x 64 steps = 256 steps per iteration, a checkpoint after each.
ARGS = ["--device_target", "CPU", "--env_yaml", CARTPOLE, "--save_every", "1", "--quiet",
        "--set", "ppo.num_envs=4", "--set", "ppo.rollout_steps=64", "--set", "train.eval_episodes=1"]


def steps_in_csv(run_dir):
    with open(os.path.join(run_dir, "progress.csv"), newline="", encoding="utf-8") as handle:
        return [int(row["global_step"]) for row in csv.DictReader(handle)]


def assert_checkpoints_intact(run_dir):
    ckpt_dir = os.path.join(run_dir, "ckpt")
    kept = checkpoint.list_checkpoints(ckpt_dir)
    assert kept, "no checkpoint survived"
    for path in kept:
        assert checkpoint.damage(path) is None  # checksums match: nothing half-written under a final name
    assert not [name for name in os.listdir(ckpt_dir) if name.startswith(".tmp_")]
    return kept


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 600 KiB tmpfs (root only; skipped elsewhere, where the injected test below still runs)."""
    mount_point = tmp_path / f"full_{uuid.uuid4().hex[:6]}"
    mount_point.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount_point)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_a_real_full_disk_then_resume(small_tmpfs):
    run_dir = str(small_tmpfs / "run")
    result = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), *ARGS, "--total_steps", "25600",
                             "--output_dir", run_dir], capture_output=True, text=True, timeout=900)
    assert result.returncode == 1, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: no space left on the device"), result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    kept = assert_checkpoints_intact(run_dir)
    assert kept[-1] in errors[0] or os.path.basename(kept[-1]) in errors[0] or "last good checkpoint" in errors[0]

    subprocess.run(["mount", "-o", "remount,size=64m", str(small_tmpfs)], check=True)  # space again
    resumed = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), "--resume", run_dir,
                              "--total_steps", "25600", "--quiet"], capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    steps = steps_in_csv(run_dir)
    assert steps == list(range(256, 25600 + 1, 256))  # no gap, no duplicate


def test_an_injected_enospc_in_a_checkpoint_write(tmp_path, monkeypatch, capsys):
    """The fifth checkpoint's metadata write finds the disk full: exit 1, the four before it intact."""
    real_write_text = checkpoint._write_text
    calls = []

    def full_after_four(path, text):
        if path.endswith(".json") and "/ckpt/" in path:
            calls.append(path)
            if len(calls) == 5:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        return real_write_text(path, text)

    monkeypatch.setattr(checkpoint, "_write_text", full_after_four)
    run_dir = tmp_path / "run"
    assert train_main(ARGS + ["--total_steps", "2560", "--output_dir", str(run_dir)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no space left on the device writing" in err[0] and "step_0000001280.json" in err[0]
    assert "the last good checkpoint is" in err[0] and "step_0000001024.ckpt" in err[0]
    kept = assert_checkpoints_intact(str(run_dir))
    assert [os.path.basename(path) for path in kept] == [f"step_{256 * i:010d}.ckpt" for i in range(1, 5)]

    monkeypatch.setattr(checkpoint, "_write_text", real_write_text)
    assert train_main(["--resume", str(run_dir), "--total_steps", "2560", "--quiet"]) == 0
    assert steps_in_csv(str(run_dir)) == list(range(256, 2560 + 1, 256))


def test_an_injected_enospc_in_eval_output_is_one_line(tmp_path, monkeypatch, capsys):
    """Outside training too (eval.py --video on a full disk): one line, exit 1."""
    from ms_ppo import video
    from ms_ppo.app.cli import eval_main

    run_dir = tmp_path / "run"
    assert train_main(ARGS + ["--total_steps", "256", "--output_dir", str(run_dir)]) == 0
    capsys.readouterr()

    def full(frames, path, fps=30):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)

    monkeypatch.setattr(video, "write_video", full)
    monkeypatch.setattr("ms_ppo.app.evaluate.write_video", full, raising=False)
    assert eval_main(["--ckpt", str(run_dir), "--episodes", "1", "--video", str(tmp_path / "a.gif")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: no space left on the device writing") and "a.gif" in err[0]

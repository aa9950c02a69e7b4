"""A damaged newest checkpoint (truncated, bit-flipped, metadata missing, state altered) is recognised by its
checksums: resume and eval fall back to the previous intact one with a notice naming both."""

import json
import os
import shutil

import pytest
from paths import CARTPOLE

from ms_ppo.app.cli import eval_main, train_main
from ms_ppo.training import checkpoint


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    """CartPole with a checkpoint after each of 3 iterations of 256 steps."""
    run = tmp_path_factory.mktemp("intact") / "run"
    assert train_main(["--env_yaml", CARTPOLE, "--total_steps", "768", "--save_every", "1", "--output_dir", str(run),
                       "--quiet", "--set", "train.eval_episodes=1"]) == 0
    return run


def flip_a_byte(path):
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0x01
    open(path, "wb").write(bytes(data))


def truncate(path):
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 3])


DAMAGE = {
    "truncated weights": lambda stem: truncate(stem + ".ckpt"),
    "bit-flipped weights": lambda stem: flip_a_byte(stem + ".ckpt"),
    "metadata missing": lambda stem: os.remove(stem + ".json"),
    "altered environment state": lambda stem: flip_a_byte(stem + ".state.pkl"),
}


@pytest.fixture(params=sorted(DAMAGE))
def damaged(request, original, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(original, run)
    ckpts = checkpoint.list_checkpoints(str(run / "ckpt"))
    DAMAGE[request.param](ckpts[-1][:-len(".ckpt")])
    return run, ckpts[-1].replace(str(original), str(run)), ckpts[-2].replace(str(original), str(run))


def test_every_checkpoint_records_checksums(original):
    for ckpt in checkpoint.list_checkpoints(str(original / "ckpt")):
        sums = checkpoint.read_meta(ckpt)["sha256"]
        assert sums["ckpt"] == checkpoint.sha256_of(ckpt) and "state" in sums
        assert checkpoint.damage(ckpt) is None


def test_resume_falls_back_to_the_previous_intact_checkpoint(damaged, capsys):
    run, newest, previous = damaged
    assert train_main(["--resume", str(run), "--total_steps", "1024", "--quiet"]) == 0
    out = capsys.readouterr().out
    notice = next(line for line in out.splitlines() if "is damaged" in line)
    assert newest in notice and previous in notice
    assert f"resumed from {previous}" in out
    result = json.loads((run / "result.json").read_text())
    assert result["total_steps"] == 1024  # went on from step 512 (the previous checkpoint) to the budget


def test_eval_falls_back_and_an_explicit_damaged_file_is_refused(damaged, capsys):
    run, newest, previous = damaged
    assert eval_main(["--ckpt", str(run), "--episodes", "1"]) == 0
    assert previous in capsys.readouterr().out
    if os.path.exists(newest[:-len(".ckpt")] + ".json"):  # with its metadata gone the file has no checksum
        assert eval_main(["--ckpt", newest, "--episodes", "1"]) == 2
        assert "is damaged" in capsys.readouterr().err


def test_no_intact_checkpoint_is_one_line(original, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(original, run)
    for ckpt in checkpoint.list_checkpoints(str(run / "ckpt")):
        truncate(ckpt)
    assert eval_main(["--ckpt", str(run)]) == 2
    assert "no intact checkpoint" in capsys.readouterr().err

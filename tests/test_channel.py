"""The Channel carries Python objects between msrun ranks over MindSpore's Broadcast and AllGather, bit for bit."""

import os
import subprocess

import numpy as np
import pytest
from paths import ROOT

from ms_ppo.runtime.channel import _chunk_words, from_words, to_words
from ms_ppo.runtime.distributed import msrun_command, msrun_environment


@pytest.mark.parametrize("length", [0, 1, 4, 5, 1023])
def test_bytes_survive_the_float32_view(length):
    data = np.random.default_rng(length).bytes(length)
    words = to_words(data, max(1, -(-length // 4)))
    assert words.dtype == np.float32 and from_words(words, length) == data


def test_chunks_are_powers_of_two_up_to_the_cap():
    assert [_chunk_words(n, 1024) for n in (0, 1, 4, 5, 17, 4096, 10**6)] == [1, 1, 1, 2, 8, 1024, 1024]


def test_three_ranks_exchange_objects_bit_for_bit_and_wait_out_a_busy_rank_0(tmp_path):
    command = msrun_command(3, [os.path.join(ROOT, "tests", "channel_worker.py"), str(tmp_path)],
                            str(tmp_path / "logs"))
    result = subprocess.run(command, env=msrun_environment(), cwd=ROOT, capture_output=True, text=True, timeout=300)
    logs = "".join(path.read_text()[-2000:] for path in sorted((tmp_path / "logs").glob("worker_*.log")))
    assert result.returncode == 0, logs
    for rank in range(3):
        assert (tmp_path / f"channel_rank{rank}.txt").read_text() == "0 3 1021 10000 70"

"""Run under msrun by tests/test_channel.py: every rank broadcasts and gathers objects over a Channel with small
chunks and checks, byte for byte, what it received against what each rank sent (each rank can rebuild every
rank's payload from its seed), and waits for rank 0 longer than MindSpore's default collective timeout; rank r
writes OUT_DIR/channel_rank<r>.txt with what it checked."""

import os
import pickle
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ms_ppo.runtime.channel import Channel  # noqa: E402
from ms_ppo.runtime.device import configure_device  # noqa: E402
from ms_ppo.runtime.distributed import init_distributed  # noqa: E402

CHUNK = 256  # float32 words per collective call: a 10 kB payload goes in several chunks
BUSY_SECONDS = 70


def payload(rank: int, size: int):
    """Random bytes (every float32 bit pattern, NaN payloads too), an array and a nested object."""
    rng = np.random.default_rng([rank, size])
    return {"bytes": rng.bytes(size), "array": rng.standard_normal((3, 5)).astype(np.float64),
            "uint8": rng.integers(0, 256, (2, 84, 84), dtype=np.uint8), "rank": rank, "nested": [None, {"a": 1}]}


def same(a, b) -> bool:
    return pickle.dumps(a, protocol=5) == pickle.dumps(b, protocol=5)


def main(out_dir: str) -> None:
    configure_device("CPU")
    worker = init_distributed("MultiActorSingleLearnerDP")
    channel = Channel(worker.world_size, max_chunk=CHUNK)
    checked = []
    for size in (0, 3, 1021, 10_000):  # empty, shorter than a word, not a multiple of 4, several chunks
        received = channel.broadcast(payload(0, size) if worker.rank == 0 else None)
        assert same(received, payload(0, size)), f"broadcast of {size} bytes"
        gathered = channel.gather(payload(worker.rank, size + worker.rank * 517))  # lengths differ by rank
        assert len(gathered) == worker.world_size
        for rank, item in enumerate(gathered):
            assert same(item, payload(rank, size + rank * 517)), f"gather of rank {rank}, {size} bytes"
        checked.append(size)
    assert channel.broadcast() is None  # rank 0 sends nothing: everyone gets None
    # rank 0 busy (an evaluation, a checkpoint) for longer than MindSpore's default collective timeout (~30 s)
    # while the others wait in the next broadcast: msrun_environment's MS_NODE_TIMEOUT keeps them waiting
    if worker.rank == 0:
        time.sleep(BUSY_SECONDS)
    assert channel.broadcast("after a long wait" if worker.rank == 0 else None) == "after a long wait"
    checked.append(BUSY_SECONDS)
    with open(os.path.join(out_dir, f"channel_rank{worker.rank}.txt"), "w", encoding="utf-8") as handle:
        handle.write(" ".join(map(str, checked)))


if __name__ == "__main__":
    main(sys.argv[1])

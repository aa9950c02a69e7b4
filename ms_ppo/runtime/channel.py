"""Python objects between the ranks of an msrun job, over MindSpore's own collectives (Broadcast, AllGather).

Why not point-to-point: MindSpore 2.10's CPU backend has no Send/Receive kernel (``comm_func.send`` fails with
"The kernel InnerCommIsend unregistered") and its functional all-gather neither; the graph-mode ``ops.Broadcast``
and ``ops.AllGather`` work on every backend (HCCL, NCCL, the CPU one). Both carry float32 only here (uint8 is
refused), so an object travels as its pickle's bytes viewed as float32 words: a copy, never arithmetic, so every
bit arrives as it left (``tests/test_channel.py`` sends random bytes, NaN patterns included).

Each exchange is two collectives: the byte lengths first, then the bytes in chunks of a power-of-two number of
words (at most ``max_chunk``), so a handful of shapes are compiled once and reused, and a large rollout never
needs one huge buffer (a single 86 MB all-gather failed once on this machine; 4 MB chunks did not).
"""

from __future__ import annotations

import pickle
from typing import Any, List

import numpy as np

MAX_CHUNK_WORDS = 1 << 20  # float32 words per collective call: 4 MiB
_HEADER_WORDS = 2  # a byte length as int64, viewed as two float32 words


def to_words(data: bytes, words: int) -> np.ndarray:
    """``data`` zero-padded to ``words`` float32 words (bit patterns, not numbers)."""
    buffer = np.zeros(words * 4, np.uint8)
    buffer[:len(data)] = np.frombuffer(data, np.uint8)
    return buffer.view(np.float32)


def from_words(words: np.ndarray, length: int) -> bytes:
    return np.ascontiguousarray(words, np.float32).view(np.uint8)[:length].tobytes()


def _length_words(length: int) -> np.ndarray:
    return np.array([length], np.int64).view(np.float32)


def _chunk_words(length: int, max_chunk: int) -> int:
    """The chunk size for a payload of ``length`` bytes: the next power of two of its words, at most max_chunk."""
    words = max(1, -(-length // 4))
    return min(max_chunk, 1 << (words - 1).bit_length())


class Channel:
    """Broadcast from rank 0, and all-gather, of picklable objects; every rank of the job must make the same
    calls in the same order (they are collectives).

    :param world_size: ranks in the job.
    :param max_chunk: float32 words per collective call at most.
    """

    def __init__(self, world_size: int, max_chunk: int = MAX_CHUNK_WORDS):
        from mindspore import nn, ops

        class Gather(nn.Cell):
            def __init__(self):
                super().__init__()
                self.op = ops.AllGather()

            def construct(self, x):
                return self.op(x)

        class Broadcast(nn.Cell):
            def __init__(self):
                super().__init__()
                self.op = ops.Broadcast(0)

            def construct(self, x):
                return self.op((x,))[0]

        self.world_size = world_size
        self.max_chunk = max_chunk
        self._gather, self._broadcast = Gather(), Broadcast()

    def _call(self, cell, words: np.ndarray) -> np.ndarray:
        from mindspore import Tensor

        return cell(Tensor(words)).asnumpy()

    def broadcast(self, obj: Any = None) -> Any:
        """Rank 0's ``obj`` on every rank (the others pass None)."""
        data = pickle.dumps(obj, protocol=5) if obj is not None else b""
        length = int(self._call(self._broadcast, _length_words(len(data))).view(np.int64)[0])
        chunk = _chunk_words(length, self.max_chunk)
        pieces = []
        for start in range(0, length, chunk * 4):
            piece = data[start:start + chunk * 4] if data else b""
            pieces.append(self._call(self._broadcast, to_words(piece, chunk)))
        return pickle.loads(from_words(np.concatenate(pieces), length)) if length else None

    def gather(self, obj: Any) -> List[Any]:
        """Every rank's ``obj``, in rank order, on every rank."""
        data = pickle.dumps(obj, protocol=5)
        lengths = self._call(self._gather, _length_words(len(data))).reshape(self.world_size, _HEADER_WORDS)
        lengths = [int(row.view(np.int64)[0]) for row in lengths]
        longest = max(lengths)
        chunk = _chunk_words(longest, self.max_chunk)
        pieces = []
        for start in range(0, longest, chunk * 4):
            pieces.append(self._call(self._gather, to_words(data[start:start + chunk * 4], chunk))
                          .reshape(self.world_size, chunk))
        joined = np.concatenate(pieces, axis=1)
        return [pickle.loads(from_words(joined[rank], lengths[rank])) for rank in range(self.world_size)]


"""Stopping cleanly on SIGINT/SIGTERM: after the current iteration, with a checkpoint, every worker together."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator, Optional

import numpy as np

from ms_ppo.runtime.collectives import moment_merger


class StopRequest:
    """Remembers a stop signal; data-parallel, the workers vote so that all stop at the same iteration.

    :param world_size: workers in the job (above 1, ``requested`` is a collective every worker must call).
    """

    def __init__(self, world_size: int = 1):
        self.signal: Optional[int] = None
        self._vote = None if world_size == 1 else moment_merger(world_size)

    @contextlib.contextmanager
    def listening(self) -> Iterator[None]:
        """SIGINT/SIGTERM ask the loop to stop after the current iteration; a second one stops at once.

        While a graph runs, MindSpore 2.10's own SIGINT handler turns Ctrl-C into SIGTERM (checked), so a
        Ctrl-C is usually reported as SIGTERM; both stop the same way.
        """
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def request_stop(signum, frame):
            self.signal = signum
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def requested(self) -> bool:
        """Whether to stop now (data-parallel: any worker's signal stops all)."""
        if self._vote is None:
            return self.signal is not None
        mean, _, _ = self._vote(np.array([[float(self.signal is not None)]]))
        if mean[0] > 0 and self.signal is None:
            self.signal = signal.SIGTERM
        return self.signal is not None

"""The run's signal guard: the first SIGINT or SIGTERM ends the run as ``Interrupted``, and
teardown then runs to its end with later signals recorded and ignored, because half a teardown
is how processes get left behind."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

from harness.errors import Interrupted


class SignalGuard:
    """Turns the first SIGINT/SIGTERM into ``Interrupted``; during teardown, signals wait."""

    def __init__(self) -> None:
        self.raising = True
        self.received: list[int] = []

    def handle(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)
        if self.raising:
            self.raising = False
            raise Interrupted(signum)

    def quiet(self) -> None:
        """From here on (teardown), a signal is only recorded."""
        self.raising = False


@contextlib.contextmanager
def guarded() -> Iterator[SignalGuard]:
    """SIGINT and SIGTERM handled by a new guard for the block, the previous handlers after."""
    guard = SignalGuard()
    previous = {s: signal.signal(s, guard.handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield guard
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

"""Free loopback ports for a run's components, proxies and observers.

Ports come from below the Linux ephemeral range (32768-60999): a port picked there can be
taken by any outgoing connection before the component binds it.
"""

from __future__ import annotations

import os
import random
import socket

from harness.errors import EnvironmentProblem

LOW, HIGH = 20000, 32000


def is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class PortAllocator:
    """Hands out distinct free ports; starts at a random place so parallel runs rarely meet."""

    def __init__(self, seed: int | None = None) -> None:
        rng = random.Random(
            seed if seed is not None else os.getpid() ^ int.from_bytes(os.urandom(4))
        )
        self._next = rng.randrange(LOW, HIGH)
        self.taken: set[int] = set()

    def reserve(self, port: int) -> None:
        self.taken.add(port)

    def allocate(self) -> int:
        for _ in range(HIGH - LOW):
            port = self._next
            self._next = LOW if self._next + 1 >= HIGH else self._next + 1
            if port not in self.taken and is_free(port):
                self.taken.add(port)
                return port
        raise EnvironmentProblem("no free port on 127.0.0.1 between 20000 and 32000")

"""Links through a real Toxiproxy server: proxies forward, toxics delay, heal and reset undo."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import components
from harness.deploy.links import LinkAddress, LinkNetwork, ToxiproxyServer
from harness.deploy.ports import PortAllocator
from harness.faults import FAULTS, FaultTools, Target

pytestmark = [pytest.mark.integration]


class Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(1024):
            self.request.sendall(data)


@pytest.fixture
def network(tmp_path: Path) -> Iterator[tuple[LinkNetwork, int]]:
    """A real Toxiproxy with one link, ``client->echo``, in front of a TCP echo server."""
    ports = PortAllocator()
    echo = socketserver.ThreadingTCPServer(("127.0.0.1", ports.allocate()), Echo)
    threading.Thread(target=echo.serve_forever, daemon=True).start()
    server = ToxiproxyServer(
        components.find("toxiproxy-server"), ports.allocate(), tmp_path / "toxiproxy.log"
    )
    server.start()
    server.wait_ready()
    try:
        links = LinkNetwork(server.port)
        listen = ports.allocate()
        links.create(LinkAddress("client->echo", listen, echo.server_address[1]))
        yield links, listen
    finally:
        server.stop()
        echo.shutdown()
        echo.server_close()


def round_trip(port: int) -> float:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        start = time.monotonic()
        sock.sendall(b"ping")
        assert sock.recv(16) == b"ping"
        return time.monotonic() - start


def test_a_latency_fault_slows_the_link_until_healed(network: tuple[LinkNetwork, int]) -> None:
    links, port = network
    assert round_trip(port) < 0.2
    fault = FAULTS["latency"].model_validate({"latency": 400, "jitter": 0})
    applied = fault.apply(FaultTools(links, None), Target("client->echo"), "slow")  # type: ignore[arg-type]
    assert links.toxics("client->echo") == ["slow"]
    assert round_trip(port) >= 0.4  # Toxiproxy delays the echo by the configured 400 ms
    applied.heal()
    applied.heal()  # healing twice is allowed
    assert links.toxics("client->echo") == []
    assert round_trip(port) < 0.2


def test_reset_removes_every_toxic(network: tuple[LinkNetwork, int]) -> None:
    links, _ = network
    links.add_toxic("client->echo", "a", "latency", "downstream", 1.0, {"latency": 100})
    links.add_toxic("client->echo", "b", "latency", "upstream", 1.0, {"latency": 100})
    links.reset()
    assert links.toxics("client->echo") == []


def test_toxiproxy_refuses_an_unknown_toxic_type(network: tuple[LinkNetwork, int]) -> None:
    links, _ = network
    with pytest.raises(Exception, match="toxic"):
        links.add_toxic("client->echo", "x", "no-such-toxic", "downstream", 1.0, {})


def test_a_partition_refuses_and_cuts_connections_until_healed(
    network: tuple[LinkNetwork, int],
) -> None:
    links, port = network
    existing = socket.create_connection(("127.0.0.1", port), timeout=5)
    applied = FAULTS["partition"]().apply(FaultTools(links, None), Target("client->echo"), "cut")  # type: ignore[arg-type]
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1)
    existing.sendall(b"ping")
    assert existing.recv(16) == b""  # the proxy closed the connection it carried
    existing.close()
    applied.heal()
    assert round_trip(port) < 0.2


def test_a_one_way_partition_drops_one_direction(network: tuple[LinkNetwork, int]) -> None:
    links, port = network
    fault = FAULTS["one_way_partition"].model_validate({"stream": "downstream"})
    applied = fault.apply(FaultTools(links, None), Target("client->echo"), "oneway")  # type: ignore[arg-type]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.settimeout(1)
        sock.sendall(b"ping")
        with pytest.raises(TimeoutError):
            sock.recv(16)  # the request went up; the answer never comes down
    applied.heal()
    assert round_trip(port) < 0.2

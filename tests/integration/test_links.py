"""Links through a real Toxiproxy server: proxies forward, toxics delay, heal and reset undo."""

from __future__ import annotations

import json
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
from harness.deploy.process import ManagedProcess, Readiness
from harness.faults import FAULTS, FaultTools, Target
from harness.observe.traffic import LinkTraffic, moved

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
    applied = fault.apply(FaultTools(links, None, None), Target("client->echo"), "slow")  # type: ignore[arg-type]
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
    tools = FaultTools(links, None, None)  # type: ignore[arg-type]
    applied = FAULTS["partition"]().apply(tools, Target("client->echo"), "cut")
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
    applied = fault.apply(FaultTools(links, None, None), Target("client->echo"), "oneway")  # type: ignore[arg-type]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.settimeout(1)
        sock.sendall(b"ping")
        with pytest.raises(TimeoutError):
            sock.recv(16)  # the request went up; the answer never comes down
    applied.heal()
    assert round_trip(port) < 0.2


def test_the_traffic_of_open_and_closed_connections_is_counted_once_each(
    network: tuple[LinkNetwork, int], tmp_path: Path
) -> None:
    """Toxiproxy counts a connection's bytes only once it closes: an open one is read from the
    kernel, so a long-lived connection's traffic shows while it flows, and closing it neither
    loses nor doubles what it moved."""
    links, port = network
    traffic = LinkTraffic(links.url, {"client->echo": port}, tmp_path / "traffic.jsonl")
    assert traffic.sample()["bytes"] == {"client->echo": 0}
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        for _ in range(10):
            sock.sendall(b"x" * 100)
            assert len(sock.recv(200)) > 0
        time.sleep(0.2)  # the echo's last bytes acknowledged
        flowing = traffic.sample()["bytes"]["client->echo"]  # type: ignore[index]
        assert flowing >= 1000  # both ways, on a connection still open
    time.sleep(0.5)  # Toxiproxy has seen the close
    closed = traffic.sample()["bytes"]["client->echo"]  # type: ignore[index]
    assert flowing <= closed <= flowing + 2000


def test_link_traffic_is_sampled_into_the_run_folder_until_stopped(
    network: tuple[LinkNetwork, int], tmp_path: Path
) -> None:
    links, port = network
    path = tmp_path / "traffic.jsonl"
    traffic = LinkTraffic(links.url, {"client->echo": port}, path)
    traffic.start()
    time.sleep(0.5)
    round_trip(port)
    time.sleep(2)
    traffic.stop()
    samples = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(samples) >= 3 and all("bytes" in s for s in samples)
    first, last = samples[0]["t"], samples[-1]["t"]
    assert moved(path, "client->echo", first, last) == 8  # ping, and its echo
    assert moved(path, "client->echo", last, last + 10) is None  # no sample after it
    assert moved(path, "other->link", first, last) is None


def test_a_toxiproxy_without_its_metrics_leaves_the_traffic_untold(tmp_path: Path) -> None:
    """A Toxiproxy started without -proxy-metrics (a user's own) serves no byte counts."""
    ports = PortAllocator()
    binary = components.find("toxiproxy-server")
    api = ports.allocate()
    process = ManagedProcess("toxiproxy", [str(binary), "-port", str(api)], tmp_path / "log")
    process.start()
    try:
        process.wait_ready(10, Readiness(api, "/version"))
        sample = LinkTraffic(f"http://127.0.0.1:{api}", {"a->b": 1}, tmp_path / "t").sample()
    finally:
        process.stop()
    assert "-proxy-metrics" in str(sample["error"]) and "bytes" not in sample

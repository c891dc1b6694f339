"""Process faults on a real local deployment: kill, pause and restart of real Redis replicas."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from harness.deploy import base, local
from harness.deploy.ports import PortAllocator
from harness.faults import FAULTS, FaultTools, Target
from harness.topology import TopologySpec

pytestmark = [pytest.mark.integration]

TOPOLOGY = TopologySpec.model_validate(
    {
        "name": "two-redis",
        "components": {
            "cache": {
                "replicas": 2,
                "command": [
                    "redis-server",
                    "--port",
                    "{port}",
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--dir",
                    "{data}",
                ],
            }
        },
        "load": {"component": "cache"},
    }
)


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[local.LocalDeployment]:
    where = base.layout(TOPOLOGY, PortAllocator())
    deployed = local.LocalDeployment(base.plan(TOPOLOGY, tmp_path, tmp_path, where))
    try:
        deployed.up()
        yield deployed
    finally:
        deployed.down()


def ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.settimeout(0.5)
            sock.sendall(b"PING\r\n")
            return sock.recv(16) == b"+PONG\r\n"
    except OSError:
        return False


def apply(kind: str, deployment: local.LocalDeployment, *replicas: str):  # type: ignore[no-untyped-def]
    tools = FaultTools(network=None, processes=deployment, commands=None)  # type: ignore[arg-type]
    return FAULTS[kind]().apply(tools, Target("cache", replicas), kind)


def test_kill_takes_the_replica_down_and_heal_starts_it_again(
    deployment: local.LocalDeployment,
) -> None:
    port = deployment.instances[0].port
    before = deployment.processes["cache-0"].pid
    applied = apply("kill", deployment, "cache-0")
    assert not ping(port) and not psutil.pid_exists(before or 0)
    assert ping(deployment.instances[1].port)  # the other replica is untouched
    applied.heal()
    assert ping(port) and deployment.processes["cache-0"].pid != before


def test_pause_stops_the_replica_answering_until_healed(
    deployment: local.LocalDeployment,
) -> None:
    port = deployment.instances[1].port
    applied = apply("pause", deployment, "cache-1")
    pid = deployment.processes["cache-1"].pid
    assert psutil.Process(pid).status() == psutil.STATUS_STOPPED
    assert not ping(port)
    applied.heal()
    assert ping(port)


def test_a_paused_replica_is_still_torn_down(tmp_path: Path) -> None:
    where = base.layout(TOPOLOGY, PortAllocator())
    deployed = local.LocalDeployment(base.plan(TOPOLOGY, tmp_path, tmp_path, where))
    deployed.up()
    apply("pause", deployed, "cache-0", "cache-1")
    pids = [p.pid for p in deployed.processes.values() if p.pid is not None]
    deployed.down()
    assert not [p for p in pids if psutil.pid_exists(p)]


def test_restart_stops_gracefully_and_comes_back(deployment: local.LocalDeployment) -> None:
    port = deployment.instances[0].port
    applied = apply("restart", deployment, "cache-0")
    assert not ping(port)
    assert deployment.processes["cache-0"].returncode() == 0  # SIGTERM: a clean exit
    applied.heal()
    assert ping(port)

"""The docker deployer: every component replica a container on the run's own network.

Each run gets a user-defined bridge network with a /24 of its own, so every container's address
is decided before anything starts, as the local deployer decides its ports: placeholders,
Prometheus' targets and the links' upstreams are filled from one layout either way. The harness
itself (the load, and Prometheus unless it is asked for as a container) stays on the host and
reaches the containers at their addresses on the bridge; Toxiproxy runs as a container on the
network. Every container and network carries
the run's id and its harness's owner mark as labels, so that what a killed harness left is found
and removed by label.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import os
import re
import signal
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.types
from docker.models.containers import Container

from harness.deploy import images, netfilter, owner
from harness.deploy.base import Instance, Layout, Planned
from harness.deploy.process import ManagedProcess, reachable
from harness.errors import ComponentFailed, EnvironmentProblem
from harness.topology import TopologySpec

LABEL_RUN = "harness.run"
LABEL_OWNER = "harness.owner"
TOXIPROXY_API_PORT = 8474
PROMETHEUS_PORT = 9090
STOP_GRACE_S = 3
CPU_PERIOD_US = 100_000  # the scheduler's period a CPU quota is a share of
STRESS_PIDS = "/tmp/harness-stress.pids"  # inside a container: its busy loops, for unstress
_POLL_S = 0.05
_LOG_TAIL_LINES = 20
# 10.213.0.0/16, one /24 per run: far from Docker's own default pools (172.17+ and 192.168).
_SUBNETS = [f"10.213.{n}.0/24" for n in range(256)]


def connect() -> docker.DockerClient:
    """The engine, or one message that says how to get one."""
    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except docker.errors.DockerException as exc:
        raise EnvironmentProblem(
            f"docker: the engine does not answer ({exc}); start it (dockerd, as root; on "
            "Debian: apt-get install docker.io) or run with the local deployer"
        ) from None
    return client


def labels(run_id: str) -> dict[str, str]:
    return {LABEL_RUN: run_id, LABEL_OWNER: owner.owner_mark()}


class RunNetwork:
    """The run's bridge network and the addresses handed out on it, in order."""

    def __init__(self, client: docker.DockerClient, run_id: str) -> None:
        self.network = self._create(client, run_id)
        self.subnet = str(self.network.attrs["IPAM"]["Config"][0]["Subnet"])
        self.name = str(self.network.name)
        hosts = list(ipaddress.IPv4Network(self.subnet).hosts())
        self.gateway = str(hosts[0])  # the bridge's own address: the host, seen from inside
        self._free: Iterator[ipaddress.IPv4Address] = iter(hosts[1:])

    @staticmethod
    def _create(client: docker.DockerClient, run_id: str) -> Any:
        for subnet in _SUBNETS:
            pool = docker.types.IPAMPool(subnet=subnet)
            try:
                return client.networks.create(
                    f"harness-{run_id}",
                    driver="bridge",
                    ipam=docker.types.IPAMConfig(pool_configs=[pool]),
                    labels=labels(run_id),
                )
            except docker.errors.APIError as exc:
                if "overlap" not in str(exc).lower():
                    raise EnvironmentProblem(
                        f"docker: cannot create the run's network: {exc}"
                    ) from None
        raise EnvironmentProblem("docker: every subnet of 10.213.0.0/16 is taken by a network")

    def address(self) -> str:
        return str(next(self._free))

    def remove(self) -> None:
        self.network.remove()


def place(where: Layout, topology: TopologySpec, network: RunNetwork, proxy_host: str) -> Layout:
    """The layout with an address on the network for every replica the harness starts."""
    hosts = {
        name: where.hosts[name]
        if spec.external is not None
        else [network.address() for _ in range(spec.replicas)]
        for name, spec in topology.components.items()
    }
    return dataclasses.replace(where, hosts=hosts, proxy_host=proxy_host)


def _create(
    client: docker.DockerClient,
    image: str,
    name: str,
    argv: list[str],
    env: Mapping[str, str],
    network: RunNetwork,
    address: str,
    run_id: str,
    binds: Iterable[str] = (),
) -> Container:
    """A container with a fixed address, labelled with its run, not started.

    On an image of the harness's own kinds (built here or public) ``argv`` is the whole
    program, run as the harness's own user: a public image's entrypoint script and user (such
    as redis's, which switches to a user who cannot write the run folder) are bypassed, so the
    same argv runs alike on both. On any other image ``argv`` is the command its entrypoint
    gets, as with ``docker run``."""
    own = images.own(image)
    endpoint = client.api.create_endpoint_config(ipv4_address=address, aliases=[name])
    container_id = client.api.create_container(
        image,
        command=(argv[1:] if own else argv) or None,
        entrypoint=argv[:1] if own and argv else None,
        user=f"{os.getuid()}:{os.getgid()}" if own else None,
        environment=dict(env),
        name=f"{run_id}-{name}",
        hostname=name,
        labels=labels(run_id),
        host_config=client.api.create_host_config(binds=list(binds), init=True),
        networking_config=client.api.create_networking_config({network.name: endpoint}),
    )["Id"]
    return client.containers.get(container_id)


def _tail(text: str) -> str:
    return "\n".join(text.splitlines()[-_LOG_TAIL_LINES:])


def _cpu_s(container: Container) -> float | None:
    """The CPU the container has used so far, from one sample of the engine's statistics."""
    with contextlib.suppress(docker.errors.DockerException, KeyError, TypeError):
        stats = container.stats(stream=False, one_shot=True)
        return round(float(stats["cpu_stats"]["cpu_usage"]["total_usage"]) / 1e9, 3)
    return None


def _record(
    component: str,
    container: Container,
    image: str,
    where: tuple[str, int | None],  # its address on the run's network, its port
    log_path: Path,
    started_at: float | None,
    ready_s: float | None,
    cpu_s: float | None,
) -> dict[str, Any]:
    """A container as the journal's ``components`` lists it, beside the processes."""
    host, port = where
    return {
        "component": component,
        "container": container.name,
        "image": image,
        "host": host,
        "port": port,
        "log": str(log_path),
        "started_at": started_at,
        "ready_s": ready_s,
        "cpu_s": cpu_s,
    }


def _save_logs(container: Container, path: Path) -> None:
    """The container's output into the run's log folder, where a local process writes its own."""
    with contextlib.suppress(docker.errors.DockerException, OSError):
        path.write_bytes(container.logs(stdout=True, stderr=True))


class ServiceContainer:
    """One of the run's own services (Toxiproxy, Prometheus) as a container on the run's
    network, ready once ``ready_path`` on its port answers."""

    def __init__(
        self,
        client: docker.DockerClient,
        name: str,
        image: str,
        argv: list[str],
        where: tuple[RunNetwork, str, int],  # the network, its address there, its port
        run_id: str,
        log_path: Path,
        ready_path: str,
        binds: Iterable[str] = (),
    ) -> None:
        network, self.host, self.port = where
        self.name, self.image, self.log_path, self.ready_path = name, image, log_path, ready_path
        self.container = _create(client, image, name, argv, {}, network, self.host, run_id, binds)
        self.started_at: float | None = None
        self.ready_s: float | None = None
        self.cpu_s: float | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Start, without waiting for it to answer."""
        self.started_at = time.time()
        self.container.start()

    def wait_ready(self, timeout_s: float = 15.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not reachable(self.host, self.port, self.ready_path):
            if time.monotonic() > deadline:
                _save_logs(self.container, self.log_path)
                raise ComponentFailed(self.name, f"did not answer within {timeout_s:g}s")
            time.sleep(_POLL_S)
        if self.ready_s is None and self.started_at is not None:
            self.ready_s = round(time.time() - self.started_at, 3)

    def pid(self) -> int:
        """Its main process's pid on the engine's host: the way into its network namespace."""
        self.container.reload()
        return int(self.container.attrs["State"]["Pid"])

    def stop(self) -> None:
        _save_logs(self.container, self.log_path)
        self.cpu_s = _cpu_s(self.container)
        self.container.stop(timeout=STOP_GRACE_S)
        self.container.remove(force=True)

    @property
    def processes(self) -> dict[str, ManagedProcess]:
        return {}  # the engine's, not this host's

    def record(self) -> dict[str, dict[str, Any]]:
        return {
            self.name: _record(
                self.name, self.container, self.image, (self.host, self.port), self.log_path,
                self.started_at, self.ready_s, self.cpu_s,
            )
        }  # fmt: skip


class DockerDeployment(Planned):
    """The running containers of one topology; the process seam of faults maps to the engine:
    kill is SIGKILL to the container, pause is the engine's pause (the cgroup freezer)."""

    def __init__(
        self,
        client: docker.DockerClient,
        network: RunNetwork,
        layers: list[list[Instance]],
        images: Mapping[str, str],
        run_id: str,
        binds: Iterable[str],
    ) -> None:
        super().__init__(layers)  # no processes of this host: they are the engine's
        self.client, self.network, self.images, self.run_id = client, network, images, run_id
        self.binds = list(binds)
        self.containers: dict[str, Container] = {}
        self.started: dict[str, float] = {}
        self.ready_s: dict[str, float] = {}  # from its first start until it first answered
        self.cpu_s: dict[str, float | None] = {}  # taken just before it is removed
        self.cuts: dict[str, float] = {}  # replica → the share of its packets dropped
        self.limits: dict[str, dict[str, int]] = {}  # replica → its limits before a squeeze

    def launch(self, layer: list[Instance], pool: ThreadPoolExecutor) -> None:
        """Create the layer's containers together, then start each."""
        list(pool.map(self._create, layer))
        for instance in layer:
            self._start(instance.name)

    def _create(self, instance: Instance) -> None:
        self.containers[instance.name] = _create(
            self.client, self.images[instance.component], instance.name, instance.argv,
            instance.env, self.network, instance.host, self.run_id, self.binds,
        )  # fmt: skip

    def _start(self, replica: str) -> None:
        self.started[replica] = time.time()
        self.containers[replica].start()

    def await_ready(self, instance: Instance) -> None:
        self._wait_ready(instance)
        self.ready_s[instance.name] = round(time.time() - self.started[instance.name], 3)

    def _wait_ready(self, instance: Instance) -> None:
        container = self.containers[instance.name]
        deadline = time.monotonic() + instance.ready_timeout_s
        while not self._answers(instance, container):
            container.reload()
            if container.status == "exited":
                code = container.attrs["State"]["ExitCode"]
                raise ComponentFailed(
                    instance.name, f"exited with code {code}", self._logs(instance)
                )
            if time.monotonic() > deadline:
                raise ComponentFailed(
                    instance.name,
                    f"was not ready within {instance.ready_timeout_s:g}s",
                    self._logs(instance),
                )
            time.sleep(_POLL_S)

    def _answers(self, instance: Instance, container: Container) -> bool:
        ready = instance.ready
        if ready.command:
            with contextlib.suppress(docker.errors.APIError):
                return bool(container.exec_run(list(ready.command)).exit_code == 0)
            return False
        if ready.log is not None:
            since = int(self.started[instance.name])
            with contextlib.suppress(docker.errors.APIError):
                text = container.logs(since=since).decode("utf-8", "replace")
                return re.search(ready.log, text) is not None
            return False
        return ready.port is None or reachable(instance.host, ready.port, ready.http)

    def _logs(self, instance: Instance) -> str:
        _save_logs(self.containers[instance.name], instance.log_path)
        with contextlib.suppress(OSError):
            return _tail(instance.log_path.read_text(encoding="utf-8", errors="replace"))
        return ""

    # The process seam of faults (harness.faults.Processes), by replica name.

    def send_signal(self, replica: str, signum: int) -> None:
        container = self.containers[replica]
        if signum == signal.SIGSTOP:
            container.pause()
        elif signum == signal.SIGCONT:
            container.unpause()
        else:
            container.kill(signal=signum)

    def kill(self, replica: str) -> None:
        self.containers[replica].kill()

    def stop(self, replica: str) -> None:
        self.containers[replica].stop(timeout=STOP_GRACE_S)

    def cut(self, replica: str, share: float = 1.0) -> None:
        self.cuts[replica] = share
        self._filter(replica, "-I", share)

    def rejoin(self, replica: str) -> None:
        self._filter(replica, "-D", self.cuts.pop(replica, 1.0))

    def _filter(self, replica: str, action: str, share: float) -> None:
        """Add (-I) or remove (-D) the rules that drop the replica's packets (all, or each with
        the chance ``share``) to and from its peers on the run's network, in its own network
        namespace; the gateway (the harness's host: Prometheus, the load) stays reachable, so
        the run keeps seeing it."""
        self.containers[replica].reload()
        pid = int(self.containers[replica].attrs["State"]["Pid"])
        gateway, peers = self.network.gateway, self.network.subnet
        rules = [
            ["INPUT", "-s", peers, *netfilter.chance(share), "-j", "DROP"],
            ["OUTPUT", "-d", peers, *netfilter.chance(share), "-j", "DROP"],
            ["INPUT", "-s", gateway, "-j", "ACCEPT"],  # inserted last, so matched first
            ["OUTPUT", "-d", gateway, "-j", "ACCEPT"],
        ]
        netfilter.apply_rules(pid, action, rules, f"cut {replica}")

    def limit(self, replica: str, cpus: float | None, memory: int | None) -> None:
        """The engine's update of the container's limits; what heal restores is kept first.

        The engine cannot lift a memory limit once set, only raise it: a container that had
        none gets the engine's whole memory back as its limit, which limits nothing."""
        container = self.containers[replica]
        container.reload()
        had = container.attrs["HostConfig"]
        squeeze: dict[str, int] = {}
        restore: dict[str, int] = {}
        if cpus is not None:
            squeeze |= {"cpu_period": CPU_PERIOD_US, "cpu_quota": round(cpus * CPU_PERIOD_US)}
            restore |= {"cpu_period": had.get("CpuPeriod") or CPU_PERIOD_US,
                        "cpu_quota": had.get("CpuQuota") or -1}  # fmt: skip
        if memory is not None:
            squeeze |= {"mem_limit": memory, "memswap_limit": memory}  # no swap to spill into
            whole = had.get("Memory") or int(self.client.info()["MemTotal"])
            restore |= {"mem_limit": whole, "memswap_limit": had.get("MemorySwap") or whole}
        self.limits.setdefault(replica, restore)
        try:
            container.update(**squeeze)
        except docker.errors.APIError as exc:
            raise EnvironmentProblem(f"limit {replica}: the engine refused: {exc}") from None

    def unlimit(self, replica: str) -> None:
        if (had := self.limits.pop(replica, None)) is None:
            return
        with contextlib.suppress(docker.errors.NotFound):
            self.containers[replica].update(**had)

    def stress(self, replica: str, workers: int) -> None:
        """Busy shell loops inside the container, each noting its pid for ``unstress``."""
        loop = f"echo $$ >> {STRESS_PIDS}; while :; do :; done"
        for _ in range(workers):
            self.containers[replica].exec_run(["sh", "-c", loop], detach=True)

    def unstress(self, replica: str) -> None:
        stop = f"kill -9 $(cat {STRESS_PIDS}) 2>/dev/null; rm -f {STRESS_PIDS}"
        with contextlib.suppress(docker.errors.APIError):
            self.containers[replica].exec_run(["sh", "-c", stop])

    def start(self, replica: str) -> None:
        """Start a killed or stopped container again: same address, same filesystem."""
        instance = self.instance(replica)
        self._start(replica)
        self._wait_ready(instance)

    def remove(self, instance: Instance) -> None:
        """Keep the container's output in the run's logs and its CPU, then remove it."""
        if (container := self.containers.get(instance.name)) is None:
            return
        _save_logs(container, instance.log_path)
        self.cpu_s[instance.name] = _cpu_s(container)
        with contextlib.suppress(docker.errors.NotFound):
            container.reload()
            if container.status == "paused":
                container.unpause()  # the engine refuses to stop a frozen container
            container.stop(timeout=STOP_GRACE_S)
            container.remove(force=True)

    def record(self) -> dict[str, dict[str, Any]]:
        """Each container, as the journal's ``components`` lists a process: its image, address
        and port, its log, when it (last) started, how soon it first answered, its CPU."""
        record = {}
        for i in self.instances:
            if (container := self.containers.get(i.name)) is not None:
                record[i.name] = _record(
                    i.component, container, self.images[i.component], (i.host, i.port),
                    i.log_path, self.started.get(i.name), self.ready_s.get(i.name),
                    self.cpu_s.get(i.name),
                )  # fmt: skip
        return record

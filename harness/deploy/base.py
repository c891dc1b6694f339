"""What every deployer shares: the plan of a run's instances (where each listens, its command
and environment filled in, in layers that can start together) and the ``Deployment`` protocol
the run loop and the faults talk to, whichever deployer runs the instances.

``Planned`` is the shared half of a deployment (its layers, the start in dependency order, the
stop in reverse); ``NullDeployment`` runs nothing and records what it was asked, so that the
run's ordering can be tested without processes.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from harness import components, secrets
from harness.deploy.ports import PortAllocator, is_free
from harness.deploy.process import ManagedProcess, Readiness
from harness.errors import EnvironmentProblem, MissingComponent, PortTaken
from harness.faults.base import Processes
from harness.store import RunFolder
from harness.topology import PLACEHOLDER, TopologySpec

OnReady = Callable[["Instance"], object]


@dataclass(frozen=True)
class Instance:
    """One replica of a component, with its command and environment filled in."""

    component: str
    name: str
    replica: int
    port: int
    host: str  # 127.0.0.1 but for an external component
    argv: list[str]
    env: dict[str, str]
    cwd: Path | None
    ready: Readiness
    ready_timeout_s: float
    metrics: str | None
    metrics_port: int  # the port Prometheus scrapes: its own, or one of its named ports
    log_path: Path
    external: bool = False  # already running: nothing to start, stop or signal


@dataclass(frozen=True)
class Layout:
    """Where everything of a run listens, decided before anything starts."""

    ports: dict[str, list[int]]  # component → one port per replica
    links: dict[str, int]  # link → its proxy's listening port
    named: dict[str, list[dict[str, int]]]  # component → per replica, its named ports
    hosts: dict[str, list[str]]  # component → per replica, its host (127.0.0.1 when local)
    proxy_host: str = "127.0.0.1"  # where the links' proxies listen: the Toxiproxy's host

    def upstream_host(self, link: str) -> str:
        return self.hosts[link.split("->")[1]][0]

    def upstream(self, link: str) -> int:
        """Where link ``A->B`` leads: B's port named A if B has one (a broker that must tell
        each client its own address, as Kafka does, listens for it there), else B's port."""
        source, dest = link.split("->")
        return self.named[dest][0].get(source, self.ports[dest][0])

    def addr(self, component: str) -> str:
        """``NAME`` (its port) or ``NAME:PORT`` (one of its named ports), of its first replica."""
        name, _, port = component.partition(":")
        return f"{self.hosts[name][0]}:{self.named[name][0][port] if port else self.ports[name][0]}"


def layout(topology: TopologySpec, allocator: PortAllocator) -> Layout:
    """Reserve every port: fixed ones must be free now, the rest are picked free."""
    ports: dict[str, list[int]] = {}
    hosts = {name: ["127.0.0.1"] * spec.replicas for name, spec in topology.components.items()}
    for name, spec in topology.components.items():
        if spec.external_address is not None:
            host, port = spec.external_address
            hosts[name], ports[name] = (
                [host],
                [port],
            )  # elsewhere, or taken by it: nothing to reserve here
        elif spec.port is not None:
            if spec.replicas > 1:
                ports[name] = [spec.port + i for i in range(spec.replicas)]
            else:
                ports[name] = [spec.port]
            for port in ports[name]:
                if port in allocator.taken or not is_free(port):
                    raise PortTaken(name, port)
                allocator.reserve(port)
        else:
            ports[name] = [allocator.allocate() for _ in range(spec.replicas)]
    named = {
        name: [{port: allocator.allocate() for port in spec.ports} for _ in range(spec.replicas)]
        for name, spec in topology.components.items()
    }
    links = {link: allocator.allocate() for link in topology.links}
    proxy_host = topology.toxiproxy.address[0] if topology.toxiproxy else "127.0.0.1"
    return Layout(ports, links, named, hosts, proxy_host)


def plan(
    topology: TopologySpec,
    topology_dir: Path,
    run_dir: Path,
    where: Layout,
    container_python: str | None = None,
) -> list[list[Instance]]:
    """Every instance, filled in, grouped in layers that can start together.

    With ``container_python`` (the interpreter inside the image), for containers: ``{python}``
    is that, programs are found in the image, and the harness's environment stays out.
    """
    instances: dict[str, list[Instance]] = {}
    folder = RunFolder(run_dir)
    for name, spec in topology.components.items():
        labels = topology.replica_names(name)
        for replica, port in enumerate(where.ports[name]):
            label = labels[replica]
            values = {
                "port": str(port),
                # The address to listen on: only the harness's host reaches a local process,
                # but other containers must reach a container.
                "bind": "127.0.0.1" if container_python is None else "0.0.0.0",
                "python": container_python or sys.executable,
                "dir": str(topology_dir.resolve()),
                "data": str(folder.data(label)),
                "run": str(run_dir),
                "name": label,
                "replica": str(replica),
                "processed_ledger": str(folder.processed),
            }
            folder.data(label).mkdir(parents=True, exist_ok=True)

            named = where.named[name][replica]
            own = {f"var:{k}": v for k, v in spec.vars.items()}
            own.update({f"port:{k}": str(v) for k, v in named.items()})

            def fill(
                text: str, values: Mapping[str, str] = values, own: Mapping[str, str] = own
            ) -> str:
                return PLACEHOLDER.sub(
                    lambda m: _value(m.group(1), m.group(2), values, own, where), text
                )

            argv = [fill(arg) for arg in spec.command]
            if not argv and spec.external is None and container_python is None:
                raise EnvironmentProblem(
                    f"{name} names only an image: run it with the docker deployer "
                    "(--deployer docker), or give it a command"
                )
            if argv and container_python is None:
                argv[0] = _executable(argv[0])
            inherited = secrets.inherited(os.environ) if container_python is None else {}
            env = {**inherited, "PYTHONUNBUFFERED": "1"}
            env.update({key: fill(value) for key, value in spec.env.items()})
            instances.setdefault(name, []).append(
                Instance(
                    name,
                    label,
                    replica,
                    port,
                    where.hosts[name][replica],
                    argv,
                    env,
                    Path(fill(spec.workdir)) if spec.workdir else None,
                    Readiness(
                        port,
                        spec.ready.http,
                        tuple(fill(arg) for arg in spec.ready.command),
                        spec.ready.log,
                        where.hosts[name][replica],
                    ),
                    spec.ready.timeout,
                    spec.metrics,
                    named[spec.metrics_port] if spec.metrics_port else port,
                    folder.log(label),
                    external=spec.external is not None,
                )
            )
    return [[i for c in layer for i in instances[c]] for layer in topology.layers()]


def fill_outside(
    text: str,
    topology_dir: Path,
    run_dir: Path,
    where: Layout,
    values: Mapping[str, str] | None = None,
    own: Mapping[str, str] | None = None,
) -> str:
    """``text`` with the placeholders that mean something outside any component filled in
    (``{run}``, ``{dir}``, ``{addr:...}``): what the harness itself reads, such as a ledger,
    or runs, such as a target's fault (which adds its replica's ``values`` and its ``own``
    ``{var:...}``)."""
    known = {"run": str(run_dir), "dir": str(topology_dir.resolve()), **(values or {})}
    return PLACEHOLDER.sub(lambda m: _value(m.group(1), m.group(2), known, own or {}, where), text)


def _value(
    kind: str, arg: str | None, values: Mapping[str, str], own: Mapping[str, str], where: Layout
) -> str:
    if kind in ("var", "port") and arg is not None:
        return own[f"{kind}:{arg}"]
    if kind == "link" and arg is not None:
        return f"{where.proxy_host}:{where.links[arg]}"
    if kind == "addr" and arg is not None:
        return where.addr(arg)
    return values[kind]


def _executable(name: str) -> str:
    """A catalogue component by name (with its install hint), else any program on PATH."""
    if any(c.name == name for c in components.CATALOGUE):
        return str(components.find(name))
    found = shutil.which(name)
    if found is None and not Path(name).is_file():
        raise MissingComponent(name, f"put {name} on PATH or give its full path in the topology")
    return found or name


class Deployment(Processes, Protocol):
    """A running topology, as the run loop and the faults see it, whichever deployer runs it."""

    @property
    def instances(self) -> list[Instance]:
        """Every replica, external ones included, in start order."""

    @property
    def processes(self) -> dict[str, ManagedProcess]:
        """The replicas running as processes of this host, by name (none in containers)."""

    def up(self, on_ready: OnReady = lambda _: None) -> None:
        """Start layer by layer, ``on_ready`` told of each replica once it answers; raises
        ComponentFailed (with its log tail) on the first that fails."""

    def down(self) -> None:
        """Stop every replica, last layer first. Idempotent: teardown may call it again."""

    def record(self) -> dict[str, dict[str, Any]]:
        """The journal's ``components`` entry of each replica the deployer itself accounts
        for (the processes of this host are recorded by the run, with its own)."""


class Service(Protocol):
    """One of the run's own services (Prometheus, Toxiproxy): a process of this host or a
    container on the run's network."""

    @property
    def port(self) -> int: ...

    @property
    def url(self) -> str: ...

    def start(self) -> None:
        """Start, without waiting for it to answer."""

    def wait_ready(self) -> None:
        """Wait until it answers; raise ComponentFailed if it does not in time."""

    def stop(self) -> None: ...

    @property
    def processes(self) -> dict[str, ManagedProcess]:
        """Its process of this host, by name (none for a container)."""

    def record(self) -> dict[str, dict[str, Any]]:
        """Its journal ``components`` entry, for what the run does not record as a process."""


class Planned:
    """A deployment's shared half: the planned layers, each started together once the one
    before answers, and stopped in reverse. A subclass says how one replica is launched,
    awaited and removed."""

    def __init__(self, layers: list[list[Instance]]) -> None:
        self.layers = layers
        self.processes: dict[str, ManagedProcess] = {}
        self.launched: set[str] = set()

    @property
    def instances(self) -> list[Instance]:
        return [i for layer in self.layers for i in layer]

    def instance(self, replica: str) -> Instance:
        return next(i for i in self.instances if i.name == replica)

    def up(self, on_ready: OnReady = lambda _: None) -> None:
        with ThreadPoolExecutor(max_workers=8) as pool:
            for layer in self.layers:
                owned = [i for i in layer if not i.external]
                self.launched.update(i.name for i in owned)  # before: a launch may fail halfway
                self.launch(owned, pool)
                futures = [pool.submit(self._ready, i, on_ready) for i in layer]
                for future in futures:
                    future.result()

    def _ready(self, instance: Instance, on_ready: OnReady) -> None:
        if instance.external:
            instance.ready.wait_external(instance.name, instance.ready_timeout_s)
        else:
            self.await_ready(instance)
        on_ready(instance)

    def down(self) -> None:
        with ThreadPoolExecutor(max_workers=8) as pool:
            for layer in reversed(self.layers):
                started = [i for i in layer if i.name in self.launched]
                list(pool.map(self.remove, started))

    def launch(self, layer: list[Instance], pool: ThreadPoolExecutor) -> None:
        """Start the layer's replicas, without waiting for them to answer."""
        raise NotImplementedError

    def await_ready(self, instance: Instance) -> None:
        """Wait until the replica answers; raise ComponentFailed if it does not in time."""
        raise NotImplementedError

    def remove(self, instance: Instance) -> None:
        """Stop the replica for good, keeping its log; one whose launch failed may have
        nothing to stop."""
        raise NotImplementedError

    def record(self) -> dict[str, dict[str, Any]]:
        return {}


class NullDeployment(Planned):
    """Runs nothing: each replica is "ready" at once, and every call is noted in ``calls``
    (``("up", name)``, ``("kill", name)``, ``("down", name)``, ...) for tests of what the run
    asks of a deployment and in what order. It claims nothing of any real deployer."""

    def __init__(self, layers: list[list[Instance]]) -> None:
        super().__init__(layers)
        self.calls: list[tuple[str, str]] = []

    def launch(self, layer: list[Instance], pool: ThreadPoolExecutor) -> None:
        self.calls.extend(("up", i.name) for i in layer)

    def await_ready(self, instance: Instance) -> None:
        pass

    def remove(self, instance: Instance) -> None:
        self.calls.append(("down", instance.name))

    def send_signal(self, replica: str, signum: int) -> None:
        self.calls.append((f"signal {signum}", replica))

    def kill(self, replica: str) -> None:
        self.calls.append(("kill", replica))

    def stop(self, replica: str) -> None:
        self.calls.append(("stop", replica))

    def start(self, replica: str) -> None:
        self.calls.append(("start", replica))

    def cut(self, replica: str, share: float = 1.0) -> None:
        self.calls.append(("cut", replica))

    def rejoin(self, replica: str) -> None:
        self.calls.append(("rejoin", replica))

    def limit(self, replica: str, cpus: float | None, memory: int | None) -> None:
        self.calls.append(("limit", replica))

    def unlimit(self, replica: str) -> None:
        self.calls.append(("unlimit", replica))

    def stress(self, replica: str, workers: int) -> None:
        self.calls.append(("stress", replica))

    def unstress(self, replica: str) -> None:
        self.calls.append(("unstress", replica))

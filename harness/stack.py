"""What a run stands on: a Prometheus, a Toxiproxy with a proxy per link, and the target's
deployment behind them, each started here and each undone by the run's teardown.

Prometheus starts first (its first scrape comes about 0.7 s after it starts, while the rest
starts); the target comes last, layer by layer. With the docker deployer the target's
replicas, Toxiproxy (and Prometheus, when asked) are containers on the run's own network,
and the container engine's share of the run is a ``ContainerEngine``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from rich.markup import escape

from harness import components
from harness.context import RunContext
from harness.deploy import containers, images
from harness.deploy.base import Deployment, Instance, Layout, Service, layout, plan
from harness.deploy.links import LinkAddress, LinkNetwork, ToxiproxyServer
from harness.deploy.local import LocalDeployment
from harness.journal import Outcome
from harness.judge import save_series
from harness.observe.prometheus import Prometheus, ScrapeTarget, arguments
from harness.observe.promql import PromQL
from harness.observe.traffic import LinkTraffic

Deployer = Callable[[list[list[Instance]]], Deployment]


def find_infrastructure() -> None:
    """Fail on a missing component before a run folder exists."""
    for name in ("toxiproxy-server", "prometheus"):
        components.find(name)


@dataclass(frozen=True)
class Standing:
    """What deploying leaves running: the target behind its links, watched by Prometheus."""

    prometheus: Service
    promql: PromQL
    network: LinkNetwork
    deployment: Deployment
    where: Layout
    scraped: int  # components Prometheus scrapes, the load aside
    load_port: int
    load_host: str  # where the load serves its metrics: where Prometheus reaches the host


def deploy(
    ctx: RunContext,
    teardown: ExitStack,
    prometheus_port: int | None = None,
    deployer: Deployer | None = None,
) -> Standing:
    """Prometheus, Toxiproxy with a proxy per link, then the target; each undone by teardown.

    ``deployer`` makes the deployment from the planned layers in place of the topology's own
    deployer (a ``NullDeployment``, to test the run without a target)."""
    experiment, topology, say = ctx.experiment, ctx.experiment.topology, ctx.say
    where = layout(topology, ctx.ports)
    engine = _engine(ctx, teardown) if topology.deployer == "docker" else None
    if engine is not None:
        where = containers.place(where, topology, engine.network, engine.proxy_host)
    ctx.layout = where
    layers = plan(
        topology,
        experiment.topology_file.parent,
        ctx.run_dir,
        where,
        images.PYTHON if engine is not None else None,
    )
    load_port, toxiproxy_port = ctx.ports.allocate(), ctx.ports.allocate()
    # The engine that runs Prometheus too, when asked (the loader ensures there is one then).
    observers = engine if topology.observers == "docker" else None
    load_host = observers.network.gateway if observers is not None else "127.0.0.1"
    scrape = [
        ScrapeTarget(i.component, i.metrics_port, i.metrics, {"instance_name": i.name}, i.host)
        for layer in layers
        for i in layer
        if i.metrics
    ]
    scrape.append(ScrapeTarget("load", load_port, "/metrics", {"instance_name": "load"}, load_host))
    for each in scrape:  # the dashboards' $target variable
        each.labels["target"] = topology.name

    read_from = topology.prometheus.url if topology.prometheus else None
    prometheus: Service
    if observers is not None:
        prometheus = observers.prometheus(ctx, scrape, read_from)
    else:
        port = prometheus_port or ctx.ports.allocate()
        prometheus = Prometheus(components.find("prometheus"), port, ctx.run_dir, scrape, read_from)
    ctx.services.append(prometheus)
    prometheus.start()
    teardown.callback(ctx.safely, "stop prometheus", prometheus.stop)
    promql = PromQL(prometheus.url)
    ctx.promql = promql
    # Runs once everything else has stopped, and before Prometheus does: even an aborted run
    # keeps its series for the report.
    teardown.callback(ctx.safely, "save series for the report", lambda: save_series(ctx, promql))

    network, traffic = _link_network(ctx, teardown, toxiproxy_port, engine, where.links)
    for link, port in where.links.items():
        network.create(
            LinkAddress(
                link, port, where.upstream(link), where.upstream_host(link), where.proxy_host
            )
        )
    traffic.start()
    teardown.callback(ctx.safely, "stop sampling the links' traffic", traffic.stop)
    say(f"toxiproxy: {len(where.links)} links behind proxies; prometheus at {prometheus.url}")

    if deployer is None:
        deployer = LocalDeployment if engine is None else engine.deployment(ctx.run_id)
    deployment = deployer(layers)
    ctx.deployment = deployment
    teardown.callback(ctx.safely, "stop components", deployment.down)
    t_deploy = time.time()
    deployment.up(
        lambda i: ctx.log.now("component.ready", i.name, Outcome.OK, t_deploy, port=i.port)
    )
    units = "processes" if engine is None else "containers"
    say(f"deployed {len(deployment.instances)} {units} of {escape(topology.name)}")
    prometheus.wait_ready()  # long since, as a rule: it started first
    ctx.log.now("observe.start", "prometheus", Outcome.OK, url=prometheus.url)
    scraped = len(scrape) - 1
    return Standing(prometheus, promql, network, deployment, where, scraped, load_port, load_host)


@dataclass(frozen=True)
class ContainerEngine:
    """The docker deployer's share of a run: the engine, the run's network and its images."""

    client: Any
    network: containers.RunNetwork
    images: dict[str, str]  # component → image, and "toxiproxy"
    proxy_host: str  # Toxiproxy's address on the network
    binds: tuple[str, ...]

    def deployment(self, run_id: str) -> Deployer:
        def deploy(layers: list[list[Instance]]) -> Deployment:
            return containers.DockerDeployment(
                self.client, self.network, layers, self.images, run_id, self.binds
            )

        return deploy

    def toxiproxy(self, ctx: RunContext) -> containers.ServiceContainer:
        """The run's Toxiproxy as a container; its binary is at /toxiproxy, as in the public
        image."""
        port = containers.TOXIPROXY_API_PORT
        argv = ["/toxiproxy", "-host", "0.0.0.0", "-port", str(port), "-proxy-metrics"]
        return self._service(ctx, "toxiproxy", argv, (self.proxy_host, port), "/version")

    def prometheus(
        self, ctx: RunContext, scrape: list[ScrapeTarget], read_from: str | None
    ) -> containers.ServiceContainer:
        """The run's Prometheus as a container; its config and TSDB are in the run folder,
        mounted at its own path."""
        port = containers.PROMETHEUS_PORT
        argv = ["/bin/prometheus", *arguments(ctx.run_dir, scrape, read_from, f"0.0.0.0:{port}")]
        return self._service(
            ctx, "prometheus", argv, (self.network.address(), port), "/-/ready", self.binds
        )

    def _service(
        self,
        ctx: RunContext,
        name: str,
        argv: list[str],
        address: tuple[str, int],
        ready_path: str,
        binds: tuple[str, ...] = (),
    ) -> containers.ServiceContainer:
        host, port = address
        return containers.ServiceContainer(
            self.client, name, self.images[name], argv, (self.network, host, port), ctx.run_id,
            ctx.folder.log(name), ready_path, binds,
        )  # fmt: skip


def _engine(ctx: RunContext, teardown: ExitStack) -> ContainerEngine:
    """The engine, the images every container needs (built once, then cached) and the run's
    network, removed last at teardown."""
    experiment, topology, say = ctx.experiment, ctx.experiment.topology, ctx.say
    client = containers.connect()
    wanted = {
        name: images.image_for(client, name, spec, say)
        for name, spec in topology.components.items()
        if spec.external is None
    }
    wanted["toxiproxy"] = images.ensure(client, "toxiproxy", say)
    if topology.observers == "docker":
        wanted["prometheus"] = images.ensure(client, "prometheus", say)
    network = containers.RunNetwork(client, ctx.run_id)
    teardown.callback(ctx.safely, "remove the run's network", network.remove)
    # The run folder (data, ledger, logs) and the target's folder (its programs) are the same
    # paths inside every container as outside.
    topology_dir = experiment.topology_file.parent.resolve()
    binds = (
        f"{ctx.run_dir.resolve()}:{ctx.run_dir.resolve()}:rw",
        f"{topology_dir}:{topology_dir}:ro",
    )
    return ContainerEngine(client, network, wanted, network.address(), binds)


def _link_network(
    ctx: RunContext,
    teardown: ExitStack,
    port: int,
    engine: ContainerEngine | None,
    ports: dict[str, int],
) -> tuple[LinkNetwork, LinkTraffic]:
    """The run's own Toxiproxy (a process, or a container on the run's network), reset at
    teardown; or the topology's existing one, where the run's proxies carry its id and teardown
    removes only them. With it, the sampler of the bytes through each link."""
    existing = ctx.experiment.topology.toxiproxy
    path = ctx.folder.traffic
    if existing is not None:
        host, api_port = existing.address
        network = LinkNetwork(api_port, host, prefix=f"{ctx.run_id}.")
        teardown.callback(ctx.safely, "remove the run's proxies", network.remove)
        remote = None if host in ("127.0.0.1", "localhost") else (
            f"the open connections of a Toxiproxy on another host ({host}) cannot be read"
        )  # fmt: skip
        return network, LinkTraffic(network.url, ports, path, network.prefix, open_unseen=remote)
    toxiproxy: Service
    if engine is None:
        log = ctx.folder.log("toxiproxy")
        toxiproxy = ToxiproxyServer(components.find("toxiproxy-server"), port, log)
    else:
        toxiproxy = engine.toxiproxy(ctx)
    ctx.services.append(toxiproxy)
    toxiproxy.start()
    toxiproxy.wait_ready()
    teardown.callback(ctx.safely, "stop toxiproxy", toxiproxy.stop)
    netns = toxiproxy.pid() if isinstance(toxiproxy, containers.ServiceContainer) else None
    host = engine.proxy_host if engine else "127.0.0.1"
    network = LinkNetwork(toxiproxy.port, host, namespace=netns)
    teardown.callback(ctx.safely, "reset toxiproxy", network.reset)
    return network, LinkTraffic(network.url, ports, path, netns=netns)

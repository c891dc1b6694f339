"""The run loop: deploy → observe → load and faults → drain → judge → report, and teardown always.

Everything started is registered on an ExitStack the moment it starts, so teardown runs in
reverse order on success, on failure, on an exception and on SIGINT/SIGTERM. A second signal
during teardown is recorded and ignored: half a teardown is how processes get left behind.
"""

from __future__ import annotations

import contextlib
import json
import random
import signal
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from harness import components, ledger_sources, secrets
from harness.abort import AbortWatch
from harness.checks import CheckResult, Evidence, evaluate, steady_state_checks
from harness.context import RunContext
from harness.deploy import docker, images, local
from harness.deploy.links import LinkAddress, LinkNetwork, ToxiproxyServer
from harness.errors import Aborted, HarnessError, Interrupted
from harness.faults import FaultTools
from harness.journal import Event, Outcome, write_json
from harness.ledger import summarize
from harness.ledger_io import LedgerUnreadable, read_processed, read_sends
from harness.load import LoadPlan, LoadProcess, RemoteWorkers, load_address
from harness.observe.footprint import HostSpan, own_cpu_s
from harness.observe.gaps import (
    IDENTIFIER,
    WHY_SATURATED,
    Gap,
    find_gaps,
    meant_down,
    saturation_gaps,
)
from harness.observe.live import LiveNumbers
from harness.observe.prometheus import Prometheus, ScrapeTarget, arguments
from harness.observe.promql import PromQL, PromQLError
from harness.report import charts, html, junit, panels
from harness.report.console import Plan, Progress
from harness.spec import Experiment, RecoveryCheck
from harness.timeline import FaultStep, Scheduler, expand, plan
from harness.units import Condition
from harness.verdict import Verdict, merge

if TYPE_CHECKING:
    from grafana_client.api import GrafanaApi

    from harness.report.grafana import Annotator

FIRST_SCRAPE_TIMEOUT_S = 20.0
# A fault earlier than this after load start might find no scrape yet to measure the steady
# state before it, so the load first waits until every component has been scraped once.
FIRST_SCRAPE_MARGIN_S = 8.0
POLL_S = 0.05
# A replica a fault restarted is scraped again within a scrape or two of its heal.
RESTART_GRACE_S = 3.0
# A busy machine delays a scrape by a second or two, never by this much.
SCRAPE_AFTER_DRAIN_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    verdict: Verdict
    journal: dict[str, Any]
    error: HarnessError | None = None


def run(
    experiment: Experiment,
    runs_dir: Path = Path("runs"),
    seed: int | None = None,
    progress: Progress | None = None,
    overrides: tuple[str, ...] = (),
    remote_load_workers: RemoteWorkers | None = None,
    grafana_api: GrafanaApi | None = None,
) -> RunResult:
    """Run one experiment end to end; the verdict and journal come back even when it aborts.

    ``remote_load_workers``: Locust workers someone starts elsewhere with ``harness load-worker``;
    the load waits for them (and for ``load.workers`` local ones) before it starts.
    ``grafana_api``: a Grafana to annotate with the run's faults and phases as they happen.
    """
    progress = progress or Progress()
    say = progress.say
    _find_infrastructure()
    ctx = RunContext.open(
        experiment, runs_dir, seed if seed is not None else random.randrange(2**31)
    )
    ctx.remote_load_workers = remote_load_workers
    annotator = _annotator(grafana_api, ctx, say)
    say(
        f"run {ctx.run_id}: experiment {escape(experiment.name)} on target "
        f"{escape(experiment.topology.name)}, "
        f"seed {ctx.seed} (--seed {ctx.seed} replays its random choices)"
    )
    error: HarnessError | None = None
    checks: list[CheckResult] = []
    with _signals_raise() as guard:
        try:
            with ExitStack() as teardown:
                teardown.callback(ctx.torn_down)  # registered first, so it runs last
                guard.teardown = teardown
                try:
                    checks = _execute(ctx, teardown, progress)
                finally:
                    ctx.teardown_from = time.time()
                guard.quiet()
                say("tearing down")
        except HarnessError as exc:
            error = exc
            say(f"[red]{escape(str(exc))}[/red]")
        except Exception as exc:  # a bug of the harness's: the run still gets its verdict
            error = _internal_error(ctx.run_dir, exc)
            say(f"[red]{escape(str(error))}[/red]")
    if annotator is not None:
        annotator.close()
    journal = _journal(ctx, checks, error, overrides)
    write_json(ctx.run_dir / "journal.json", journal)
    junit.write(ctx.run_dir / "junit.xml", [junit.Suite.of(journal)])
    html.write(ctx.run_dir, journal, ctx.charts)
    ctx.log.close()
    return RunResult(ctx.run_dir, Verdict(journal["verdict"]), journal, error)


def _internal_error(run_dir: Path, exc: Exception) -> HarnessError:
    """An error the harness did not expect, as the reason of an inconclusive run; its
    traceback is kept in the run folder for a bug report."""
    path = run_dir / "harness-error.txt"
    path.write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
    return HarnessError(
        f"the harness failed ({type(exc).__name__}: {exc}); the run is torn down, and the "
        f"traceback is in {path}"
    )


def stand(
    experiment: Experiment,
    runs_dir: Path,
    prometheus_port: int,
    ready: Callable[[Standing, Path], None],
    progress: Progress | None = None,
) -> Path:
    """Deploy the experiment's target, its links and a Prometheus, and keep them until SIGTERM
    or Ctrl-C: no load, no fault. ``ready`` is told once everything answers."""
    say = (progress or Progress()).say
    _find_infrastructure()
    ctx = RunContext.open(experiment, runs_dir, 0)
    # The first signal ends the wait; teardown then runs with signals ignored.
    with _signals_raise() as guard, contextlib.suppress(Interrupted), ExitStack() as teardown:
        teardown.callback(ctx.torn_down)
        guard.teardown = teardown
        ready(_deploy(ctx, teardown, say, prometheus_port), ctx.run_dir)
        while True:
            time.sleep(1)
    ctx.log.close()
    return ctx.run_dir


def _find_infrastructure() -> None:
    """Fail on a missing component before a run folder exists."""
    for name in ("toxiproxy-server", "prometheus"):
        components.find(name)


def _annotator(
    api: GrafanaApi | None, ctx: RunContext, say: Callable[[str], None]
) -> Annotator | None:
    if api is None:
        return None
    from harness.report.grafana import Annotator  # grafana-client takes 0.15 s to import

    topology = ctx.experiment.topology
    run = {"run_id": ctx.run_id, "experiment": ctx.experiment.name, "target": topology.name}
    annotator = Annotator(api, run, lambda text: say(f"[yellow]{escape(text)}[/yellow]"))
    ctx.log.listeners.append(annotator)
    say(f"annotating Grafana at {escape(secrets.url(str(api.url)))}")
    return annotator


@dataclass(frozen=True)
class Standing:
    """What deploying leaves running: the target behind its links, watched by Prometheus."""

    prometheus: Prometheus | docker.ServiceContainer
    promql: PromQL
    network: LinkNetwork
    deployment: local.LocalDeployment | docker.DockerDeployment
    where: local.Layout
    scraped: int  # components Prometheus scrapes, the load aside
    load_port: int
    load_host: str  # where the load serves its metrics: where Prometheus reaches the host


def _deploy(
    ctx: RunContext,
    teardown: ExitStack,
    say: Callable[[str], None],
    prometheus_port: int | None = None,
) -> Standing:
    """Prometheus, Toxiproxy with a proxy per link, then the target; each undone by teardown."""
    experiment, topology = ctx.experiment, ctx.experiment.topology
    where = local.layout(topology, ctx.ports)
    engine = _engine(ctx, teardown, say) if topology.deployer == "docker" else None
    if engine is not None:
        where = docker.place(where, topology, engine.network, engine.proxy_host)
    ctx.layout = where
    layers = local.plan(
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

    # Prometheus first: its first scrape comes about 0.7 s after start, while the rest starts.
    read_from = topology.prometheus.url if topology.prometheus else None
    prometheus: Prometheus | docker.ServiceContainer
    if observers is not None:
        prometheus = observers.prometheus(ctx, scrape, read_from)
        ctx.containers["prometheus"] = prometheus
    else:
        port = prometheus_port or ctx.ports.allocate()
        prometheus = Prometheus(components.find("prometheus"), port, ctx.run_dir, scrape, read_from)
        ctx.infrastructure["prometheus"] = prometheus.process
    prometheus.start()
    teardown.callback(ctx.safely, "stop prometheus", prometheus.stop)
    promql = PromQL(prometheus.url)
    ctx.promql = promql
    # Runs once everything else has stopped, and before Prometheus does: even an aborted run
    # keeps its series for the report.
    teardown.callback(ctx.safely, "save series for the report", lambda: _save_series(ctx, promql))

    network = _link_network(ctx, teardown, toxiproxy_port, engine)
    for link, port in where.links.items():
        network.create(
            LinkAddress(
                link, port, where.upstream(link), where.upstream_host(link), where.proxy_host
            )
        )
    say(f"toxiproxy: {len(where.links)} links behind proxies; prometheus at {prometheus.url}")

    deployment: local.LocalDeployment | docker.DockerDeployment
    if engine is None:
        deployment = local.LocalDeployment(layers)
    else:
        deployment = engine.deployment(layers, ctx.run_id)
    ctx.deployment = deployment
    teardown.callback(ctx.safely, "stop components", deployment.down)
    t_deploy = time.time()
    deployment.up(
        lambda i: ctx.log.now("component.ready", i.name, Outcome.OK, t_deploy, port=i.port)
    )
    say(f"deployed {len(deployment.instances)} {_units(engine)} of {escape(topology.name)}")
    prometheus.wait_ready()  # long since, as a rule: it started first
    ctx.log.now("observe.start", "prometheus", Outcome.OK, url=prometheus.url)
    scraped = len(scrape) - 1
    return Standing(prometheus, promql, network, deployment, where, scraped, load_port, load_host)


@dataclass(frozen=True)
class Engine:
    """The docker deployer's share of a run: the engine, the run's network and its images."""

    client: Any
    network: docker.RunNetwork
    images: dict[str, str]  # component → image, and "toxiproxy"
    proxy_host: str  # Toxiproxy's address on the network
    binds: tuple[str, ...]

    def deployment(
        self, layers: list[list[local.Instance]], run_id: str
    ) -> docker.DockerDeployment:
        return docker.DockerDeployment(
            self.client, self.network, layers, self.images, run_id, self.binds
        )

    def toxiproxy(self, ctx: RunContext) -> docker.ServiceContainer:
        """The run's Toxiproxy as a container; its binary is at /toxiproxy, as in the public
        image."""
        port = docker.TOXIPROXY_API_PORT
        return self._service(
            ctx, "toxiproxy", ["/toxiproxy", "-host", "0.0.0.0", "-port", str(port)],
            (self.proxy_host, port), "/version",
        )  # fmt: skip

    def prometheus(
        self, ctx: RunContext, scrape: list[ScrapeTarget], read_from: str | None
    ) -> docker.ServiceContainer:
        """The run's Prometheus as a container; its config and TSDB are in the run folder,
        mounted at its own path."""
        port = docker.PROMETHEUS_PORT
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
    ) -> docker.ServiceContainer:
        host, port = address
        return docker.ServiceContainer(
            self.client, name, self.images[name], argv, (self.network, host, port), ctx.run_id,
            ctx.run_dir / "logs" / f"{name}.log", ready_path, binds,
        )  # fmt: skip


def _engine(ctx: RunContext, teardown: ExitStack, say: Callable[[str], None]) -> Engine:
    """The engine, the images every container needs (built once, then cached) and the run's
    network, removed last at teardown."""
    experiment, topology = ctx.experiment, ctx.experiment.topology
    client = docker.connect()
    wanted = {
        name: docker.image_for(client, name, spec, say)
        for name, spec in topology.components.items()
        if spec.external is None
    }
    wanted["toxiproxy"] = images.ensure(client, "toxiproxy", say)
    if topology.observers == "docker":
        wanted["prometheus"] = images.ensure(client, "prometheus", say)
    network = docker.RunNetwork(client, ctx.run_id)
    teardown.callback(ctx.safely, "remove the run's network", network.remove)
    # The run folder (data, ledger, logs) and the target's folder (its programs) are the same
    # paths inside every container as outside.
    topology_dir = experiment.topology_file.parent.resolve()
    binds = (
        f"{ctx.run_dir.resolve()}:{ctx.run_dir.resolve()}:rw",
        f"{topology_dir}:{topology_dir}:ro",
    )
    return Engine(client, network, wanted, network.address(), binds)


def _units(engine: Engine | None) -> str:
    return "processes" if engine is None else "containers"


def _link_network(
    ctx: RunContext, teardown: ExitStack, port: int, engine: Engine | None
) -> LinkNetwork:
    """The run's own Toxiproxy (a process, or a container on the run's network), reset at
    teardown; or the topology's existing one, where the run's proxies carry its id and teardown
    removes only them."""
    existing = ctx.experiment.topology.toxiproxy
    if existing is not None:
        host, api_port = existing.address
        network = LinkNetwork(api_port, host, prefix=f"{ctx.run_id}.")
        teardown.callback(ctx.safely, "remove the run's proxies", network.remove)
        return network
    toxiproxy: ToxiproxyServer | docker.ServiceContainer
    if engine is None:
        log = ctx.run_dir / "logs" / "toxiproxy.log"
        toxiproxy = ToxiproxyServer(components.find("toxiproxy-server"), port, log)
    else:
        toxiproxy = engine.toxiproxy(ctx)
    toxiproxy.start()
    if isinstance(toxiproxy, ToxiproxyServer):
        ctx.infrastructure["toxiproxy"] = toxiproxy.process
    else:
        toxiproxy.wait_ready()
        ctx.containers["toxiproxy"] = toxiproxy
    teardown.callback(ctx.safely, "stop toxiproxy", toxiproxy.stop)
    network = LinkNetwork(toxiproxy.port, engine.proxy_host if engine else "127.0.0.1")
    teardown.callback(ctx.safely, "reset toxiproxy", network.reset)
    return network


def _execute(ctx: RunContext, teardown: ExitStack, progress: Progress) -> list[CheckResult]:
    say = progress.say
    experiment, topology = ctx.experiment, ctx.experiment.topology
    standing = _deploy(ctx, teardown, say)
    promql = standing.promql

    steps = expand(experiment, random.Random(ctx.seed))
    if any(step.at_s < FIRST_SCRAPE_MARGIN_S for step in steps):
        _await_first_scrape(promql, standing.scraped, ctx, say)

    load_spec = experiment.spec.load
    target = standing.where.ports[topology.load.component][0]
    host, publish = load_address(
        topology.load, topology.queue, target, standing.where.hosts[topology.load.component][0]
    )
    load = LoadProcess(
        LoadPlan(
            host=host,
            path=topology.load.path,
            body=topology.load.body,
            content_type=topology.load.content_type,
            publish=publish,
            rate=load_spec.rate,
            duration_s=load_spec.duration,
            metrics_port=standing.load_port,
            metrics_host=standing.load_host,
            ledger_path=ctx.run_dir / "ledger" / "sent.jsonl",
            log_path=ctx.run_dir / "logs" / "load.log",
            users=load_spec.users,
            seed=ctx.seed,
            workers=load_spec.workers,
            master_port=ctx.ports.allocate() if load_spec.workers else None,
            remote=ctx.remote_load_workers,
        )
    )
    tools = FaultTools(standing.network, standing.deployment)
    scheduler = Scheduler(steps, tools, ctx.log, ctx.state)
    ctx.infrastructure.update((process.name, process) for process in load.processes)
    teardown.callback(ctx.safely, "stop load", load.stop)
    teardown.callback(ctx.safely, "heal faults", scheduler.heal_all)
    if remote := ctx.remote_load_workers:
        say(
            f"waiting for {remote.count} load worker(s): run `harness load-worker --master "
            f"{remote.host}:{remote.port}` where they should run"
        )
    t_invoke = time.time()
    load.start()  # returns once users send: the run's clock starts with the load
    scheduler.start()
    t_load = time.time()
    ctx.mark("start", t_load)
    ctx.mark("load.start", t_load)
    ctx.log.now(
        "load.start",
        "load",
        Outcome.OK,
        t_invoke,
        rate=load_spec.rate,
        duration_s=load_spec.duration,
    )
    say(f"load: {load_spec.rate:g} msg/s for {load_spec.duration:g}s")
    numbers = LiveNumbers(promql.base_url, topology.queue)
    numbers.start()
    teardown.callback(numbers.stop)
    teardown.callback(progress.end)
    progress.begin(_console_plan(steps, load_spec.duration, numbers))
    spec = experiment.spec
    watch = AbortWatch(spec.abort_if, promql, time.monotonic(), spec.time_limit_s)
    try:
        _drive(ctx, scheduler, load, watch, progress)
        progress.enter("drain")
        _drain(ctx, promql, topology.drained, spec.drain, watch, progress)
        progress.end()
    except Aborted as exc:
        ctx.log.now("abort", "run", Outcome.INFO, reason=exc.reason)
        say(f"[magenta]{escape(str(exc))}; healing every fault and stopping the load[/magenta]")
        raise
    return _judge(ctx, promql, say)


def _console_plan(steps: list[FaultStep], duration_s: float, numbers: LiveNumbers) -> Plan:
    events = [
        (item.t_s, f"{item.action.value} {item.step.label} ({item.step.kind})")
        for item in plan(steps)
    ]
    events.append((duration_s, "load ends"))
    return Plan(duration_s, tuple(sorted(events)), numbers.values)


def _await_first_scrape(
    promql: PromQL, targets: int, ctx: RunContext, say: Callable[[str], None]
) -> None:
    """Wait until every component has been scraped once, so steady state can be measured."""
    t_invoke = time.time()
    deadline = time.monotonic() + FIRST_SCRAPE_TIMEOUT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(PromQLError):
            samples = promql.instant('count(up{job!="load"} == 1)')
            if samples and samples[0].value >= targets:
                ctx.log.now("observe.ready", "prometheus", Outcome.OK, t_invoke, targets=targets)
                return
        time.sleep(0.2)
    ctx.log.now("observe.ready", "prometheus", Outcome.FAIL, t_invoke, targets=targets)
    say("[yellow]prometheus has not scraped every component yet; checks may lack data[/yellow]")


def _drive(
    ctx: RunContext,
    scheduler: Scheduler,
    load: LoadProcess,
    watch: AbortWatch,
    progress: Progress,
) -> None:
    """Apply and heal faults on time until the load is over and every fault is healed."""
    say = progress.say
    seen = len(ctx.log.events)
    load_code: int | None = None
    while True:
        watch.check()
        scheduler.run_due()
        _sample(ctx, progress)
        for event in ctx.log.events[seen:]:
            if event.kind.startswith("fault."):
                ctx.note_fault(event)
                say(
                    f"{event.kind} {event.value.get('fault')} on {escape(event.target)}: "
                    f"{event.outcome.value}"
                )
        seen = len(ctx.log.events)
        if load_code is None:
            load_code = load.wait(0)
            if load_code is not None:
                ctx.mark("load.end", time.time())
                outcome = Outcome.OK if load_code == 0 else Outcome.FAIL
                ctx.log.now("load.end", "load", outcome, exit_code=load_code)
                say(f"load finished (exit {load_code})")
                if load_code != 0:
                    ctx.load_failure = (
                        f"the load generator (Locust) exited with code {load_code}; "
                        "see logs/load.log"
                    )
        if load_code is not None and scheduler.next_due() is None:
            return
        due = scheduler.next_due()
        pause = POLL_S if due is None else min(POLL_S, max(0.0, due - time.monotonic()))
        time.sleep(pause)


def _drain(
    ctx: RunContext,
    promql: PromQL,
    drained: Condition,
    limit_s: float,
    watch: AbortWatch,
    progress: Progress,
) -> None:
    """Wait for the backlog to empty (at most ``limit_s``); the run's end is when it did."""
    say = progress.say
    t_invoke = time.time()
    deadline = time.monotonic() + limit_s
    outcome = Outcome.FAIL
    while time.monotonic() < deadline:
        watch.check()
        _sample(ctx, progress)
        with contextlib.suppress(PromQLError):
            samples = promql.instant(drained.expr)
            if samples and all(drained.expectation.holds(s.value) for s in samples):
                outcome = Outcome.OK
                break
        time.sleep(0.25)
    _await_recoveries(ctx, promql, watch, progress)
    # One more scrape as before (a recovery still under way gets that long), and then until
    # every component's last scrape is after the drain.
    time.sleep(1.2)
    _await_scrape_after(promql, time.time())
    ctx.drained = outcome is Outcome.OK
    ctx.mark("end", time.time())
    ctx.log.now("drain", "target", outcome, t_invoke, condition=str(drained))
    say("drained" if outcome is Outcome.OK else f"[yellow]not drained after {limit_s:g}s[/yellow]")


def _await_recoveries(
    ctx: RunContext, promql: PromQL, watch: AbortWatch, progress: Progress
) -> None:
    """Keep the run going while a recovery check's condition is false and its window open.

    The drain's condition need not cover what such a check watches (notifications still being
    delivered, a lag still shrinking), and a run that ended then would judge a condition on its
    way back as never recovered. Waiting for every window to close instead would add the whole
    ``within`` to most runs: a condition that holds ends the wait for its check.
    """
    lacks = set(ctx.experiment.topology.lacks)
    pending = {
        check.name: (check, ctx.moments[check.after.anchor] + check.after.offset_s + check.within)
        for check in ctx.experiment.spec.checks
        if isinstance(check, RecoveryCheck)
        and check.after.anchor in ctx.moments
        and not lacks & set(IDENTIFIER.findall(check.recovers.expr))  # not applicable
    }
    while pending:
        for name, (check, closes) in list(pending.items()):
            if time.time() >= closes:
                del pending[name]
                continue
            with contextlib.suppress(PromQLError):
                samples = promql.instant(check.recovers.expr)
                if samples and all(check.recovers.expectation.holds(s.value) for s in samples):
                    del pending[name]
        if pending:
            watch.check()
            _sample(ctx, progress)
            time.sleep(0.5)


def _sample(ctx: RunContext, progress: Progress) -> None:
    """Read the processes' and the host's CPU, say once when the host's is saturated (the
    verdict will say so too), and let the console tick."""
    ctx.footprint.sample()
    if (span := ctx.footprint.host.newly_saturated()) is not None:
        progress.say(
            f"[yellow]the host's CPU has been saturated for {span.end - span.start:.0f}s "
            f"({span.cores_busy}): timing checks over that time will say so[/yellow]"
        )
    progress.tick()


def _await_scrape_after(promql: PromQL, t: float) -> None:
    """Wait until every component has been scraped after ``t``, so that the last samples
    before ``end`` show the state at ``t``: each target is scraped at its own offset in the
    interval, later when the machine is busy, and a counter one scrape behind reads as work
    still owed."""
    deadline = time.monotonic() + SCRAPE_AFTER_DRAIN_TIMEOUT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(PromQLError):
            samples = promql.instant('min(timestamp(up{job!="load",instance_name!=""}))')
            if samples and samples[0].value > t:
                return
        time.sleep(0.2)


def _read_ledger_source(ctx: RunContext, say: Callable[[str], None]) -> None:
    """Write the processed side of the ledger from the topology's source, if it names one: one
    line per processing, as the reference sink writes it, so everything after reads one format.
    A source that cannot be read leaves no ledger, and the ledger checks say why."""
    topology = ctx.experiment.topology
    if topology.ledger is None or ctx.layout is None:
        return
    t_invoke = time.time()
    folder = ctx.experiment.topology_file.parent
    filled = topology.ledger.model_copy(
        update={
            field: local.fill_outside(getattr(topology.ledger, field), folder, ctx.run_dir,
                                      ctx.layout)
            for field in ("url", "path")
            if hasattr(topology.ledger, field)
        }
    )  # fmt: skip
    path = ctx.run_dir / "ledger" / "processed.jsonl"
    try:
        counts = ledger_sources.read(filled)
    except ledger_sources.LedgerSourceError as exc:
        ctx.ledger_problem = str(exc)
        ctx.log.now("ledger.read", "ledger", Outcome.FAIL, t_invoke, error=str(exc))
        say(f"[yellow]ledger not read: {escape(str(exc))}[/yellow]")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for message_id, times in counts.items():
            line = json.dumps({"id": message_id, "source": filled.source}) + "\n"
            out.write(line * times)
    ctx.log.now(
        "ledger.read", "ledger", Outcome.OK, t_invoke, source=ledger_sources.describe(filled),
        ids=len(counts), processings=sum(counts.values()),
    )  # fmt: skip


def _judge(ctx: RunContext, promql: PromQL, say: Callable[[str], None]) -> list[CheckResult]:
    ctx.footprint.sample(force=True)  # the last reading before teardown stops everything
    spec = ctx.experiment.spec
    ledger_dir = ctx.run_dir / "ledger"
    _read_ledger_source(ctx, say)
    if ctx.ledger_problem is None:  # else an empty processed side would read as all lost
        try:
            sends = read_sends(ledger_dir / "sent.jsonl")
            ctx.ledger = summarize(sends, read_processed(ledger_dir / "processed.jsonl"))
        except LedgerUnreadable as exc:
            ctx.ledger_problem = f"the ledger cannot be read: {exc}"
            say(f"[yellow]{escape(ctx.ledger_problem)}[/yellow]")
    gaps = _scrape_gaps(ctx, promql) + _saturation(ctx, promql, say)
    evidence = Evidence(
        promql,
        dict(ctx.moments),
        ctx.ledger,
        ctx.drained,
        gaps,
        ctx.experiment.topology.lacks,
        ctx.ledger_problem,
        _host_saturation(ctx, say),
    )
    checks = [c for _, c in steady_state_checks(spec.steady_state, bool(ctx.experiment.faults))]
    return [evaluate(check, evidence) for check in [*checks, *spec.checks]]


def _save_series(ctx: RunContext, promql: PromQL) -> None:
    """The key series of the run, from the load's start (less a lead) to the drain's end."""
    start = ctx.moments.get("load.start")
    if start is None:
        return
    topology = ctx.experiment.topology
    end = ctx.moments.get("end", time.time())
    ctx.charts = charts.fetch(
        promql, panels.for_target(topology.name), topology.name, topology.queue,
        start - charts.LEAD_S, end,
    )  # fmt: skip
    charts.save(ctx.run_dir, ctx.charts)


def _scrape_gaps(ctx: RunContext, promql: PromQL) -> list[Gap]:
    """Holes in the metrics of a target no fault took down; each is journaled."""
    try:
        excused = meant_down(ctx.log.events, ctx.moments, RESTART_GRACE_S)
        gaps = find_gaps(promql, ctx.moments["load.start"], ctx.moments["end"], excused)
    except PromQLError:
        return []  # Prometheus itself is gone: every check that needs it is inconclusive anyway
    for gap in gaps:
        metrics = {"metrics": sorted(gap.metrics)}
        ctx.log.record(
            Event("observe.gap", gap.instance, gap.start, gap.end, Outcome.FAIL, metrics)
        )
    return gaps


def _saturation(ctx: RunContext, promql: PromQL, say: Callable[[str], None]) -> list[Gap]:
    """Stretches when Locust saturated its core: the checks on its latency are inconclusive."""
    spans = ctx.footprint.saturated
    if not spans:
        return []
    seconds = sum(end - start for start, end in spans)
    say(f"[yellow]Locust {WHY_SATURATED} for {seconds:.0f}s[/yellow]")
    for start, end in spans:
        ctx.log.record(Event("load.saturated", "load", start, end, Outcome.FAIL, {}))
    try:
        return saturation_gaps(promql, spans, ctx.moments["load.start"], ctx.moments["end"])
    except PromQLError:
        return []


def _host_saturation(ctx: RunContext, say: Callable[[str], None]) -> list[HostSpan]:
    """Stretches when the host's whole CPU was busy: the timing checks over them say so."""
    spans = ctx.footprint.host.spans
    if not spans:
        return []
    seconds = sum(span.end - span.start for span in spans)
    say(
        f"[yellow]the host's CPU was saturated for {seconds:.0f}s ({spans[0].cores_busy}): "
        "timing checks over that time say so[/yellow]"
    )
    for span in spans:
        value = {"busy": span.busy, "cores": span.cores}
        ctx.log.record(Event("host.saturated", "host", span.start, span.end, Outcome.FAIL, value))
    return spans


def _journal(
    ctx: RunContext,
    checks: list[CheckResult],
    error: HarnessError | None,
    overrides: tuple[str, ...],
) -> dict[str, Any]:
    ended = time.time()
    if isinstance(error, Interrupted | Aborted):
        verdict, reason = Verdict.ABORTED, str(error)
    elif error is not None:
        verdict, reason = Verdict.INCONCLUSIVE, str(error)
    elif ctx.load_failure is not None:  # fail closed: every check depends on the load
        verdict, reason = Verdict.INCONCLUSIVE, ctx.load_failure
    else:
        verdict, reason = merge(c.verdict for c in checks), None
    experiment = ctx.experiment
    return {
        "run_id": ctx.run_id,
        "run_dir": str(ctx.run_dir),
        "experiment": experiment.name,
        "experiment_file": str(experiment.file),
        "target": experiment.topology.name,
        "deployer": experiment.topology.deployer,
        "observers": experiment.topology.observers,
        "target_file": str(experiment.topology_file),
        "overrides": [secrets.assignment(o) for o in overrides],
        "seed": ctx.seed,
        "started_at": _iso(ctx.started_at),
        "ended_at": _iso(ended),
        "duration_s": round(ended - ctx.started_at, 3),
        "verdict": verdict.value,
        "reason": None if reason is None else secrets.text(reason),
        "checks": [c.to_json() for c in checks],
        "moments": {k: round(v, 3) for k, v in ctx.moments.items()},
        "timeline": [e.to_json() for e in ctx.log.events],
        "ledger": ctx.ledger.to_json() if ctx.ledger else None,
        "load": experiment.spec.load.model_dump(mode="json"),
        "components": ctx.component_record(),
        "harness_cpu_s": round(own_cpu_s(), 3),
        "cleanup_errors": ctx.cleanup_errors,
    }


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")


class _SignalGuard:
    """Turns the first SIGINT/SIGTERM into ``Interrupted``; during teardown, signals wait."""

    def __init__(self) -> None:
        self.raising = True
        self.teardown: ExitStack | None = None
        self.received: list[int] = []

    def handle(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)
        if self.raising:
            self.raising = False
            raise Interrupted(signum)

    def quiet(self) -> None:
        self.raising = False


@contextlib.contextmanager
def _signals_raise() -> Iterator[_SignalGuard]:
    guard = _SignalGuard()
    previous = {s: signal.signal(s, guard.handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield guard
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

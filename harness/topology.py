"""A target file's model: the system the harness deploys (its components, their commands,
readiness and ports, the links between them), how the load enters it, where its processed
ledger is read, and what of Toxiproxy or Prometheus already runs."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    WithJsonSchema,
    model_validator,
)

from harness.ledger.sources import KafkaOffsets, LedgerSource, PlaceRole, PositionSource
from harness.model import Model
from harness.units import (
    Condition,
    ConditionField,
    Duration,
)


def _scalar_text(value: Any) -> Any:
    """Environment values are text; YAML reads ``5`` as a number, so take numbers too.

    YAML also reads ``no`` and ``true`` as booleans, and no spelling of one is right for every
    program, so a boolean is refused with the fix, as Docker Compose does.
    """
    if isinstance(value, bool):
        raise ValueError(
            f"YAML read this as a boolean ({value}); quote the text you mean, e.g. 'no'"
        )
    if isinstance(value, int | float):
        return str(value)
    return value


_TEXT_OR_NUMBER = WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "number"}]})
EnvValue = Annotated[str, BeforeValidator(_scalar_text), _TEXT_OR_NUMBER]
Arg = Annotated[str, BeforeValidator(_scalar_text), _TEXT_OR_NUMBER]
LINK_PATTERN = r"^[A-Za-z][\w-]*->[A-Za-z][\w-]*$"
NAME_PATTERN = r"^[A-Za-z][\w-]*$"
HOST_PORT_PATTERN = r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]*):([1-9]\d{0,4})$"
PLACEHOLDER = re.compile(r"\{([a-z_]+)(?::([^{}]+))?\}")
SIMPLE_PLACEHOLDERS = {
    "port",
    "bind",
    "python",
    "dir",
    "data",
    "run",
    "name",
    "replica",
    "processed_ledger",
}
LEDGER_PLACEHOLDERS = {"run", "dir"}

# ---------------------------------------------------------------- topology


class Ready(Model):
    """How to tell a component is ready: a command exiting 0, a line in its log, an HTTP GET
    answering 2xx, else a TCP connect to its port."""

    http: str | None = Field(None, description="path to GET on the component's port")
    command: list[Arg] = Field(
        default_factory=list,
        description="run until it exits 0 (placeholders allowed; the component's env)",
    )
    log: str | None = Field(
        None, description="a regular expression, matched in what it logged since it started"
    )
    timeout: Duration = 15.0

    @model_validator(mode="after")
    def _one_way(self) -> Ready:
        ways = [w for w in ("http", "command", "log") if getattr(self, w)]
        if len(ways) > 1:
            raise ValueError(f"give one of http, command, log; not {' and '.join(ways)}")
        if self.log is not None:
            try:
                re.compile(self.log)
            except re.error as exc:
                raise ValueError(f"log is not a regular expression: {exc}") from None
        return self


class ComponentSpec(Model):
    """One deployable part, started as a process (``{...}`` placeholders are filled at deploy),
    or one already running somewhere that the harness only reaches (``external``)."""

    description: str = ""
    command: list[Arg] = Field(
        default_factory=list,
        description="its argument list; with the docker deployer, the container's command",
    )
    image: str | None = Field(
        None,
        description="the image it runs as with the docker deployer (its own command when "
        "command is empty); harness/<kind> with no tag is the harness's own image of that kind, "
        "public or built here (base, redis, python, toxiproxy, rabbitmq, nats, kafka, "
        "prometheus); "
        "default: the harness's image for a {python}, redis-server or nats-server command",
    )
    external: str | None = Field(
        None,
        pattern=HOST_PORT_PATTERN,
        description="host:port of a component already running, such as a staging broker: the "
        "harness starts, stops and signals nothing there; links, addresses, readiness (TCP or "
        "http) and metrics work as for its own",
    )
    env: dict[str, EnvValue] = {}
    vars: dict[str, EnvValue] = Field(
        {}, description="named settings its command and env use as {var:NAME}"
    )
    workdir: str | None = Field(None, description="its working directory; default: the harness's")
    replicas: int = Field(1, ge=1, le=64)
    port: int | None = Field(None, ge=1, le=65535, description="a fixed port; default: a free one")
    ports: list[Annotated[str, Field(pattern=NAME_PATTERN)]] = Field(
        [], description="more ports it listens on, each picked free at deploy: {port:NAME}"
    )
    ready: Ready = Ready(http=None, log=None)
    metrics: str | None = Field(None, description="path Prometheus scrapes on the port")
    metrics_port: str | None = Field(
        None, description="the name (in ports) of the port to scrape instead of its port"
    )

    @model_validator(mode="after")
    def _started_or_external(self) -> ComponentSpec:
        if self.external_address is None:
            if not self.command and self.image is None:
                raise ValueError(
                    "give its command (or image), or external: host:port if it already runs"
                )
            return self
        started = {
            "command": bool(self.command),
            "image": self.image is not None,
            "env": bool(self.env),
            "workdir": self.workdir is not None,
            "replicas": self.replicas != 1,
            "port": self.port is not None,
            "ports": bool(self.ports),
            "metrics_port": self.metrics_port is not None,
            "ready.command": bool(self.ready.command),
            "ready.log": self.ready.log is not None,
        }
        if given := [name for name, is_set in started.items() if is_set]:
            raise ValueError(
                f"an external component is not started by the harness: {', '.join(given)} "
                "cannot apply to it"
            )
        return self

    @property
    def external_address(self) -> tuple[str, int] | None:
        if self.external is None:
            return None
        host, _, port = self.external.rpartition(":")
        if int(port) > 65535:
            raise ValueError(f"external: {port} is not a port (1-65535)")
        return host.strip("[]"), int(port)


DEFAULT_BODY = '{"id": "{id}", "payload": {"seq": {seq}}}'
# The default body of a load that keys its messages (an experiment's load.key): the reference
# APIs partition by "key" (Kafka's record key) and store it with the job.
KEYED_BODY = '{"id": "{id}", "key": "{key}", "payload": {"seq": {seq}}}'


PublishInto = Literal["redis-stream", "redis-list", "rabbitmq", "kafka", "nats"]
NATS_SUBJECT = re.compile(r"[^.\s*>]+(\.[^.\s*>]+)*")  # one a message can be published to


class TargetFault(Model):
    """A fault the target itself knows how to cause: a command that puts it in effect on a
    replica of its component and one that undoes it, run on the harness's host. Its effect
    must live in the component's running state (a setting changed at runtime), so that stopping
    the component, as ``harness down`` does after a killed harness, undoes it too."""

    description: str = ""
    component: str = Field(description="the component whose replicas it acts on")
    apply: list[Arg] = Field(
        min_length=1,
        description="run once per replica acted on: {host}, {port} and {name} are the replica's; "
        "{python}, {dir}, {run}, {addr:NAME}, {link:A->B} and {var:NAME} as elsewhere",
    )
    heal: list[Arg] = Field(min_length=1, description="undoes apply, on the same replicas")
    vars: dict[str, EnvValue] = Field(
        {}, description="its settings ({var:NAME}), with defaults; a timeline entry may set them"
    )
    timeout: Duration = Field(
        30.0, gt=0, description="longest each command may take before it counts as failed"
    )


class LoadPublish(Model):
    """A load that publishes each message straight into the broker instead of POSTing it to a
    producer: for systems without an HTTP API. The broker is the load's component, reached at
    127.0.0.1 and its port."""

    into: PublishInto = Field(
        description="how: XADD to a Redis stream, LPUSH to a Redis list, a RabbitMQ publish "
        "(mandatory, with publisher confirms), a Kafka produce (acks=all) or a NATS JetStream "
        "publish"
    )
    name: str | None = Field(
        None,
        description="the stream key, list key, exchange ('' is RabbitMQ's default exchange), "
        "topic or subject; default: the topology's queue",
    )
    routing_key: str | None = Field(
        None, description="rabbitmq only: the routing key; default: name"
    )
    field: str | None = Field(
        None,
        description='redis-stream only: the entry\'s field that holds the body (default "body"); '
        'the entry carries the message id in the field "id" too',
    )


class Positions(Model):
    """Where a stream processor stands in each partition, read after the drain: the position
    its group goes on from, and the records it processed, by partition."""

    committed: PositionSource = Field(
        description="each partition's committed position: a group's offsets ({source: kafka, "
        "url, topic, group}) or rows of partition, position"
    )
    processed: LedgerSource = Field(
        description="the records processed from each partition: rows of partition (one per "
        "processing) or partition, count"
    )


class Output(Model):
    """What the target promises of its effects, and where to count them."""

    promise: Literal["at-least-once", "exactly-once"] = Field(
        "at-least-once",
        description="exactly-once (transactional or idempotent output): every run against the "
        "target is also judged on duplicated == 0, on excess == 0 when effects is given and on "
        "mismatched_positions == 0 when positions are",
    )
    effects: LedgerSource | None = Field(
        None,
        description="a ledger source whose counts add up to the effects the output holds (a "
        "stream processor's counts), read after the drain: the ledger's excess is those "
        "effects beyond one per message processed",
    )
    positions: Positions | None = Field(
        None,
        description="each partition's committed position and the records processed from it, "
        "after the drain: the ledger's mismatched_positions are the partitions where the two "
        "differ (a partition's records count from offset 0)",
    )


class LoadTarget(Model):
    """Where the load generator sends its messages, and what each one carries."""

    component: str = Field(
        description="the producer the load POSTs to, or with publish the broker it writes into"
    )
    path: str = Field("/jobs", description="the path POSTed to; unused with publish")
    body: str = Field(
        DEFAULT_BODY,
        description="the POST body, or the message with publish; {id} becomes the message id "
        "(the ledger's key), {seq} the sender's sequence number",
    )
    content_type: str = Field(
        "application/json",
        description="the body's type; with publish, RabbitMQ's content_type property and a "
        "content-type header on Kafka and NATS (unused for Redis)",
    )
    publish: LoadPublish | None = Field(
        None, description="publish straight into the broker instead of POSTing to path"
    )


class ExistingPrometheus(Model):
    """A Prometheus the system already has; the run's own still scrapes the load and what the
    harness started, and reads this one's series at query time (remote read)."""

    url: str = Field(description="its base URL, such as http://prometheus.staging:9090")


class ExistingToxiproxy(Model):
    """A Toxiproxy server that already runs, such as one beside a staging system: the run makes
    its proxies there (named after the run) and removes only those."""

    url: str = Field(
        pattern=r"^https?://[^/]+/?$", description="its API, such as http://toxiproxy:8474"
    )

    @property
    def address(self) -> tuple[str, int]:
        host, _, port = self.url.split("://", 1)[1].rstrip("/").rpartition(":")
        return (host.strip("[]"), int(port)) if port.isdigit() else (port, 8474)


class TopologySpec(Model):
    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    queue: str = "jobs"
    components: dict[str, ComponentSpec] = Field(min_length=1)
    links: list[Annotated[str, Field(pattern=LINK_PATTERN)]] = []
    load: LoadTarget
    lacks: dict[str, str] = Field(
        {},
        description="metrics it cannot export, and why; checks that read them are not applicable",
    )
    ledger: LedgerSource | None = Field(
        None,
        description="where the workers record the ids they processed, read after the drain; "
        "default: the file the {processed_ledger} placeholder names",
    )
    places: dict[PlaceRole, LedgerSource] = Field(
        {},
        description="where an acknowledged message that was not processed may be found after "
        "the drain, read as ledger sources are: dead_lettered (a dead-letter queue), delayed "
        "(scheduled retries), pending (taken and never finished); the ledger counts such a "
        "message there instead of as lost",
    )
    output: Output = Field(
        default_factory=lambda: Output.model_validate({}),
        description="what the target promises of its effects (at-least-once, exactly-once), "
        "and where to count them",
    )
    deployer: Literal["local", "docker"] = Field(
        "local",
        description="local: each replica a process here; docker: a container on the run's own "
        "network (an experiment's deployer, or harness run --deployer, chooses for one run)",
    )
    observers: Literal["host", "docker"] = Field(
        "host",
        description="where the run's Prometheus runs: host (a process here) or docker (a "
        "container on the run's network; needs the docker deployer)",
    )
    toxiproxy: ExistingToxiproxy | None = Field(
        None, description="an existing Toxiproxy server for the links' proxies"
    )
    prometheus: ExistingPrometheus | None = Field(
        None, description="an existing Prometheus whose series checks and conditions may query"
    )
    drained: ConditionField = Field(
        Condition.parse("sum(harness_queue_depth) + sum(harness_queue_inflight) == 0"),
        description="true once the backlog is empty; the run waits for it after the load",
    )
    faults: dict[Annotated[str, Field(pattern=NAME_PATTERN)], TargetFault] = Field(
        {},
        description="faults of its own, by name, used in a timeline as the built-in kinds are "
        "(fault: NAME)",
    )

    def ledger_sources(self) -> list[tuple[tuple[str, ...], LedgerSource]]:
        """Every ledger source the target names, by where it sits in the file: the processed
        side, its places, and its output's effects."""
        named: list[tuple[tuple[str, ...], LedgerSource]] = []
        if self.ledger is not None:
            named.append((("ledger",), self.ledger))
        named.extend((("places", role), place) for role, place in self.places.items())
        if self.output.effects is not None:
            named.append((("output", "effects"), self.output.effects))
        return named

    def position_sources(self) -> list[tuple[tuple[str, ...], LedgerSource | KafkaOffsets]]:
        """The sources of the output's positions, by where they sit in the file."""
        if (positions := self.output.positions) is None:
            return []
        at = ("output", "positions")
        return [
            ((*at, "committed"), positions.committed),
            ((*at, "processed"), positions.processed),
        ]

    def replica_names(self, component: str) -> list[str]:
        """``worker-0``, ``worker-1``, …; a single replica keeps the component's name."""
        replicas = self.components[component].replicas
        return [component] if replicas == 1 else [f"{component}-{i}" for i in range(replicas)]

    def dependencies(self) -> dict[str, set[str]]:
        """A component depends on whatever its links point at and the addresses it uses."""
        needs: dict[str, set[str]] = {name: set() for name in self.components}
        for link in self.links:
            source, dest = link.split("->")
            needs[source].add(dest)
        for name, spec in self.components.items():
            for text in [*spec.command, *spec.env.values()]:
                for match in PLACEHOLDER.finditer(text):
                    other = str(match.group(2)).split(":")[0]
                    if match.group(1) == "addr" and other != name:
                        needs[name].add(other)
        return needs

    def layers(self) -> list[list[str]]:
        """Components grouped so each group only needs the groups before it."""
        needs = self.dependencies()
        done: set[str] = set()
        result: list[list[str]] = []
        while len(done) < len(needs):
            layer = [n for n in needs if n not in done and needs[n] <= done]
            if not layer:
                cycle = sorted(set(needs) - done)
                raise ValueError(f"components depend on each other in a cycle: {cycle}")
            result.append(layer)
            done.update(layer)
        return result
